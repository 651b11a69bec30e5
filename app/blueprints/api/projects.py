"""Projects, workflow repositories, sync runs and the active configuration."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.kiket.diagnostics import Provenance
from app.models import Project, SyncRun, WorkflowRepository
from app.services import projects
from app.services.boards import board as boards
from app.services.sync import configuration, repositories, runs
from app.services.errors import NotFound
from app.services.gateway.credentials import Credential

from . import schemas as s
from .core import endpoint, page_of
from .paging import listing_page

PROJECTS, CONFIG = "Projects", "Configuration"
RUNNING = ("fetching", "validating", "writing", "loading")
SUCCEEDED = ("active", "unchanged")


def project_for(cred: Credential, key: str) -> Project:
    """A project the credential's user may see; an extension credential sees its own project only."""
    project = projects.get_project(cred.user, key)
    if cred.project_id is not None and project.id != cred.project_id:
        raise NotFound(f"No project {key!r} that you can see.")
    return project


def _project(cred: Credential, project: Project) -> dict:
    return {"key": project.key, "name": project.name, "description": project.description or "",
            "template": project.template, "role": projects.project_role(cred.user, project),
            "created_at": project.created_at}


@endpoint("/api/v1/projects", "GET", summary="List projects", tags=PROJECTS, scope="projects:read",
          query=s.ProjectFilterQuery, response=page_of(s.ProjectSchema), errors=(400,))
def list_projects(cred: Credential, query: dict):
    """Projects the credential can see, newest first."""
    visible = [p for p in projects.visible_projects(cred.user)
               if cred.project_id is None or p.id == cred.project_id]
    if query["project_key"]:
        visible = [p for p in visible if p.key == query["project_key"].upper()]
    return listing_page("projects", query, sorted(visible, key=lambda p: -p.id), lambda p: _project(cred, p))


@endpoint("/api/v1/projects", "POST", summary="Create a project", tags=PROJECTS, scope="projects:write",
          body=s.ProjectCreateSchema, response=s.ProjectSchema, status=201)
def create_project(cred: Credential, data: dict):
    """A project from a bundled template (`kanban`, `scrum`, `bug_tracking`); the credential's user owns it."""
    project = projects.create_project(cred.user, data["key"], data["name"], data["description"], data["template"])
    return _project(cred, project), 201, {"Location": f"/api/v1/projects/{project.key}"}


@endpoint("/api/v1/projects/<key>", "GET", summary="One project", tags=PROJECTS, scope="projects:read",
          response=s.ProjectSchema)
def get_project(cred: Credential, key: str):
    return _project(cred, project_for(cred, key))


# Repositories and sync


def _repository(repository: WorkflowRepository, secret: str | None = None) -> dict:
    out = {"id": repository.id, "project_key": repository.project.key, "url": repository.remote_url,
           "branch": repository.branch, "path": repository.config_path,
           "active_revision_id": repository.active_revision_id, "created_at": repository.created_at}
    if secret is not None:
        out["webhook_secret"] = secret
    return out


def repository_for(cred: Credential, repository_id: int) -> WorkflowRepository:
    repository = repositories.get_repository(repository_id, cred.user)
    if cred.project_id is not None and repository.project_id != cred.project_id:
        raise NotFound(f"No workflow repository {repository_id}.")
    return repository


@endpoint("/api/v1/projects/<key>/repositories", "GET", summary="The project's workflow repositories",
          tags=CONFIG, scope="config:read", query=s.ProjectFilterQuery, response=page_of(s.RepositorySchema),
          errors=(400,))
def list_repositories(cred: Credential, query: dict, key: str):
    project = project_for(cred, key)
    rows = list(db.session.scalars(select(WorkflowRepository).where(WorkflowRepository.project_id == project.id)
                                   .order_by(WorkflowRepository.id.desc())))
    return listing_page(f"repositories:{project.id}", query, rows, _repository)


@endpoint("/api/v1/projects/<key>/repositories", "POST", summary="Connect a workflow repository", tags=CONFIG,
          scope="config:write", body=s.RepositoryCreateSchema, response=s.RepositorySchema, status=201,
          errors=(409,))
def create_repository(cred: Credential, data: dict, key: str):
    """Connect the project to a git repository; the push webhook's secret is in the response, once."""
    project = project_for(cred, key)
    repository, secret = repositories.add_repository(project, data["url"], branch=data["branch"], config_path=data["path"],
                                             token=data["token"], actor=cred.user)
    return _repository(repository, secret), 201, {"Location": f"/api/v1/projects/{project.key}/repositories"}


@endpoint("/api/v1/repositories/<int:repository_id>/branches", "GET", summary="Branches of the remote",
          tags=CONFIG, scope="config:read", response=s.BranchesSchema, errors=(409,))
def list_branches(cred: Credential, repository_id: int):
    repository = repository_for(cred, repository_id)
    return {"branches": repositories.list_branches(repository.id, cred.user)}


