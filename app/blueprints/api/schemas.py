"""Input and output schemas of `/api/v1` (camelCase on the wire; the extension callbacks keep the SDKs'
snake_case). The OpenAPI document is generated from these."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate

from app.kiket.extensions import EVENT_TYPES
from app.services.gateway.representations import CamelSchema, IssueSchema, UserRefSchema

__all__ = ["IssueSchema", "UserRefSchema"]

KEY = validate.Regexp(r"^[A-Za-z][A-Za-z0-9]{1,9}$", error="Use 2 to 10 letters or digits, starting with a letter.")


class ProblemSchema(Schema):
    """RFC 7807 problem details (extension members allowed)."""

    class Meta:
        unknown = INCLUDE

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"description": "Per-field messages (422)"})
    gates = fields.List(fields.Dict(), metadata={"description": "Every gate's verdict (a blocked transition)"})
    missingScope = fields.String(metadata={"description": "The scope the credential lacks (403)"})
    error = fields.String(metadata={"description": "RFC 6749 error code (the OAuth token endpoint)"})
    error_description = fields.String(metadata={"description": "RFC 6749 error description"})


class ProvenanceSchema(CamelSchema):
    layer = fields.String(required=True)
    repo = fields.String(allow_none=True)
    branch = fields.String(allow_none=True)
    commit_sha = fields.String(allow_none=True)
    path = fields.String(allow_none=True)
    line = fields.Integer(allow_none=True)


# Projects


class ProjectSchema(CamelSchema):
    key = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    template = fields.String(required=True)
    role = fields.String(required=True, allow_none=True, metadata={"description": "The credential's project role"})
    created_at = fields.DateTime(required=True)


class ProjectCreateSchema(CamelSchema):
    key = fields.String(required=True, validate=KEY)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    template = fields.String(load_default="kanban", validate=validate.Length(max=40))
    description = fields.String(load_default="", validate=validate.Length(max=10_000))


# Repositories and sync


class RepositorySchema(CamelSchema):
    id = fields.Integer(required=True)
    project_key = fields.String(required=True)
    url = fields.String(required=True)
    branch = fields.String(required=True)
    path = fields.String(required=True)
    active_revision_id = fields.Integer(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    webhook_secret = fields.String(metadata={"description": "Returned once, on creation: the push webhook's secret"})


class RepositoryCreateSchema(CamelSchema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=500))
    branch = fields.String(load_default="main", validate=validate.Length(min=1, max=255))
    path = fields.String(load_default=".kiket", validate=validate.Length(min=1, max=255))
    token = fields.String(load_default=None, validate=validate.Length(max=500),
                          metadata={"description": "Access token for a private remote (stored encrypted)"})


class BranchesSchema(CamelSchema):
    branches = fields.List(fields.String(), required=True)


class SyncRequestSchema(CamelSchema):
    branch = fields.String(load_default=None, validate=validate.Length(min=1, max=255))


class CommitSchema(CamelSchema):
    sha = fields.String(required=True)
    author = fields.String(allow_none=True)
    message = fields.String(allow_none=True)


class DiagnosticSchema(CamelSchema):
    code = fields.String(required=True)
    severity = fields.String(required=True)
    message = fields.String(required=True)
    hint = fields.String()
    path = fields.String(allow_none=True)
    line = fields.Integer(allow_none=True)
    column = fields.Integer(allow_none=True)


class SyncRunSchema(CamelSchema):
    id = fields.Integer(required=True)
    repository_id = fields.Integer(required=True)
    branch = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["queued", "running", "succeeded", "failed"]))
    phase = fields.String(required=True, metadata={"description": "The run's detailed status (fetching, loading, …)"})
    trigger = fields.String(required=True)
    commit = fields.Nested(CommitSchema, required=True, allow_none=True)
    timings = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                          metadata={"description": "Milliseconds per phase"})
    diagnostics = fields.List(fields.Nested(DiagnosticSchema), required=True)
    error = fields.String(required=True, allow_none=True)
    revision_id = fields.Integer(required=True, allow_none=True)
    enqueued_at = fields.DateTime(required=True)
    started_at = fields.DateTime(required=True, allow_none=True)
    finished_at = fields.DateTime(required=True, allow_none=True)


# Configuration


class StateSchema(CamelSchema):
    key = fields.String(required=True)
    label = fields.String(required=True)
    kind = fields.String(required=True)
    category = fields.String(required=True)
    provenance = fields.Nested(ProvenanceSchema, required=True)


class WorkflowTransitionSchema(CamelSchema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    from_ = fields.Raw(required=True, data_key="from", metadata={"description": "Source states, or \"*\""})
    to = fields.String(required=True)
    provenance = fields.Nested(ProvenanceSchema, required=True)


class WorkflowSchema(CamelSchema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    version = fields.String(required=True)
    initial = fields.String(required=True)
    finals = fields.List(fields.String(), required=True)
    states = fields.List(fields.Nested(StateSchema), required=True)
    transitions = fields.List(fields.Nested(WorkflowTransitionSchema), required=True)
    provenance = fields.Nested(ProvenanceSchema, required=True)


class WorkflowListSchema(CamelSchema):
    revision_id = fields.Integer(required=True, allow_none=True)
    commit_sha = fields.String(required=True, allow_none=True)
    items = fields.List(fields.Nested(WorkflowSchema), required=True)


class BoardColumnSummarySchema(CamelSchema):
    key = fields.String(required=True)
    name = fields.String(required=True)
    states = fields.List(fields.String(), required=True)
    wip_limit = fields.Integer(required=True, allow_none=True)


class BoardSummarySchema(CamelSchema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    workflow = fields.String(required=True)
    columns = fields.List(fields.Nested(BoardColumnSummarySchema), required=True)
    provenance = fields.Nested(ProvenanceSchema, required=True)


class BoardListSchema(CamelSchema):
    items = fields.List(fields.Nested(BoardSummarySchema), required=True)


class CardSchema(CamelSchema):
    key = fields.String(required=True)
    title = fields.String(required=True)
    state = fields.String(required=True)
    issue_type = fields.String(required=True)
    priority = fields.String(required=True, allow_none=True)
    assignee = fields.String(required=True, allow_none=True)
    labels = fields.List(fields.String(), required=True)


class BoardColumnSchema(CamelSchema):
    key = fields.String(required=True)
    name = fields.String(required=True)
    states = fields.List(fields.String(), required=True)
    wip_limit = fields.Integer(required=True, allow_none=True)
    count = fields.Integer(required=True)
    cards = fields.List(fields.Nested(CardSchema), required=True)


class BoardSchema(CamelSchema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    workflow = fields.String(required=True)
    columns = fields.List(fields.Nested(BoardColumnSchema), required=True)
    provenance = fields.Nested(ProvenanceSchema, required=True)


# Issues


class IssueListQuery(CamelSchema):
    project_key = fields.String(load_default=None, validate=validate.Length(max=10))
    state = fields.String(load_default=None, validate=validate.Length(max=64))
    assignee = fields.String(load_default=None, validate=validate.Length(max=254),
                             metadata={"description": "An email, `@me` or `none`"})
    label = fields.String(load_default=None, validate=validate.Length(max=50))
    q = fields.String(load_default=None, validate=validate.Length(max=200),
                      metadata={"description": "Text in the key, title or description"})
    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class IssueCreateSchema(CamelSchema):
    project_key = fields.String(required=True, validate=validate.Length(min=1, max=10))
    title = fields.String(required=True, validate=validate.Length(min=1, max=255))
    issue_type = fields.String(load_default=None, validate=validate.Length(max=64),
                               metadata={"description": "Defaults to the project's default issue type"})
    description = fields.String(load_default="", validate=validate.Length(max=100_000))
    fields_ = fields.Dict(keys=fields.String(), load_default=dict, data_key="fields",
                          metadata={"description": "Custom field values by key"})
    assignee = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=254),
                             metadata={"description": "The assignee's email"})
    labels = fields.List(fields.String(validate=validate.Length(max=50)), load_default=list,
                         validate=validate.Length(max=20))
    priority = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32))
    due_date = fields.Date(load_default=None, allow_none=True)
    parent_key = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32))


class IssuePatchSchema(CamelSchema):
    lock_version = fields.Integer(load_default=None, metadata={
        "description": "The issue's lockVersion as you read it: 409 when it changed since"})
    title = fields.String(validate=validate.Length(min=1, max=255))
    description = fields.String(validate=validate.Length(max=100_000))
    fields_ = fields.Dict(keys=fields.String(), data_key="fields")
    assignee = fields.String(allow_none=True, validate=validate.Length(max=254))
    labels = fields.List(fields.String(validate=validate.Length(max=50)), validate=validate.Length(max=20))
    priority = fields.String(allow_none=True, validate=validate.Length(max=32))
    due_date = fields.Date(allow_none=True)


class CommentSchema(CamelSchema):
    id = fields.Integer(required=True)
    body = fields.String(required=True)
    author = fields.Nested(UserRefSchema, required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True, allow_none=True)


class CommentCreateSchema(CamelSchema):
    body = fields.String(required=True, validate=validate.Length(min=1, max=20_000))


class GateSchema(CamelSchema):
    gate = fields.String(required=True)
    passed = fields.Boolean(required=True)
    reasons = fields.List(fields.String(), required=True)


class AvailableTransitionSchema(CamelSchema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    to = fields.String(required=True)
    to_label = fields.String(required=True)
    allowed = fields.Boolean(required=True)
    gates = fields.List(fields.Nested(GateSchema), required=True)


class TransitionsSchema(CamelSchema):
    state = fields.String(required=True)
    lock_version = fields.Integer(required=True)
    transitions = fields.List(fields.Nested(AvailableTransitionSchema), required=True)


class TransitionRequestSchema(CamelSchema):
    to = fields.String(load_default=None, validate=validate.Length(min=1, max=64),
                       metadata={"description": "Target state (the first passing transition to it is used)"})
    transition = fields.String(load_default=None, validate=validate.Length(min=1, max=100),
                               metadata={"description": "Transition id or name"})
    comment = fields.String(load_default=None, validate=validate.Length(max=20_000))
    lock_version = fields.Integer(load_default=None)


class TransitionPerformSchema(TransitionRequestSchema):
    force = fields.Boolean(load_default=False, metadata={
        "description": "Organization owners and admins: move past the gates that block it (needs `reason`)"})
    reason = fields.String(load_default=None, validate=validate.Length(max=20_000),
                           metadata={"description": "Why the move is forced; recorded with the gates it skipped"})


class SimulationSchema(CamelSchema):
    allowed = fields.Boolean(required=True)
    transition = fields.String(required=True, allow_none=True)
    to = fields.String(required=True, allow_none=True)
    gates = fields.List(fields.Nested(GateSchema), required=True)


class TransitionResultSchema(CamelSchema):
    key = fields.String(required=True)
    from_ = fields.String(required=True, data_key="from")
    to = fields.String(required=True)
    transition = fields.String(required=True)
    lock_version = fields.Integer(required=True)
    state_entered_at = fields.DateTime(required=True)
    resolved_at = fields.DateTime(required=True, allow_none=True)


# Webhooks


class SubscriptionSchema(CamelSchema):
    id = fields.Integer(required=True)
    project_key = fields.String(required=True)
    url = fields.String(required=True)
    events = fields.List(fields.String(), required=True)
    created_at = fields.DateTime(required=True)
    secret = fields.String(metadata={"description": "Returned once, on creation, when Kiket generated it"})


class SubscriptionCreateSchema(CamelSchema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    events = fields.List(fields.String(validate=validate.OneOf([*EVENT_TYPES, "*"])), required=True,
                         validate=validate.Length(min=1, max=len(EVENT_TYPES)))
    project_key = fields.String(required=True, validate=validate.Length(min=1, max=10))
    secret = fields.String(load_default=None, validate=validate.Length(min=16, max=200),
                           metadata={"description": "Signing secret; generated (and returned once) when absent"})


class ProjectFilterQuery(CamelSchema):
    project_key = fields.String(load_default=None, validate=validate.Length(max=10))
    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class DeliveryRequestSchema(CamelSchema):
    method = fields.String(required=True)
    url = fields.String(required=True)
    headers = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    body = fields.String(required=True)


class DeliveryResponseSchema(CamelSchema):
    status_code = fields.Integer(required=True, allow_none=True)
    excerpt = fields.String(required=True, allow_none=True)


class DeliverySchema(CamelSchema):
    id = fields.Integer(required=True)
    event_id = fields.String(required=True, allow_none=True)
    event = fields.String(required=True)
    attempt = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["pending", "retrying", "delivered", "failed"]))
    error = fields.String(required=True, allow_none=True)
    duration_ms = fields.Integer(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    delivered_at = fields.DateTime(required=True, allow_none=True)
    next_retry_at = fields.DateTime(required=True, allow_none=True)
    request = fields.Nested(DeliveryRequestSchema, required=True)
    response = fields.Nested(DeliveryResponseSchema, required=True)
    reply = fields.Dict(required=True, allow_none=True,
                        metadata={"description": "What an extension's reply asked for and what came of it"})
