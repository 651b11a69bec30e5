"""Input of the account pages."""

from marshmallow import Schema, fields, validate


class TokenSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=120),
                         error_messages={"required": "Name the token after what uses it."})
    scopes = fields.List(fields.String(), load_default=list)
