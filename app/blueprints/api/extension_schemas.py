"""Schemas of the extension endpoints: installations, the OAuth token endpoint and JWKS (their RFCs' own
names), and the callbacks whose shapes the official SDKs send and parse (protocol spec §4, snake_case)."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from app.kiket.extensions import LEVELS, SCOPES
from app.services.gateway.representations import CamelSchema, UserRefSchema


# Extensions


class InstallationSchema(CamelSchema):
    id = fields.Integer(required=True)
    extension_id = fields.String(required=True)
    name = fields.String(required=True)
    version = fields.String(required=True)
    project_key = fields.String(required=True)
    url = fields.String(required=True)
    scopes = fields.List(fields.String(), required=True)
    events = fields.Dict(keys=fields.String(), values=fields.String(), required=True, allow_none=True,
                         metadata={"description": "Event → version; null = every event in v1"})
    client_id = fields.String(required=True)
    user = fields.Nested(UserRefSchema, required=True, allow_none=True)
    config = fields.Dict(required=True)
    output_fields = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    created_at = fields.DateTime(required=True)


class InstallSchema(CamelSchema):
    project_key = fields.String(required=True, validate=validate.Length(min=1, max=10))
    manifest = fields.String(required=True, validate=validate.Length(min=1, max=65_536),
                             metadata={"description": "The manifest as YAML text (extension.yaml)"})
    url = fields.String(load_default=None, validate=validate.Length(min=1, max=500),
                        metadata={"description": "The extension's base URL, when the manifest has none"})
    secret = fields.String(load_default=None, validate=validate.Length(min=16, max=200),
                           metadata={"description": "Webhook signing secret; generated when absent"})
    scopes = fields.List(fields.String(validate=validate.OneOf(list(SCOPES))), load_default=None,
                         metadata={"description": "Scopes to grant instead of the manifest's"})
    config = fields.Dict(keys=fields.String(), load_default=None)
    secrets = fields.Dict(keys=fields.String(), values=fields.String(), load_default=None)


class ManifestWarningSchema(CamelSchema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    line = fields.Integer(required=True, allow_none=True)


class InstalledSchema(CamelSchema):
    installation = fields.Nested(InstallationSchema, required=True)
    api_key = fields.String(required=True, metadata={"description": "Shown once"})
    client_id = fields.String(required=True)
    client_secret = fields.String(required=True, metadata={"description": "Shown once"})
    webhook_secret = fields.String(required=True, metadata={"description": "Shown once"})
    warnings = fields.List(fields.Nested(ManifestWarningSchema), required=True)


class RotatedSchema(CamelSchema):
    installation = fields.Nested(InstallationSchema, required=True)
    api_key = fields.String(required=True)
    client_secret = fields.String(required=True)


# OAuth and JWKS (their RFCs' own field names)


class TokenRequestSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    grant_type = fields.String(required=True, validate=validate.Equal("client_credentials",
                                                                      error="Only client_credentials is supported."))
    client_id = fields.String(load_default=None, validate=validate.Length(max=100))
    client_secret = fields.String(load_default=None, validate=validate.Length(max=200))
    scope = fields.String(load_default=None, validate=validate.Length(max=1000))


class TokenSchema(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True)
    scope = fields.String(required=True)


class JwkSchema(Schema):
    kty = fields.String(required=True)
    crv = fields.String(required=True)
    x = fields.String(required=True)
    y = fields.String(required=True)
    kid = fields.String(required=True)
    use = fields.String(required=True)
    alg = fields.String(required=True)


class JwksSchema(Schema):
    keys = fields.List(fields.Nested(JwkSchema), required=True)


# Extension callbacks: the shapes the official SDKs send and parse (protocol spec §4).


class RateLimitValuesSchema(Schema):
    limit = fields.Integer(required=True)
    remaining = fields.Integer(required=True)
    window_seconds = fields.Integer(required=True)
    reset_in = fields.Integer(required=True)


class RateLimitSchema(Schema):
    rate_limit = fields.Nested(RateLimitValuesSchema, required=True)


class ExtLogSchema(Schema):
    message = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    metadata = fields.Dict(load_default=dict)
    level = fields.String(load_default="info", validate=validate.OneOf(["debug", "info", "warning", "error"]))


class ExtMetricSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    value = fields.Float(required=True, allow_nan=False)
    unit = fields.String(load_default="", validate=validate.Length(max=32))
    tags = fields.Dict(load_default=dict)


class ExtNotificationSchema(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    body = fields.String(load_default="", validate=validate.Length(max=2000))
    level = fields.String(load_default="info", validate=validate.OneOf([*LEVELS, "error"]))


class AcceptedSchema(Schema):
    id = fields.Integer(required=True)


class NotifiedSchema(Schema):
    notified = fields.Integer(required=True)


class SecretEntrySchema(Schema):
    key = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class SecretValueSchema(SecretEntrySchema):
    value = fields.String(required=True)


class SecretWriteInner(Schema):
    key = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"))
    value = fields.String(required=True, validate=validate.Length(max=8192))


class SecretWriteSchema(Schema):
    secret = fields.Nested(SecretWriteInner, required=True)


class TelemetrySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    event = fields.String(load_default=None)
    duration_ms = fields.Float(load_default=None, allow_nan=False)
    status = fields.String(load_default=None)
