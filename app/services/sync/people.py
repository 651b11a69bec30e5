"""People and access of a project: who is in it and where that comes from, and the changes an admin makes.

Membership follows the configuration's precedence (repository → project overrides → organization defaults →
bundled template): a person the repository's `team.yaml` names is shown read-only with its file and line; one
added, re-roled or removed here is written as an entry of the project overrides' `team.yaml` (the file the
overrides editor edits), so the change is a layer save like any other, with its validation and provenance.
People with a membership row and no entry in any layer (the project's creator, say) are "made here".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from sqlalchemy import func, select

from app.extensions import db
from app.kiket import model as km
from app.kiket.project import BUILTIN_ROLES
from app.models import ConfigLayer, Invitation, OrganizationMembership, Project, ProjectMembership, User
from app.models.base import utcnow
from app.services import accounts
from app.services.errors import Forbidden, Invalid
from app.services.projects import get_project, project_role
from app.services.sync import layers
from app.services.sync.activation import apply_team, project_role_for
from app.services.sync.configuration import project_config, project_scope

MANAGER_ROLES = ("owner", "admin")
SOURCES = ("repository", "project_override", "organization_default", "made_here")
SOURCE_LABELS = {
    "repository": "repository team.yaml",
    "project_override": "project override",
    "organization_default": "organization default",
    "made_here": "made here",
}


@dataclass
class Person:
    """One row of the people page: a person, their roles and what those grant, and where the membership comes from."""

    identity: str
    user: User | None
    roles: tuple[str, ...]
    source: str
    prov: Any = None  # the team entry's Provenance; None when made here
    membership_role: str | None = None
    invited: bool = False
    permissions: frozenset[str] = frozenset()

    @property
    def source_label(self) -> str:
        return SOURCE_LABELS[self.source]

    @property
    def editable(self) -> bool:
        """Role changes are written as project overrides: not over the repository, and an owner stays owner."""
        return self.source != "repository" and self.membership_role != "owner"

    @property
    def removable(self) -> bool:
        return self.source in ("project_override", "made_here") and self.membership_role != "owner"

    @property
    def read_only_reason(self) -> str | None:
        if self.source == "repository":
            return "Defined by the repository: change it in its team.yaml."
        if self.membership_role == "owner":
            return "The project's owner."
        if self.source == "organization_default":
            return "From the organization defaults: change the role here (a project override), remove it there."
        return None


@dataclass
class PeopleOverview:
    people: list[Person]
    roles: list[km.Role]
    assignable: list[str]
    override_path: str | None
    candidates: list[User] = field(default_factory=list)


def can_manage(actor: User, project: Project) -> bool:
    """People and access are for project owners and admins (organization owners and admins act as project admins)."""
    return project_role(actor, project) in MANAGER_ROLES


def managed_project(actor: User, key: str) -> Project:
    """The project whose people the actor may manage: 404 for strangers, 403 for other members."""
    project = get_project(actor, key)
    if not can_manage(actor, project):
        raise Forbidden("Only project owners and admins can see and change who has access.")
    return project


def role_permissions(config: km.ConfigRevision, roles: tuple[str, ...]) -> frozenset[str]:
    """What a set of roles grants in this configuration (built-in grants for roles it does not spell out)."""
    granted: set[str] = set()
    for name in roles:
        role = config.team.roles.get(name)
        if role is not None:
            granted |= role.permissions
        elif name in BUILTIN_ROLES:
            granted |= BUILTIN_ROLES[name][1]
    return frozenset(granted)


def assignable_roles(config: km.ConfigRevision) -> list[str]:
    """Roles a person can be given here: the configuration's, built-in and declared, but never owner."""
    return [name for name in config.team.roles if name != "owner"]


