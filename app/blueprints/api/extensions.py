"""Extension installations, the OAuth token endpoint, the JWKS, and the callbacks the official SDKs make
(protocol spec §4: their request and response shapes, snake_case)."""

from __future__ import annotations

import base64
import binascii

from flask import current_app, request
from sqlalchemy import select

from app.models.gateway import ExtensionInstallation
from app.models.webhooks import WebhookDelivery
from app.queue import redis_connection
from app.services import ratelimits
from app.services.errors import NotFound
from app.services.gateway import extensions, tokens
from app.services.gateway.credentials import Credential
from app.services.gateway.representations import user_ref

from . import extension_schemas as es, schemas as s
from .core import RATE_WINDOW_S, endpoint, page_of, problem
from .paging import listing_page, query_page
from .projects import project_for
from .webhooks import delivery_values

EXTENSIONS, CALLBACKS, AUTH = "Extensions", "Extension callbacks", "Authentication"


def installation_values(installation: ExtensionInstallation) -> dict:
    return {"id": installation.id, "extension_id": installation.extension_id, "name": installation.name,
            "version": installation.version, "project_key": installation.project.key, "url": installation.base_url,
            "scopes": list(installation.scopes), "events": installation.events,
            "client_id": installation.oauth_client_id, "user": user_ref(installation.bot_user),
            "config": dict(installation.config or {}), "output_fields": dict(installation.output_fields or {}),
            "created_at": installation.created_at}


def _installation_for(cred: Credential, installation_id: int) -> ExtensionInstallation:
    installation = extensions.get_installation(cred.user, installation_id)
    if cred.project_id is not None and installation.project_id != cred.project_id:
        raise NotFound(f"No extension installation {installation_id} that you can see.")
    return installation


@endpoint("/api/v1/extensions", "GET", summary="List extension installations", tags=EXTENSIONS,
          scope="extensions:manage", query=s.ProjectFilterQuery, response=page_of(es.InstallationSchema),
          errors=(400,))
def list_extensions(cred: Credential, query: dict):
    project = project_for(cred, query["project_key"]) if query["project_key"] else None
    rows = [i for i in extensions.list_installations(cred.user, project)
            if cred.project_id is None or i.project_id == cred.project_id]
    return listing_page("extensions", query, sorted(rows, key=lambda r: -r.id), installation_values)


@endpoint("/api/v1/extensions", "POST", summary="Install an extension from its manifest", tags=EXTENSIONS,
          scope="extensions:manage", body=es.InstallSchema, response=es.InstalledSchema, status=201, errors=(409,))
def install_extension(cred: Credential, data: dict):
    """`manifest` is the extension.yaml text (docs or SDK shape); its key, OAuth client secret and webhook
    secret are in the response, once."""
    project = project_for(cred, data["project_key"])
    done = extensions.install(cred.user, project, data["manifest"], url=data["url"], secret=data["secret"],
                              scopes=data["scopes"], config=data["config"], secret_values=data["secrets"])
    return {"installation": installation_values(done.installation), "api_key": done.api_key,
            "client_id": done.client_id, "client_secret": done.client_secret, "webhook_secret": done.webhook_secret,
            "warnings": [{"code": w.code, "message": w.message, "line": w.prov.line} for w in done.warnings]}, 201, \
        {"Location": f"/api/v1/extensions/{done.installation.id}"}


@endpoint("/api/v1/extensions/<int:installation_id>/rotate", "POST", summary="Rotate an installation's key",
          tags=EXTENSIONS, scope="extensions:manage", response=es.RotatedSchema)
def rotate_extension(cred: Credential, installation_id: int):
    """A new API key and OAuth client secret; the old ones stop working at once."""
    _installation_for(cred, installation_id)
    done = extensions.rotate(cred.user, installation_id)
    return {"installation": installation_values(done.installation), "api_key": done.api_key,
            "client_secret": done.client_secret}


@endpoint("/api/v1/extensions/<int:installation_id>", "DELETE", summary="Remove an installation", tags=EXTENSIONS,
          scope="extensions:manage", status=204)
def delete_extension(cred: Credential, installation_id: int):
    """Its credentials stop working; its comments and history stay, under its name."""
    _installation_for(cred, installation_id)
    extensions.uninstall(cred.user, installation_id)
    return None, 204, {}


@endpoint("/api/v1/extensions/<int:installation_id>/deliveries", "GET", summary="Deliveries to an installation",
          tags=EXTENSIONS, scope="extensions:manage", query=s.ProjectFilterQuery, response=page_of(s.DeliverySchema),
          errors=(400,))
def list_extension_deliveries(cred: Credential, query: dict, installation_id: int):
    installation = _installation_for(cred, installation_id)
    statement = select(WebhookDelivery).where(WebhookDelivery.installation_id == installation.id)
    return query_page(f"deliveries:i{installation.id}", query, statement, WebhookDelivery.id, delivery_values)


# OAuth 2.0 client credentials and the JWKS


def _basic_client() -> tuple[str | None, str | None]:
    header = request.headers.get("Authorization", "")
    if header[:6].lower() != "basic ":
        return None, None
    try:
        client_id, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return client_id, secret


@endpoint("/api/v1/oauth/token", "POST", summary="OAuth 2.0 client credentials", tags=AUTH, public=True,
          body=es.TokenRequestSchema, form=True, oauth=True, response=es.TokenSchema, errors=(401,))
