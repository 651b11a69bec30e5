"""Input of the extension pages."""

from marshmallow import Schema, fields, validate


class InstallSchema(Schema):
    manifest = fields.String(required=True, validate=validate.Length(min=1, max=65_536),
                             error_messages={"required": "Paste the extension's manifest (extension.yaml)."})
    url = fields.String(load_default=None, validate=validate.Length(max=500))
    secret = fields.String(load_default=None, validate=validate.Length(min=16, max=200))


class SettingsSchema(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=500))


class SecretSchema(Schema):
    key = fields.String(required=True, validate=validate.Length(min=1, max=64))
    value = fields.String(required=True, validate=validate.Length(max=8192))


class SubscriptionSchema(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=500),
                        error_messages={"required": "Give the URL that receives the events."})
    events = fields.List(fields.String(validate=validate.Length(max=64)), load_default=list)
    secret = fields.String(load_default=None, validate=validate.Length(max=200))
