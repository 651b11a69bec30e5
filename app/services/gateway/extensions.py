"""Extension installations: install from a manifest, credentials, secrets, and what extensions send back
(logs, metrics, notifications; protocol spec §4 and §6).

An installation acts as its own user (`kind="extension"`, no password), a member of its project only, so
everything it does goes through the same services and permission checks as a person, and shows as its own
in the issue history and the audit trail. Its scopes narrow that further.
"""

from __future__ import annotations

import logging
import re
import secrets as random
from dataclasses import dataclass
from typing import Any, Mapping

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.kiket.diagnostics import Diagnostic
from app.kiket.extensions import LEVELS, Manifest, parse_manifest
from app.models import OrganizationMembership, Project, ProjectMembership, User
from app.models.base import utcnow
from app.models.gateway import ApiKey, ExtensionInstallation, ExtensionLog, ExtensionMetric, ExtensionSecret
from app.services import audit, crypto
from app.services.runtime import notifications
from app.services.errors import Conflict, Forbidden, Invalid, NotFound
from app.services.gateway import credentials, targets
from app.services.projects import project_role

log = logging.getLogger(__name__)

SECRET_PURPOSE = "extension secrets"
WEBHOOK_SECRET_PURPOSE = "extension webhook secrets"
MANAGER_ROLES = ("owner", "admin")
SECRET_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
MAX_SECRET_VALUE = 8192
MAX_MANIFEST_BYTES = 64 * 1024
# Each installation keeps its newest log lines and metric points, not an unbounded history.
KEEP_LOGS = 1000
KEEP_METRICS = 5000
BOT_DOMAIN = "extensions.kiket.invalid"


@dataclass(frozen=True)
class Installed:
    """A new installation and its credentials, each shown once."""

    installation: ExtensionInstallation
    api_key: str
    client_id: str
    client_secret: str
    webhook_secret: str
    warnings: tuple[Diagnostic, ...]


@dataclass(frozen=True)
class Rotated:
    installation: ExtensionInstallation
    api_key: str
    client_secret: str


def can_manage(actor: User, project: Project) -> bool:
    return project_role(actor, project) in MANAGER_ROLES


def _require_manage(actor: User, project: Project) -> None:
    if not can_manage(actor, project):
        raise Forbidden("Only project owners and admins can install and manage extensions.")


def get_installation(actor: User, installation_id: int, *, manage: bool = True) -> ExtensionInstallation:
    """An installation of a project the actor may see (strangers: NotFound); `manage` also needs an admin."""
    installation = db.session.get(ExtensionInstallation, installation_id)
    if installation is None or project_role(actor, installation.project) is None:
        raise NotFound(f"No extension installation {installation_id} that you can see.")
    if manage:
        _require_manage(actor, installation.project)
    return installation


def list_installations(actor: User, project: Project | None = None) -> list[ExtensionInstallation]:
    """Installations in the projects the actor may see (or in one of them), oldest first."""
    from app.services.projects import visible_projects

    ids = [project.id] if project is not None else [p.id for p in visible_projects(actor)]
    if project is not None and project_role(actor, project) is None:
        raise NotFound(f"No project {project.key} that you can see.")
    return list(db.session.scalars(select(ExtensionInstallation).where(ExtensionInstallation.project_id.in_(ids))
                                   .order_by(ExtensionInstallation.id))) if ids else []


def manifest_of(installation: ExtensionInstallation) -> Manifest | None:
    """The installation's manifest, parsed again (configuration properties, declared events)."""
    return parse_manifest(installation.manifest_text).manifest


def webhook_secret(installation: ExtensionInstallation) -> str:
    return crypto.decrypt(installation.webhook_secret_encrypted, WEBHOOK_SECRET_PURPOSE)


def _manifest_problems(diagnostics) -> dict[str, list[str]]:
    return {"manifest": [f"{d.prov.location}: {d.message}" + (f" {d.hint}" if d.hint else "") for d in diagnostics]}


