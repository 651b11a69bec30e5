"""How the API shows things: marshmallow schemas with camelCase names, shared by `/api/v1` and the event
envelopes (`data.issue` is the API's issue representation, protocol spec §2)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from app.models import Issue, User


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class CamelSchema(Schema):
    """Field names are snake_case in Python and camelCase on the wire."""

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        field_obj.data_key = camel(field_obj.data_key or field_name)


class UserRefSchema(CamelSchema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    name = fields.String(required=True, attribute="display_name")
    kind = fields.String(required=True, metadata={"description": "`person`, or `extension` for an installation"})


class WorkflowRefSchema(CamelSchema):
    id = fields.String(required=True)
    version = fields.String(required=True)


class IssueSchema(CamelSchema):
    """An issue as the API shows it."""

    id = fields.Integer(required=True)
    key = fields.String(required=True, metadata={"example": "ENG-42"})
    project_key = fields.String(required=True)
    issue_type = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    state = fields.String(required=True)
    priority = fields.String(required=True, allow_none=True)
    assignee = fields.Nested(UserRefSchema, required=True, allow_none=True)
    reporter = fields.Nested(UserRefSchema, required=True, allow_none=True)
    labels = fields.List(fields.String(), required=True)
    due_date = fields.Date(required=True, allow_none=True)
    fields_ = fields.Dict(required=True, data_key="fields", attribute="custom_fields",
                          metadata={"description": "Custom field values by key"})
    parent_key = fields.String(required=True, allow_none=True)
    workflow = fields.Nested(WorkflowRefSchema, required=True)
    state_entered_at = fields.DateTime(required=True)
    resolved_at = fields.DateTime(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    lock_version = fields.Integer(required=True, metadata={"description": "Send it back in PATCH to detect conflicts"})


def user_ref(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.id, "email": user.email, "display_name": user.display_name, "kind": user.kind}


def issue_values(issue: Issue) -> dict[str, Any]:
    """The issue's values under IssueSchema's attribute names."""
    return {
        "id": issue.id, "key": issue.key, "project_key": issue.project.key, "issue_type": issue.issue_type,
        "title": issue.title, "description": issue.description or "", "state": issue.state,
        "priority": issue.priority, "assignee": user_ref(issue.assignee), "reporter": user_ref(issue.reporter),
        "labels": list(issue.labels or []), "due_date": issue.due_date, "custom_fields": dict(issue.custom_fields or {}),
        "parent_key": issue.parent.key if issue.parent else None,
        "workflow": {"id": issue.workflow_id, "version": issue.workflow_version},
        "state_entered_at": issue.state_entered_at, "resolved_at": issue.resolved_at, "created_at": issue.created_at,
        "updated_at": issue.updated_at, "lock_version": issue.lock_version,
    }


_issue_schema = IssueSchema()


def issue_json(issue: Issue) -> dict[str, Any]:
    """The issue as JSON-ready camelCase data."""
    return _issue_schema.dump(issue_values(issue))
