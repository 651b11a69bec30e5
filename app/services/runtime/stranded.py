"""Issues stranded on a workflow the active configuration lacks (§16): a mapping previewed, then applied in one step.

A project created from a template that connects a repository, or a revision that drops a workflow, leaves
issues on a workflow id the active configuration no longer has. Each issue type maps onto a type of the
active configuration (the same key, else one with the same name, else the default type), which names the
target workflow; each state maps onto a state of that workflow (`suggest_target`: the same key, then the
same category, then the initial state). Every choice can be changed. `apply` moves all the issues in one
transaction with one audit event; each issue gets a history row and an `issue.updated` event.
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
from app.kiket.reader import resolve_key
from app.kiket.runtime.migration import suggest_target
from app.models.accounts import User
from app.models.base import utcnow
from app.models.issues import Issue, IssueTransition
from app.models.projects import Project
from app.services import audit
from app.services.errors import Conflict, Invalid, NotFound
from app.services.runtime import events
from app.services.runtime.effects.scope import config_for
from app.services.sync import configuration, stranding

log = logging.getLogger(__name__)


@dataclass
class TypeRow:
    """Where the issues of one old issue type go."""

    source: str
    count: int
    target: str
    reason: str


@dataclass
class StateRow:
    """Where the issues in one old state go, within one target workflow."""

    source: str
    keys: list[str]
    target: str
    reason: str

    @property
    def count(self) -> int:
        return len(self.keys)


@dataclass
class TargetGroup:
    """The issues that land on one workflow of the active configuration."""

    workflow: km.Workflow
    rows: list[StateRow] = field(default_factory=list)


@dataclass
class StrandedPlan:
    """The mapping of one stranded workflow's issues, with every choice filled in (suggested or chosen)."""

    workflow_id: str
    types: list[TypeRow]
    targets: list[TargetGroup]
    type_options: list[km.IssueType]
    issues: list[Issue]

    @property
    def total(self) -> int:
        return len(self.issues)


@dataclass
class StrandedResult:
    """What `apply` moved: (key, from state, to workflow, to state)."""

    moved: list[tuple[str, str, str, str]] = field(default_factory=list)


def stranded_workflows(project: Project) -> list[stranding.Stranded]:
    """Every workflow whose issues have no place in the project's active configuration."""
    return stranding.stranded_issues(project.id, configuration.project_config(project))


def _suggest_type(config: km.ConfigRevision, source: str, options: list[km.IssueType]) -> tuple[str, str]:
    keys = {t.key: t.label for t in options}
    found, how = resolve_key(source, keys, labels=keys)
    if found is not None:
        return found, "same type" if how == "exact" else f"same type by {how}"
    default = next((t.key for t in options if t.workflow == config.default_workflow), options[0].key)
    return default, "default type"


def _old_workflow(project: Project, workflow_id: str, sample: Issue) -> km.Workflow | None:
    """The stranded workflow's definition, for its states' categories: the issue's pinned revision, else the
    project's bundled template (issues made before any repository)."""
    found = config_for(sample).workflows.get(workflow_id)
    if found is not None:
        return found
    files, source = configuration.template_source(project)
    result = configuration.load_files(project, files, source)
    return result.revision.workflows.get(workflow_id) if result.revision is not None else None


