"""The one transition service: UI buttons, board drops, the API and automations all move issues through here.

Every gate of spec §8.8 is evaluated by the pure runtime; the change itself is a conditional UPDATE on
`lock_version`, so of N concurrent writers exactly one wins and the others get a Conflict. The state
change, its history row, comment, checklist resets and audit event commit together; the side effects
(`app.services.events`) run after the commit.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import BinaryIO

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from app.extensions import db
from app.kiket.runtime.approvals import can_decide
from app.kiket.runtime.checklists import tickable_checklists
from app.kiket.runtime.effects import checklist_completed, checklists_to_reset
from app.kiket.runtime.snapshot import Actor, ApprovalRecord, to_context
from app.kiket import model as km
from app.kiket.runtime.transitions import Verdict, evaluate_request, find_transition
from app.models import ProjectMembership, User
from app.models.base import utcnow
from app.models.issues import APPROVAL_DECISIONS, Approval, Attachment, ChecklistProgress, Comment, Issue, IssueTransition
from app.services import attachments as attachment_files
from app.services import audit, configuration, events
from app.services.errors import Conflict, Forbidden, Invalid, NotFound
from app.services.projects import role_from_membership
from app.services.issues import (
    AUTOMATION_ACTOR, CONFLICT_MESSAGE, active_policy, calendar_of, documents_declared, field_labels, issue_workflow,
    load_issue, require, runtime_actor, snapshot_of, wip_for,
)

log = logging.getLogger(__name__)

MAX_COMMENT = 20_000


class TransitionBlocked(Invalid):
    """A transition request some gate refused; `verdict` has every gate's result."""

    def __init__(self, verdict: Verdict):
        reasons = list(verdict.reasons) or ["The transition is not allowed"]
        super().__init__({"transition": reasons}, detail="; ".join(reasons))
        self.verdict = verdict


def _evaluate(issue: Issue, config: km.ConfigRevision, actor: Actor, *, transition: str | None, target: str | None,
              comment: str | None, now: datetime) -> Verdict:
    """Every gate's verdict, from the issue's pinned workflow, for an actor already resolved by the caller."""
    if not actor.is_automation:
        require(actor, "issue.read", "read issues")
    if transition is None and target is None:
        raise Invalid({"transition": ["Choose a transition or a target state."]})
    workflow = issue_workflow(issue, config)
    snapshot = snapshot_of(issue, config)
    # WIP counts the target column of the chosen transition (or of the target state).
    to_state = target
    if to_state is None:
        chosen = find_transition(workflow, issue.state, transition)
        to_state = chosen.target if chosen is not None else None
    wip = wip_for(issue, config, to_state) if to_state else None
    return evaluate_request(
        workflow, snapshot, actor=actor, now=now, target=target, transition=transition, comment=comment, wip=wip,
        documents_declared=documents_declared(config, issue.issue_type),
        field_labels=field_labels(config, issue.issue_type), calendar=calendar_of(config),
    )


def _load(actor: User | None, issue_id: int, *, as_automation: bool) -> tuple[Issue, str | None]:
    """The issue with its project, and the actor's project role, in one query (strangers: NotFound).

    As `load_issue` + `project_user_role`, without a second round trip for the membership row.
    """
    # populate_existing: an issue already in the session (an earlier call) is refreshed, never trusted.
    query = (select(Issue).options(joinedload(Issue.project)).where(Issue.id == issue_id)
             .execution_options(populate_existing=True))
    if as_automation or actor is None:
        issue = db.session.scalar(query)
        if issue is None or (actor is None and not as_automation):
            raise NotFound("No such issue that you can see.")
        return issue, None
    row = db.session.execute(query.add_columns(ProjectMembership.role).outerjoin(ProjectMembership, and_(
        ProjectMembership.project_id == Issue.project_id, ProjectMembership.user_id == actor.id))).first()
    role = role_from_membership(actor, row[0].project, row[1]) if row is not None else None
    if role is None:
        raise NotFound("No such issue that you can see.")
    return row[0], role


def simulate(issue_id: int, actor: User, *, transition: str | None = None, target: str | None = None,
             comment: str | None = None) -> Verdict:
    """Every gate's verdict for a request, changing nothing."""
    issue, role = _load(actor, issue_id, as_automation=False)
    config = configuration.project_config(issue.project)
    verdict = _evaluate(issue, config, runtime_actor(actor, issue.project, config, role=role),
                        transition=transition, target=target, comment=comment, now=utcnow())
    db.session.rollback()
    return verdict


