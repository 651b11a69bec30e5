"""Projects whose active configuration is a fixture repository, brought in by a real sync, and the people on them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from tests.support.sync_repos import bare_remote, file_url, run_worker

# The fixtures' `legal` role (approvers in legal's workflows) is undeclared: counsel gets it, with issue.approve.
LEGAL_TEAM = """team:
  roles:
    - {name: legal, description: Counsel, inherits: member, permissions: [issue.approve]}
  members:
    - {user: counsel@example.com, roles: [legal]}
"""


def sync_remote(app, owner, remote: Path, key: str):
    """A new project (on the kanban template) connected to `remote` at main and synced; (project, repository)."""
    from app.extensions import db
    from app.services import projects
    from app.services.sync import repositories

    project = projects.create_project(owner, key, f"Project {key}", "", "kanban")
    repository, _ = repositories.add_repository(project, file_url(remote), branch="main", actor=owner)
    run = sync_again(app, repository.id)
    assert run.status == "active", (run.error, run.diagnostics[:3])
    return db.session.get(type(project), project.id), repository


def sync_again(app, repository_id: int):
    """Sync a connected repository now, through the queue and a worker; the finished SyncRun."""
    from app.extensions import db
    from app.models import SyncRun
    from app.services.sync import runs

    run = runs.request_sync(repository_id, branch=None, trigger="ui")
    run_worker(app)
    db.session.expire_all()
    return db.session.get(SyncRun, run.id)


def synced_project(app, owner, base: Path, name: str, key: str = "ENG"):
    """A project on fixture `name` at main (a bare clone under `base`); (project, repository, remote)."""
    remote = bare_remote(base, name)
    project, repository = sync_remote(app, owner, remote, key)
    return project, repository, remote


def member(make_user, project, email: str, role: str = "member"):
    """A new account in the organization with `role` on the project."""
    from app.extensions import db
    from app.models import ProjectMembership

    user = make_user(email, "member")
    db.session.add(ProjectMembership(project_id=project.id, user_id=user.id, role=role))
    db.session.commit()
    return user


def override(app, owner, project, path: str, text: str) -> None:
    """Save a project override file and let a worker reload the synced configuration."""
    from app.services.sync import configuration, layers

    result = layers.save_layer_file(owner, path, text, project=project)
    assert result.saved, result.diagnostics
    run_worker(app)
    configuration.clear_cache()


def by_title(project, fragment: str):
    """The project's issue whose title contains `fragment`."""
    from app.extensions import db
    from app.models.issues import Issue

    return db.session.scalar(select(Issue).where(Issue.project_id == project.id, Issue.title.contains(fragment)))


def write_custom_fields(issue_id: int, **values) -> None:
    """Set custom fields on the row, as an integration's `set_field` would: the fixtures' issue types declare none,
    so the issue service refuses them."""
    from app.extensions import db
    from app.models.issues import Issue

    issue = db.session.get(Issue, issue_id)
    issue.custom_fields = {**(issue.custom_fields or {}), **values}
    db.session.commit()


KANBAN_STATES = ("backlog", "in_progress", "review", "done")


def template_project_with_issues(owner, key: str = "ENG") -> tuple:
    """A project on the kanban template with its sample issues plus one, spread over every template state;
    (project, {issue id: state})."""
    from app.extensions import db
    from app.models.issues import Issue
    from app.services import projects
    from app.services.runtime import seeding
    from tests.support.issue_events import make_issue

    project = projects.create_project(owner, key, "Platform team", "", "kanban", seed=seeding.seed_issues_once)
    make_issue(project, "Ship the release notes", issue_type="task", state="review", emit=False)
    issues = list(db.session.scalars(select(Issue).where(Issue.project_id == project.id).order_by(Issue.id)))
    for index, issue in enumerate(issues):
        issue.state = KANBAN_STATES[index % len(KANBAN_STATES)]
    db.session.commit()
    return project, {issue.id: issue.state for issue in issues}
