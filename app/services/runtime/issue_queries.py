"""Finding issues: one by id or key, a filtered page of a project's, and the people they can be assigned to."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from sqlalchemy import Select, String, bindparam, cast, func, or_, select

from app.extensions import db
from app.models import Project, User
from app.models.issues import Issue
from app.services.errors import NotFound
from app.services.prepared import Prepared
from app.services.projects import get_project, visible_projects
from app.services.runtime.access import project_user_role, require, runtime_actor
from app.services.sync import configuration

@dataclass(frozen=True)
class Page:
    """One page of a list."""

    items: list
    total: int
    page: int
    pages: int


def load_issue(actor: User | None, issue_id: int, *, as_automation: bool = False) -> Issue:
    """The issue by id if the actor may see it (strangers: NotFound)."""
    issue = db.session.get(Issue, issue_id)
    if issue is None:
        raise NotFound("No such issue that you can see.")
    if not as_automation:
        project_user_role(actor, issue.project)
    return issue


@functools.cache
def _issue_id_statement() -> Prepared:
    return Prepared(select(Issue.id, Issue.project_id).join(Project, Project.id == Issue.project_id).where(
        Issue.key == bindparam("key"), Project.organization_id == bindparam("organization_id")))


def issue_id_by_key(organization_id: int | None, key: str, *, project_id: int | None = None) -> int | None:
    """The id of the organization's issue with this key (`ENG-42`), in one prepared query; no access check:
    the caller hands it to a service that checks the actor's (the API's transition hot path)."""
    if organization_id is None:
        return None
    rows, _ = _issue_id_statement().execute({"key": key.strip().upper(), "organization_id": organization_id})
    found = [issue_id for issue_id, in_project in rows if project_id is None or in_project == project_id]
    return found[0] if found else None


def get_issue(actor: User, project_key: str, number_or_key: int | str) -> Issue:
    """An issue by project key and number (`42`) or key (`ENG-42`), if the actor may read it."""
    project = get_project(actor, project_key)
    text = str(number_or_key).strip()
    if "-" in text:
        prefix, _, text = text.rpartition("-")
    if not text.isdigit():
        raise NotFound("No such issue that you can see.")
    issue = db.session.scalar(select(Issue).where(Issue.project_id == project.id, Issue.number == int(text)))
    if issue is None:
        raise NotFound(f"No issue {project.key}-{text} that you can see.")
    config = configuration.project_config(project)
    require(runtime_actor(actor, project, config), "issue.read", "read issues")
    return issue


def issue_query(actor: User, project: Project | None, *, state: str | None = None, issue_type: str | None = None,
                assignee: str | int | None = None, label: str | None = None, text: str | None = None) -> Select:
    """Issues matching the filters, in one project or in every project the actor may read issues of (unordered)."""
    if project is not None:
        require(runtime_actor(actor, project, configuration.project_config(project)), "issue.read", "read issues")
        readable = [project.id]
    else:
        readable = [p.id for p in visible_projects(actor)
                    if runtime_actor(actor, p, configuration.project_config(p)).can("issue.read")]
    query = select(Issue).where(Issue.project_id.in_(readable))
    if state:
        query = query.where(Issue.state == state)
    if issue_type:
        query = query.where(Issue.issue_type == issue_type)
    if assignee not in (None, ""):
        if assignee == "@me":
            query = query.where(Issue.assignee_id == actor.id)
        elif assignee == "none":
            query = query.where(Issue.assignee_id.is_(None))
        elif str(assignee).isdigit():
            query = query.where(Issue.assignee_id == int(assignee))
        else:
            query = query.join(User, User.id == Issue.assignee_id).where(func.lower(User.email) == str(assignee).casefold())
    if label:
        query = query.where(cast(Issue.labels, String).contains(f'"{label.strip()}"', autoescape=True))
    if text and text.strip():
        needle = text.strip()
        query = query.where(or_(Issue.title.ilike(f"%{_like(needle)}%", escape="\\"),
                                Issue.key.ilike(f"%{_like(needle)}%", escape="\\"),
                                Issue.description.ilike(f"%{_like(needle)}%", escape="\\")))
    return query


def list_issues(actor: User, project: Project, *, state: str | None = None, issue_type: str | None = None,
                assignee: str | int | None = None, label: str | None = None, text: str | None = None,
                page: int = 1, per_page: int = 50) -> Page:
    """The project's issues matching the filters, newest first, one page at a time."""
    query = issue_query(actor, project, state=state, issue_type=issue_type, assignee=assignee, label=label, text=text)
    per_page = max(1, min(int(per_page or 50), 200))
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    pages = max(1, math.ceil(total / per_page))
    page = max(1, min(int(page or 1), pages))
    items = list(db.session.scalars(query.order_by(Issue.number.desc()).offset((page - 1) * per_page).limit(per_page)))
    return Page(items, total, page, pages)


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def members(project: Project) -> list[User]:
    """People who can be assigned or picked for user fields: the project's members."""
    from app.models import ProjectMembership

    users = list(db.session.scalars(select(User).join(ProjectMembership).where(
        ProjectMembership.project_id == project.id).order_by(User.email)))
    return users