def apply_transition(issue_id: int, actor: User | None, *, transition: str | None = None, target: str | None = None,
                     comment: str | None = None, lock_version: int | None = None, as_automation: bool = False,
                     chain: tuple[str, ...] = ()) -> Issue:
    """Move an issue if every gate passes: one transaction, one commit, then `events.issue_transitioned`.

    The issue, its project, the actor's role and the configuration are loaded once and passed down.
    The returned issue carries the values this transaction wrote, without a SELECT after the commit.
    """
    issue, role = _load(actor, issue_id, as_automation=as_automation)
    config = configuration.project_config(issue.project)
    if as_automation:
        runtime = AUTOMATION_ACTOR
    else:
        runtime = runtime_actor(actor, issue.project, config, role=role)
        # Without the permission at all it is a 403; role limits of one transition stay a gate with a reason.
        require(runtime, "issue.transition", "transition issues")
    if lock_version is not None and int(lock_version) != issue.lock_version:
        raise Conflict(CONFLICT_MESSAGE)
    expected = issue.lock_version
    now = utcnow()
    verdict = _evaluate(issue, config, runtime, transition=transition, target=target, comment=comment, now=now)
    if not verdict.allowed:
        db.session.rollback()
        raise TransitionBlocked(verdict)
    chosen = verdict.transition
    workflow = issue_workflow(issue, config)
    from_state, to_state = issue.state, chosen.target
    final = workflow.states[to_state].kind == "final" or to_state in workflow.finals
    actor_id = actor.id if actor is not None else None
    project_id, key = issue.project_id, issue.key
    written = {"state": to_state, "state_entry": issue.state_entry + 1, "state_entered_at": now,
               "resolved_at": now if final else None, "updated_at": now, "lock_version": expected + 1}
    result = db.session.execute(
        update(Issue)
        .where(Issue.id == issue.id, Issue.lock_version == expected)
        .values(state=to_state, state_entry=Issue.state_entry + 1, state_entered_at=now,
                resolved_at=now if final else None, updated_at=now, lock_version=Issue.lock_version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        raise Conflict(CONFLICT_MESSAGE)
    record = IssueTransition(issue_id=issue_id, from_state=from_state, to_state=to_state, transition_id=chosen.id,
                             actor_id=actor_id, actor_kind="automation" if as_automation else "user",
                             comment=(comment or "").strip() or None, at=now)
    db.session.add(record)
    comment_row = None
    if comment and comment.strip():
        comment_row = Comment(issue_id=issue_id, author_id=actor_id, body=comment.strip()[:MAX_COMMENT], created_at=now)
        db.session.add(comment_row)
    resets = checklists_to_reset(workflow, to_state, chosen)
    if resets:
        db.session.execute(ChecklistProgress.__table__.delete().where(
            ChecklistProgress.issue_id == issue_id, ChecklistProgress.checklist_id.in_(resets)))
    db.session.flush()
    record_id = record.id
    comment_id = comment_row.id if comment_row is not None else None
    audit.record(project_id, "issue.transitioned", actor_id, issue_id, {
        "key": key, "from": from_state, "to": to_state, "transition": chosen.id, "record": record_id,
        "automation": as_automation, "lock_version": expected + 1,
    })
    _commit_keeping(issue, actor)
    # The UPDATE held the lock-version check, so the row is what was loaded plus what was written.
    for name, value in written.items():
        set_committed_value(issue, name, value)
    log.info("issue transitioned key=%s %s->%s via=%s actor=%s", key, from_state, to_state, chosen.id,
             runtime.identity)
    events.issue_transitioned(issue_id, record_id, actor_id, chain=chain)
    if comment_id is not None:
        events.issue_commented(issue_id, comment_id, actor_id, chain=chain)
    return issue


def _commit_keeping(issue: Issue, actor: User | None) -> None:
    """Commit, expiring every object in the session except the issue, its project and the actor.

    The issue is set to what was written right after (its lock version proves nobody else wrote in
    between); the project and the actor stay as this session read them, like any object a request
    holds. So the caller rendering them, or the next transition of the same actor, does not re-select
    them; everything else is expired as a plain commit would.
    """
    session = db.session()
    keep = {id(issue), id(issue.project)}
    if actor is not None:
        keep.add(id(actor))
        # Only if already loaded: keeping them must not cost a query.
        keep.update(id(m) for m in actor.__dict__.get("memberships", ()))
    expire_on_commit = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire_on_commit
    if expire_on_commit:
        for obj in list(session.identity_map.values()):
            if id(obj) not in keep:
                session.expire(obj)


def tick_checklist(issue_id: int, actor: User, checklist_id: str, item_id: str, checked: bool) -> Issue:
    """Tick or untick a manual item of a checklist the issue's current state may tick (spec §8.6)."""
    issue = load_issue(actor, issue_id)
    config = configuration.project_config(issue.project)
    runtime = runtime_actor(actor, issue.project, config)
    require(runtime, "issue.update", "tick checklists")
    workflow = issue_workflow(issue, config)
    checklist = workflow.checklist(checklist_id)
    if checklist is None:
        raise NotFound(f"No checklist {checklist_id!r} in this workflow.")
    if checklist_id not in tickable_checklists(workflow, issue.state):
        state = workflow.states.get(issue.state)
        raise Invalid({"checklist": f"'{checklist.title or checklist_id}' cannot be ticked while the issue is in "
                                    f"'{state.label if state else issue.state}'."})
    item = next((i for i in checklist.items if i.id == item_id), None)
    if item is None:
        raise NotFound(f"No item {item_id!r} in checklist {checklist_id!r}.")
    if item.check_type == "auto" and item.when is not None:
        raise Invalid({"checklist": f"'{item.label}' is checked automatically while its condition holds."})
    now = utcnow()
    before_snapshot = snapshot_of(issue, config)
    before = to_context(before_snapshot, now, workflow=workflow)
    row = db.session.scalar(select(ChecklistProgress).where(
        ChecklistProgress.issue_id == issue_id, ChecklistProgress.checklist_id == checklist_id,
        ChecklistProgress.item_id == item_id))
    if row is None:
        row = ChecklistProgress(issue_id=issue_id, checklist_id=checklist_id, item_id=item_id)
        db.session.add(row)
    row.checked, row.by_id, row.at = bool(checked), actor.id, now
    after_ticks = {k: dict(v) for k, v in before_snapshot.checklists.items()}
    after_ticks.setdefault(checklist_id, {})[item_id] = bool(checked)
    completed = checklist_completed(workflow, before_snapshot.checklists, before, after_ticks, before)
    audit.record(issue.project_id, "checklist.ticked", actor.id, issue_id,
                 {"checklist": checklist_id, "item": item_id, "checked": bool(checked)})
    db.session.commit()
    for done in completed:
        events.checklist_completed(issue_id, done.id, actor.id)
    return issue


def decide_approval(issue_id: int, actor: User, decision: str, reason: str | None = None) -> Approval:
    """Approve or deny the current state entry's approval (needs issue.approve and a matching approver)."""
    if decision not in APPROVAL_DECISIONS:
        raise Invalid({"decision": "Choose approve or deny."})
    issue = load_issue(actor, issue_id)
    config = configuration.project_config(issue.project)
    runtime = runtime_actor(actor, issue.project, config)
    require(runtime, "issue.read", "read issues")
    workflow = issue_workflow(issue, config)
    policy = active_policy(workflow, issue.state)
    if policy is None:
        raise Invalid({"decision": "Nothing needs approval in this state."})
    snapshot = snapshot_of(issue, config)
    context = to_context(snapshot, utcnow(), actor=runtime, workflow=workflow)
    why = can_decide(policy, ApprovalRecord(approver=runtime.identity, roles=runtime.roles), snapshot.approvals,
                     context, may_approve=runtime.can("issue.approve"))
    if why is not None:
        raise Forbidden(why)
    reason = (reason or "").strip()[:MAX_COMMENT] or None
    approval = Approval(issue_id=issue_id, state=issue.state, state_entry=issue.state_entry, approver_id=actor.id,
                        decision=decision, reason=reason, at=utcnow())
    db.session.add(approval)
    try:
        db.session.flush()
    except IntegrityError:
        # A double submit: the unique (issue, state, entry, approver) row is already there.
        db.session.rollback()
        raise Conflict("You have already decided in this state.") from None
    audit.record(issue.project_id, "approval.decided", actor.id, issue_id,
                 {"decision": decision, "state": issue.state, "state_entry": issue.state_entry, "approval": approval.id})
    db.session.commit()
    events.approval_decided(issue_id, approval.id, actor.id)
    return approval


def add_comment(issue_id: int, actor: User, body: str) -> Comment:
    """Comment on an issue (Markdown source; rendered safely when shown)."""
    issue = load_issue(actor, issue_id)
    config = configuration.project_config(issue.project)
    require(runtime_actor(actor, issue.project, config), "issue.comment", "comment")
    body = (body or "").strip()
    if not body:
        raise Invalid({"body": "Write something first."})
    if len(body) > MAX_COMMENT:
        raise Invalid({"body": f"At most {MAX_COMMENT} characters."})
    comment = Comment(issue_id=issue_id, author_id=actor.id, body=body, created_at=utcnow())
    db.session.add(comment)
    db.session.flush()
    audit.record(issue.project_id, "issue.commented", actor.id, issue_id, {"comment": comment.id})
    db.session.commit()
    events.issue_commented(issue_id, comment.id, actor.id)
    return comment


def upload_attachment(issue_id: int, actor: User, stream: BinaryIO, filename: str | None, content_type: str | None,
                      document_key: str | None = None) -> Attachment:
    """Store an upload on the issue, optionally tagged with a document key for `required_documents`."""
    issue = load_issue(actor, issue_id)
    config = configuration.project_config(issue.project)
    require(runtime_actor(actor, issue.project, config), "issue.update", "attach files")
    document_key = (document_key or "").strip() or None
    return attachment_files.save(issue_id, stream, filename, content_type, actor.id, document_key)


def attachment_for_download(issue_id: int, actor: User, attachment_id: int):
    """The attachment and its path, if it belongs to an issue the actor may read."""
    issue = load_issue(actor, issue_id)
    config = configuration.project_config(issue.project)
    require(runtime_actor(actor, issue.project, config), "issue.read", "read issues")
    attachment, path = attachment_files.get(attachment_id)
    if attachment.issue_id != issue.id:
        raise NotFound(f"no attachment {attachment_id}")
    return attachment, path
