"""Every page arrives with the Content-Security-Policy and works under it (the `new_page` fixture fails a test
on any violation Chromium reports); the policy really blocks injected handlers."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, is_csp_violation, sign_in

pytestmark = pytest.mark.browser

PAGES = ["/projects", "/projects/ENG", "/projects/ENG/issues", "/projects/ENG/issues/new", "/projects/ENG/configuration",
         "/repositories/", "/repositories/new", "/admin/", "/notifications", "/account/password", "/no-such-page",
         "/account/tokens", "/api/docs", "/projects/ENG/extensions", "/projects/ENG/webhooks"]


def test_every_page_sends_the_policy_and_runs_under_it(new_page, _schema):
    from app.services import accounts, projects

    with _schema.app_context():
        owner = accounts.create_user("ada@example.com", PASSWORD, "owner")
        projects.create_project(owner, "ENG", "Engineering", "", "bug_tracking")
    page = new_page()
    documents = []
    page.on("response", lambda response: documents.append(response) if response.request.resource_type == "document" else None)
    sign_in(page, "ada@example.com")
    for path in PAGES:
        page.goto(path)
        expect(page.locator("main h1").first).to_be_visible()
    # The RQ dashboard (a relaxed policy with a nonce) fills its tables by script.
    page.goto("/rq/")
    expect(page.locator("#queues [data-role=loading-placeholder]")).to_have_count(0)
    assert len(documents) >= len(PAGES) + 3
    for response in documents:
        policy = response.headers.get("content-security-policy", "")
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy, response.url
        assert response.headers.get("x-frame-options") == "DENY", response.url


def test_the_policy_blocks_injected_handlers_and_the_console_says_so(browser, live_server, fresh_install):
    context = browser.new_context(base_url=live_server)
    try:
        page = context.new_page()
        page.goto("/login")
        with page.expect_console_message(is_csp_violation) as report:
            page.evaluate("""() => {
                document.body.insertAdjacentHTML('beforeend', '<button id="bait" onclick="window.pwned = 1">x</button>');
                document.getElementById('bait').click();
            }""")
        assert "inline event handler" in report.value.text
        assert page.evaluate("() => window.pwned") is None
    finally:
        context.close()
