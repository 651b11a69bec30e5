"""Deals in the browser: a guard and a `when` predicate refusing "Open negotiation" until the fields are edited
inline on the issue page, a full blocking WIP column refusing the way in until another deal leaves it, and a
project viewer who sees why every transition is closed to them, gets no button, and is refused when posting one.

The project is the deals repository (tests/support/deals_repo.py), synced as the dashboard would; the seller holds
role sales, the only role "Open negotiation" admits.
"""

import io
import json

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, sign_in
from tests.support.deals_repo import deals_project
from tests.support.fixture_projects import member
from tests.support.issue_events import make_issue

pytestmark = pytest.mark.browser


def make_user(email: str, org_role: str):
    from app.services import accounts

    return accounts.create_user(email, PASSWORD, org_role, name=email.split("@")[0].capitalize())


@pytest.fixture
def deals(_schema, tmp_path):
    """Ada owns project DEAL, the seller holds role sales, the auditor only views; (project id, seller id)."""
    with _schema.app_context():
        from app.extensions import db

        ada = make_user("ada@example.com", "owner")
        project, seller, _ = deals_project(_schema, ada, tmp_path, make_user)
        member(make_user, project, "auditor@example.com", role="viewer")
        ids = project.id, seller.id
        db.session.remove()
    return ids


@pytest.fixture
def acme_url(_schema, deals):
    """"ACME renewal" waits in drafting with its NDA, assigned to the seller, at 900000 and low priority."""
    from app.models import Project, User
    from app.services.runtime import issues, transitions

    with _schema.app_context():
        from app.extensions import db

        project, seller = db.session.get(Project, deals[0]), db.session.get(User, deals[1])
        acme = issues.create_issue(project, seller, issue_type="deal", title="ACME renewal", priority="low",
                                   assignee_id=seller.id, custom_fields={"value": "900000"})
        transitions.upload_attachment(acme.id, seller, io.BytesIO(b"%PDF-1.4 nda"), "acme-nda.pdf",
                                      "application/pdf", document_key="signed_nda")
        url = f"/projects/DEAL/issues/{acme.number}"
        db.session.remove()
    return url


def add_deal(app, project_id: int, title: str, state: str) -> str:
    """A deal of 50000 put straight into `state`; its URL."""
    from app.models import Project

    with app.app_context():
        from app.extensions import db

        deal = make_issue(db.session.get(Project, project_id), title, issue_type="deal", state=state,
                          custom_fields={"value": 50000}, emit=False)
        url = f"/projects/DEAL/issues/{deal.number}"
        db.session.remove()
    return url


def state_of(page):
    return page.locator(".issue-side .badge[class*='state-']")


def blocked(page, name: str):
    return page.locator(".blocked-transition", has=page.get_by_text(name, exact=True))


def edit_field(page, label: str, dom: str, value: str) -> None:
    """Edit one field inline on the issue page and save it."""
    page.get_by_role("button", name=f"Edit {label}").click()
    field = page.locator(f"#field-{dom}")
    if dom == "priority":
        field.get_by_label(label, exact=True).select_option(value)
    else:
        field.get_by_label(label, exact=True).fill(value)
    field.get_by_role("button", name="Save").click()
    expect(page.locator(f"#field-{dom} .field-value")).to_have_text(value)


def test_a_guard_and_a_predicate_refuse_until_the_fields_are_edited_inline(new_page, acme_url):
    seller = new_page()
    sign_in(seller, "seller@example.com")
    seller.goto(acme_url)
    state = state_of(seller)
    expect(state).to_have_text("Drafting")
    open_negotiation = seller.get_by_role("button", name="Open negotiation", exact=True)
    reasons = blocked(seller, "Open negotiation").locator(".reasons li")
    expect(reasons).to_have_text([
        "Deal value must be at most 500000 (it is 900000)", "Priority must differ from 'low' (it is 'low')"])
    expect(open_negotiation).to_have_count(0)

    # Too small for the guard now, while the predicate still wants another priority.
    edit_field(seller, "Deal value", "custom_fields-value", "5000")
    expect(reasons).to_have_text([
        "Deal value must be at least 10000 (it is 5000)", "Priority must differ from 'low' (it is 'low')"])
    edit_field(seller, "Deal value", "custom_fields-value", "250000")
    expect(reasons).to_have_text(["Priority must differ from 'low' (it is 'low')"])
    expect(open_negotiation).to_have_count(0)
    edit_field(seller, "Priority", "priority", "high")
    expect(blocked(seller, "Open negotiation")).to_have_count(0)
    open_negotiation.click()
    expect(state).to_have_text("Negotiating")
    expect(seller.locator(".history")).to_contain_text("from Drafting to Negotiating (Open negotiation)")


