"""The one transition service: UI buttons, board drops, the API and automations all move issues through here,
and organization owners and admins force blocked moves through `force_transition` (§16).

Every gate of spec §8.8 is evaluated by the pure runtime; the change itself is a conditional UPDATE on
`lock_version`, so of N concurrent writers exactly one wins and the others get a Conflict. The state
change, its history row, comment, checklist resets, audit event and issue events commit together; the
side effects of the events (`app.services.runtime.events`) run after the commit.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import BinaryIO

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.kiket import model as km
from app.kiket.runtime.approvals import can_decide
from app.kiket.runtime.checklists import tickable_checklists
from app.kiket.runtime.effects import checklist_completed, checklists_to_reset
from app.kiket.runtime.snapshot import Actor, ApprovalRecord, to_context
from app.kiket.runtime.transitions import Verdict, evaluate_request, find_transition, force_refusal, skipped_gates
from app.models import Project, ProjectMembership, User
from app.models.base import utcnow
from app.models.issues import APPROVAL_DECISIONS, Approval, Attachment, ChecklistProgress, Comment, Issue, IssueTransition
from app.services import audit, live
from app.services.errors import Conflict, Forbidden, Invalid, NotFound
from app.services.prepared import Prepared
from app.services.projects import role_from_membership
from app.services.runtime import attachments as attachment_files, events
from app.services.runtime.access import AUTOMATION_ACTOR, require, runtime_actor
from app.services.runtime.issue_queries import load_issue
from app.services.runtime.issues import CONFLICT_MESSAGE
from app.services.runtime.snapshots import (
    active_policy, calendar_of, documents_declared, field_labels, issue_workflow, snapshot_of,
)
from app.services.runtime.wip import wip_for
from app.services.sync import configuration

log = logging.getLogger(__name__)

MAX_COMMENT = 20_000


class TransitionBlocked(Invalid):
    """A transition request some gate refused; `verdict` has every gate's result."""

    def __init__(self, verdict: Verdict):
        reasons = list(verdict.reasons) or ["The transition is not allowed"]
        super().__init__({"transition": reasons}, detail="; ".join(reasons))
        self.verdict = verdict


