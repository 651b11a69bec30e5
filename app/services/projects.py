"""Projects: listing what a user may see, creating from a bundled template, access checks, their counter row."""

from __future__ import annotations

import re
from typing import Callable

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.extensions import db
from app.kiket import bundled
from app.models import Project, ProjectMembership, User
from app.models.issues import ProjectCounter
from app.services.errors import Forbidden, Invalid, NotFound

PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")


def visible_projects(user: User) -> list[Project]:
    """Projects the user may open: all of the organization's for its admins, else their memberships."""
    query = select(Project).order_by(Project.key)
    if user.is_org_admin:
        query = query.where(Project.organization_id == user.membership.organization_id)
    else:
        query = query.join(ProjectMembership).where(ProjectMembership.user_id == user.id)
    return list(db.session.scalars(query))


def project_role(user: User, project: Project) -> str | None:
    """The user's role in the project; organization owners and admins act as project admins."""
    if user.membership is None or user.membership.organization_id != project.organization_id:
        return None
    return role_from_membership(user, project, db.session.scalar(
        select(ProjectMembership.role)
        .where(ProjectMembership.project_id == project.id, ProjectMembership.user_id == user.id)
    ))


def role_from_membership(user: User, project: Project, membership_role: str | None) -> str | None:
    """`project_role` given the user's project membership role (None: no membership row), already loaded."""
    if user.membership is None or user.membership.organization_id != project.organization_id:
        return None
    if membership_role is not None:
        return membership_role
    return "admin" if user.is_org_admin else None


def get_project(user: User, key: str) -> Project:
    """The project with this key, if the user may see it (404 rather than 403 for strangers)."""
    project = db.session.scalar(
        select(Project).where(Project.key == key.upper(), Project.organization_id == user.membership.organization_id)
    ) if user.membership else None
    if project is None or project_role(user, project) is None:
        raise NotFound(f"No project {key!r} that you can see.")
    return project


def create_project(actor: User, key: str, name: str, description: str, template: str,
                   *, seed: Callable[[Project], object] | None = None) -> Project:
    """Create a project from a bundled template; the creator becomes its owner.

    `seed` (the runtime's `seeding.seed_issues_once`, for sample issues) runs in the same transaction once
    the project has its id: the template's seed issues are created with it (spec §5). A repository connected
    later still adds its own seed issues on its first activation (§16).
    """
    if actor.membership is None:
        raise Forbidden("Join an organization first.")
    if actor.org_role not in ("owner", "admin", "member"):
        raise Forbidden("You cannot create projects.")
    key = key.strip().upper()
    problems: dict[str, str] = {}
    if not PROJECT_KEY.match(key):
        problems["key"] = "Use 2 to 10 capital letters or digits, starting with a letter (like ENG or OPS2)."
    elif db.session.scalar(
        select(Project.id).where(Project.organization_id == actor.membership.organization_id, Project.key == key)
    ):
        problems["key"] = f"{key} is already used by another project; pick another key."
    if not name.strip():
        problems["name"] = "Give the project a name."
    if template not in {t.key for t in bundled.list_templates()}:
        problems["template"] = "Choose one of the templates."
    if problems:
        raise Invalid(problems)
    project = Project(
        organization_id=actor.membership.organization_id,
        key=key,
        name=name.strip(),
        description=description.strip(),
        template=template,
        created_by_id=actor.id,
    )
    project.memberships.append(ProjectMembership(user_id=actor.id, role="owner"))
    db.session.add(project)
    if seed is not None:
        db.session.flush()
        seed(project)
    db.session.commit()
    return project


def ensure_counter(project_id: int) -> None:
    """Create the project's counter row (issue numbers, audit sequence) if missing; no-op under a concurrent insert."""
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.session.execute(insert(ProjectCounter).values(project_id=project_id, next_issue_number=1, audit_seq=0)
                       .on_conflict_do_nothing(index_elements=["project_id"]))
