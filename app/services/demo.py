"""Demo data: an organization, an admin account and a project from a bundled template."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select

from app.extensions import db
from app.models import Project
from app.services import accounts, projects
from app.services.runtime import seeding

DEMO_ADMIN = "admin@example.com"
DEMO_PROJECT_KEY = "DEMO"


@dataclass(frozen=True)
class DemoResult:
    admin_email: str
    admin_password: str | None  # None when the account already existed: passwords are shown once
    project_key: str
    created_project: bool


def seed_demo() -> DemoResult:
    """Create what is missing of the demo data; running it again changes nothing."""
    password = None
    admin = accounts.find_user(DEMO_ADMIN)
    if admin is None:
        password = secrets.token_urlsafe(12)
        role = "owner" if accounts.installation_is_empty() else "admin"
        admin = accounts.create_user(DEMO_ADMIN, password, role, name="Demo Admin")
    organization_id = admin.membership.organization_id
    exists = db.session.scalar(
        select(Project.id).where(Project.organization_id == organization_id, Project.key == DEMO_PROJECT_KEY)
    )
    if not exists:
        projects.create_project(
            admin, DEMO_PROJECT_KEY, "Demo project",
            "A sample project made from the bug tracking template.", "bug_tracking", seed=seeding.seed_issues_once,
        )
    return DemoResult(DEMO_ADMIN, password, DEMO_PROJECT_KEY, not exists)
