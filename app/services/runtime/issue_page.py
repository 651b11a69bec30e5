"""The issue page's view model: everything it shows, computed once on the issue's pinned workflow version."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping

from sqlalchemy import select

from app.extensions import db
from app.kiket import model as km
from app.kiket.runtime import narrative
from app.kiket.runtime.approvals import approval_status, can_decide, messages as approval_messages
from app.kiket.runtime.checklists import checklist_progress, tickable_checklists
from app.kiket.runtime.sla import SlaClock, state_clock
from app.kiket.runtime.snapshot import Actor, ApprovalRecord, IssueSnapshot, to_context
from app.kiket.runtime.transitions import Verdict, available_transitions, outgoing
from app.models import Project, User
from app.models.audit import AuditEvent
from app.models.base import utcnow
from app.models.issues import Approval, Attachment, AutomationRun, Comment, Issue, IssueTransition, Watcher
from app.services.runtime.access import require, runtime_actor
from app.services.runtime.issue_queries import members
from app.services.runtime.snapshots import (
    active_policy, calendar_of, documents_declared, field_labels, issue_workflow, snapshot_of,
)
from app.services.runtime.wip import wip_for
from app.services.sync import configuration

@dataclass(frozen=True)
class ChecklistView:
    checklist: km.Checklist
    checked: frozenset[str]
    complete: bool
    summary: str
    tickable: bool


@dataclass(frozen=True)
class ApprovalView:
    """The approval asked for in the current state entry."""

    policy: km.ApprovalPolicy
    satisfied: bool
    denied: bool
    approved_by: tuple[str, ...]
    reasons: tuple[str, ...]
    decisions: list
    can_decide: bool
    why_not: str | None
    # What the configuration tells the approvers, and chain levels skipped because their conditions do not hold.
    messages: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    kind: str
    actor: str
    text: str


@dataclass
class IssueView:
    """Everything the issue page shows, computed once."""

    issue: Issue
    project: Project
    config: km.ConfigRevision
    workflow: km.Workflow
    state: km.State | None
    issue_type: km.IssueType | None
    actor: Actor
    verdicts: tuple[Verdict, ...]
    checklists: list[ChecklistView]
    approval: ApprovalView | None
    sla: SlaClock | None
    comments: list[Comment]
    attachments: list[Attachment]
    watchers: list[User]
    watching: bool
    history: list[HistoryEntry]
    document_options: list[tuple[str, str]]
    members: list[User]
    can_update: bool
    can_comment: bool
    can_transition: bool
    pinned_outdated: bool = False
    # An organization owner or admin: may force a blocked transition, with a reason (§16).
    can_force: bool = False
    # The issue's state is not part of the workflow it runs on (its workflow or state was removed, §16).
    stranded: bool = False
    fields: tuple[km.FieldDef, ...] = field(default_factory=tuple)


def _approval_view(issue: Issue, workflow: km.Workflow, snapshot: IssueSnapshot, runtime: Actor,
                   context: Mapping) -> ApprovalView | None:
    policy = active_policy(workflow, issue.state)
    if policy is None:
        return None
    status = approval_status(policy, snapshot.approvals, context)
    record = ApprovalRecord(approver=runtime.identity, roles=runtime.roles, org_admin=runtime.org_admin)
    why = can_decide(policy, record, snapshot.approvals, context, may_approve=runtime.can("issue.approve"))
    decisions = list(db.session.scalars(select(Approval).where(
        Approval.issue_id == issue.id, Approval.state == issue.state, Approval.state_entry == issue.state_entry,
    ).order_by(Approval.at)))
    # Approvers by name, not by the email the rules match them on.
    names = {d.approver.email.casefold(): d.approver.display_name for d in decisions if d.approver is not None}
    approved_by = tuple(names.get(str(who).casefold(), who) for who in status.approved_by)
    return ApprovalView(policy, status.satisfied, status.denied, approved_by, status.reasons, decisions,
                        why is None, why, approval_messages(policy, context, snapshot.approvals), status.skipped)


def history(issue: Issue, config: km.ConfigRevision | None = None) -> list[HistoryEntry]:
    """State changes and audited facts, oldest first, as sentences: people, states, transitions and automations
    by name (`app.kiket.runtime.narrative`), never raw ids."""
    config = config or configuration.project_config(issue.project)
    rows = list(db.session.scalars(select(IssueTransition).where(IssueTransition.issue_id == issue.id)))
    events = [e for e in db.session.scalars(select(AuditEvent).where(
        AuditEvent.project_id == issue.project_id, AuditEvent.issue_id == issue.id).order_by(AuditEvent.seq))
        if e.kind not in ("issue.created", "issue.transitioned", "issue.forced")]
    user_ids = {r.actor_id for r in rows} | {e.actor_id for e in events}
    for event in events:
        for change in _field_changes_of(event):
            user_ids.update(v for v in change if isinstance(v, int))
    user_ids.discard(None)
    people = {u.id: u.display_name for u in db.session.scalars(select(User).where(User.id.in_(user_ids)))} \
        if user_ids else {}
    names = narrative.Names(workflow=issue_workflow(issue, config), people=people,
                            automations={a.id: a.name for a in config.automations.values()},
                            fields=field_labels(config, issue.issue_type))
    runs = {r.id: r for r in db.session.scalars(select(AutomationRun).where(AutomationRun.issue_id == issue.id))}
    unmatched = sorted(runs.values(), key=lambda r: r.id)
    reasons = dict(db.session.execute(select(Approval.id, Approval.reason).where(Approval.issue_id == issue.id)).all())

    def who(user_id: int | None, kind: str | None = None) -> str:
        if user_id is not None:
            return people.get(user_id, f"user {user_id}")
        return "An automation" if kind == "automation" else "Kiket"

    out = []
    for row in rows:
        forced = {"reason": row.force_reason, "skipped": [
            f"{g.get('gate')}: {' '.join(g.get('reasons') or [])}".strip() for g in row.skipped_gates or ()]} \
            if row.forced else None
        text = narrative.transition_sentence(who(row.actor_id, row.actor_kind), row.from_state, row.to_state,
                                             row.transition_id, names, forced=forced)
        if row.comment and row.actor_kind == "migration" and not row.forced:
            text += f": {row.comment}"
        out.append(HistoryEntry(row.at, "forced" if row.forced else "transition", who(row.actor_id, row.actor_kind),
                                text))
    for event in events:
        data = event.data or {}
        actor = who(event.actor_id, "automation" if data.get("by") == "automation" else None)
        run_actions: list = []
        if event.kind == "automation.run":
            run = runs.get(data.get("run")) or next(
                (r for r in unmatched if r.automation_id == data.get("automation") and r.outcome == data.get("outcome")),
                None)
            if run is not None:
                if run in unmatched:
                    unmatched.remove(run)
                run_actions = list((run.input or {}).get("actions") or ())
        text = narrative.event_sentence(event.kind, actor, data, names, run_actions=run_actions,
                                        reason=reasons.get(data.get("approval")))
        out.append(HistoryEntry(event.created_at, event.kind, actor, text))
    return sorted(out, key=lambda e: e.at)


def _field_changes_of(event: AuditEvent) -> list[tuple]:
    """The (old, new) pairs of an edit's assignee, whose ids the sentences name."""
    data = event.data or {}
    if event.kind not in ("issue.updated", "issue.assigned"):
        return []
    pairs = []
    for key in ("assignee_id", "assignee"):
        if isinstance(data.get(key), Mapping):
            pairs.append((data[key].get("from"), data[key].get("to")))
        changes = data.get("changes")
        if isinstance(changes, Mapping) and isinstance(changes.get(key), (list, tuple)):
            pairs.append(tuple(changes[key]))
    return pairs


