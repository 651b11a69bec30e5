"""Workflow version migration (spec §3): preview where pinned issues go, then move them one audited issue at a time.

Issues keep running on the workflow version they were created with. `preview` groups a project's
issues on older versions of a workflow by version and, per source state, says how many go where
and which states were removed (a target must be chosen). `apply` moves each issue in its own
transaction: version, pinned revision and (when it changes) state, with a history row and an
audit event. Issues on a version whose normalized form equals the new one move for free.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from app.extensions import db
from app.kiket import model as km
from app.kiket.runtime.migration import MigrationPlan, apply_choice, plan_migration
from app.models.accounts import User
from app.models.base import utcnow
from app.models.issues import Issue, IssueTransition
from app.models.projects import Project
from app.services import audit
from app.services.errors import Invalid, NotFound
from app.services.runtime import events
from app.services.runtime.effects.scope import config_for
from app.services.sync import configuration

log = logging.getLogger(__name__)


@dataclass
class VersionGroup:
    """Issues pinned to one older version of the workflow, and the plan that moves them."""

    old_version: str
    plan: MigrationPlan
    issues: list[tuple[int, str, str]]  # (id, key, state)

    @property
    def free(self) -> bool:
        return self.plan.free

    def keys_in(self, state: str) -> list[str]:
        return [key for _, key, s in self.issues if s == state]


@dataclass
class Preview:
    """Every older version's plan for one workflow of a project."""

    workflow_id: str
    new_version: str
    new_revision_id: int | None
    target_states: tuple[str, ...]
    groups: list[VersionGroup] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(len(g.issues) for g in self.groups)

    @property
    def needs_choice(self) -> list[str]:
        """Source states (any version) that were removed and have no chosen target yet."""
        return sorted({m.source for g in self.groups for m in g.plan.needs_choice})

    @property
    def ready(self) -> bool:
        return all(g.plan.ready for g in self.groups)


@dataclass
class MigrationResult:
    """What `apply` did: issues moved (key, from, to), and the ones a concurrent change kept in place."""

    moved: list[tuple[str, str, str]] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


def _current(project: Project, workflow_id: str) -> km.Workflow:
    config = configuration.project_config(project)
    workflow = config.workflows.get(workflow_id)
    if workflow is None:
        raise NotFound(f"The active configuration of {project.key} has no workflow '{workflow_id}'.")
    return workflow


def _new_revision_id(project: Project) -> int | None:
    revision = configuration.active_revision(project.id)
    return revision.id if revision is not None and revision.repository_id is not None else None


def _pinned(project: Project, workflow_id: str, new: km.Workflow, new_revision_id: int | None) -> list[Issue]:
    """Issues of the workflow not yet on the new version (or pinned to an older copy of it)."""
    rows = db.session.scalars(select(Issue).where(Issue.project_id == project.id, Issue.workflow_id == workflow_id)
                              .order_by(Issue.id))
    return [i for i in rows if i.workflow_version != new.version
            or (new_revision_id is not None and i.config_revision_id != new_revision_id)]


def preview(project: Project, workflow_id: str, choices: Mapping[str, str] | None = None) -> Preview:
    """Per older version and source state: how many issues go where; removed states wait for a choice."""
    new = _current(project, workflow_id)
    new_revision_id = _new_revision_id(project)
    result = Preview(workflow_id, new.version, new_revision_id, tuple(new.states))
    by_version: dict[str, list[Issue]] = {}
    olds: dict[str, km.Workflow] = {}
    for issue in _pinned(project, workflow_id, new, new_revision_id):
        by_version.setdefault(issue.workflow_version, []).append(issue)
        if issue.workflow_version not in olds:
            old = config_for(issue).workflows.get(workflow_id)
            # A version whose copy cannot be read any more still migrates: by state key.
            olds[issue.workflow_version] = old if old is not None and old.version == issue.workflow_version else \
                _stand_in(workflow_id, issue.workflow_version, [i.state for i in by_version[issue.workflow_version]])
    for version, issues in by_version.items():
        old = olds[version]
        counts = Counter(i.state for i in issues)
        plan = plan_migration(old, new, counts)
        for source, target in (choices or {}).items():
            if target and any(m.source == source for m in plan.moves):
                try:
                    plan = apply_choice(plan, source, target)
                except ValueError as error:
                    raise Invalid({f"map.{source}": str(error)}) from None
        result.groups.append(VersionGroup(version, plan, [(i.id, i.key, i.state) for i in issues]))
    return result


def _stand_in(workflow_id: str, version: str, states: list[str]) -> km.Workflow:
    """A minimal old workflow when its canonical copy is gone: just the state keys its issues are in."""
    stand_states = {s: km.State(key=s, label=s, kind="active", category="active") for s in dict.fromkeys(states)}
    first = next(iter(stand_states))
    return km.Workflow(id=workflow_id, name=workflow_id, version=version, states=stand_states, transitions=(),
                       initial=first, finals=(), dialect="repo")


def apply(project: Project, workflow_id: str, choices: Mapping[str, str] | None, actor: User | None) -> MigrationResult:
    """Move every pinned issue to the new version: one transaction, history row and audit event per issue."""
    plan = preview(project, workflow_id, choices)
    if not plan.ready:
        raise Invalid({f"map.{s}": f"State '{s}' was removed; choose where its issues go." for s in plan.needs_choice})
    new = _current(project, workflow_id)
    result = MigrationResult()
    actor_id = actor.id if actor is not None else None
    for group in plan.groups:
        for issue_id, key, state in group.issues:
            target = group.plan.target_for(state) or state
            try:
                moved = _move(issue_id, group.old_version, new, plan.new_revision_id, target, actor_id)
            except StaleDataError:
                db.session.rollback()
                result.conflicts.append(key)
                continue
            if moved is not None:
                result.moved.append(moved)
    log.info("workflow migration project=%s workflow=%s moved=%d conflicts=%d", project.key, workflow_id,
             len(result.moved), len(result.conflicts))
    return result


def _move(issue_id: int, old_version: str, new: km.Workflow, revision_id: int | None, target: str,
          actor_id: int | None) -> tuple[str, str, str] | None:
    issue = db.session.get(Issue, issue_id)
    if issue is None or issue.workflow_version != old_version:
        return None
    now = utcnow()
    source = issue.state
    issue.workflow_version = new.version
    issue.config_revision_id = revision_id
    changed = target != source
    if changed:
        issue.state = target
        issue.state_entry += 1
        issue.state_entered_at = now
        final = target in new.finals or new.states[target].kind == "final"
        issue.resolved_at = (issue.resolved_at or now) if final else None
        db.session.add(IssueTransition(issue_id=issue.id, from_state=source, to_state=target, transition_id=None,
                                       actor_id=actor_id, actor_kind="migration", at=now))
    db.session.flush()
    audit.record(issue.project_id, "issue.migrated", actor_id, issue.id, {
        "key": issue.key, "workflow": new.id, "from_version": old_version, "to_version": new.version,
        "from_state": source, "to_state": target,
    })
    changes = {"workflow_version": (old_version, new.version)}
    if changed:
        changes["state"] = (source, target)
    # SLA timers and automations follow the issue; a migration runs no transition hooks.
    events.issue_updated(issue.id, changes, actor_id)
    db.session.commit()
    return issue.key, source, target