def _bot_user(project: Project, manifest: Manifest) -> User:
    """The user the installation acts as: a member of its project only, unable to log in."""
    slug = re.sub(r"[^a-z0-9]+", "-", manifest.id)[:60]
    user = User(email=f"{slug}-{random.token_hex(4)}@{BOT_DOMAIN}", name=f"{manifest.name} (extension)"[:120],
                kind="extension", password_hash="!")
    db.session.add(user)
    db.session.add(OrganizationMembership(organization_id=project.organization_id, user=user, role="member"))
    db.session.add(ProjectMembership(project_id=project.id, user=user, role="member"))
    return user


def _config_values(manifest: Manifest, given: Mapping[str, Any] | None) -> dict[str, Any]:
    known = {p.key: p for p in manifest.properties if not p.secret}
    unknown = sorted(set(given or {}) - set(known))
    if unknown:
        raise Invalid({"config": f"Not configuration properties of {manifest.id}: {', '.join(unknown)}"})
    values = {k: p.default for k, p in known.items() if p.default is not None}
    values.update(dict(given or {}))
    return values


def install(actor: User, project: Project, manifest_text: str, *, url: str | None = None,
            secret: str | None = None, scopes: list[str] | None = None, config: Mapping[str, Any] | None = None,
            secret_values: Mapping[str, str] | None = None) -> Installed:
    """Install an extension in a project from its manifest; the credentials come back once."""
    _require_manage(actor, project)
    if len(manifest_text.encode()) > MAX_MANIFEST_BYTES:
        raise Invalid({"manifest": f"The manifest is larger than {MAX_MANIFEST_BYTES // 1024} KiB."})
    result = parse_manifest(manifest_text)
    if result.manifest is None:
        raise Invalid(_manifest_problems(result.errors))
    manifest = result.manifest
    base_url = (url or manifest.base_url or "").strip().rstrip("/")
    if not base_url:
        raise Invalid({"url": "The manifest has no delivery URL; give the extension's base URL."})
    targets.check(base_url, extension=True, field="url")
    granted = credentials.check_scopes(scopes, allow_all=False) if scopes else list(manifest.scopes)
    secret_values = dict(secret_values or {})
    for key, value in secret_values.items():
        _check_secret(key, value, f"secrets.{key}")
    webhook = (secret or manifest.secret or "").strip() or "whsec_" + random.token_urlsafe(32)
    client_secret = "kiket_cs_" + random.token_urlsafe(32)
    installation = ExtensionInstallation(
        project_id=project.id, extension_id=manifest.id, name=manifest.name[:120], version=manifest.version[:40],
        manifest_text=manifest_text, base_url=base_url, scopes=granted,
        events={e.name: e.version for e in manifest.events} if manifest.declares_events else None,
        webhook_secret_encrypted=crypto.encrypt(webhook, WEBHOOK_SECRET_PURPOSE),
        oauth_client_id="kiket_client_" + random.token_hex(12), oauth_secret_hash=credentials.digest(client_secret),
        config=_config_values(manifest, config), output_fields={}, installed_by_id=actor.id,
    )
    db.session.add(installation)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"{manifest.id} is already installed in {project.key}; rotate or remove it instead.") from None
    bot = _bot_user(project, manifest)
    db.session.flush()
    installation.bot_user_id = bot.id
    _, api_key = credentials.issue_key("extension", bot.id, name=manifest.id, installation_id=installation.id)
    now = utcnow()
    for key, value in secret_values.items():
        db.session.add(ExtensionSecret(installation_id=installation.id, key=key,
                                       value_encrypted=crypto.encrypt(value, SECRET_PURPOSE), created_at=now,
                                       updated_at=now))
    audit.record(project.id, "extension.installed", actor.id, None, {
        "installation": installation.id, "extension": manifest.id, "version": manifest.version,
        "scopes": granted, "url": base_url})
    db.session.commit()
    log.info("extension installed project=%s extension=%s installation=%s", project.key, manifest.id, installation.id)
    warnings = tuple(d for d in result.diagnostics if d.severity not in ("fatal", "error"))
    return Installed(installation, api_key, installation.oauth_client_id, client_secret, webhook, warnings)