def test_a_full_blocking_column_refuses_until_a_deal_leaves_it(new_page, deals, _schema):
    busy_url = add_deal(_schema, deals[0], "Busy deal", "negotiating")
    old_url = add_deal(_schema, deals[0], "Old deal", "lost")
    seller = new_page()
    sign_in(seller, "seller@example.com")
    seller.goto(old_url)
    state = state_of(seller)
    expect(state).to_have_text("Lost")
    expect(blocked(seller, "Revive").locator(".reasons li")).to_have_text(
        ["Column 'Negotiating' is at its WIP limit (1/1)"])
    expect(seller.get_by_role("button", name="Revive", exact=True)).to_have_count(0)
    seller.get_by_role("button", name="Simulate Revive").click()
    verdict = seller.locator(".verdict")
    expect(verdict).to_contain_text("Revive: would be refused (nothing was changed)")
    expect(verdict.locator("tr.fail")).to_have_count(1)
    expect(verdict.locator("tr.fail td")).to_have_text(
        ["wip", "fails", "Column 'Negotiating' is at its WIP limit (1/1)"])

    # The busy deal is lost (with the comment "Lose" requires), which frees the column.
    seller.goto(busy_url)
    seller.get_by_label("Comment for “Lose” (required)").fill("Went with a competitor")
    seller.get_by_role("button", name="Lose", exact=True).click()
    expect(state).to_have_text("Lost")

    seller.goto(old_url)
    expect(blocked(seller, "Revive")).to_have_count(0)
    seller.get_by_role("button", name="Revive", exact=True).click()
    expect(state).to_have_text("Negotiating")
    expect(seller.locator(".history")).to_contain_text("from Lost to Negotiating (Revive)")

    # The revived deal fills the column again: the other one may not come back now.
    seller.goto(busy_url)
    expect(blocked(seller, "Revive").locator(".reasons li")).to_have_text(
        ["Column 'Negotiating' is at its WIP limit (1/1)"])


def test_a_viewer_sees_why_no_transition_is_theirs_and_no_button(new_page, acme_url):
    auditor = new_page()
    sign_in(auditor, "auditor@example.com")
    auditor.goto(acme_url)
    expect(state_of(auditor)).to_have_text("Drafting")
    transitions = auditor.locator("section.transitions")
    expect(transitions).to_contain_text("No transition is available right now.")
    expect(transitions.locator("form.transition")).to_have_count(0)
    expect(blocked(auditor, "Open negotiation").locator(".reasons li")).to_have_text([
        "You lack the issue.transition permission", "Only role sales may use 'Open negotiation'",
        "Deal value must be at most 500000 (it is 900000)", "Priority must differ from 'low' (it is 'low')"])
    expect(auditor.get_by_role("button", name="Edit Priority")).to_have_count(0)

    # Posting the transition anyway, with the auditor's own session and CSRF token, is refused and moves nothing.
    token = json.loads(auditor.locator("body").get_attribute("hx-headers"))["X-CSRFToken"]
    response = auditor.request.post(f"{acme_url}/transition", form={"transition": "Open negotiation"},
                                    headers={"X-CSRFToken": token})
    assert response.status == 403
    assert "You cannot transition issues in this project (needs issue.transition)." in response.text()
    auditor.reload()
    expect(state_of(auditor)).to_have_text("Drafting")
    expect(auditor.locator(".history li")).to_have_count(1)
