"""SQLAlchemy models; importing this package registers every table."""

from app.models.accounts import Invitation, Organization, OrganizationMembership, User
from app.models.projects import Project, ProjectMembership

__all__ = ["Invitation", "Organization", "OrganizationMembership", "Project", "ProjectMembership", "User"]