def sync_run_values(run: SyncRun) -> dict:
    status = ("succeeded" if run.status in SUCCEEDED else "running" if run.status in RUNNING
              else "failed" if run.status == "failed" else "queued")
    commit = {"sha": run.commit_sha, "author": run.commit_author, "message": run.commit_message} \
        if run.commit_sha else None
    diagnostics = [{"code": d.get("code", ""), "severity": d.get("severity", ""), "message": d.get("message", ""),
                    "hint": d.get("hint") or "", "path": d.get("path"), "line": d.get("line"),
                    "column": d.get("column")} for d in (run.diagnostics or []) if isinstance(d, dict)]
    return {"id": run.id, "repository_id": run.repository_id, "branch": run.branch, "status": status,
            "phase": run.status, "trigger": run.trigger, "commit": commit, "timings": dict(run.timings or {}),
            "diagnostics": diagnostics, "error": run.error, "revision_id": run.revision_id,
            "enqueued_at": run.enqueued_at, "started_at": run.started_at, "finished_at": run.finished_at}


@endpoint("/api/v1/repositories/<int:repository_id>/sync", "POST", summary="Sync a repository", tags=CONFIG,
          scope="config:sync", body=s.SyncRequestSchema, response=s.SyncRunSchema, status=202, errors=(409,))
def sync_repository(cred: Credential, data: dict, repository_id: int):
    """Queue a sync (optionally of another branch, which becomes the tracked one); a sync in flight is joined."""
    repository = repository_for(cred, repository_id)
    run = runs.request_sync(repository.id, branch=data["branch"], trigger="api", actor=cred.user)
    return sync_run_values(run), 202, {"Location": f"/api/v1/sync_runs/{run.id}"}


@endpoint("/api/v1/sync_runs/<int:run_id>", "GET", summary="A sync run", tags=CONFIG, scope="config:read",
          response=s.SyncRunSchema)
def get_sync_run(cred: Credential, run_id: int):
    """Status (`queued`, `running`, `succeeded`, `failed`), commit, phase timings and diagnostics."""
    run = runs.get_sync_run(run_id)
    repository_for(cred, run.repository_id)
    return sync_run_values(run)


# The active configuration


def provenance(prov: Provenance) -> dict:
    return {"layer": prov.layer, "repo": prov.repo, "branch": prov.branch, "commit_sha": prov.commit_sha,
            "path": prov.path, "line": prov.line}


@endpoint("/api/v1/projects/<key>/workflows", "GET", summary="Active workflows with provenance", tags=CONFIG,
          scope="config:read", response=s.WorkflowListSchema)
def list_workflows(cred: Credential, key: str):
    project = project_for(cred, key)
    config = configuration.project_config(project)
    revision = configuration.active_revision(project.id)
    items = [{
        "id": w.id, "name": w.name, "version": w.version, "initial": w.initial, "finals": list(w.finals),
        "states": [{"key": st.key, "label": st.label, "kind": st.kind, "category": st.category,
                    "provenance": provenance(st.prov)} for st in w.states.values()],
        "transitions": [{"id": t.id, "name": t.name, "from_": t.sources if t.sources == "*" else list(t.sources),
                         "to": t.target, "provenance": provenance(t.prov)} for t in w.transitions],
        "provenance": provenance(w.prov),
    } for w in config.workflows.values()]
    return {"revision_id": revision.id if revision else None,
            "commit_sha": revision.commit_sha if revision else None, "items": items}


def _board_summary(board) -> dict:
    return {"id": board.id, "name": board.name, "workflow": board.workflow,
            "columns": [{"key": c.key, "name": c.name, "states": list(c.states), "wip_limit": c.wip_limit}
                        for c in board.columns], "provenance": provenance(board.prov)}


@endpoint("/api/v1/projects/<key>/boards", "GET", summary="Active boards with provenance", tags=CONFIG,
          scope="config:read", response=s.BoardListSchema)
def list_boards(cred: Credential, key: str):
    project = project_for(cred, key)
    config = configuration.project_config(project)
    return {"items": [_board_summary(b) for b in config.boards.values()]}


@endpoint("/api/v1/projects/<key>/boards/<board_id>", "GET", summary="A board with its columns and cards",
          tags=CONFIG, scope="issues:read", response=s.BoardSchema)
def get_board(cred: Credential, key: str, board_id: str):
    """The board materialized by the board service: every column with its count and its first cards
    (across swimlanes), as the board page shows it."""
    project = project_for(cred, key)
    view = boards.board_view(cred.user, project, board_id)
    columns = []
    for column in view.columns:
        cards = [card for cell in column.cells.values() for card in cell.cards]
        columns.append({"key": column.layout.key, "name": column.layout.name, "states": list(column.layout.states),
                        "wip_limit": column.layout.wip_limit, "count": column.count,
                        "cards": [{"key": c.key, "title": c.title, "state": c.state, "issue_type": c.issue_type,
                                   "priority": c.priority, "assignee": c.assignee_email, "labels": list(c.labels or [])}
                                  for c in cards]})
    board = view.layout.board
    return {"id": board.id, "name": board.name, "workflow": board.workflow, "columns": columns,
            "provenance": provenance(board.prov)}
