"""Who may do what in a project: the runtime's actor for a user, and the permission checks."""

from __future__ import annotations

from app.kiket import model as km
from app.kiket.runtime.snapshot import Actor
from app.models import Project, User
from app.services.errors import Forbidden, NotFound
from app.services.projects import project_role
from app.services.sync import configuration

# Built-in role grants (spec §6), used when a configuration does not spell them out.
BUILTIN_PERMISSIONS = {
    "owner": frozenset({"*"}),
    "admin": frozenset({"*"}),
    "member": frozenset({"project.read", "board.read", "issue.read", "issue.create", "issue.update",
                         "issue.transition", "issue.assign", "issue.comment", "issue.approve"}),
    "viewer": frozenset({"project.read", "issue.read", "board.read"}),
}


def project_user_role(user: User, project: Project) -> str:
    """The user's project role; strangers get NotFound (not Forbidden), as `get_project` does."""
    role = project_role(user, project) if user is not None else None
    if role is None:
        raise NotFound("No such issue that you can see.")
    return role


def runtime_actor(user: User, project: Project, config: km.ConfigRevision, *, role: str | None = None) -> Actor:
    """The runtime's view of a user: membership role plus team.yaml roles, and their permissions.

    `role` is the project role when the caller has already looked it up (`project_user_role`).
    """
    roles = {role or project_user_role(user, project)}
    email = user.email.casefold()
    for member in config.team.members:
        if member.identity.lstrip("@").casefold() in (email, (user.name or "").casefold()):
            roles.update(member.roles)
    permissions: set[str] = set()
    for name in roles:
        role = config.team.roles.get(name)
        if role is not None:
            permissions |= role.permissions
        else:
            permissions |= BUILTIN_PERMISSIONS.get(name, frozenset())
    return Actor(identity=user.email, roles=frozenset(roles), permissions=frozenset(permissions),
                 org_admin=is_org_admin(user, project))


def is_org_admin(user: User | None, project: Project) -> bool:
    """An owner or admin of the project's organization: stands in for roles nobody can hold, may force (§16)."""
    membership = user.membership if user is not None else None
    return membership is not None and membership.role in ("owner", "admin") and \
        membership.organization_id == project.organization_id


AUTOMATION_ACTOR = Actor(identity="automation", roles=frozenset(), permissions=frozenset({"*"}), is_automation=True)


def require(actor: Actor, permission: str, what: str) -> None:
    """Raise Forbidden unless the actor holds `permission`."""
    if not actor.can(permission):
        raise Forbidden(f"You cannot {what} in this project (needs {permission}).")


def require_project_permission(actor: User, project: Project, permission: str, what: str) -> None:
    """Forbidden unless the actor holds `permission` in the project (strangers: NotFound)."""
    require(runtime_actor(actor, project, configuration.project_config(project)), permission, what)