def overview(project: Project) -> PeopleOverview:
    """Everyone in the project, in precedence order, with their roles, grants and sources."""
    config = project_config(project)
    users = {u.email.casefold(): u for u in db.session.scalars(
        select(User).join(OrganizationMembership)
        .where(OrganizationMembership.organization_id == project.organization_id))}
    names = {(u.name or "").casefold(): u for u in users.values() if u.name}
    rows = {m.user_id: m for m in db.session.scalars(
        select(ProjectMembership).where(ProjectMembership.project_id == project.id))}
    invited = {e for (e,) in db.session.execute(select(func.lower(Invitation.email)).where(
        Invitation.organization_id == project.organization_id, Invitation.accepted_at.is_(None),
        Invitation.expires_at > utcnow()))}
    people: list[Person] = []
    seen: set[int] = set()
    for member in config.team.members:
        key = member.identity.strip().casefold()
        user = users.get(key) or names.get(key.lstrip("@"))
        membership = rows.get(user.id) if user is not None else None
        if user is not None:
            seen.add(user.id)
        roles = member.roles + ((membership.role,) if membership is not None and membership.role in MANAGER_ROLES
                                and membership.role not in member.roles else ())
        people.append(Person(identity=member.identity, user=user, roles=roles, source=member.prov.layer,
                             prov=member.prov, membership_role=membership.role if membership else None,
                             invited=user is None and key in invited, permissions=role_permissions(config, roles)))
    for user_id, membership in rows.items():
        if user_id in seen or membership.user.kind != "person":
            continue
        people.append(Person(identity=membership.user.email, user=membership.user, roles=(membership.role,),
                             source="made_here", membership_role=membership.role,
                             permissions=role_permissions(config, (membership.role,))))
    order = {source: index for index, source in enumerate(SOURCES)}
    people.sort(key=lambda p: (order.get(p.source, len(order)), p.identity.casefold()))
    present = {p.user.id for p in people if p.user is not None}
    candidates = sorted((u for u in users.values() if u.id not in present and u.kind == "person"),
                        key=lambda u: u.email)
    return PeopleOverview(people=people, roles=list(config.team.roles.values()), assignable=assignable_roles(config),
                          override_path=_override_row(project).path if _override_row(project) else None,
                          candidates=candidates)


def _person(project: Project, identity: str) -> Person:
    folded = (identity or "").strip().casefold()
    for person in overview(project).people:
        if person.identity.casefold() == folded or (person.user is not None and person.user.email.casefold() == folded):
            return person
    raise Invalid({"identity": f"{identity} is not in this project."})


def _check_role(project: Project, role: str) -> None:
    allowed = assignable_roles(project_config(project))
    if role not in allowed:
        raise Invalid({"role": f"Choose one of the project's roles: {', '.join(allowed)}."})


# --- the overrides' team.yaml ---------------------------------------------------------------------------------

def _override_row(project: Project) -> ConfigLayer | None:
    return db.session.scalar(select(ConfigLayer).where(
        ConfigLayer.scope == project_scope(project.id), ConfigLayer.path.in_(("team.yaml", "team.yml")))
        .order_by(ConfigLayer.path))


def _override_document(row: ConfigLayer | None) -> dict:
    """The overrides' team.yaml as data, refusing shapes this page cannot edit without losing something."""
    if row is None:
        return {"team": {"members": []}}
    try:
        data = yaml.safe_load(row.yaml_text) or {}
    except yaml.YAMLError:
        data = None
    team = data.get("team") if isinstance(data, dict) else None
    team = {} if team is None else team
    if not isinstance(team, dict) or not isinstance(team.get("members", []), list):
        raise Invalid({"identity": f"The overrides' {row.path} is not in a shape this page edits; "
                                   "change it in the overrides editor."})
    data["team"] = team
    team.setdefault("members", [])
    return data


def _entry_identity(entry: Any) -> str:
    if isinstance(entry, dict):
        value = entry.get("user", entry.get("email", entry.get("username")))
        return value.strip().casefold() if isinstance(value, str) else ""
    return entry.strip().casefold() if isinstance(entry, str) else ""


def _write_override(actor: User, project: Project, change) -> None:
    """Apply `change(members)` to the overrides' team.yaml and save it through the layer's own validation."""
    row = _override_row(project)
    data = _override_document(row)
    change(data["team"]["members"])
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None)
    path = row.path if row is not None else "team.yaml"
    result = layers.save_layer_file(actor, path, text, project=project,
                                    expected_version=row.version if row is not None else 0)
    if not result.saved:
        raise Invalid({"identity": "Not saved: " + "; ".join(d["message"] for d in result.diagnostics
                                                            if d["severity"] == "fatal")})


def _set_entry(identity: str, role: str):
    def change(members: list) -> None:
        for index, entry in enumerate(members):
            if _entry_identity(entry) == identity.casefold():
                members[index] = {**(entry if isinstance(entry, dict) else {"user": entry}), "roles": [role]}
                return
        members.append({"user": identity, "roles": [role]})
    return change


def _drop_entry(identity: str):
    def change(members: list) -> None:
        members[:] = [entry for entry in members if _entry_identity(entry) != identity.casefold()]
    return change


def _membership(project: Project, user: User | None) -> ProjectMembership | None:
    if user is None:
        return None
    return db.session.scalar(select(ProjectMembership).where(
        ProjectMembership.project_id == project.id, ProjectMembership.user_id == user.id))