def rotate(actor: User, installation_id: int) -> Rotated:
    """New API key and OAuth client secret (the old ones stop working at once)."""
    installation = get_installation(actor, installation_id)
    now = utcnow()
    for key in db.session.scalars(select(ApiKey).where(ApiKey.installation_id == installation.id,
                                                       ApiKey.revoked_at.is_(None))):
        key.revoked_at = now
    _, api_key = credentials.issue_key("extension", installation.bot_user_id, name=installation.extension_id,
                                       installation_id=installation.id)
    client_secret = "kiket_cs_" + random.token_urlsafe(32)
    installation.oauth_secret_hash = credentials.digest(client_secret)
    audit.record(installation.project_id, "extension.rotated", actor.id, None, {"installation": installation.id})
    db.session.commit()
    return Rotated(installation, api_key, client_secret)


def uninstall(actor: User, installation_id: int) -> None:
    """Remove an installation: its keys, secrets, logs and metrics go; its user stays for history, without access."""
    installation = get_installation(actor, installation_id)
    project_id, bot_id = installation.project_id, installation.bot_user_id
    audit.record(project_id, "extension.removed", actor.id, None,
                 {"installation": installation.id, "extension": installation.extension_id})
    if bot_id is not None:
        db.session.execute(delete(ProjectMembership).where(ProjectMembership.user_id == bot_id))
        db.session.execute(delete(OrganizationMembership).where(OrganizationMembership.user_id == bot_id))
    db.session.delete(installation)
    db.session.commit()
    log.info("extension removed installation=%s project=%s", installation_id, project_id)


def update_settings(actor: User, installation_id: int, *, url: str | None = None,
                    config: Mapping[str, Any] | None = None) -> ExtensionInstallation:
    """Change the base URL or the non-secret configuration."""
    installation = get_installation(actor, installation_id)
    if url is not None:
        url = url.strip().rstrip("/")
        targets.check(url, extension=True, field="url")
        installation.base_url = url
    if config is not None:
        manifest = manifest_of(installation)
        installation.config = {**installation.config, **_config_values(manifest, config)}
    db.session.commit()
    return installation


# Secrets (protocol spec §4): the installation's own; values leave only in deliveries and `GET …/{key}`.


def secret_rows(installation: ExtensionInstallation) -> list[ExtensionSecret]:
    return list(db.session.scalars(select(ExtensionSecret).where(ExtensionSecret.installation_id == installation.id)
                                   .order_by(ExtensionSecret.key)))


def secret_values(installation: ExtensionInstallation) -> dict[str, str]:
    return {row.key: crypto.decrypt(row.value_encrypted, SECRET_PURPOSE) for row in secret_rows(installation)}


def get_secret(installation: ExtensionInstallation, key: str) -> tuple[ExtensionSecret, str]:
    row = db.session.scalar(select(ExtensionSecret).where(ExtensionSecret.installation_id == installation.id,
                                                          ExtensionSecret.key == key))
    if row is None:
        raise NotFound(f"No secret {key!r} in this installation.")
    return row, crypto.decrypt(row.value_encrypted, SECRET_PURPOSE)


def set_secret(installation: ExtensionInstallation, key: str, value: str, actor_id: int | None) -> ExtensionSecret:
    _check_secret(key, value)
    row = db.session.scalar(select(ExtensionSecret).where(ExtensionSecret.installation_id == installation.id,
                                                          ExtensionSecret.key == key))
    now = utcnow()
    if row is None:
        row = ExtensionSecret(installation_id=installation.id, key=key, created_at=now)
        db.session.add(row)
    row.value_encrypted, row.updated_at = crypto.encrypt(value, SECRET_PURPOSE), now
    audit.record(installation.project_id, "extension.secret_set", actor_id, None,
                 {"installation": installation.id, "key": key})
    db.session.commit()
    return row


def _check_secret(key: Any, value: Any, field: str | None = None) -> None:
    if not isinstance(key, str) or not SECRET_KEY.match(key):
        raise Invalid({field or "key": "Use letters, digits and _ . - (at most 64)."})
    if not isinstance(value, str) or len(value) > MAX_SECRET_VALUE:
        raise Invalid({field or "value": f"A secret is text of at most {MAX_SECRET_VALUE} characters."})


