from marshmallow import Schema, fields, validate


class ProjectSchema(Schema):
    key = fields.String(required=True, validate=validate.Length(min=1, max=10), error_messages={"required": "Give the project a key."})
    name = fields.String(required=True, validate=validate.Length(min=1, max=120), error_messages={"required": "Give the project a name."})
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    template = fields.String(required=True, error_messages={"required": "Choose a template."})
    sample_issues = fields.Boolean(load_default=False)


class PersonSchema(Schema):
    identity = fields.String(required=True, validate=validate.Length(min=1, max=254),
                             error_messages={"required": "Say whom."})


class PersonRoleSchema(PersonSchema):
    role = fields.String(required=True, validate=validate.Length(min=1, max=64), error_messages={"required": "Choose a role."})


class AddPersonSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254),
                         error_messages={"required": "Enter an email address, or choose a member of the organization.",
                                         "invalid": "Enter an email address, like ada@example.com."})
    role = fields.String(required=True, validate=validate.Length(min=1, max=64), error_messages={"required": "Choose a role."})
