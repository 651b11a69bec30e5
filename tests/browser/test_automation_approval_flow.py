"""A `requires_approval` automation in the browser: the run waits, the owner is told by the bell, reads the
plan on the notifications page and approves it; the real worker ran the event, the approval runs the actions."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import reload_until, sign_up_with_project

pytestmark = pytest.mark.browser

GATED = """model_version: "1.0"
automations:
  - id: label-on-comment
    name: Label commented issues
    trigger: comment.created
    requires_approval: true
    actions:
      - type: add_label
        label: discussed
"""


def comment_on_a_new_issue(app) -> None:
    from sqlalchemy import select

    from app.models import Project, User
    from app.services.runtime import transitions
    from tests.support.issue_events import make_issue, save_override

    with app.app_context():
        from app.extensions import db

        ada = db.session.scalar(select(User).where(User.email == "ada@example.com"))
        project = db.session.scalar(select(Project).where(Project.key == "BUG"))
        save_override(ada, project, "automations/gated.yaml", GATED)
        issue = make_issue(project, "Gated", issue_type="task", reporter=ada, emit=False)
        transitions.add_comment(issue.id, ada, "please label me")
        db.session.remove()


def test_the_owner_approves_a_waiting_run(new_page, worker, _schema):
    page = new_page()
    sign_up_with_project(page)
    comment_on_a_new_issue(_schema)

    bell = page.locator("#bell")
    reload_until(page, bell.locator(".badge"))  # the worker runs the comment's event; the bell polls every 30 s
    expect(bell.locator(".badge")).to_have_text("1")
    bell.click()
    expect(page.locator(".notification.unread .message")).to_have_text(
        "Automation 'Label commented issues' awaits approval on BUG-1 Gated")
    run = page.locator(".automation-run")
    expect(run).to_contain_text("label-on-comment")
    expect(run).to_contain_text("add_label")
    run.get_by_role("button", name="Approve").click()
    expect(page.locator("#automation-approvals [role=status]")).to_contain_text(
        "applied (approved by ada@example.com)")
    expect(page.locator(".automation-run")).to_have_count(0)
    page.goto("/projects/BUG/issues/1")
    expect(page.locator("body")).to_contain_text("discussed")


def test_the_owner_approves_a_waiting_run_on_the_issue_page(new_page, worker, _schema):
    page = new_page()
    sign_up_with_project(page)
    comment_on_a_new_issue(_schema)

    page.goto("/projects/BUG/issues/1")
    run = page.locator(".automation-run")
    reload_until(page, run)  # the worker runs the comment's event; the page shows the run once it waits
    section = page.get_by_role("region", name="Automation runs awaiting approval")
    expect(section.locator(".automation-run")).to_contain_text("label-on-comment")
    expect(section.locator(".automation-run")).to_contain_text("add_label")
    section.get_by_role("button", name="Approve").click()
    # The outcome stays in sight whether or not the live copy of the issue arrives after the reply.
    expect(page.locator(".own-outcome")).to_contain_text("applied (approved by ada@example.com)")
    expect(page.locator(".automation-run")).to_have_count(0)
    expect(page.locator("body")).to_contain_text("discussed")