def delete_secret(installation: ExtensionInstallation, key: str, actor_id: int | None) -> None:
    row, _ = get_secret(installation, key)
    db.session.delete(row)
    audit.record(installation.project_id, "extension.secret_deleted", actor_id, None,
                 {"installation": installation.id, "key": key})
    db.session.commit()


# What extensions send back


def add_log(installation: ExtensionInstallation, message: str, data: Mapping[str, Any] | None = None, *,
            level: str = "info", source: str = "extension", commit: bool = True) -> ExtensionLog:
    level = level if level in ("debug", "info", "warning", "error") else "info"
    row = ExtensionLog(installation_id=installation.id, source=source, level=level, message=message[:4000],
                       data=dict(data or {}))
    db.session.add(row)
    db.session.flush()
    if row.id % 100 == 0:
        _trim(ExtensionLog, installation.id, KEEP_LOGS)
    if commit:
        db.session.commit()
    return row


def add_metric(installation: ExtensionInstallation, name: str, value: float, unit: str = "") -> ExtensionMetric:
    row = ExtensionMetric(installation_id=installation.id, name=name[:100], value=float(value), unit=unit[:32])
    db.session.add(row)
    db.session.flush()
    if row.id % 100 == 0:
        _trim(ExtensionMetric, installation.id, KEEP_METRICS)
    db.session.commit()
    return row


def _trim(model, installation_id: int, keep: int) -> None:
    cutoff = db.session.scalar(select(model.id).where(model.installation_id == installation_id)
                               .order_by(model.id.desc()).offset(keep).limit(1))
    if cutoff is not None:
        db.session.execute(delete(model).where(model.installation_id == installation_id, model.id <= cutoff))


def logs(installation: ExtensionInstallation, limit: int = 100) -> list[ExtensionLog]:
    return list(db.session.scalars(select(ExtensionLog).where(ExtensionLog.installation_id == installation.id)
                                   .order_by(ExtensionLog.id.desc()).limit(limit)))


def metric_summary(installation: ExtensionInstallation) -> list[dict[str, Any]]:
    """Per metric name: count, last value, average, unit."""
    rows = db.session.execute(
        select(ExtensionMetric.name, func.count(), func.avg(ExtensionMetric.value), func.max(ExtensionMetric.id))
        .where(ExtensionMetric.installation_id == installation.id).group_by(ExtensionMetric.name)
        .order_by(ExtensionMetric.name)).all()
    out = []
    for name, count, average, last_id in rows:
        last = db.session.get(ExtensionMetric, last_id)
        out.append({"name": name, "count": count, "average": float(average or 0), "last": last.value,
                    "unit": last.unit, "at": last.created_at})
    return out


def project_admin_ids(project_id: int) -> list[int]:
    """People who own or administer the project (extension users excluded)."""
    project = db.session.get(Project, project_id)
    ids = set(db.session.scalars(select(ProjectMembership.user_id).join(User, User.id == ProjectMembership.user_id)
                                 .where(ProjectMembership.project_id == project_id,
                                        ProjectMembership.role.in_(MANAGER_ROLES), User.kind == "person")))
    ids.update(db.session.scalars(select(OrganizationMembership.user_id).where(
        OrganizationMembership.organization_id == project.organization_id,
        OrganizationMembership.role.in_(MANAGER_ROLES))))
    return sorted(ids)


def notify_admins(installation: ExtensionInstallation, title: str, body: str, level: str = "info",
                  issue_id: int | None = None) -> int:
    """An in-app notification from the extension to the project's owners and admins; how many got it."""
    level = "critical" if level == "error" else level
    if level not in LEVELS:
        raise Invalid({"level": f"must be one of {', '.join(LEVELS)}"})
    message = f"{installation.name}: " + " — ".join(p for p in (title.strip(), body.strip()) if p)
    rows = notifications.notify(project_admin_ids(installation.project_id), installation.project_id, issue_id,
                                message[:2000], level)
    return len(rows)
