"""Sync a workflow repository from the dashboard and follow it live, then inspect, compare and roll back."""

import re

import pytest
from playwright.sync_api import expect

from tests.support.sync_repos import bare_remote, file_url, push_change

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"


@pytest.fixture
def signed_in(new_page, _schema, worker):
    from app.services import accounts, projects

    with _schema.app_context():
        owner = accounts.create_user("ada@example.com", PASSWORD, "owner")
        projects.create_project(owner, "ENG", "Engineering", "", "bug_tracking")
    page = new_page()
    page.goto("/login")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    return page


def sync_branch(page, branch: str, expected: str) -> None:
    page.get_by_label("Branch", exact=True).select_option(branch)
    page.get_by_role("button", name="Sync", exact=True).click()
    expect(page.locator("#sync-state")).to_have_text(expected, timeout=30_000)


def test_pick_sync_watch_inspect_compare_roll_back(signed_in, tmp_path):
    page = signed_in
    remote = bare_remote(tmp_path, "engineering")
    page.get_by_role("link", name="Workflow repositories").click()
    page.get_by_role("link", name="Connect a repository", exact=True).click()
    page.get_by_label("Repository URL").fill(file_url(remote))
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_label("Secret")).not_to_have_value("")
    page.get_by_role("link", name="Open the repository and sync").click()

    # The picker lists the remote's branches; the status turns active without a reload.
    expect(page.get_by_label("Branch", exact=True).locator("option")).to_have_count(2)
    url = page.url
    sync_branch(page, "main", "active")
    assert page.url == url
    sync_branch(page, "develop", "active")
    expect(page.get_by_role("table", name="Revisions").locator("tbody tr")).to_have_count(2)

    # A broken commit fails with file:line diagnostics; its line opens highlighted.
    push_change(remote, "main", ".kiket/workflows/bug.yaml", "workflow:\n  id: bug\nstates: {}\n", "Break bug")
    sync_branch(page, "main", "failed")
    page.get_by_role("link", name="See the diagnostics").click()
    page.locator("a.loc", has_text=".kiket/workflows/bug.yaml").first.click()
    expect(page.locator("tr.highlight")).to_be_visible()
    expect(page.locator("tr.highlight")).to_contain_text("states")

    # Compare the two revisions, then roll back to the older one.
    page.go_back()
    page.get_by_role("link", name=re.compile("repository")).first.click()
    page.get_by_role("button", name="Compare selected").click()
    expect(page.get_by_role("heading", name=re.compile("Changes from"))).to_be_visible()
    expect(page.get_by_role("table", name="Summary of changes")).to_be_visible()
    page.go_back()
    page.get_by_label("Branch", exact=True).select_option("develop")
    page.evaluate("window.kiketNoReload = true")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Roll back to this").click()
    expect(page.get_by_role("table", name="Revisions").locator("tbody tr").last).to_contain_text("active")
    # The branch picker follows at once, in place: the rolled-back revision's branch is the tracked one.
    expect(page.locator("#f-branch option", has_text="(tracked)")).to_have_text("main (tracked)")
    assert page.evaluate("window.kiketNoReload") is True
