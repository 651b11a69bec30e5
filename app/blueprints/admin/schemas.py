from marshmallow import Schema, fields, validate


class InvitationSchema(Schema):
    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=254))
    role = fields.String(load_default="member", validate=validate.OneOf(["member", "admin"]))