def _settle(project: Project, user: User | None, role: str | None) -> None:
    """The membership row says what was just decided here at once (the team's own apply never lowers an admin)."""
    db.session.expire_all()
    membership = _membership(project, user)
    if role is None:
        if membership is not None and membership.role != "owner":
            db.session.delete(membership)
    elif membership is not None and membership.role != "owner":
        membership.role = project_role_for((role,))
    elif membership is None and user is not None:
        db.session.add(ProjectMembership(project_id=project.id, user_id=user.id, role=project_role_for((role,))))
    db.session.commit()


# --- changes --------------------------------------------------------------------------------------------------

@dataclass
class Added:
    """An addition: the person's row, and the invitation link to send when they have no account (shown once)."""

    identity: str
    user: User | None
    invitation_token: str | None = None
    invitation_waiting: bool = False


def add_person(actor: User, project: Project, email: str, role: str) -> Added:
    """Give an organization member (or an email, invited to the organization) a role in the project."""
    if not can_manage(actor, project):
        raise Forbidden("Only project owners and admins can add people.")
    email = accounts.normalize_email(email or "")
    if "@" not in email:
        raise Invalid({"email": "Enter an email address, or choose a member of the organization."})
    _check_role(project, role)
    for person in overview(project).people:
        if email in (person.identity.casefold(), person.user.email.casefold() if person.user else None):
            where = f" ({person.source_label})" if person.source != "made_here" else ""
            raise Invalid({"email": f"{email} is already in this project{where}; change their role in the list."})
    user = db.session.scalar(select(User).join(OrganizationMembership).where(
        func.lower(User.email) == email, OrganizationMembership.organization_id == project.organization_id))
    if user is None and accounts.find_user(email) is not None:
        raise Invalid({"email": f"{email} has an account outside this organization; they cannot be added."})
    _write_override(actor, project, _set_entry(email, role))
    if user is not None:
        _settle(project, user, role)
        return Added(identity=email, user=user)
    # The layer save left a pending invitation for the email (activation's team rule): a link for it, when the
    # actor may send organization invitations.
    invitation = db.session.scalar(select(Invitation).where(
        Invitation.organization_id == project.organization_id, func.lower(Invitation.email) == email,
        Invitation.accepted_at.is_(None), Invitation.expires_at > utcnow()).order_by(Invitation.id.desc()))
    if invitation is not None and actor.is_org_admin and invitation.role != "admin":
        _, token = accounts.renew_invitation(actor, invitation.id)
        return Added(identity=email, user=None, invitation_token=token)
    return Added(identity=email, user=None, invitation_waiting=invitation is not None)


def change_role(actor: User, project: Project, identity: str, role: str) -> Person:
    """Give a person another role here: written as their project-override entry (which wins over a default)."""
    if not can_manage(actor, project):
        raise Forbidden("Only project owners and admins can change roles.")
    person = _person(project, identity)
    if not person.editable:
        raise Invalid({"identity": person.read_only_reason or "This membership cannot be changed here."})
    _check_role(project, role)
    _write_override(actor, project, _set_entry(person.user.email if person.user else person.identity, role))
    _settle(project, person.user, role)
    return _person(project, identity)


def remove_person(actor: User, project: Project, identity: str) -> None:
    """Take a person out of the project at once: their override entry goes, and their membership with it."""
    if not can_manage(actor, project):
        raise Forbidden("Only project owners and admins can remove people.")
    person = _person(project, identity)
    if not person.removable:
        raise Invalid({"identity": person.read_only_reason or "This membership cannot be removed here."})
    if person.source == "project_override":
        _write_override(actor, project, _drop_entry(person.identity))
    _settle(project, person.user, None)


def apply_configured_team(project: Project) -> None:
    """A new template project takes in the people its configuration's team names (organization defaults)."""
    try:
        team = project_config(project).team
    except Exception:  # a configuration that does not load: its first activation applies the team
        return
    apply_team(project, team)
    db.session.commit()


def join_configured_projects(user: User) -> list[Project]:
    """After an invitation is accepted: the projects whose team names the new member take them in."""
    if user.membership is None:
        return []
    joined = []
    for project in db.session.scalars(select(Project).where(
            Project.organization_id == user.membership.organization_id).order_by(Project.id)):
        try:
            team = project_config(project).team
        except Exception:  # a project whose configuration does not load: left for its next activation
            continue
        if any(m.identity.strip().casefold() == user.email.casefold() for m in team.members):
            apply_team(project, team)
            joined.append(project)
    db.session.commit()
    return joined
