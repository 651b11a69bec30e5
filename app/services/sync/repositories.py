"""Workflow repositories: connect a project to a git remote, change it, its webhook secret, its branches."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from app.extensions import db
from app.models import ConfigRevision, Project, SyncRun, User, WorkflowRepository
from app.services.errors import Conflict, Forbidden, Invalid, NotFound
from app.services.projects import project_role, visible_projects
from app.services.sync import git

log = logging.getLogger(__name__)

MANAGER_ROLES = ("owner", "admin")


@dataclass
class RepositoryOverview:
    """One line of the repositories dashboard."""

    repository: WorkflowRepository
    active_revision: ConfigRevision | None
    last_run: SyncRun | None


def can_manage(actor: User, project: Project) -> bool:
    """True when the user may add, sync and roll back the project's configuration (project owner/admin)."""
    return project_role(actor, project) in MANAGER_ROLES


def require_manage(actor: User | None, project: Project) -> None:
    # `actor=None` is the system itself (CLI, webhook, jobs); views always pass the current user.
    if actor is not None and not can_manage(actor, project):
        raise Forbidden("Only project owners and admins can manage its workflow repository.")


def get_repository(repository_id: int, actor: User | None = None) -> WorkflowRepository:
    """The repository, if it exists and (with `actor`) the user may see its project."""
    repository = db.session.get(WorkflowRepository, repository_id)
    if repository is None or (actor is not None and project_role(actor, repository.project) is None):
        raise NotFound(f"No workflow repository {repository_id}.")
    return repository


def repository_for_project(project_id: int) -> WorkflowRepository | None:
    """The project's workflow repository, or None."""
    return db.session.scalar(select(WorkflowRepository).where(WorkflowRepository.project_id == project_id))


def add_repository(project: Project, url: str, *, branch: str = "main", config_path: str = ".kiket",
                   token: str | None = None, actor: User | None = None) -> tuple[WorkflowRepository, str]:
    """Connect a project to a git repository; returns it with its webhook secret (show it once)."""
    require_manage(actor, project)
    url = _validate_url(url, actor)
    branch = git.validate_branch(branch)
    config_path = _validate_config_path(config_path)
    if repository_for_project(project.id) is not None:
        raise Conflict(f"{project.key} already has a workflow repository; change it instead of adding another.")
    github = git.parse_github(url)
    secret = secrets.token_urlsafe(32)
    repository = WorkflowRepository(
        project_id=project.id, remote_url=url, branch=branch, config_path=config_path,
        token_encrypted=git.encrypt_token(token) if token else None,
        webhook_secret_encrypted=git.encrypt_token(secret),
        github_owner=github[0] if github else None, github_name=github[1] if github else None,
        created_by_id=actor.id if actor else None,
    )
    db.session.add(repository)
    db.session.commit()
    log.info("workflow repository added repo=%s project=%s", repository.id, project.key)
    return repository, secret


def update_repository(repository_id: int, *, actor: User | None = None, url: str | None = None,
                      branch: str | None = None, config_path: str | None = None, token: str | None = None,
                      clear_token: bool = False) -> WorkflowRepository:
    """Change a repository's remote, tracked branch, config path or access token (None leaves a value as is)."""
    repository = get_repository(repository_id, actor)
    require_manage(actor, repository.project)
    if url is not None:
        repository.remote_url = _validate_url(url, actor)
        github = git.parse_github(repository.remote_url)
        repository.github_owner, repository.github_name = github if github else (None, None)
    if branch is not None:
        repository.branch = git.validate_branch(branch)
    if config_path is not None:
        repository.config_path = _validate_config_path(config_path)
    if clear_token:
        repository.token_encrypted = None
    elif token:
        repository.token_encrypted = git.encrypt_token(token)
    db.session.commit()
    return repository


def rotate_webhook_secret(repository_id: int, actor: User | None = None) -> str:
    """Generate a new webhook secret and return it (show it once)."""
    repository = get_repository(repository_id, actor)
    require_manage(actor, repository.project)
    secret = secrets.token_urlsafe(32)
    repository.webhook_secret_encrypted = git.encrypt_token(secret)
    db.session.commit()
    return secret


def webhook_secret(repository: WorkflowRepository) -> str | None:
    """The plain webhook secret, for signature checks only."""
    return git.decrypt_token(repository.webhook_secret_encrypted)


def _validate_url(url: str, actor: User | None) -> str:
    """A checked remote URL; a local (file://) one, when the server allows them, only from the command line
    (`actor=None`) or an organization owner or admin: it reads the server's own disk."""
    url = git.validate_remote_url(url, allow_local=git.allow_local_remotes())
    if git.is_local_remote(url) and actor is not None and not actor.is_org_admin:
        raise Invalid({"url": "Only organization owners and admins can connect a local (file://) repository."})
    return url


def _validate_config_path(config_path: str) -> str:
    path = (config_path or ".kiket").strip().strip("/")
    parts = path.split("/")
    if not path or len(path) > 255 or any(p in ("", ".", "..") or p.startswith("-") for p in parts) or \
            any(ch.isspace() or ch in "\\:*?[" for ch in path):
        raise Invalid({"config_path": "Give a relative directory like .kiket or config/.kiket."})
    return path


def list_branches(repository_id: int, actor: User | None = None) -> list[str]:
    """Branch names of the repository's remote, for the branch picker (GitHub API or `git ls-remote`)."""
    repository = get_repository(repository_id, actor)
    try:
        return git.list_repository_branches(repository)
    except git.GitError as exc:
        raise Conflict(str(exc)) from None


def repository_overview(actor: User) -> list[RepositoryOverview]:
    """Every repository of the projects the user may see, with its active revision and its last sync run."""
    projects = {p.id: p for p in visible_projects(actor)}
    if not projects:
        return []
    repositories = list(db.session.scalars(
        select(WorkflowRepository).where(WorkflowRepository.project_id.in_(projects)).order_by(WorkflowRepository.id)))
    out = []
    for repository in repositories:
        active = db.session.get(ConfigRevision, repository.active_revision_id) if repository.active_revision_id else None
        last = db.session.scalar(select(SyncRun).where(SyncRun.repository_id == repository.id)
                                 .order_by(SyncRun.id.desc()).limit(1))
        out.append(RepositoryOverview(repository, active, last))
    return out
