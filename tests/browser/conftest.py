"""Browser tests: real Chromium through Playwright against a live gunicorn server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT, clean_database

PASSWORD = "correct horse battery"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


def chromium_path() -> str | None:
    return os.environ.get("KIKET_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def pytest_collection_modifyitems(config, items):
    if chromium_path():
        return
    reason = "Chromium not found (install the chromium package or set KIKET_CHROMIUM)"
    if os.environ.get("KIKET_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(f"KIKET_REQUIRE_BROWSER=1 but {reason}")
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def live_proxy(_schema, process_env):
    """The live process (gevent, as in the Procfile) behind a relay tests can cut."""
    from tests.support.live_servers import CuttableProxy, live_command, server

    with server(live_command, process_env) as url:
        proxy = CuttableProxy(int(url.rsplit(":", 1)[1]))
        yield proxy
        proxy.close()


@pytest.fixture(scope="session")
def live_server(_schema, process_env, live_proxy):
    """The web process; its pages open their live sockets on the live process, through the relay."""
    from tests.support.live_servers import server, web_command

    with server(web_command, process_env, KIKET_LIVE_URL=f"ws://127.0.0.1:{live_proxy.port}/live") as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def fresh_install(_schema):
    """Empty tables and Redis before each browser flow, as on a fresh installation."""
    clean_database(_schema)
    _schema.extensions["redis"].flushdb()


def is_csp_violation(message) -> bool:
    """Chromium reports every blocked script, handler, style or connection as a console error naming the policy."""
    return message.type == "error" and "Content Security Policy" in message.text


@pytest.fixture
def new_page(browser, live_server, fresh_install):
    """Open a page in a new browser context (a separate person with their own cookies).

    The test fails when any page of its contexts reports a Content-Security-Policy violation.
    """
    contexts = []
    violations = []

    def record(message):
        if is_csp_violation(message):
            violations.append(f"{message.page.url if message.page else ''}: {message.text}")

    def open_page():
        context = browser.new_context(base_url=live_server)
        context.set_default_timeout(10_000)
        context.on("console", record)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
    assert not violations, "Content-Security-Policy violations:\n" + "\n".join(violations)


@pytest.fixture
def worker(fresh_install, process_env):
    """A real RQ worker process on every queue, started after the stores were emptied."""
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "worker", "--wait", "10"],
        cwd=ROOT, env=process_env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    yield process
    process.terminate()
    process.wait(20)


def sign_in(page, email: str, password: str = PASSWORD) -> None:
    """Log in through the login form, as a person would, and wait for the projects page."""
    from playwright.sync_api import expect

    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()


def create_organization(page) -> None:
    """Ada fills in the first page of a fresh installation (open in `page`) and lands on her projects."""
    from playwright.sync_api import expect

    page.get_by_label("Organization name").fill("Analytical Engines")
    page.get_by_label("Your name").fill("Ada")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create organization").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()


def sign_up_with_project(page, *, sample_issues: bool = False) -> None:
    """Ada creates the organization, then the bug-tracking project BUG from its template."""
    from playwright.sync_api import expect

    page.goto("/")
    create_organization(page)
    page.goto("/projects/new")
    page.get_by_label("Name").fill("Bugs")
    page.get_by_label("Key").fill("BUG")
    page.get_by_label(re.compile("Bug tracking")).check()
    page.get_by_label("Start with the template's sample issues").set_checked(sample_issues)
    page.get_by_role("button", name="Create project").click()
    expect(page).to_have_url(re.compile(r"/projects/BUG$"))


def reload_until(page, locator, tries: int = 40) -> None:
    """Reload until `locator` matches: what the worker does shows without waiting for a page's own polling."""
    for _ in range(tries):
        if locator.count():
            return
        page.wait_for_timeout(250)
        page.reload()
