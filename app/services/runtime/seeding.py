"""Seed issues of a project's first activated configuration (spec §5), created once per project ever.

`seed_issues_once` listens to activations (connected by the app factory) and is what a project
created with sample issues calls; it runs inside the caller's transaction.
"""

from __future__ import annotations

import logging
from typing import Sequence

from sqlalchemy import select

from app.extensions import db
from app.kiket import model as km
from app.kiket.model import SeedIssue
from app.models import Project, ProjectSeedMarker
from app.services.projects import project_role
from app.services.runtime import events, issues
from app.services.runtime.fields import MAX_TITLE, check_priority, clean_labels, user_by_email, validate_custom_fields
from app.services.sync import configuration

log = logging.getLogger(__name__)


def seed_issues_once(project: Project, revision: km.ConfigRevision | None = None, revision_id: int | None = None) -> bool:
    """Create the seed issues of a project's first activated configuration, once ever; True when it ran.

    Runs inside the caller's transaction (the activation, or the project's creation): the marker row and
    the issues commit together. Without `revision`, the project's active configuration.
    """
    seeded = db.session.scalar(select(ProjectSeedMarker.id).where(ProjectSeedMarker.project_id == project.id))
    if seeded is not None:
        return False
    db.session.add(ProjectSeedMarker(project_id=project.id, revision_id=revision_id))
    db.session.flush()
    revision = revision if revision is not None else configuration.project_config(project)
    create_seed_issues(project, revision.project.seed_issues)
    return True


def create_seed_issues(project: Project, seeds: Sequence[SeedIssue]) -> None:
    """Create the project's seed issues in the current transaction (must not commit).

    `status` must be a state of the type's workflow (types without one use the default workflow);
    an invalid entry is logged and skipped, never failing the activation.
    """
    if not seeds:
        return
    config = configuration.project_config(project)
    created = 0
    for index, seed in enumerate(seeds):
        reason = _create_one(project, config, seed)
        if reason is None:
            created += 1
        else:
            log.warning("seed issue %d of project=%s skipped (%r): %s", index + 1, project.key, seed.title, reason)
    log.info("seed issues for project=%s: %d of %d created", project.key, created, len(seeds))


def _create_one(project: Project, config, seed: SeedIssue) -> str | None:
    """Create one seed issue, or say why it cannot be."""
    title = (seed.title or "").strip()
    if not title:
        return "no title"
    type_key = seed.issue_type or next((t.key for t in issues.creatable_types(config)), None)
    itype = config.issue_types.get(type_key) if type_key else None
    if itype is None:
        return f"unknown issue type {seed.issue_type!r}"
    workflow = config.workflows.get(seed.workflow) if seed.workflow else config.workflow_for(itype.key)
    if workflow is None:
        return f"issue type {itype.key!r} has no workflow"
    state = seed.status or workflow.initial
    if state not in workflow.states:
        return f"status {state!r} is not a state of workflow {workflow.id!r}"
    problems: dict = {}
    priority = check_priority(config, seed.priority, problems)
    labels = clean_labels(list(seed.labels), problems)
    values, field_problems = validate_custom_fields(itype, seed.custom_fields,
                                                    organization_id=project.organization_id, partial=True)
    problems.update(field_problems)
    if problems:
        return "; ".join(f"{k}: {v}" for k, v in problems.items())
    assignee_id = None
    if seed.assignee:
        user = user_by_email(seed.assignee.lstrip("@"), project.organization_id)
        assignee_id = user.id if user is not None and project_role(user, project) else None
    row = issues.insert_issue(project, itype=itype, workflow=workflow, title=title[:MAX_TITLE],
                              description=seed.description or "", state=state, priority=priority,
                              assignee_id=assignee_id, reporter_id=None, labels=labels, due_date=None,
                              custom_fields=values, parent_id=None, actor_id=None, actor_kind="system")
    # In the activation's transaction: the seed's SLA timer, hooks and automations start once it commits.
    events.issue_created(row.id, None)
    return None