def _evaluate(issue: _Loaded, config: km.ConfigRevision, actor: Actor, *, transition: str | None, target: str | None,
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


# A read-only stand-in for an issue (and its project, people and parent) read in one Core query: it has
# the attributes the gates and the configuration read from the mapped classes, without an ORM identity
# map, relationship loads or expiry (the ORM's bookkeeping cost more than the query).
_Loaded = SimpleNamespace


@functools.cache
def _load_statement() -> Prepared:
    issues, projects, users = Issue.__table__, Project.__table__, User.__table__
    memberships = ProjectMembership.__table__
    assignee, reporter, parent = users.alias("assignee"), users.alias("reporter"), issues.alias("parent")
    return Prepared(
        select(issues, projects.c.key.label("project_key"), projects.c.name.label("project_name"),
               projects.c.template.label("project_template"),
               projects.c.organization_id.label("project_organization_id"), memberships.c.role.label("member_role"),
               assignee.c.email.label("assignee_email"), reporter.c.email.label("reporter_email"),
               parent.c.key.label("parent_key"))
        .select_from(
            issues.join(projects, projects.c.id == issues.c.project_id)
            .outerjoin(memberships, and_(memberships.c.project_id == issues.c.project_id,
                                         memberships.c.user_id == bindparam("user_id")))
            .outerjoin(assignee, assignee.c.id == issues.c.assignee_id)
            .outerjoin(reporter, reporter.c.id == issues.c.reporter_id)
            .outerjoin(parent, parent.c.id == issues.c.parent_id))
        .where(issues.c.id == bindparam("issue_id"))
    )


def _load(actor: User | None, issue_id: int, *, as_automation: bool) -> tuple[_Loaded, str | None]:
    """The issue with its project, people and parent, and the actor's project role: one query (strangers: NotFound)."""
    # Changes the caller has pending in the session go first, as `session.execute` would send them.
    db.session.flush()
    load = _load_statement()
    rows, _ = load.execute({"issue_id": issue_id, "user_id": actor.id if actor else None})
    if not rows or (actor is None and not as_automation):
        raise NotFound("No such issue that you can see.")
    values = dict(zip(load.names, rows[0]))
    project = _Loaded(id=values["project_id"], key=values.pop("project_key"), name=values.pop("project_name"),
                      template=values.pop("project_template"), organization_id=values.pop("project_organization_id"))
    role = values.pop("member_role")
    assignee, reporter, parent = values.pop("assignee_email"), values.pop("reporter_email"), values.pop("parent_key")
    issue = _Loaded(**values, project=project, assignee=_Loaded(email=assignee) if assignee else None,
                    reporter=_Loaded(email=reporter) if reporter else None,
                    parent=_Loaded(key=parent) if parent else None)
    if as_automation:
        return issue, None
    role = role_from_membership(actor, project, role)
    if role is None:
        raise NotFound("No such issue that you can see.")
    return issue, role


def simulate(issue_id: int, actor: User, *, transition: str | None = None, target: str | None = None,
             comment: str | None = None) -> Verdict:
    """Every gate's verdict for a request, changing nothing."""
    issue, role = _load(actor, issue_id, as_automation=False)
    config = configuration.project_config(issue.project)
    verdict = _evaluate(issue, config, runtime_actor(actor, issue.project, config, role=role),
                        transition=transition, target=target, comment=comment, now=utcnow())
    db.session.rollback()
    return verdict


@dataclass(frozen=True)
class Moved:
    """What a transition wrote; callers that need more of the issue read it again."""

    id: int
    key: str
    from_state: str
    state: str
    transition: str
    state_entry: int
    lock_version: int
    record_id: int
    at: datetime
    resolved_at: datetime | None


@functools.cache
def _write_statements() -> tuple[Prepared, Prepared, Prepared]:
    issues, history, comments = Issue.__table__, IssueTransition.__table__, Comment.__table__
    move = (update(issues)
            .where(issues.c.id == bindparam("issue_id"), issues.c.lock_version == bindparam("expected"))
            .values(state=bindparam("to_state"), state_entry=issues.c.state_entry + 1,
                    state_entered_at=bindparam("now"), resolved_at=bindparam("resolved_at"),
                    updated_at=bindparam("now"), lock_version=issues.c.lock_version + 1))
    return (Prepared(move),
            Prepared(insert(history).returning(history.c.id),
                     ("issue_id", "from_state", "to_state", "transition_id", "actor_id", "actor_kind", "comment", "at")),
            Prepared(insert(comments).returning(comments.c.id), ("issue_id", "author_id", "body", "created_at")))


def apply_transition(issue_id: int, actor: User | None, *, transition: str | None = None, target: str | None = None,
                     comment: str | None = None, lock_version: int | None = None, as_automation: bool = False,
                     chain: tuple[str, ...] = ()) -> Moved:
    """Move an issue if every gate passes: one transaction with its history row, audit event and
    `issue.transitioned` event, one commit.

    Prepared Core statements throughout (`_load`, `_write_statements`, `app.services.prepared`): the issue
    is read once with everything the gates need, and nothing is re-selected after the commit.
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
    comment = (comment or "").strip() or None
    move, add_history, add_comment_row = _write_statements()
    _, moved = move.execute({"issue_id": issue_id, "expected": issue.lock_version, "to_state": to_state, "now": now,
                             "resolved_at": now if final else None})
    if moved != 1:
        db.session.rollback()
        raise Conflict(CONFLICT_MESSAGE)
    [(record_id,)], _ = add_history.execute({
        "issue_id": issue_id, "from_state": from_state, "to_state": to_state, "transition_id": chosen.id,
        "actor_id": actor_id, "actor_kind": _actor_kind(actor, as_automation), "comment": comment, "at": now,
    })
    comment_id = None
    if comment:
        [(comment_id,)], _ = add_comment_row.execute({"issue_id": issue_id, "author_id": actor_id,
                                                     "body": comment[:MAX_COMMENT], "created_at": now})
    resets = checklists_to_reset(workflow, to_state, chosen)
    if resets:
        db.session.connection().execute(ChecklistProgress.__table__.delete().where(
            ChecklistProgress.issue_id == issue_id, ChecklistProgress.checklist_id.in_(resets)))
    audit.record(issue.project_id, "issue.transitioned", actor_id, issue_id, {
        "key": issue.key, "from": from_state, "to": to_state, "transition": chosen.id, "record": record_id,
        "automation": as_automation, "lock_version": issue.lock_version + 1,
    })
    live.issue_changed(db.session(), issue.project_id, issue_id, actor_id)
    events.issue_transitioned(issue_id, record_id, actor_id, chain=chain)
    if comment_id is not None:
        events.issue_commented(issue_id, comment_id, actor_id, chain=chain)
    _commit_keeping(actor)
    log.debug("issue transitioned key=%s %s->%s via=%s actor=%s", issue.key, from_state, to_state, chosen.id,
             runtime.identity)
    return Moved(id=issue_id, key=issue.key, from_state=from_state, state=to_state, transition=chosen.id,
                 state_entry=issue.state_entry + 1, lock_version=issue.lock_version + 1, record_id=record_id, at=now,
                 resolved_at=now if final else None)


def _actor_kind(actor: User | None, as_automation: bool) -> str:
    """Who moved the issue, for its history: a person, an automation, or an extension (its own user)."""
    if as_automation:
        return "automation"
    return "extension" if actor is not None and actor.kind == "extension" else "user"


def force_transition(issue_id: int, actor: User, *, reason: str, transition: str | None = None,
                     target: str | None = None, lock_version: int | None = None) -> Moved:
    """Move an issue past the gates that block it (§16): organization owners and admins only, with a reason.

    The move is the named transition (or the first declared one to `target`); every gate is evaluated as
    usual and the failing ones are recorded as skipped, on the history row and in an `issue.forced` audit
    event. A move nothing blocks is made as a normal transition, with the reason as its comment.
    """
    reason = (reason or "").strip()
    if not reason:
        raise Invalid({"reason": "Say why this transition is forced."})
    if len(reason) > MAX_COMMENT:
        raise Invalid({"reason": f"At most {MAX_COMMENT} characters."})
    issue, role = _load(actor, issue_id, as_automation=False)
    config = configuration.project_config(issue.project)
    runtime = runtime_actor(actor, issue.project, config, role=role)
    if lock_version is not None and int(lock_version) != issue.lock_version:
        raise Conflict(CONFLICT_MESSAGE)
    now = utcnow()
    verdict = _evaluate(issue, config, runtime, transition=transition, target=target, comment=None, now=now)
    if verdict.allowed:
        db.session.rollback()
        return apply_transition(issue_id, actor, transition=verdict.transition.id, comment=reason,
                                lock_version=lock_version)
    refusal = force_refusal(verdict, runtime)
    if refusal is not None:
        db.session.rollback()
        if not runtime.org_admin:
            raise Forbidden(refusal)
        raise TransitionBlocked(verdict)
    chosen = verdict.transition
    skipped = [{"gate": g.gate, "reasons": list(g.reasons)} for g in skipped_gates(verdict)]
    workflow = issue_workflow(issue, config)
    from_state, to_state = issue.state, chosen.target
    final = workflow.states[to_state].kind == "final" or to_state in workflow.finals
    move = _write_statements()[0]
    _, moved = move.execute({"issue_id": issue_id, "expected": issue.lock_version, "to_state": to_state, "now": now,
                             "resolved_at": now if final else None})
    if moved != 1:
        db.session.rollback()
        raise Conflict(CONFLICT_MESSAGE)
    record_id = db.session.execute(insert(IssueTransition).returning(IssueTransition.id).values(
        issue_id=issue_id, from_state=from_state, to_state=to_state, transition_id=chosen.id, actor_id=actor.id,
        actor_kind=_actor_kind(actor, False), at=now, forced=True, force_reason=reason, skipped_gates=skipped)).scalar_one()
    resets = checklists_to_reset(workflow, to_state, chosen)
    if resets:
        db.session.connection().execute(ChecklistProgress.__table__.delete().where(
            ChecklistProgress.issue_id == issue_id, ChecklistProgress.checklist_id.in_(resets)))
    audit.record(issue.project_id, "issue.forced", actor.id, issue_id, {
        "key": issue.key, "from": from_state, "to": to_state, "transition": chosen.id, "record": record_id,
        "reason": reason, "skipped": skipped, "lock_version": issue.lock_version + 1,
    })
    events.issue_transitioned(issue_id, record_id, actor.id)
    db.session.commit()
    log.info("issue forced key=%s %s->%s via=%s actor=%s skipped=%s", issue.key, from_state, to_state, chosen.id,
             actor.email, ",".join(g["gate"] for g in skipped))
    return Moved(id=issue_id, key=issue.key, from_state=from_state, state=to_state, transition=chosen.id,
                 state_entry=issue.state_entry + 1, lock_version=issue.lock_version + 1, record_id=record_id, at=now,
                 resolved_at=now if final else None)


def _commit_keeping(actor: User | None) -> None:
    """Commit, expiring every object in the session but the actor and its memberships, as a request holds them.

    A plain commit expires them too, and the next call of the same actor would re-select them.
    """
    session = db.session()
    keep = {id(actor)} if actor is not None else set()
    if actor is not None:
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
    for done in completed:
        events.checklist_completed(issue_id, done.id, actor.id)
    db.session.commit()
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
    why = can_decide(policy, ApprovalRecord(approver=runtime.identity, roles=runtime.roles, org_admin=runtime.org_admin), snapshot.approvals,
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
    events.approval_decided(issue_id, approval.id, actor.id)
    db.session.commit()
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
    events.issue_commented(issue_id, comment.id, actor.id)
    db.session.commit()
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
