"""JSON Schemas (draft 2020-12) of each `.kiket/` file kind, for editors; permissive like the loader."""

from __future__ import annotations

from typing import Any

DRAFT = "https://json-schema.org/draft/2020-12/schema"
BASE_ID = "https://kiket.dev/schemas/"

_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_INT = {"type": "integer"}
_SCALAR = {"type": ["string", "number", "boolean", "null"]}
_STRS = {"anyOf": [_STR, {"type": "array", "items": _STR}]}
_DURATION = {"type": ["string", "number"], "description": "15m, 4h, 1d12h, PT4H (numbers are rejected by the loader)"}
_MODEL_VERSION = {"type": ["string", "number"], "description": "\"1.0\" (2.x read with warnings)"}


def _obj(properties: dict[str, Any], required: list[str] | None = None, description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": True}
    if required:
        schema["required"] = required
    if description:
        schema["description"] = description
    return schema


def _defs() -> dict[str, Any]:
    condition = {
        "description": "A §9 condition: list (= all), {all|any|not}, {field, operator, value}, "
                       "{field, equals|in: ...}, {checklist, complete} or an expression string",
        "anyOf": [
            _STR,
            {"type": "array", "items": {"$ref": "#/$defs/condition"}},
            _obj({"all": {"type": "array", "items": {"$ref": "#/$defs/condition"}},
                  "any": {"type": "array", "items": {"$ref": "#/$defs/condition"}},
                  "not": {"$ref": "#/$defs/condition"},
                  "field": _STR, "operator": _STR, "op": _STR, "value": {},
                  "checklist": _STR, "complete": _BOOL}),
        ],
    }
    action = _obj({
        "type": _STR, "action": _STR, "kind": _STR, "extension": _STR, "params": {"type": "object"},
        "recipients": {"anyOf": [_obj({"user": _STRS, "users": _STRS, "roles": _STRS, "fields": _STRS}),
                                 _STRS]},
        "message": _STR, "level": {"enum": ["info", "success", "warning", "critical", "error"]},
        "channel": _STR, "template": _STR, "url": _STR,
        "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "get", "post", "put", "patch", "delete"]},
        "headers": {"type": "object"}, "body": {}, "timeout": _DURATION, "to": {}, "field": _STR, "value": {},
        "label": _STR, "labels": _STRS, "delay": _DURATION, "conditions": {"$ref": "#/$defs/condition"},
        "agent": _STR, "store_result_in": _STR, "role": _STR,
    }, description="An action in any spelling: {type: notify, ...}, {action: notify, ...}, {notify: {...}}")
    actions = {"type": "array", "items": {"$ref": "#/$defs/action"}}
    sla_rule = _obj({"condition": {"$ref": "#/$defs/condition"}, "when": {"$ref": "#/$defs/condition"},
                     "default": _BOOL, "warning": _DURATION, "breach": _DURATION, "target": _DURATION,
                     "duration": _DURATION, "business_hours": _BOOL})
    sla = {"anyOf": [_DURATION, {"type": "array", "items": sla_rule},
                     {"allOf": [sla_rule, _obj({"on_warning": actions, "on_breach": actions})]}]}
    approver = {"anyOf": [_STR, _obj({"role": _STR, "user": _STR, "field": _STR,
                                      "when": {"$ref": "#/$defs/condition"}})]}
    approval = _obj({"required": _INT, "approvers": {"type": "array", "items": approver},
                     "type": {"enum": ["sequential", "parallel", "any", "quorum"]},
                     "chain": {"type": "array", "items": approver}, "conditional": {"type": "object"},
                     "conditions": {"$ref": "#/$defs/condition"}, "message": _STR})
    assignment = _obj({"assignment": _obj({"type": {"enum": ["role", "user", "field"]}, "identifier": _STR}),
                       "metadata": _obj({"message": _STR})},
                      description="One approval from this role, user or person field (§16 require_approval)")
    assignments = {"type": "array", "items": {"anyOf": [assignment, approver]}}
    required = {"anyOf": [{"enum": ["any", "all"]}, _INT]}
    level = _obj({"level": _INT, "name": _STR, "assignments": assignments, "required": required,
                  "timeout": _DURATION, "conditions": {"$ref": "#/$defs/condition"},
                  "metadata": _obj({"message": _STR}), "logic": {"enum": ["AND", "OR", "and", "or"]},
                  "parallel": {"type": "array", "items": _obj({"group": _STR, "assignments": assignments,
                                                               "required": required})}})
    approval_chain = {"anyOf": [_obj({"chain": {"type": "array", "items": level}}),
                                {"type": "array", "items": level}]}
    item = {"anyOf": [_STR, _obj({"id": _STR, "label": _STR, "check_type": {"enum": ["manual", "auto"]},
                                  "required": _BOOL, "condition": {"$ref": "#/$defs/condition"}})]}
    checklist = _obj({"id": _STR, "title": _STR, "required_mode": {"enum": ["all", "any"]},
                      "items": {"type": "array", "items": item}, "on_complete": actions})
    state = {"anyOf": [{"type": "null"}, _obj({
        "type": _STR, "kind": _STR, "category": _STR, "label": _STR, "color": _STR, "icon": _STR,
        "description": _STR,
        "metadata": _obj({"label": _STR, "color": _STR, "icon": _STR, "description": _STR}),
        "wip_limit": {"type": ["integer", "null"], "minimum": 1}, "sla": sla,
        "required_documents": {"type": "array"}, "approval": approval, "checklist": checklist,
        "checklists": {"type": "array", "items": checklist}, "on_enter": actions, "on_exit": actions,
        "on_sla_warning": actions, "on_sla_breach": actions, "on_complete": actions,
        "conditions": {"$ref": "#/$defs/condition"}, "approval_chain": approval_chain,
        "require_approval": assignments,
    })]}
    transition = _obj({
        "from": {"anyOf": [_STR, {"type": "array", "items": _STR}]}, "to": _STR, "name": _STR, "key": _STR,
        "id": _STR, "conditions": {"$ref": "#/$defs/condition"},
        "requires": _obj({"fields": _STRS, "predicate": {"$ref": "#/$defs/condition"}}),
        "required_fields": _STRS, "when": {"$ref": "#/$defs/condition"}, "comment_required": _BOOL,
        "requires_comment": _BOOL, "approval_required": _BOOL, "requires_approval": {"anyOf": [_BOOL, assignments]},
        "approval": approval, "require_approval": assignments, "approval_chain": approval_chain,
        "metadata": _obj({"requires_fields": _STRS}), "roles": _STRS, "actions": actions, "on_transition": actions,
    }, required=["from", "to"])
    return {"condition": condition, "action": action, "state": state, "transition": transition}


def _with_defs(kind: str, schema: dict[str, Any], title: str) -> dict[str, Any]:
    return {"$schema": DRAFT, "$id": f"{BASE_ID}{kind}.schema.json", "title": title, **schema, "$defs": _defs()}


def schemas() -> dict[str, dict[str, Any]]:
    """One JSON Schema per file kind: project, team, issue_types, workflow, board, automation, recipe."""
    role = {"anyOf": [_STR, _obj({"name": _STR, "description": _STR, "inherits": _STR, "permissions": _STRS},
                                 required=["name"])]}
    seed = _obj({"title": _STR, "description": _STR, "issue_type": _STR, "case_type": _STR, "status": _STR,
                 "priority": _STR, "labels": _STRS, "assignee": _STR, "custom_fields": {"type": "object"}},
                required=["title"])
    project_body = _obj({
        "key": _STR, "id": _STR, "name": _STR, "description": _STR, "version": {"type": ["string", "number"]},
        "team": _obj({"roles": {"type": "array", "items": role}}),
        "extensions": _obj({"required": _STRS, "optional": _STRS}),
        "seed_data": _obj({"issues": {"type": "array", "items": seed}, "cases": {"type": "array", "items": seed}}),
        "default_workflow": _STR,
        "business_hours": _obj({"timezone": _STR, "days": _STRS, "start": _STR, "end": _STR, "holidays": {}}),
        "priorities": _STRS, "inherit": {"anyOf": [{"enum": ["all", "none"]}, {"type": "object"}]},
    })
    field = _obj({"key": _STR, "label": _STR, "type": _STR, "required": _BOOL, "options": {}}, required=["key"])
    itype = _obj({"key": _STR, "label": _STR, "name": _STR, "description": _STR, "icon": _STR, "color": _STR,
                  "position": _INT, "active": _BOOL, "allow_children": _BOOL, "child_types": _STRS,
                  "parent_types": _STRS, "workflow": _STR,
                  "fields": {"anyOf": [{"type": "array", "items": field}, {"type": "object"}]},
                  "documents": {"type": "array"}})
    header = _obj({"id": _STR, "key": _STR, "name": _STR, "version": {"type": ["string", "number"]},
                   "description": _STR, "states": {}, "transitions": {}})
    states = {"anyOf": [{"type": "object", "additionalProperties": {"$ref": "#/$defs/state"}},
                        {"type": "array", "items": {"anyOf": [_STR, {"$ref": "#/$defs/state"}]}}]}
    transitions = {"anyOf": [{"type": "array", "items": {"$ref": "#/$defs/transition"}}, {"type": "object"}]}
    column = _obj({"key": _STR, "id": _STR, "name": _STR, "states": _STRS, "statuses": _STRS, "state": _STR,
                   "status": _STR, "wip_limit": {"type": ["integer", "null"]}, "limit": {"type": ["integer", "null"]},
                   "wip_policy": {"enum": ["warn", "block"]}, "color": _STR})
    board_props = {
        "id": _STR, "key": _STR, "name": _STR, "type": _STR, "description": _STR, "workflow": _STR,
        "filters": _obj({"issue_types": _STRS, "issueTypes": _STRS, "case_types": _STRS, "workflows": _STRS,
                         "labels": _STRS,
                         "priorities": _STRS, "assignee": _STR, "states": _STRS}),
        "columns": {"type": "array", "items": column},
        "swimlanes": _obj({"enabled": _BOOL, "field": _STR, "by": _STR, "values": {"type": "array"}}),
        "card_template": {"type": "object"}, "card": {"type": "object"}, "card_fields": _STRS,
        "quick_filters": {"type": "array", "items": _obj({"label": _STR, "field": _STR, "value": {},
                                                          "values": {}})},
    }
    trigger = {"anyOf": [_STR, {"type": "array", "items": _STR},
                         _obj({"event": _STRS, "on": _STRS, "conditions": {"$ref": "#/$defs/condition"},
                               "when": {"$ref": "#/$defs/condition"}, "cron": _STR})]}
    automation = _obj({"id": _STR, "key": _STR, "name": _STR, "description": _STR,
                       "version": {"type": ["string", "number"]}, "enabled": _BOOL, "trigger": trigger,
                       "conditions": {"$ref": "#/$defs/condition"}, "when": {"$ref": "#/$defs/condition"},
                       "actions": {"type": "array", "items": {"$ref": "#/$defs/action"}},
                       "requires_approval": _BOOL, "metadata": {"type": "object"}})
    return {
        "project": _with_defs("project", _obj({"model_version": _MODEL_VERSION, "project": project_body}),
                              "Kiket project.yaml"),
        "workspace": _with_defs("workspace", _obj({"model_version": _MODEL_VERSION, "workspace": project_body}),
                                "Kiket workspace.yaml (project.yaml in the workspace/case vocabulary)"),
        "team": _with_defs("team", _obj({
            "model_version": _MODEL_VERSION,
            "team": _obj({"roles": {"type": "array", "items": role},
                          "members": {"type": "array", "items": _obj({"user": _STR, "roles": _STRS})}}),
            "permissions": {"type": "object", "additionalProperties": _STRS}}), "Kiket team.yaml"),
        "issue_types": _with_defs("issue_types", _obj({
            "model_version": _MODEL_VERSION,
            "issue_types": {"anyOf": [{"type": "array", "items": itype},
                                      {"type": "object", "additionalProperties": {"anyOf": [itype, {"type": "null"}]}}]},
            "types": {"type": ["array", "object"]}}), "Kiket issue_types.yaml"),
        "case_types": _with_defs("case_types", _obj({
            "model_version": _MODEL_VERSION,
            "case_types": {"anyOf": [{"type": "array", "items": itype},
                                     {"type": "object", "additionalProperties": {"anyOf": [itype, {"type": "null"}]}}]},
        }), "Kiket case_types.yaml (issue_types.yaml in the workspace/case vocabulary)"),
        "workflow": _with_defs("workflow", _obj({"model_version": _MODEL_VERSION, "workflow": header, "key": _STR,
                                                 "id": _STR, "name": _STR, "description": _STR,
                                                 "version": {"type": ["string", "number"]}, "states": states,
                                                 "transitions": transitions}), "Kiket workflow"),
        "board": _with_defs("board", _obj({"model_version": _MODEL_VERSION, "board": _obj(board_props),
                                           **board_props}), "Kiket board"),
        "automation": _with_defs("automation", _obj({"model_version": _MODEL_VERSION,
                                                     "automations": {"type": "array", "items": automation},
                                                     **automation["properties"]}), "Kiket automations"),
        "recipe": _with_defs("recipe", _obj({"model_version": _MODEL_VERSION, "recipe": automation},
                                            required=["recipe"]), "Kiket automation recipe"),
    }


def validate(instance: Any, schema: dict[str, Any], root: dict[str, Any] | None = None, path: str = "") -> list[str]:
    """Check an instance against the subset of JSON Schema these schemas use; returns problems."""
    root = root or schema
    if "$ref" in schema:
        target: Any = root
        for token in schema["$ref"].lstrip("#/").split("/"):
            target = target[token]
        return validate(instance, target, root, path)
    problems: list[str] = []
    kinds = schema.get("type")
    if kinds is not None:
        names = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is(instance, name) for name in names):
            return [f"{path or '/'}: expected {'/'.join(names)}"]
    if "enum" in schema and instance not in schema["enum"]:
        problems.append(f"{path or '/'}: {instance!r} is not one of {schema['enum']}")
    if "anyOf" in schema and not any(not validate(instance, sub, root, path) for sub in schema["anyOf"]):
        problems.append(f"{path or '/'}: matches none of the allowed forms")
    for sub in schema.get("allOf", ()):
        problems.extend(validate(instance, sub, root, path))
    if isinstance(instance, dict):
        for key in schema.get("required", ()):
            if key not in instance:
                problems.append(f"{path or '/'}: missing required key {key!r}")
        properties = schema.get("properties", {})
        for key, value in instance.items():
            if key in properties:
                problems.extend(validate(value, properties[key], root, f"{path}/{key}"))
            elif isinstance(schema.get("additionalProperties"), dict):
                problems.extend(validate(value, schema["additionalProperties"], root, f"{path}/{key}"))
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for index, value in enumerate(instance):
            problems.extend(validate(value, schema["items"], root, f"{path}/{index}"))
    if isinstance(instance, int) and not isinstance(instance, bool) and "minimum" in schema:
        if instance < schema["minimum"]:
            problems.append(f"{path or '/'}: below {schema['minimum']}")
    return problems


def _is(value: Any, name: str) -> bool:
    if name == "string":
        return isinstance(value, str)
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    return True
