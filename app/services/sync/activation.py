"""Activation: load a pending revision with the lower layers, apply its project settings and team, make it active.

`load_configuration` is the `load_project_configuration` job; `request_reload` queues it for the active
commit again after a lower layer changed. Everything happens in one transaction, and anything fatal or
any exception leaves the previous revision active.

Other components react to an activation through `listen`, connected once by the app factory (the
runtime creates the first configuration's seed issues, inside the activation's transaction, and emits
`workflow.updated` after its commit): sync never imports them.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from flask import current_app
from sqlalchemy import func, select

from app.extensions import db
from app.kiket import model as km
from app.models import (
    ConfigEvent,
    ConfigRevision,
    Invitation,
    Organization,
    OrganizationMembership,
    Project,
    ProjectMembership,
    SyncRun,
    User,
    WorkflowRepository,
)
from app.models.base import utcnow
from app.services import live
from app.services.errors import NotFound
from app.services.sync import configuration, workflow_sources
from app.services.sync.runs import enqueue_load, fatal_summary, finish, queue_wait_ms, record_failure

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Listener:
    """What another component does when a revision becomes active."""

    # In the activation's transaction, before its commit: (project, configuration, revision id).
    activating: Callable[[Project, km.ConfigRevision, int | None], object]
    # After the commit: (project id, revision id).
    activated: Callable[[int, int], object]


_listeners: dict[str, Listener] = {}


def listen(name: str, listener: Listener) -> None:
    """Call `listener` on every activation from now on (once per name: the app factory may run again)."""
    _listeners[name] = listener


def announce(project_id: int, revision_id: int) -> None:
    """Tell the listeners that an activation committed."""
    for listener in _listeners.values():
        listener.activated(project_id, revision_id)


def load_configuration(revision_id: int) -> ConfigRevision:
    """Activate a pending revision (the `load_project_configuration` job); the previous one stays on failure."""
    revision = db.session.get(ConfigRevision, revision_id)
    if revision is None:
        raise NotFound(f"No revision {revision_id}.")
    if revision.status != "pending":
        log.info("revision=%s is %s already; nothing to load", revision.id, revision.status)
        return revision
    run_id = db.session.scalar(select(SyncRun.id).where(SyncRun.revision_id == revision.id))
    started = time.perf_counter()
    load_wait = queue_wait_ms()
    workflow_sources.pause_in_phase("loading")
    try:
        config = load_stored(revision)
        if isinstance(config, str):
            revision.status = "rejected"
            revision.error = config
            db.session.add(ConfigEvent(project_id=revision.project_id, kind="rejected", revision_id=revision.id,
                                       detail={"commit": revision.commit_sha, "error": config}))
            _finish_load(run_id, "failed", started, load_wait, error=config)
            return revision
        activate(revision, config, kind="activated", actor_id=None)
        _finish_load(run_id, "active", started, load_wait)
        announce(revision.project_id, revision.id)
        log.info("revision=%s project=%s commit=%s active", revision.id, revision.project.key, revision.commit_sha[:10])
    except Exception as exc:
        db.session.rollback()
        failed = db.session.get(ConfigRevision, revision_id)
        if failed is not None and failed.status == "pending":
            failed.status = "rejected"
            failed.error = f"{exc.__class__.__name__}: {exc}"[:2000]
        if run_id is not None:
            record_failure(run_id, exc, {"load": int((time.perf_counter() - started) * 1000)})
        else:
            db.session.commit()
        raise
    _prune(revision.repository)
    return revision


def _finish_load(run_id: int | None, status: str, started: float, load_wait: int | None,
                 error: str | None = None) -> None:
    run = db.session.get(SyncRun, run_id) if run_id is not None else None
    if run is None:
        db.session.commit()
        return
    timings = {**(run.timings or {}), "load": int((time.perf_counter() - started) * 1000)}
    if load_wait is not None:
        timings["load_queue"] = load_wait
    run.timings = timings
    finish(run, status, error=error)


def load_stored(revision: ConfigRevision) -> km.ConfigRevision | str:
    """The revision's configuration from its canonical copy with the current layers, or why it fails."""
    repository = revision.repository
    project = revision.project
    try:
        files = workflow_sources.read_revision(revision.repository_id, revision.commit_sha)
    except workflow_sources.StorageError as exc:
        return str(exc)
    layers = configuration.lower_layers(project)
    result = configuration.load_files(
        project, files, km.Source(repo=repository.remote_url, branch=revision.branch, commit_sha=revision.commit_sha),
        config_path=repository.config_path, layers=layers)
    revision.diagnostics = [d.to_dict() for d in result.diagnostics]
    revision.summary = {**result.summary(), "counts": result.counts}
    revision.layers_version = layers.version
    if not result.ok:
        return fatal_summary(result.diagnostics)
    return result.revision


