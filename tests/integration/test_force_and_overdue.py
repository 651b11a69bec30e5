"""§16 at run time: an approval nobody can give (legal's `legal` role, declared nowhere), decided or forced by
organization owners and admins; forced moves recorded with their reason and skipped gates; approval chain
levels going overdue once, from the sweep."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from tests.support.fixture_projects import by_title, member, synced_project
from tests.support.issue_events import make_issue, run_default, save_override


@pytest.fixture
def legal(app, owner, tmp_path):
    """LEG on the legal fixture as shipped: its approver role `legal` exists in no team."""
    project, repository, _ = synced_project(app, owner, tmp_path, "legal", "LEG")
    return project, repository


def test_the_shipped_legal_fixture_reports_its_unsatisfiable_approvals_on_sync(app, legal):
    from app.extensions import db
    from app.models import SyncRun

    _, repository = legal
    run = db.session.scalar(select(SyncRun).where(SyncRun.repository_id == repository.id))
    errors = [(d["code"], d["file"]) for d in run.diagnostics if d["severity"] == "error"]
    assert errors == [("unsatisfiable_gate", ".kiket/workflows/contract.yaml"),
                      ("unsatisfiable_gate", ".kiket/workflows/gdpr.yaml")]


def test_organization_owners_decide_for_a_role_nobody_holds_and_members_cannot(app, owner, legal, make_user):
    from app.services.errors import Forbidden
    from app.services.runtime import issue_page, transitions

    project, _ = legal
    contract = by_title(project, "Meridian")
    assert contract.state == "legal_review"
    paula = member(make_user, project, "paula@example.com")
    view = issue_page.issue_view(paula, contract)
    stand_in = "role legal (declared nowhere: an organization owner or admin decides in its place)"
    assert all(f"Needs 1 approval from {stand_in} (0 so far)" in v.reasons for v in view.verdicts)
    assert not view.approval.can_decide and not view.can_force
    with pytest.raises(Forbidden):
        transitions.decide_approval(contract.id, paula, "approved", "looks fine")
    assert issue_page.issue_view(owner, contract).approval.can_decide
    transitions.decide_approval(contract.id, owner, "approved", "Standing in for legal")
    moved = transitions.apply_transition(contract.id, owner, transition="Approve for Signature")
    assert moved.state == "pending_signature"


def test_an_owner_forces_a_blocked_move_with_a_reason_and_history_shows_the_skipped_gates(app, owner, legal,
                                                                                           make_user):
    from app.extensions import db
    from app.models import AuditEvent, IssueTransition
    from app.services.errors import Forbidden, Invalid
    from app.services.runtime import issue_page, transitions

    project, _ = legal
    contract = by_title(project, "Meridian")
    paula = member(make_user, project, "paula@example.com")
    with pytest.raises(Forbidden, match="organization owners and admins"):
        transitions.force_transition(contract.id, paula, transition="Reject", reason="Because")
    with pytest.raises(Invalid):
        transitions.force_transition(contract.id, owner, transition="Reject", reason="  ")

    moved = transitions.force_transition(contract.id, owner, transition="Reject", reason="Counterparty withdrew")
    assert (moved.from_state, moved.state) == ("legal_review", "cancelled")
    row = db.session.get(IssueTransition, moved.record_id)
    assert row.forced and row.force_reason == "Counterparty withdrew"
    assert [g["gate"] for g in row.skipped_gates] == ["approval"]
    assert "declared nowhere" in row.skipped_gates[0]["reasons"][0]
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.kind == "issue.forced"))
    assert audit.issue_id == contract.id and audit.data["reason"] == "Counterparty withdrew"
    assert audit.data["skipped"] == row.skipped_gates
    entry = next(e for e in issue_page.history(db.session.get(type(contract), contract.id)) if e.kind == "forced")
    assert "Counterparty withdrew" in entry.text and "approval" in entry.text

    # A move nothing blocks is made as a normal transition, the reason as its comment.
    draft = by_title(project, "DPA template")
    normal = transitions.force_transition(draft.id, owner, transition="Cancel", reason="Duplicate")
    plain = db.session.get(IssueTransition, normal.record_id)
    assert not plain.forced and plain.comment == "Duplicate"


def test_the_issue_page_offers_force_to_owners_only(app, client, owner, legal, make_user, login):
    from tests.conftest import post_form

    project, _ = legal
    contract = by_title(project, "Meridian")
    paula = member(make_user, project, "paula@example.com")
    login(paula.email)
    page = client.get(f"/projects/LEG/issues/{contract.number}").get_data(as_text=True)
    assert "Force “Reject”" not in page
    assert post_form(client, f"/projects/LEG/issues/{contract.number}/force",
                     {"transition": "Reject", "reason": "x"}).status_code == 403
    post_form(client, "/logout")
    login(owner.email)
    page = client.get(f"/projects/LEG/issues/{contract.number}").get_data(as_text=True)
    assert "Force “Reject”" in page
    response = post_form(client, f"/projects/LEG/issues/{contract.number}/force",
                         {"transition": "Reject", "reason": "Withdrawn"})
    assert response.status_code == 303
    page = client.get(f"/projects/LEG/issues/{contract.number}").get_data(as_text=True)
    assert "forced" in page and "Withdrawn" in page


CHAIN = """model_version: "1.0"
workflow: {id: change, name: Change}
states:
  draft: {type: initial}
  review: {type: active}
  live: {type: final}
