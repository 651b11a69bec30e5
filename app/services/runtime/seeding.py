"""Seed issues (spec §5, §16): a repository's, once when it is first activated for the project; a template's, once
when a project is created with sample issues.

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
from app.models import ConfigRevision, Project, ProjectSeedMarker
from app.services.projects import project_role
from app.services.runtime import events, issues
from app.services.runtime.fields import MAX_TITLE, check_priority, clean_labels, user_by_email, validate_custom_fields
from app.services.sync import configuration

log = logging.getLogger(__name__)


def seed_issues_once(project: Project, revision: km.ConfigRevision | None = None, revision_id: int | None = None) -> bool:
    """Create the seed issues of one source once ever; True when it ran.

    The source is the repository of `revision_id` (its first activation for the project, whether or not the
    template's sample issues exist, §16), else the project's template (a project created with sample issues).
    Runs inside the caller's transaction (the activation, or the project's creation): the marker row, with
    what was created and why anything was skipped, commits together with the issues.
    """
    row = db.session.get(ConfigRevision, revision_id) if revision_id is not None else None
    source = f"repository:{row.repository_id}" if row is not None and row.repository_id is not None else "template"
    seeded = db.session.scalar(select(ProjectSeedMarker.id).where(ProjectSeedMarker.project_id == project.id,
                                                                  ProjectSeedMarker.source == source))
    if seeded is not None:
        return False
    # The marker first: its unique (project, source) row stops a concurrent activation before any issue.
    marker = ProjectSeedMarker(project_id=project.id, source=source, revision_id=revision_id)
    db.session.add(marker)
    db.session.flush()
    revision = revision if revision is not None else configuration.project_config(project)
    marker.outcome = create_seed_issues(project, revision.project.seed_issues, revision)
    return True


def create_seed_issues(project: Project, seeds: Sequence[SeedIssue], config: km.ConfigRevision) -> dict:
    """Create the seed issues in the current transaction (must not commit); returns what was created and skipped.

    `status` must be a state of the type's workflow (types without one use the default workflow);
    an invalid entry is skipped with its reason, never failing the activation.
    """
    created = 0
    skipped = []
    for index, seed in enumerate(seeds):
        reason = _create_one(project, config, seed)
        if reason is None:
            created += 1
        else:
            skipped.append({"title": seed.title, "reason": reason})
            log.warning("seed issue %d of project=%s skipped (%r): %s", index + 1, project.key, seed.title, reason)
    if seeds:
        log.info("seed issues for project=%s: %d of %d created", project.key, created, len(seeds))
    return {"created": created, "skipped": skipped}


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
