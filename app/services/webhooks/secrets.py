"""Project secrets: the values `${env.NAME}` reads in webhook url, headers and body (spec §12)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from app.extensions import db
from app.kiket.secret_usage import SIGNING_SECRETS, secret_usage
from app.models import Project, User
from app.models.audit import ProjectSecret, SECRET_NAME_PATTERN
from app.services import audit, crypto
from app.services.errors import Forbidden, Invalid, NotFound
from app.services.projects import get_project, project_role
from app.services.sync import configuration

log = logging.getLogger(__name__)

PURPOSE = "project secrets"
MAX_VALUE_LENGTH = 8192
_NAME = re.compile(SECRET_NAME_PATTERN)
MANAGER_ROLES = ("owner", "admin")


@dataclass(frozen=True)
class SecretEntry:
    """What the secrets page shows of one secret: never its value."""

    name: str
    updated_at: datetime
    updated_by: str | None
    used_by: tuple[str, ...]
    signs_webhooks: bool


@dataclass(frozen=True)
class SecretsOverview:
    """The project's secrets, the names its configuration reads but nobody set, and unsigned webhooks."""

    secrets: list[SecretEntry]
    missing: dict[str, tuple[str, ...]]
    unsigned_webhooks: tuple[str, ...]


def can_manage(actor: User, project: Project) -> bool:
    """Secrets are for project owners and admins (organization owners and admins act as project admins)."""
    return project_role(actor, project) in MANAGER_ROLES


def managed_project(actor: User, key: str) -> Project:
    """The project whose secrets the actor may manage: 404 for strangers, 403 for other members."""
    project = get_project(actor, key)
    if not can_manage(actor, project):
        raise Forbidden("Only project owners and admins can see and change its secrets.")
    return project


def overview(project: Project) -> SecretsOverview:
    """Secret names with who set them last, and where the active configuration's webhooks read them."""
    usage = secret_usage(configuration.project_config(project))
    rows = db.session.execute(
        select(ProjectSecret.name, ProjectSecret.updated_at, User.name.label("user_name"), User.email)
        .outerjoin(User, User.id == ProjectSecret.updated_by_id)
        .where(ProjectSecret.project_id == project.id).order_by(ProjectSecret.name)
    ).all()
    names = {row.name for row in rows}
    signing = next((name for name in SIGNING_SECRETS if name in names), None)
    entries = [SecretEntry(row.name, row.updated_at, row.user_name or row.email, usage.references.get(row.name, ()),
                           row.name == signing and bool(usage.webhooks)) for row in rows]
    missing = {name: places for name, places in usage.references.items() if name not in names}
    return SecretsOverview(entries, missing, usage.webhooks if signing is None else ())


def set_secret(project_id: int, name: str, value: str, actor_id: int | None) -> bool:
    """Create or replace a secret (True when created); the audit trail records the name, never the value."""
    problems = {}
    if not _NAME.match(name or ""):
        problems["name"] = ("Use upper-case letters A-Z, digits and _, starting with a letter, "
                            "at most 64 characters (like WEBHOOK_SECRET).")
    if not value or len(value) > MAX_VALUE_LENGTH:
        problems["value"] = f"Enter a value of 1 to {MAX_VALUE_LENGTH} characters."
    if problems:
        raise Invalid(problems)
    row = _find(project_id, name)
    created = row is None
    if created:
        row = ProjectSecret(project_id=project_id, name=name)
        db.session.add(row)
    row.value_encrypted = crypto.encrypt(value, PURPOSE)
    row.updated_by_id = actor_id
    audit.record(project_id, "secret.set", actor_id, None, {"name": name, "created": created})
    db.session.commit()
    log.info("secret %s %s project=%s", name, "created" if created else "replaced", project_id)
    return created


def list_names(project_id: int) -> list[str]:
    """The project's secret names, sorted; values never leave this module except through `secrets_for`."""
    return list(db.session.execute(
        select(ProjectSecret.name).where(ProjectSecret.project_id == project_id).order_by(ProjectSecret.name)
    ).scalars())


def delete_secret(project_id: int, name: str, actor_id: int | None) -> None:
    """Remove a secret."""
    row = _find(project_id, name)
    if row is None:
        raise NotFound(f"no secret {name!r}")
    db.session.delete(row)
    audit.record(project_id, "secret.deleted", actor_id, None, {"name": name})
    db.session.commit()
    log.info("secret %s deleted project=%s", name, project_id)


def secrets_for(project_id: int) -> dict[str, str]:
    """Every secret of the project, decrypted, for rendering a webhook (and for redacting its log)."""
    rows = db.session.execute(select(ProjectSecret).where(ProjectSecret.project_id == project_id)).scalars()
    values = {}
    for row in rows:
        try:
            values[row.name] = crypto.decrypt(row.value_encrypted, PURPOSE)
        except crypto.InvalidToken:
            log.warning("secret %s of project %s cannot be decrypted (SECRET_KEY changed?)", row.name, project_id)
    return values


def _find(project_id: int, name: str) -> ProjectSecret | None:
    return db.session.execute(
        select(ProjectSecret).where(ProjectSecret.project_id == project_id, ProjectSecret.name == name)
    ).scalars().first()