def activate(revision: ConfigRevision, config: km.ConfigRevision, *, kind: str, actor_id: int | None) -> None:
    """Make `revision` the project's active one and apply its settings and team; the caller commits."""
    project = revision.project
    # The team it replaces: people it named whom the new one drops lose their membership.
    try:
        previous_team = configuration.project_config(project).team
    except configuration.ConfigUnavailable:
        previous_team = None
    for other in db.session.scalars(select(ConfigRevision).where(ConfigRevision.project_id == project.id,
                                                                 ConfigRevision.status == "active",
                                                                 ConfigRevision.id != revision.id)):
        other.status = "superseded"
    revision.status = "active"
    revision.error = None
    revision.activated_at = utcnow()
    # Boards and issue pages open on the project fetch their new shape once this commits.
    live.project_changed(db.session(), project.id, "config")
    revision.workflow_versions = {wf.id: wf.version for wf in config.workflows.values()}
    if revision.repository is not None:
        revision.repository.active_revision_id = revision.id
    _apply_project(project, config.project)
    apply_team(project, config.team, previous=previous_team)
    db.session.add(ConfigEvent(project_id=project.id, kind=kind, revision_id=revision.id, actor_id=actor_id,
                               detail={"commit": revision.commit_sha, "branch": revision.branch}))
    for listener in _listeners.values():
        listener.activating(project, config, revision.id)


def _apply_project(project: Project, settings: km.Project) -> None:
    # The app owns the project's name and key: a different one in the file is told (project_name_mismatch),
    # never applied.
    if settings.description is not None:
        project.description = settings.description.strip()


def project_role_for(roles: tuple[str, ...]) -> str:
    """The app's project role for a member's configured roles (the repository never grants owner)."""
    if "admin" in roles:
        return "admin"
    if roles and all(role == "viewer" for role in roles):
        return "viewer"
    return "member"


def apply_team(project: Project, team: km.Team, previous: km.Team | None = None) -> None:
    """Members with accounts get their project role; unknown emails become pending invitations.

    With `previous` (the team before a lower layer changed), people it named whom `team` no longer names lose
    their membership, unless they own the project (an owner is made in the app, never by a file).
    The caller commits.
    """
    memberships = {m.user_id: m for m in project.memberships}
    if previous is not None:
        named = {m.identity.strip().lower() for m in team.members}
        gone = {m.identity.strip().lower() for m in previous.members} - named
        if gone:
            for membership in list(project.memberships):
                if membership.role != "owner" and membership.user.email.lower() in gone:
                    project.memberships.remove(membership)
                    memberships.pop(membership.user_id, None)
    if not team.members:
        return
    organization: Organization = project.organization
    users = {u.email.lower(): u for u in db.session.scalars(
        select(User).join(OrganizationMembership).where(OrganizationMembership.organization_id == organization.id))}
    for member in team.members:
        identity = member.identity.strip().lower()
        role = project_role_for(member.roles)
        user = users.get(identity)
        if user is not None:
            membership = memberships.get(user.id)
            if membership is None:
                membership = ProjectMembership(user_id=user.id, role=role)
                project.memberships.append(membership)
                memberships[user.id] = membership
            elif membership.role not in ("owner", "admin"):
                # Roles granted in the app (owner, admin) are never lowered by a repository.
                membership.role = role
        elif "@" in identity:
            pending = db.session.scalar(select(Invitation.id).where(
                Invitation.organization_id == organization.id, func.lower(Invitation.email) == identity,
                Invitation.accepted_at.is_(None), Invitation.expires_at > utcnow()))
            if pending is None:
                # The link token is never shown: an admin re-sends it from the members page.
                db.session.add(Invitation(
                    organization_id=organization.id, email=identity, role="member",
                    nonce_hash=secrets.token_hex(32), created_by_id=None,
                    expires_at=utcnow() + timedelta(seconds=current_app.config["KIKET_INVITATION_MAX_AGE"])))


def _prune(repository: WorkflowRepository | None) -> None:
    """Keep the canonical copies of the newest `KIKET_REVISION_RETENTION` commits, plus active and pending ones."""
    if repository is None:
        return
    keep_count = current_app.config["KIKET_REVISION_RETENTION"]
    rows = db.session.execute(select(ConfigRevision.commit_sha, ConfigRevision.status)
                              .where(ConfigRevision.repository_id == repository.id)
                              .order_by(ConfigRevision.id.desc())).all()
    keep: list[str] = []
    for sha, status in rows:
        if sha not in keep and (len(keep) < keep_count or status in ("active", "pending")):
            keep.append(sha)
    pruned = workflow_sources.prune(repository.id, keep)
    if pruned:
        log.info("pruned %d canonical copies of repo=%s", len(pruned), repository.id)


def request_reload(project_id: int, actor_id: int | None = None) -> int | None:
    """Reload the project's active commit with the current lower layers (after an override save).

    Creates a pending revision of the same commit and enqueues the load job; returns its id, or None
    when the project has no active repository revision (its configuration is then computed on read).
    """
    active = configuration.active_revision(project_id)
    if active is None or active.repository_id is None:
        return None
    revision = ConfigRevision(project_id=project_id, repository_id=active.repository_id, commit_sha=active.commit_sha,
                              branch=active.branch, status="pending", storage_path=active.storage_path,
                              summary=active.summary, diagnostics=active.diagnostics,
                              workflow_versions=active.workflow_versions)
    db.session.add(revision)
    db.session.commit()
    enqueue_load(revision.id)
    log.info("reload of project=%s queued as revision=%s (actor=%s)", project_id, revision.id, actor_id)
    return revision.id
