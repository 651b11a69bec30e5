"""A contract through legal's workflow in the browser: a checklist guard, an approval only counsel may give,
a comment-required transition and a required document, each refusing with its reason until satisfied.

Legal's contract workflow has the checklist and the approval policy but nothing that uses the checklist as a
guard, no comment-required transition and no required document: the test's copy of the repository adds a
guard on "Send to Legal", `comment_required` on "Approve for Signature" and a signed copy required to leave
"Pending Signature", then syncs it into a project as the dashboard would.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, sign_in
from tests.support.fixture_projects import LEGAL_TEAM, override, sync_remote
from tests.support.sync_repos import bare_remote, push_change, show

pytestmark = pytest.mark.browser
CONTRACT = ".kiket/workflows/contract.yaml"


def with_more_gates(text: str) -> str:
    """Legal's contract workflow with a checklist guard, a comment-required transition and a required document."""
    edits = (
        ("    to: legal_review\n    name: Send to Legal\n",
         "    to: legal_review\n    name: Send to Legal\n"
         "    conditions:\n      - checklist: internal_review_checklist\n        complete: true\n"),
        ("    name: Approve for Signature\n", "    name: Approve for Signature\n    comment_required: true\n"),
        ("  pending_signature:\n    type: active\n",
         "  pending_signature:\n    type: active\n    required_documents: [signed_copy]\n"),
    )
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


@pytest.fixture
def contract_url(new_page, _schema, tmp_path):
    """Ada owns project LEG on the edited legal repository; counsel holds role legal; a contract in draft."""
    from app.services import accounts
    from app.services.runtime import issues

    remote = bare_remote(tmp_path, "legal")
    push_change(remote, "main", CONTRACT, with_more_gates(show(remote, "main", CONTRACT)), "More gates")
    with _schema.app_context():
        from app.extensions import db

        ada = accounts.create_user("ada@example.com", PASSWORD, "owner", name="Ada")
        accounts.create_user("counsel@example.com", PASSWORD, "member", name="Grace")
        project, _ = sync_remote(_schema, ada, remote, "LEG")
        override(_schema, ada, project, "team.yaml", LEGAL_TEAM)
        contract = issues.create_issue(project, ada, issue_type="contract", title="Reseller agreement with Northwind")
        url = f"/projects/LEG/issues/{contract.number}"
        db.session.remove()
    return url


def blocked(page, name: str):
    return page.locator(".blocked-transition", has=page.get_by_text(name, exact=True))


def test_checklist_approval_comment_and_document_gates_in_the_browser(new_page, contract_url):
    ada = new_page()
    sign_in(ada, "ada@example.com")
    ada.goto(contract_url)
    state = ada.locator(".issue-side")
    ada.get_by_role("button", name="Submit for Review", exact=True).click()
    expect(state).to_contain_text("Internal Review")

    # The checklist guard: refused with the progress, then ticked item by item on the page.
    expect(blocked(ada, "Send to Legal")).to_contain_text(
        "Checklist 'Internal Review' is not complete: 0 of 3 required items checked")
    checklist = ada.locator("section.checklist")
    expect(checklist).to_contain_text("0 of 3 required items checked")
    for item in ("Terms and conditions reviewed", "Pricing verified", "Compliance requirements met"):
        box = ada.get_by_role("checkbox", name=item)
        expect(box).to_have_attribute("aria-checked", "false")
        box.click()
        expect(ada.get_by_role("checkbox", name=item)).to_have_attribute("aria-checked", "true")
    expect(checklist).to_contain_text("3 of 3 required items checked · complete")
    expect(blocked(ada, "Send to Legal")).to_have_count(0)
    ada.get_by_role("button", name="Send to Legal", exact=True).click()
    expect(state).to_contain_text("Legal Review")

    # Every way out waits for counsel; Ada may not decide.
    approve_for_signature = blocked(ada, "Approve for Signature")
    expect(approve_for_signature).to_contain_text("Needs 1 approval from role legal (0 so far)")
    expect(approve_for_signature).to_contain_text("A comment is required for 'Approve for Signature'")
    expect(blocked(ada, "Reject")).to_contain_text("Needs 1 approval from role legal (0 so far)")
    approval = ada.locator("section.approval")
    expect(approval).to_contain_text("Only role legal may decide")
    expect(approval.get_by_role("button", name="Approve", exact=True)).to_have_count(0)

    # Counsel, in a browser of her own, approves on the issue page.
    counsel = new_page()
    sign_in(counsel, "counsel@example.com")
    counsel.goto(contract_url)
    counsel.get_by_label("Reason (optional)").fill("Liability cap is fine")
    counsel.get_by_role("button", name="Approve", exact=True).click()
    expect(counsel.locator("section.approval")).to_contain_text("Approved by Grace.")
    expect(counsel.locator("section.approval")).to_contain_text("Grace: approved — Liability cap is fine")

    # Now only the comment is missing: the transition asks for one and refuses to go without it.
    ada.reload()
    expect(blocked(ada, "Approve for Signature")).to_have_count(0)
    ada.get_by_role("button", name="Approve for Signature", exact=True).click()
    refused = ada.get_by_role("alert")
    expect(refused).to_contain_text("Transition refused")
    expect(refused).to_contain_text("A comment is required for 'Approve for Signature'")
    expect(state).to_contain_text("Legal Review")
    ada.get_by_label(re.compile("Comment for .Approve for Signature. \\(required\\)")).fill("Counsel approved")
    ada.get_by_role("button", name="Approve for Signature", exact=True).click()
    expect(state).to_contain_text("Pending Signature")

    # The signed copy is required before leaving; uploading it as that document opens the way.
    expect(blocked(ada, "Sign Internally")).to_contain_text(
        "Document 'Signed copy' is required before leaving 'Pending Signature'")
    ada.get_by_label("File", exact=True).set_input_files(
        files=[{"name": "northwind-signed.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 signed"}])
    ada.get_by_label("Document type").select_option(label="Signed copy")
    ada.get_by_role("button", name="Upload", exact=True).click()
    expect(ada.locator("section.attachments")).to_contain_text("northwind-signed.pdf")
    expect(blocked(ada, "Sign Internally")).to_have_count(0)
    ada.get_by_role("button", name="Sign Internally", exact=True).click()
    expect(state).to_contain_text("Countersigned")
    expect(ada.locator(".history")).to_contain_text("to Countersigned (Sign Internally)")
