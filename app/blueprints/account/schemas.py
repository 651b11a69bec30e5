"""Input of the account pages."""

from marshmallow import Schema, fields, validate


class TokenSchema(Schema):
    """The scopes are the checked boxes (`scopes`, several); the token service checks them."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=120),
                         error_messages={"required": "Name the token after what uses it."})
