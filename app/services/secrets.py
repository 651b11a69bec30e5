"""Project secrets: the values `${env.NAME}` reads in webhook url, headers and body (spec §12)."""

from __future__ import annotations

import logging
import re

from sqlalchemy import select

from app.extensions import db
from app.models.audit import SECRET_NAME_PATTERN, ProjectSecret
from app.services import audit, crypto
from app.services.errors import Invalid, NotFound

log = logging.getLogger(__name__)

PURPOSE = "project secrets"
MAX_VALUE_LENGTH = 8192
_NAME = re.compile(SECRET_NAME_PATTERN)


def set_secret(project_id: int, name: str, value: str, actor_id: int | None) -> None:
    """Create or replace a secret; the audit trail records the name, never the value."""
    if not _NAME.match(name or ""):
        raise Invalid({"name": "use A-Z, 0-9 and _, starting with a letter, at most 64 characters"})
    if not value or len(value) > MAX_VALUE_LENGTH:
        raise Invalid({"value": f"must be 1 to {MAX_VALUE_LENGTH} characters"})
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
