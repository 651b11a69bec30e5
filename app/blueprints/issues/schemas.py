"""Input schemas of the issue pages; custom fields are typed by the issue service, per issue type."""

from marshmallow import Schema, fields, validate


class IssueSchema(Schema):
    issue_type = fields.String(required=True, error_messages={"required": "Choose an issue type."})
    # Blank titles reach the service, which reports them together with the custom field problems.
    title = fields.String(load_default="", validate=validate.Length(max=255))
    description = fields.String(load_default="", validate=validate.Length(max=100_000))
    priority = fields.String(load_default=None)
    assignee_id = fields.Integer(load_default=None, error_messages={"invalid": "Choose a member of the project."})
    labels = fields.String(load_default="", validate=validate.Length(max=1000))
    due_date = fields.Date(load_default=None, error_messages={"invalid": "Use a date like 2026-01-31."})
    parent = fields.Integer(load_default=None, error_messages={"invalid": "Give the parent's issue number."})


class IssueFilterSchema(Schema):
    state = fields.String(load_default=None)
    type = fields.String(load_default=None)
    assignee = fields.String(load_default=None)
    label = fields.String(load_default=None, validate=validate.Length(max=50))
    text = fields.String(load_default=None, validate=validate.Length(max=200))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))


class TransitionSchema(Schema):
    transition = fields.String(load_default=None, validate=validate.Length(max=100))
    target = fields.String(load_default=None, validate=validate.Length(max=64))
    comment = fields.String(load_default=None, validate=validate.Length(max=20_000))
    lock_version = fields.Integer(load_default=None)


class ForceSchema(Schema):
    transition = fields.String(load_default=None, validate=validate.Length(max=100))
    target = fields.String(load_default=None, validate=validate.Length(max=64))
    reason = fields.String(required=True, validate=validate.Length(max=20_000),
                           error_messages={"required": "Say why this transition is forced."})
    lock_version = fields.Integer(load_default=None)


class CommentSchema(Schema):
    body = fields.String(required=True, validate=validate.Length(max=20_000), error_messages={"required": "Write something first."})


class ApprovalSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(["approved", "denied"]),
                             error_messages={"required": "Choose approve or deny."})
    reason = fields.String(load_default=None, validate=validate.Length(max=20_000))


class ChecklistTickSchema(Schema):
    checked = fields.Boolean(load_default=False, truthy={"on", "true", "1"}, falsy={"off", "false", "0", ""})


class WatchSchema(Schema):
    watching = fields.Boolean(required=True, truthy={"on", "true", "1"}, falsy={"off", "false", "0"})