transitions:
  - {from: draft, to: review, name: Submit}
  - from: review
    to: live
    name: Ship
    approval_chain:
      chain:
        - {level: 1, name: Manager, assignments: [{type: role, identifier: manager}], required: any, timeout: 24h}
        - {level: 2, name: CTO, assignments: [{type: role, identifier: cto}], timeout: 2d}
"""
CHAIN_TEAM = "team:\n  roles: [{name: manager}, {name: cto}]\n"
CHAIN_TYPES = "issue_types:\n  - {key: change, workflow: change}\n"
ON_OVERDUE = """automations:
  - id: late
    trigger: approval.overdue
    actions:
      - {type: add_label, label: "late-${approval.name}"}
"""


def test_an_approval_level_is_overdue_once_past_its_timeout(app, owner):
    from app.extensions import db
    from app.models import Issue, IssueEvent
    from app.services import projects
    from app.services.runtime import sla

    project = projects.create_project(owner, "CHG", "Changes", "", "kanban")
    save_override(owner, project, "team.yaml", CHAIN_TEAM)
    save_override(owner, project, "issue_types.yaml", CHAIN_TYPES)
    save_override(owner, project, "workflows/change.yaml", CHAIN)
    save_override(owner, project, "automations/late.yaml", ON_OVERDUE)
    entered = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    issue = make_issue(project, "Upgrade the database", issue_type="change", state="review", entered_at=entered)
    run_default(app)

    assert sla.sweep(entered + timedelta(hours=23)).approval_events == []
    assert sla.sweep(entered + timedelta(hours=25)).approval_events == [(issue.key, "Manager")]
    assert sla.sweep(entered + timedelta(hours=30)).approval_events == []
    assert db.session.scalar(select(func.count()).select_from(IssueEvent)
                             .where(IssueEvent.kind == "approval.overdue")) <= 1
    run_default(app)
    assert db.session.get(Issue, issue.id).labels == ["late-Manager"]


GUARDED = """workflow: {id: spend, name: Spend}
states:
  draft: {type: initial}
  approved: {type: final}
transitions:
  - from: draft
    to: approved
    name: Approve
    conditions: "custom_fields.budget > 0 and custom_fields.budget <= 5000"
"""


def test_a_guard_on_a_field_no_type_declares_makes_it_an_editable_field(app, owner):
    from app.services import projects
    from app.services.runtime import issue_page, issues, transitions
    from app.services.runtime.transitions import TransitionBlocked
    from app.services.sync import configuration

    project = projects.create_project(owner, "SPD", "Spend", "", "kanban")
    save_override(owner, project, "issue_types.yaml", "issue_types:\n  - {key: expense, workflow: spend}\n")
    save_override(owner, project, "workflows/spend.yaml", GUARDED)
    config = configuration.project_config(project)
    assert [(f.key, f.type, f.inferred) for f in config.issue_types["expense"].fields] == [("budget", "number", True)]
    issue = issues.create_issue(project, owner, issue_type="expense", title="New laptop")
    assert "budget" in {f.key for f in issue_page.issue_view(owner, issue).fields}
    with pytest.raises(TransitionBlocked):
        transitions.apply_transition(issue.id, owner, transition="Approve")
    issues.update_issue(issue.id, owner, issue.lock_version, custom_fields={"budget": "1200"})
    assert transitions.apply_transition(issue.id, owner, transition="Approve").state == "approved"
