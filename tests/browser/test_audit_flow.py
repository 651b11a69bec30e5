"""The audit page in a browser: a transition, an automation run and a forced move are listed; a filter narrows
the list in place and keeps itself in the URL; after a row is tampered with in the database, Verify now shows the
broken link."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, sign_in

pytestmark = pytest.mark.browser

@pytest.fixture
def trail(_schema):
    from tests.support.issue_events import triaged_crash

    from app.services import accounts
    from app.services.runtime import transitions

    with _schema.app_context():
        ada = accounts.create_user("ada@example.com", PASSWORD, "owner", name="Ada")
        project, issue = triaged_crash(_schema, ada)
        transitions.force_transition(issue.id, ada, transition="Accept", reason="urgent")
        return project.id


def test_audit_page_lists_filters_and_finds_a_tampered_row(new_page, _schema, trail):
    from app.extensions import db

    page = new_page()
    sign_in(page, "ada@example.com")
    page.goto("/projects/BUG")
    page.get_by_role("link", name="Audit trail").click()
    expect(page.get_by_role("heading", name=re.compile("Audit trail"))).to_be_visible()
    expect(page.locator("#audit-verification")).to_contain_text("The chain holds")
    events = page.locator("#audit-events tbody tr")
    for kind in ("issue.transitioned", "automation.run", "issue.forced"):
        expect(events.filter(has_text=kind)).to_have_count(1)

    page.wait_for_load_state()  # htmx listens to the filters once the deferred scripts have run
    page.evaluate("window.kiketNoReload = true")
    page.get_by_label("Kind").select_option("issue.forced")
    expect(events).to_have_count(1)
    expect(page).to_have_url(re.compile(r"kind=issue\.forced"))
    assert page.evaluate("window.kiketNoReload") is True

    with _schema.app_context():
        db.session.execute(db.text("UPDATE audit_events SET kind = 'issue.deleted' WHERE project_id = :p AND seq = 2"),
                           {"p": trail})
        db.session.commit()
    page.get_by_role("button", name="Verify now").click()
    expect(page.locator("#audit-broken")).to_contain_text("broken at event #2")
    page.reload()
    expect(page.locator("#audit-broken")).to_contain_text("hash does not match the event's content")