def oauth_token(cred: Credential | None, data: dict):
    """RFC 6749 §4.4, form-encoded: `grant_type=client_credentials` with the installation's client id and
    secret (in the body or HTTP Basic). The token is a runtime token with `src: oauth`, for 15 minutes."""
    client_id, client_secret = _basic_client()
    access, scopes = tokens.grant_client_credentials(client_id or data["client_id"],
                                                     client_secret or data["client_secret"], data["scope"])
    return {"access_token": access, "token_type": "Bearer", "expires_in": tokens.TTL_S, "scope": " ".join(scopes)}, \
        200, {"Cache-Control": "no-store", "Pragma": "no-cache"}


@endpoint("/.well-known/jwks.json", "GET", summary="Keys that sign runtime tokens", tags=AUTH, public=True,
          response=es.JwksSchema)
def jwks(cred: Credential | None):
    """The current and the previous ES256 key (JWK Set, RFC 7517); extensions verify runtime tokens with them."""
    return tokens.jwks(), 200, {"Cache-Control": "public, max-age=300"}


# Callbacks (the official SDKs' shapes)


@endpoint("/api/v1/ext/rate_limit", "GET", summary="The extension's rate limit", tags=CALLBACKS,
          extension_only=True, response=es.RateLimitSchema)
def ext_rate_limit(cred: Credential):
    window = ratelimits.peek(redis_connection(), f"api:{cred.name}", current_app.config["KIKET_API_RATE_LIMIT"],
                             RATE_WINDOW_S)
    return {"rate_limit": {"limit": window.limit, "remaining": window.remaining, "window_seconds": window.window_s,
                           "reset_in": window.reset_in}}


@endpoint("/api/v1/extensions/logs", "POST", summary="Write to the installation's log", tags=CALLBACKS,
          extension_only=True, body=es.ExtLogSchema, response=es.AcceptedSchema, status=201)
def ext_log(cred: Credential, data: dict):
    metadata = data["metadata"] or {}
    level = str(metadata.get("level") or data["level"])
    row = extensions.add_log(cred.installation, data["message"], metadata, level=level)
    return {"id": row.id}, 201


@endpoint("/api/v1/extensions/metrics", "POST", summary="Record a metric point", tags=CALLBACKS,
          extension_only=True, body=es.ExtMetricSchema, response=es.AcceptedSchema, status=201)
def ext_metric(cred: Credential, data: dict):
    row = extensions.add_metric(cred.installation, data["name"], data["value"], data["unit"])
    return {"id": row.id}, 201


@endpoint("/api/v1/extensions/notifications", "POST", summary="Notify the project's admins", tags=CALLBACKS,
          extension_only=True, scope="notifications:write", body=es.ExtNotificationSchema, response=es.NotifiedSchema,
          status=201)
def ext_notify(cred: Credential, data: dict):
    count = extensions.notify_admins(cred.installation, data["title"], data["body"], data["level"])
    return {"notified": count}, 201


def _own(cred: Credential, extension_id: str) -> ExtensionInstallation:
    if cred.installation.extension_id != extension_id:
        raise NotFound(f"No extension {extension_id!r} for this credential.")
    return cred.installation


@endpoint("/api/v1/extensions/<extension_id>/secrets", "GET", summary="The installation's secret names",
          tags=CALLBACKS, extension_only=True, response=es.SecretEntrySchema, many=True)
def ext_list_secrets(cred: Credential, extension_id: str):
    """A JSON list of `{key, created_at, updated_at}`; never values."""
    return extensions.secret_rows(_own(cred, extension_id))


@endpoint("/api/v1/extensions/<extension_id>/secrets/<secret_key>", "GET", summary="One secret", tags=CALLBACKS,
          extension_only=True, response=es.SecretValueSchema)
def ext_get_secret(cred: Credential, extension_id: str, secret_key: str):
    row, value = extensions.get_secret(_own(cred, extension_id), secret_key)
    return {"key": row.key, "value": value, "created_at": row.created_at, "updated_at": row.updated_at}


@endpoint("/api/v1/extensions/<extension_id>/secrets", "POST", summary="Set a secret", tags=CALLBACKS,
          extension_only=True, body=es.SecretWriteSchema, response=es.SecretEntrySchema, status=201)
def ext_set_secret(cred: Credential, data: dict, extension_id: str):
    installation = _own(cred, extension_id)
    return extensions.set_secret(installation, data["secret"]["key"], data["secret"]["value"], cred.user.id), 201


@endpoint("/api/v1/extensions/<extension_id>/secrets/<secret_key>", "DELETE", summary="Delete a secret",
          tags=CALLBACKS, extension_only=True, status=204)
def ext_delete_secret(cred: Credential, extension_id: str, secret_key: str):
    extensions.delete_secret(_own(cred, extension_id), secret_key, cred.user.id)
    return None, 204, {}


@endpoint("/api/v1/ext/telemetry", "POST", summary="Handler telemetry (best effort)", tags=CALLBACKS,
          extension_only=True, body=es.TelemetrySchema, status=202)
def ext_telemetry(cred: Credential, data: dict):
    """Kept as a debug line of the installation's log; may be dropped."""
    extensions.add_log(cred.installation, f"telemetry {data.get('event') or ''}".strip(),
                       {k: v for k, v in data.items() if v is not None}, level="debug", source="telemetry")
    return None, 202, {}


def ext_unsupported(cred: Credential, feature: str):
    """Custom data modules, SLA event streams, intake forms…: 404 naming the feature."""
    name = feature.split("/", 1)[0]
    return problem(404, "Not supported", f"This Kiket server does not support the `{name}` feature.")


for _method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
    endpoint("/api/v1/ext/<path:feature>", _method, summary="SDK features this server does not have",
             tags=CALLBACKS, extension_only=True, hidden=True, name=f"ext_unsupported_{_method.lower()}")(
        ext_unsupported)