def preview(project: Project, workflow_id: str, choices: Mapping[str, str] | None = None) -> StrandedPlan:
    """The mapping of `workflow_id`'s issues; `choices` holds `type:<old type>` and `map:<workflow>:<old state>`."""
    choices = choices or {}
    config = configuration.project_config(project)
    if workflow_id in config.workflows:
        raise NotFound(f"Workflow '{workflow_id}' is part of the active configuration; its issues are not stranded.")
    issues = list(db.session.scalars(select(Issue).where(Issue.project_id == project.id,
                                                         Issue.workflow_id == workflow_id).order_by(Issue.id)))
    if not issues:
        raise NotFound(f"No issue of {project.key} is on workflow '{workflow_id}'.")
    options = [t for t in config.issue_types.values() if t.active] or list(config.issue_types.values())
    problems: dict[str, str] = {}
    types = []
    for source, count in Counter(i.issue_type for i in issues).items():
        target, reason = _suggest_type(config, source, options)
        chosen = choices.get(f"type:{source}")
        if chosen:
            if chosen in config.issue_types:
                target, reason = chosen, "chosen"
            else:
                problems[f"type:{source}"] = f"'{chosen}' is not an issue type of the active configuration."
        types.append(TypeRow(source, count, target, reason))
    type_target = {row.source: row.target for row in types}
    old = _old_workflow(project, workflow_id, issues[0])
    targets: dict[str, TargetGroup] = {}
    for issue in issues:
        workflow = config.workflow_for(type_target[issue.issue_type])
        group = targets.setdefault(workflow.id, TargetGroup(workflow))
        row = next((r for r in group.rows if r.source == issue.state), None)
        if row is None:
            target, reason = suggest_target(old, issue.state, workflow)
            chosen = choices.get(f"map:{workflow.id}:{issue.state}")
            if chosen:
                if chosen in workflow.states:
                    target, reason = chosen, "chosen"
                else:
                    problems[f"map:{workflow.id}:{issue.state}"] = \
                        f"'{chosen}' is not a state of workflow '{workflow.id}'."
            row = StateRow(issue.state, [], target, reason)
            group.rows.append(row)
        row.keys.append(issue.key)
    if problems:
        raise Invalid(problems)
    return StrandedPlan(workflow_id, types, list(targets.values()), options, issues)


def apply(project: Project, workflow_id: str, choices: Mapping[str, str] | None, actor: User | None) -> StrandedResult:
    """Move every issue of the stranded workflow as previewed: one transaction, one audit event."""
    plan = preview(project, workflow_id, choices)
    revision = configuration.active_revision(project.id)
    revision_id = revision.id if revision is not None and revision.repository_id is not None else None
    type_target = {row.source: row.target for row in plan.types}
    state_target = {(group.workflow.id, row.source): row.target for group in plan.targets for row in group.rows}
    config = configuration.project_config(project)
    actor_id = actor.id if actor is not None else None
    now = utcnow()
    result = StrandedResult()
    try:
        for issue in plan.issues:
            result.moved.append(_move(issue, workflow_id, config, type_target, state_target, revision_id, actor_id, now))
        db.session.flush()
    except StaleDataError:
        db.session.rollback()
        raise Conflict("Some of these issues changed meanwhile; nothing was moved. Review the mapping and apply it "
                       "again.") from None
    audit.record(project.id, "workflow.migrated", actor_id, None, {
        "from_workflow": workflow_id, "stranded": True,
        "types": {row.source: row.target for row in plan.types},
        "moves": [{"key": key, "from": source, "workflow": wf, "to": target} for key, source, wf, target in result.moved],
    })
    db.session.commit()
    log.info("stranded issues of project=%s workflow=%s moved=%d", project.key, workflow_id, len(result.moved))
    return result


def _move(issue: Issue, workflow_id: str, config: km.ConfigRevision, type_target: Mapping[str, str],
          state_target: Mapping[tuple[str, str], str], revision_id: int | None, actor_id: int | None,
          now) -> tuple[str, str, str, str]:
    """Put one issue on its mapped type, workflow and state, with its history row and `issue.updated` event."""
    new_type = type_target[issue.issue_type]
    workflow = config.workflow_for(new_type)
    target = state_target[(workflow.id, issue.state)]
    source, old_type = issue.state, issue.issue_type
    issue.workflow_id, issue.workflow_version, issue.config_revision_id = workflow.id, workflow.version, revision_id
    issue.issue_type = new_type
    issue.state, issue.state_entry, issue.state_entered_at = target, issue.state_entry + 1, now
    issue.resolved_at = (issue.resolved_at or now) if workflow.states[target].is_final else None
    db.session.add(IssueTransition(issue_id=issue.id, from_state=source, to_state=target, transition_id=None,
                                   actor_id=actor_id, actor_kind="migration", at=now,
                                   comment=f"Moved from workflow {workflow_id}, which the active configuration "
                                           f"lacks, to {workflow.id}"))
    changes = {"workflow": (workflow_id, workflow.id), "state": (source, target)}
    if new_type != old_type:
        changes["issue_type"] = (old_type, new_type)
    events.issue_updated(issue.id, changes, actor_id)
    return issue.key, source, workflow.id, target
