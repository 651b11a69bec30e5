"""Transition gates (spec §8.8) through the transition service, on the fixture repositories' real workflows,
brought in by a real sync.

Where the fixtures have a gate kind it is tested on them: checklists with automatic items (engineering's
`testing → deployed`), the permission every role needs, and WIP (kanban's board, whose columns warn). The
fixtures have no `roles`, required fields, predicate, required document, comment-required transition,
sequential approval or blocking WIP column: those are tested on a small repository in the docs dialect (with
the aliases, tests/support/deals_repo.py), synced the same way. The same gates on the bundled templates are in
test_issues_service.py; engineering's assignee condition and postmortem guard and legal's quorum approvals in
test_issues_fixtures.py.
"""

from __future__ import annotations

import io

import pytest

from tests.support.deals_repo import deals_project
from tests.support.fixture_projects import member, synced_project, write_custom_fields
from tests.support.issue_events import make_issue


def test_engineering_testing_checklist_counts_automatic_items_from_fields(app, owner, tmp_path):
    from app.services.errors import Invalid
    from app.services.runtime import issue_page, issue_queries, issues, transitions

    project, _, _ = synced_project(app, owner, tmp_path, "engineering")
    bug = issues.create_issue(project, owner, issue_type="bug", title="Leak", assignee_id=owner.id)
    for target in ("triaging", "fixing", "testing"):
        transitions.apply_transition(bug.id, owner, target=target)

    verdict = transitions.simulate(bug.id, owner, target="deployed")
    assert verdict.failed == ("checklists",) and verdict.transition.name == "Deploy"
    assert verdict.reasons == ("Checklist 'Testing Checklist' is not complete: 0 of 4 required items checked",)
    with pytest.raises(Invalid, match="checked automatically while its condition holds"):
        transitions.tick_checklist(bug.id, owner, "bug_testing", "unit_tests", True)
    transitions.tick_checklist(bug.id, owner, "bug_testing", "manual_qa", True)
    write_custom_fields(bug.id, ci_status="passed", integration_status="PASSED", security_status="2 findings")
    assert transitions.simulate(bug.id, owner, target="deployed").reasons == (
        "Checklist 'Testing Checklist' is not complete: 3 of 4 required items checked",)
    [checklist] = issue_page.issue_view(owner, issue_queries.get_issue(owner, project.key, bug.key)).checklists
    assert set(checklist.checked) == {"manual_qa", "unit_tests", "integration_tests"} and not checklist.complete

    write_custom_fields(bug.id, security_status="clean")
    assert transitions.simulate(bug.id, owner, target="deployed").allowed
    # Tests failed: back to fixing and in again; the manual tick resets, the automatic ones still hold.
    transitions.apply_transition(bug.id, owner, target="fixing")
    transitions.apply_transition(bug.id, owner, target="testing")
    assert transitions.simulate(bug.id, owner, target="deployed").reasons == (
        "Checklist 'Testing Checklist' is not complete: 3 of 4 required items checked",)
    transitions.tick_checklist(bug.id, owner, "bug_testing", "manual_qa", True)
    deployed = transitions.apply_transition(bug.id, owner, target="deployed")
    assert deployed.state == "deployed" and deployed.resolved_at is not None


def test_kanban_columns_warn_over_their_wip_limit_and_viewers_move_nothing(app, owner, make_user, tmp_path):
    from app.services.errors import Forbidden
    from app.services.runtime import transitions

    project, _, _ = synced_project(app, owner, tmp_path, "kanban", "KAN")
    viewer = member(make_user, project, "auditor@example.com", role="viewer")
    for n in range(4):
        make_issue(project, f"Reviewed {n}", issue_type="Task", state="review", emit=False)
    issue = make_issue(project, "One too many", issue_type="Task", state="in_progress", emit=False)

    verdict = transitions.simulate(issue.id, viewer, target="review")
    assert verdict.failed == ("permission",) and verdict.reasons == ("You lack the issue.transition permission",)
    with pytest.raises(Forbidden):
        transitions.apply_transition(issue.id, viewer, target="review")

    verdict = transitions.simulate(issue.id, owner, target="review")
    assert verdict.allowed
    assert verdict.gate("wip").reasons == ("Column 'Review' is at its WIP limit (4/4); allowed (warn policy)",)
    assert transitions.apply_transition(issue.id, owner, target="review").state == "review"


