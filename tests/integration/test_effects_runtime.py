"""Effects through the issue services: transition actions go through `apply_transition` as automation,
entering a state with an approval policy asks its approvers, decisions and completed checklists run
their hooks and automations."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.support.issue_events import hook_runs, run_default, save_override

WORKFLOW = """model_version: "1.0"
workflow:
  id: contract
  name: Contracts
  version: 1.0.0
states:
  draft:
    type: initial
    category: pending
    metadata: {label: Draft}
  review:
    type: active
    category: review
    metadata: {label: Legal review}
    approval:
      required: 1
      approvers: [{user: counsel@example.com}]
    checklist:
      id: review_checks
      items:
        - {id: terms, label: Terms read, required: true}
    on_complete:
      - action: add_label
        label: checked
      - action: transition
        to: signed
  signed:
    type: active
    category: active
    metadata: {label: Signed}
  archived:
    type: final
    category: completed
    metadata: {label: Archived}
transitions:
  - {from: draft, to: review, name: Send to review}
  - {from: review, to: signed, name: Sign}
  - {from: signed, to: archived, name: Archive}
"""

TYPES = """model_version: "1.0"
issue_types:
  - key: contract
    label: Contract
    workflow: contract
"""

AUTOMATIONS = """model_version: "1.0"
automations:
  - id: auto-review
    name: Straight to review
    trigger: issue.created
    actions:
      - type: transition
        to: review
  - id: on-granted
    name: Thank the approver
    trigger: approval.granted
    actions:
      - type: add_comment
        body: "Approved by {{approval.approver}}"
  - id: on-requested
    name: Label requested approvals
    trigger: approval.requested
    actions:
      - type: add_label
        label: awaiting-approval
"""


@pytest.fixture
def legalish(app, make_user):
    from app.services import projects

    owner = make_user("owner@example.com", "owner")
    counsel = make_user("counsel@example.com", "member")
    project = projects.create_project(owner, "LEX", "Contracts", "", "kanban")
    save_override(owner, project, "workflows/contract.yaml", WORKFLOW)
    save_override(owner, project, "issue_types.yaml", TYPES)
    save_override(owner, project, "automations/contracts.yaml", AUTOMATIONS)
    from app.extensions import db
    from app.models import ProjectMembership

    db.session.add(ProjectMembership(project_id=project.id, user_id=counsel.id, role="member"))
    db.session.commit()
    return owner, counsel, project


def test_transition_action_goes_through_the_service_and_approvals_are_requested(app, legalish):
    from app.extensions import db
    from app.models import AutomationRun, Issue, IssueTransition, Notification
    from app.services.runtime import issues

    owner, counsel, project = legalish
    issue = issues.create_issue(project, owner, issue_type="contract", title="NDA with ACME")
    run_default(app)
    db.session.expire_all()
    issue = db.session.get(Issue, issue.id)
    assert issue.state == "review"
    moved = db.session.scalar(select(IssueTransition).where(IssueTransition.issue_id == issue.id,
                                                            IssueTransition.to_state == "review"))
    assert moved.actor_kind == "automation" and moved.transition_id is not None
    # Entering `review` asked counsel and emitted approval.requested, which an automation saw (depth 1).
    note = db.session.scalar(select(Notification).where(Notification.user_id == counsel.id))
    assert note.message.startswith("Approval requested") and "Legal review" in note.message
    requested = db.session.scalar(select(AutomationRun).where(AutomationRun.automation_id == "on-requested"))
    assert requested.outcome == "applied" and requested.depth == 1
    assert requested.input["chain"] == ["auto-review"]
    assert "awaiting-approval" in issue.labels


def test_decisions_and_a_completed_checklist_run_their_hooks_once(app, legalish):
    from app.extensions import db
    from app.models import AutomationRun, Comment, Issue, Notification
    from app.services.runtime import issues, transitions

    owner, counsel, project = legalish
    issue = issues.create_issue(project, owner, issue_type="contract", title="MSA")
    run_default(app)
    transitions.decide_approval(issue.id, counsel, "approved")
    run_default(app)
    db.session.expire_all()
    comment = db.session.scalar(select(Comment).where(Comment.issue_id == issue.id))
    assert comment.body == "Approved by counsel@example.com" and comment.author_id is None
    assert db.session.scalar(select(Notification).where(
        Notification.user_id == owner.id, Notification.message.like("counsel@example.com approved%")))

    transitions.tick_checklist(issue.id, owner, "review_checks", "terms", True)
    run_default(app)
    db.session.expire_all()
    issue = db.session.get(Issue, issue.id)
    # on_complete: the label, then a transition to `signed` through the service (approval granted).
    assert "checked" in issue.labels and issue.state == "signed"
    runs = hook_runs(project.id, issue.id)
    complete = next(r for r in runs if r.data["event"] == "checklist.completed")
    assert [(a["type"], a["status"]) for a in complete.data["actions"]] == [("add_label", "applied"),
                                                                          ("transition", "applied")]
    assert sum(r.data["event"] == "checklist.completed" for r in runs) == 1
    assert db.session.scalar(select(AutomationRun).where(AutomationRun.automation_id == "on-granted")).depth == 0
