"""The issue page is live: while Bob has the title editor open, Ada's change shows as a notice naming her, before
Bob saves (his editor stays as he left it); once he is not editing, the page shows Ada's change by itself."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.browser.test_board_flow import kanban  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


def change_title(_schema, issue_id: int, title: str) -> None:
    """Ada renames the issue through the issue service, from another process than the web server's."""
    with _schema.app_context():
        from app.extensions import db
        from app.models import User
        from app.models.issues import Issue
        from app.services.runtime import issues

        ada = db.session.query(User).filter_by(email="ada@example.com").one()
        issue = db.session.get(Issue, issue_id)
        issues.update_issue(issue_id, ada, issue.lock_version, title=title)
        db.session.remove()


def test_someone_elses_change_is_announced_before_a_conflicting_save(new_page, kanban, _schema):  # noqa: F811
    bob = new_page()
    sign_in(bob, "bob@example.com")
    bob.goto("/projects/KAN/issues/1")
    expect(bob.locator("html")).to_have_attribute("data-live", "open")

    bob.locator("#field-title .edit").click()
    editor = bob.locator("form.editing")
    expect(editor).to_be_visible()
    editor.locator("input[name=value]").fill("Bob's title")
    change_title(_schema, kanban["Write docs"], "Ada's title")
    expect(bob.get_by_role("status").filter(has_text="Ada changed this issue just now")).to_be_visible()
    expect(editor.locator("input[name=value]")).to_have_value("Bob's title")

    bob.keyboard.press("Escape")
    change_title(_schema, kanban["Write docs"], "Ada's second title")
    expect(bob.locator(".issue-head")).to_contain_text("Ada's second title")