def issue_view(actor: User, issue: Issue, *, now: datetime | None = None) -> IssueView:
    """Everything the detail page needs, on the issue's pinned workflow version."""
    project = issue.project
    config = configuration.project_config(project)
    runtime = runtime_actor(actor, project, config)
    require(runtime, "issue.read", "read issues")
    now = now or utcnow()
    workflow = issue_workflow(issue, config)
    snapshot = snapshot_of(issue, config)
    calendar = calendar_of(config)
    context = to_context(snapshot, now, actor=runtime, workflow=workflow, calendar=calendar)
    wip_by_target = {}
    for transition in outgoing(workflow, issue.state):
        info = wip_for(issue, config, transition.target)
        if info is not None:
            wip_by_target[transition.target] = info
    verdicts = available_transitions(
        workflow, snapshot, actor=runtime, now=now, wip_by_target=wip_by_target,
        documents_declared=documents_declared(config, issue.issue_type),
        field_labels=field_labels(config, issue.issue_type), calendar=calendar,
    )
    tickable = set(tickable_checklists(workflow, issue.state))
    checklists = []
    # The state's own checklists and those guarding its ways out, in ticking order.
    for checklist_id in tickable_checklists(workflow, issue.state):
        checklist = workflow.checklist(checklist_id)
        progress = checklist_progress(checklist, snapshot.checklists.get(checklist_id), context)
        checklists.append(ChecklistView(checklist, progress.checked, progress.complete, progress.describe(),
                                        checklist_id in tickable and runtime.can("issue.update")))
    current = workflow.states.get(issue.state)
    sla = state_clock(workflow, issue.state, issue.state_entered_at, now, calendar, context) if current else None
    itype = config.issue_types.get(issue.issue_type)
    type_docs = [(d.key, d.label) for d in itype.documents] if itype else []
    required_docs = [(k, k.replace("_", " ").capitalize()) for k in (current.required_documents if current else ())
                     if k not in {d for d, _ in type_docs}]
    watchers = list(db.session.scalars(select(User).join(Watcher, Watcher.user_id == User.id)
                                       .where(Watcher.issue_id == issue.id).order_by(User.email)))
    active = config.workflows.get(issue.workflow_id)
    return IssueView(
        issue=issue, project=project, config=config, workflow=workflow, state=current, issue_type=itype,
        actor=runtime, verdicts=verdicts, checklists=checklists,
        approval=_approval_view(issue, workflow, snapshot, runtime, context), sla=sla,
        comments=list(db.session.scalars(select(Comment).where(Comment.issue_id == issue.id)
                                         .order_by(Comment.created_at, Comment.id))),
        attachments=list(db.session.scalars(select(Attachment).where(Attachment.issue_id == issue.id)
                                            .order_by(Attachment.created_at, Attachment.id))),
        watchers=watchers, watching=any(w.id == actor.id for w in watchers), history=history(issue, config),
        document_options=type_docs + required_docs, members=members(project),
        can_update=runtime.can("issue.update"), can_comment=runtime.can("issue.comment"),
        can_transition=runtime.can("issue.transition"), can_force=runtime.org_admin,
        stranded=issue.state not in workflow.states,
        pinned_outdated=active is not None and active.version != issue.workflow_version,
        fields=itype.fields if itype else (),
    )
