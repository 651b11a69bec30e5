"""Legal's repository as shipped in the browser (§16): its approver role `legal` is declared nowhere, so the sync
reports `unsatisfiable_gate`; the contract stuck in Legal Review is forced out by an organization owner with a
reason, and its history shows the forced move and the gate it skipped; a member is offered no force."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, sign_in
from tests.support.fixture_projects import by_title, member, sync_remote
from tests.support.sync_repos import bare_remote

pytestmark = pytest.mark.browser


@pytest.fixture
def legal(new_page, _schema, tmp_path):
    """Ada (organization owner) and Bob (member) on project LEG, synced from the legal repository as shipped."""
    from app.services import accounts

    with _schema.app_context():
        from app.extensions import db
        from app.models import SyncRun

        ada = accounts.create_user("ada@example.com", PASSWORD, "owner", name="Ada")
        project, repository = sync_remote(_schema, ada, bare_remote(tmp_path, "legal"), "LEG")
        member(lambda email, role: accounts.create_user(email, PASSWORD, role, name="Bob"), project,
               "bob@example.com")
        contract = by_title(project, "Meridian")
        run = db.session.query(SyncRun).filter_by(repository_id=repository.id).one()
        urls = {"issue": f"/projects/LEG/issues/{contract.number}", "run": f"/repositories/runs/{run.id}"}
        db.session.remove()
    return urls


def test_an_owner_forces_the_stuck_contract_and_a_member_cannot(new_page, legal):
    ada = new_page()
    sign_in(ada, "ada@example.com")
    ada.goto(legal["run"])
    diagnostics = ada.locator("section", has=ada.get_by_role("heading", name="Diagnostics"))
    expect(diagnostics).to_contain_text("unsatisfiable_gate")
    expect(diagnostics).to_contain_text("Role 'legal' approves state 'legal_review' of workflow 'contract'")

    bob = new_page()
    sign_in(bob, "bob@example.com")
    bob.goto(legal["issue"])
    expect(bob.locator("html")).to_have_attribute("data-live", "open")
    reject = bob.locator(".blocked-transition", has=bob.get_by_text("Reject", exact=True))
    expect(reject).to_contain_text("declared nowhere: an organization owner or admin decides in its place")
    expect(bob.get_by_text("Force “Reject”…")).to_have_count(0)
    expect(bob.locator("section.approval")).to_contain_text("Only role legal (declared nowhere")

    ada.goto(legal["issue"])
    # The live socket's first message swaps the issue in; the force form is opened after it.
    expect(ada.locator("html")).to_have_attribute("data-live", "open")
    reject = ada.locator(".blocked-transition", has=ada.get_by_text("Reject", exact=True))
    expect(reject).to_contain_text("Needs 1 approval from role legal")
    ada.get_by_text("Force “Reject”…").click()
    ada.get_by_role("textbox", name="Why is this forced? (required)").fill("Meridian withdrew the request")
    ada.get_by_role("button", name="Force Reject", exact=True).click()
    expect(ada.locator(".issue-side")).to_contain_text("Cancelled")
    history = ada.locator("section.history")
    expect(history).to_contain_text("forced")
    expect(history).to_contain_text("Meridian withdrew the request")
    expect(history).to_contain_text("approval: Needs 1 approval from role legal")

    bob.reload()
    expect(bob.locator("html")).to_have_attribute("data-live", "open")
    expect(bob.locator("section.history")).to_contain_text("Meridian withdrew the request")