@pytest.fixture
def deals(app, owner, make_user, tmp_path):
    return deals_project(app, owner, tmp_path, make_user)


def test_roles_fields_predicate_and_documents_gate_the_way_out(app, owner, deals):
    from app.services.runtime import issues, transitions

    project, seller, cfo = deals
    deal = issues.create_issue(project, seller, issue_type="deal", title="ACME renewal", priority="low",
                               custom_fields={"value": "900000"})
    verdict = transitions.simulate(deal.id, owner, target="negotiating")
    assert verdict.failed == ("permission", "required_fields", "predicate", "documents")
    assert verdict.reasons == (
        "Only role sales may use 'Open negotiation'",
        "Field 'Assignee' is required",
        "Deal value must be at most 500000 (it is 900000)",
        "Priority must differ from 'low' (it is 'low')",
        "Document 'Signed NDA' is required before leaving 'Drafting'")

    transitions.upload_attachment(deal.id, seller, io.BytesIO(b"%PDF-1"), "nda.pdf", "application/pdf",
                                  document_key="signed_nda")
    deal = issues.update_issue(deal.id, seller, deal.lock_version, assignee_id=seller.id,
                               custom_fields={"value": "250000"})
    verdict = transitions.simulate(deal.id, seller, target="negotiating")
    assert verdict.failed == ("predicate",) and verdict.reasons == ("Priority must differ from 'low' (it is 'low')",)
    deal = issues.update_issue(deal.id, seller, deal.lock_version, priority="high")
    assert transitions.apply_transition(deal.id, seller, target="negotiating").state == "negotiating"


def test_sequential_approval_comment_and_a_blocking_wip_column(app, owner, deals):
    from app.services.errors import Forbidden
    from app.services.runtime import transitions

    project, seller, cfo = deals
    big, small = (make_issue(project, title, issue_type="deal", state="negotiating", reporter=seller,
                             custom_fields={"value": value}, emit=False)
                  for title, value in (("Big deal", 250000), ("Small deal", 5000)))
    verdict = transitions.simulate(big.id, seller, target="signed")
    assert verdict.failed == ("approval",)
    with pytest.raises(Forbidden):
        transitions.decide_approval(big.id, cfo, "approved")  # finance decides after sales, in order
    transitions.decide_approval(big.id, seller, "approved")
    assert transitions.simulate(big.id, seller, target="signed").failed == ("approval",)
    transitions.decide_approval(big.id, cfo, "approved")
    assert transitions.apply_transition(big.id, seller, target="signed").state == "signed"
    # Below 100000 the finance step is skipped: sales alone signs.
    transitions.decide_approval(small.id, seller, "approved")
    assert transitions.simulate(small.id, seller, target="signed").allowed

    with pytest.raises(transitions.TransitionBlocked) as caught:
        transitions.apply_transition(small.id, seller, target="lost", comment="  ")
    assert caught.value.verdict.reasons == ("A comment is required for 'Lose'",)
    lost = transitions.apply_transition(small.id, seller, target="lost", comment="Went with a competitor")
    assert lost.state == "lost"

    # A lost deal may be revived (a declared way out of a final state), unless negotiating is full.
    make_issue(project, "Busy deal", issue_type="deal", state="negotiating", emit=False)
    with pytest.raises(transitions.TransitionBlocked) as caught:
        transitions.apply_transition(small.id, seller, transition="Revive")
    assert caught.value.verdict.failed == ("wip",)
    assert caught.value.verdict.reasons == ("Column 'Negotiating' is at its WIP limit (1/1)",)
