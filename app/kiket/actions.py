"""Actions in every spelling (spec §10.3) normalized to `Action(type, params, support)`."""

from __future__ import annotations

import re
from typing import Any

from app.kiket.conditions import parse_condition
from app.kiket.durations import parse_duration
from app.kiket.model import Action
from app.kiket.reader import FileContext, join, type_name
from app.kiket.suggest import catalogue_hint
from app.kiket.templating import parse_body, parse_template

CORE_ACTIONS = frozenset({
    "notify", "webhook", "transition", "assign", "set_field", "add_label", "remove_label", "add_comment",
    "add_watcher", "escalate", "create_issue", "schedule_reminder", "request_approval",
})
STUB_ACTIONS = frozenset({"ai_analyze", "ai_suggest", "ai_action", "ai_generate", "blockchain_anchor", "anchor_data",
                          "extension"})
ACTION_ALIASES = {"comment": "add_comment"}
KNOWN_ACTIONS = CORE_ACTIONS | STUB_ACTIONS | frozenset(ACTION_ALIASES)
AI_ACTIONS = frozenset({"ai_analyze", "ai_suggest", "ai_action", "ai_generate"})
# §10.3 in the reference's order: what `unknown_action` lists.
CATALOGUE = ("notify", "webhook", "transition", "assign", "set_field", "add_label", "remove_label", "add_comment",
             "add_watcher", "escalate", "create_issue", "schedule_reminder", "request_approval", "ai_analyze",
             "ai_suggest", "ai_action", "ai_generate", "blockchain_anchor", "anchor_data", "comment")
LEVELS = {"info": "info", "success": "success", "warning": "warning", "critical": "critical", "error": "critical"}
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
CORE_CHANNELS = frozenset({"in_app", "email"})
# Principals that are never roles: person fields and pseudo-principals (§6).
PSEUDO_PRINCIPALS = frozenset({
    "assignee", "reporter", "submitter", "watchers", "@me", "current_assignee", "me", "creator", "actor",
})
ENV_IN_TEMPLATE = re.compile(r"(?:\$\{|\{\{)\s*env\.")
TEMPLATE_MARK = re.compile(r"\$\{|\{\{")
WEBHOOK_ENV_PARAMS = frozenset({"url", "headers", "body"})



def normalize_actions(ctx: FileContext, value: Any, pointer: str, what: str, workflow: str | None = None) -> tuple[Action, ...]:
    """Normalize a list of actions; invalid ones are dropped with an error."""
    actions = []
    for index, node in enumerate(ctx.listing(value, pointer, what)):
        action = normalize_action(ctx, node, join(pointer, index), workflow)
        if action is not None:
            actions.append(action)
    return tuple(actions)


def _spelling(ctx: FileContext, node: dict, pointer: str) -> tuple[str | None, dict, str]:
    """(type, params, params pointer) from any of the five spellings."""
    for key in ("action", "type", "kind"):
        if key in node and isinstance(node[key], str):
            others = [k for k in ("action", "type", "kind") if k != key and isinstance(node.get(k), str)]
            if others and key == "action" and others == ["type"] and node["type"] in KNOWN_ACTIONS:
                ctx.diag("alias_conflict", f"The action gives both 'action' and 'type'; 'action: {node[key]}' is used.",
                         "Keep one of them.", f"{pointer}/type")
            params = {k: v for k, v in node.items() if k != key}
            return node[key], params, pointer
    if "extension" in node:
        params = dict(node)
        return "extension", params, pointer
    if len(node) == 1:
        (name, body), = node.items()
        if body is None:
            body = {}
        if isinstance(body, dict):
            return name, dict(body), join(pointer, name)
        return name, {"value": body}, join(pointer, name)
    return None, dict(node), pointer


def normalize_action(ctx: FileContext, node: Any, pointer: str, workflow: str | None = None) -> Action | None:
    """Normalize one action node; returns None (error logged) when it cannot run."""
    if not isinstance(node, dict):
        ctx.diag("invalid_action", f"An action must be a mapping such as `type: notify`, not {type_name(node)}; dropped.",
                 "Write the action as a mapping with a type.", pointer)
        return None
    name, params, ppointer = _spelling(ctx, node, pointer)
    if not name:
        ctx.diag("invalid_action", "The action names no type (`type:`, `action:` or `{notify: {...}}`); dropped.",
                 "Add `type: <action>`.", pointer)
        return None
    kind = ACTION_ALIASES.get(name, name)
    if kind in CORE_ACTIONS:
        support = "core"
    elif kind in STUB_ACTIONS:
        support = "stub"
    else:
        support = "unknown"
        ctx.diag("unknown_action", f"Unknown action type '{name}'; it is kept but skipped when it runs.",
                 catalogue_hint(str(name), CATALOGUE, "Actions (the AI and anchor ones are stubs)"), pointer)
    checker = _CHECKS.get(kind)
    if checker is not None:
        problem = checker(ctx, params, ppointer, workflow)
        if problem:
            ctx.diag("invalid_action", f"The {kind} action {problem}; it is dropped.",
                     "Complete the action or remove it.", pointer)
            return None
    if kind == "notify":
        channel = params.get("channel")
        if isinstance(channel, str) and channel not in CORE_CHANNELS:
            support = "stub"
    if support == "stub":
        ctx.diag("action_stub", f"The {kind} action is validated but not executed by this server; runs are logged as skipped.",
                 "", pointer)
    templates = _templates(ctx, params, ppointer, kind)
    return Action(type=kind, params=params, support=support, prov=ctx.locate(pointer), templates=templates)


def _templates(ctx: FileContext, params: dict, pointer: str, kind: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def visit(value: Any, tokens: tuple, top: str, depth: int) -> None:
        # The pointer is only written out for a template: most values hold none.
        if depth > 16:
            return
        if isinstance(value, str):
            if not TEMPLATE_MARK.search(value):
                return
            ptr = join(pointer, *tokens)
            if ENV_IN_TEMPLATE.search(value) and not (kind == "webhook" and top in WEBHOOK_ENV_PARAMS):
                ctx.diag("env_outside_webhook",
                         "${env.NAME} only works in a webhook's url, headers and body; here it renders empty.",
                         "Move the secret into a webhook action.", ptr)
            template, diags = parse_template(value, ptr, ctx.locate)
            ctx.extend(diags)
            found[ptr[len(pointer):] or "/"] = template
        elif isinstance(value, dict):
            for key, item in value.items():
                visit(item, (*tokens, key), top, depth + 1)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                visit(item, (*tokens, index), top, depth + 1)

    for key, value in params.items():
        if key in ("conditions", "condition", "when"):
            continue
        if kind == "webhook" and key == "body" and isinstance(value, (dict, list)):
            # parse_body enforces the 16-level limit of §12 and parses every string once.
            body, diags = parse_body(value, join(pointer, key), ctx.locate)
            ctx.extend(diags)
            found["/body"] = body
            continue
        visit(value, (key,), key, 0)
    return found


def _role_refs(ctx: FileContext, value: Any, pointer: str, context: str) -> None:
    for index, role in enumerate(ctx.listing(value, pointer, "roles")):
        if isinstance(role, str):
            ctx.ref("role", role.lstrip("@"), join(pointer, index) if isinstance(value, list) else pointer, context)


def _principal_ref(ctx: FileContext, value: Any, pointer: str, context: str) -> None:
    """A person-or-role target: emails, person fields and pseudo-principals are people; bare names are roles."""
    if not isinstance(value, str):
        return
    if value in PSEUDO_PRINCIPALS or "@" in value[1:] or "." in value or value.startswith("${") or "{{" in value:
        return
    ctx.ref("role", value.lstrip("@"), pointer, context)


def _check_notify(ctx: FileContext, p: dict, ptr: str, wf: str | None) -> str | None:
    recipients = p.get("recipients")
    if isinstance(recipients, dict):
        _role_refs(ctx, recipients.get("roles"), f"{ptr}/recipients/roles", "notify recipients")
        for key in ("user", "users"):
            for index, user in enumerate(ctx.listing(recipients.get(key), join(ptr, "recipients", key), "users")):
                if isinstance(user, str) and user.startswith("@"):
                    ctx.ref("role_or_user", user[1:], join(ptr, "recipients", key), "notify recipients")
    elif recipients is not None and not isinstance(recipients, (list, str)):
        ctx.diag("invalid_value", f"recipients should be a mapping (user, users, roles, fields), not {type_name(recipients)}.",
                 "Write e.g. `recipients: {roles: [qa]}`.", f"{ptr}/recipients")
    level = p.get("level")
    if level is not None:
        if not isinstance(level, str) or level not in LEVELS:
            ctx.diag("invalid_value", f"Notification level {level!r} is not info, success, warning or critical; info is used.",
                     "Use info, success, warning or critical.", f"{ptr}/level")
            p["level"] = "info"
        else:
            p["level"] = LEVELS[level]
    channel = p.get("channel")
    if channel is not None:
        if not isinstance(channel, str):
            return "has a channel that is not text"
        if channel not in CORE_CHANNELS:
            prefix = channel.split(":", 1)[0]
            ctx.ref("channel", prefix, f"{ptr}/channel", channel)
    if not any(p.get(k) for k in ("message", "template", "body", "title")):
        return "has no message or template"
    return None


def _check_webhook(ctx: FileContext, p: dict, ptr: str, wf: str | None) -> str | None:
    url = p.get("url")
    if not isinstance(url, str) or not url.strip():
        return "has no url"
    method = p.get("method", "POST")
    if not isinstance(method, str) or method.upper() not in HTTP_METHODS:
        ctx.diag("invalid_value", f"HTTP method {method!r} is not GET, POST, PUT, PATCH or DELETE; POST is used.",
                 "Use one of GET, POST, PUT, PATCH, DELETE.", f"{ptr}/method")
        p["method"] = "POST"
    else:
        p["method"] = method.upper()
    if "timeout" in p:
        try:
            p["timeout_s"] = parse_duration(p["timeout"]) if not isinstance(p["timeout"], int) else p["timeout"]
        except ValueError as exc:
            ctx.diag("invalid_duration", f"Webhook timeout: {exc}; 10s is used.", "Write e.g. `10s`.", f"{ptr}/timeout")
            p["timeout_s"] = 10
    return None


def _check_transition(ctx: FileContext, p: dict, ptr: str, wf: str | None) -> str | None:
    target = p.get("to", p.get("state", p.get("status")))
    if not isinstance(target, str) or not target:
        return "has no target state (`to:`)"
    p["to"] = target
    ctx.ref("state", target, f"{ptr}/to", "transition action", wf)
    return None


def _check_assign(ctx: FileContext, p: dict, ptr: str, wf: str | None) -> str | None:
    target = p.get("to", p.get("user", p.get("role")))
    if not isinstance(target, str) or not target:
        return "has no `to:` (a person, a role or current_assignee)"
    _principal_ref(ctx, target, f"{ptr}/to", "assign")
    if "fallback" in p:
        _principal_ref(ctx, p["fallback"], f"{ptr}/fallback", "assign fallback")
    strategy = p.get("strategy")
    if strategy is not None and strategy not in ("round_robin", "least_loaded"):
        ctx.diag("invalid_value", f"Assignment strategy {strategy!r} is not round_robin or least_loaded; ignored.",
                 "Use round_robin or least_loaded.", f"{ptr}/strategy")
    return None


def _check_set_field(ctx: FileContext, p: dict, ptr: str, wf: str | None) -> str | None:
    if "field" in p:
        if not isinstance(p["field"], str) or not p["field"]:
            return "has a field name that is not text"
        return None
    if len(p) == 1:
        (name, value), = p.items()
        p.clear()
        p.update({"field": name, "value": value})
        return None
    return "has no `field:`"


def _check_label(ctx: FileContext, p: dict, ptr: str, wf: str | None) -> str | None:
    return None if p.get("label") or p.get("labels") else "has no label"


def _check_comment(ctx: FileContext, p: dict, ptr: str, wf: str | None) -> str | None:
    if not p.get("body") and p.get("message"):
        p["body"] = p["message"]
    if not p.get("body") and isinstance(p.get("value"), str):
        p["body"] = p.pop("value")
    return None if p.get("body") else "has no body"


def _check_watcher(ctx: FileContext, p: dict, ptr: str, wf: str | None) -> str | None:
    _role_refs(ctx, p.get("roles"), f"{ptr}/roles", "add_watcher")
    return None if p.get("users") or p.get("roles") or p.get("user") else "names no users or roles"


def _check_escalate(ctx: FileContext, p: dict, ptr: str, wf: str | None) -> str | None:
    target = p.get("to")
    if isinstance(target, list):
        for index, item in enumerate(target):
            _principal_ref(ctx, item, join(ptr, "to", index), "escalate")
    elif target is not None:
        _principal_ref(ctx, target, f"{ptr}/to", "escalate")
    else:
        return "has no `to:`"
    return None


def _check_create_issue(ctx: FileContext, p: dict, ptr: str, wf: str | None) -> str | None:
    if not p.get("title"):
        return "has no title"
    type_ptr = f"{ptr}/issue_type"
    if "case_type" in p and "issue_type" not in p:
        type_ptr = f"{ptr}/case_type"
        ctx.vocabulary(type_ptr, "case_type")
        p["issue_type"] = p.pop("case_type")
    if isinstance(p.get("workflow"), str):
        ctx.ref("workflow", p["workflow"], f"{ptr}/workflow", "create_issue")
    if isinstance(p.get("issue_type"), str):
        ctx.ref("issue_type", p["issue_type"], type_ptr, "create_issue")
    return None


def _check_reminder(ctx: FileContext, p: dict, ptr: str, wf: str | None) -> str | None:
    try:
        p["delay_s"] = parse_duration(p.get("delay"))
    except ValueError as exc:
        ctx.diag("invalid_duration", f"Reminder delay: {exc}.", "Write e.g. `48h`.", f"{ptr}/delay")
        return "has no valid delay"
    recipients = p.get("recipients")
    if isinstance(recipients, dict):
        _role_refs(ctx, recipients.get("roles"), f"{ptr}/recipients/roles", "reminder recipients")
    if "conditions" in p:
        condition, diags = parse_condition(p["conditions"], f"{ptr}/conditions", ctx.locate)
        ctx.extend(diags)
        p["condition"] = condition
    return None


def _check_approval(ctx: FileContext, p: dict, ptr: str, wf: str | None) -> str | None:
    if isinstance(p.get("role"), str):
        ctx.ref("role", p["role"].lstrip("@"), f"{ptr}/role", "request_approval")
    approvers = p.get("approvers")
    for index, item in enumerate(ctx.listing(approvers, f"{ptr}/approvers", "approvers")):
        if isinstance(item, dict) and isinstance(item.get("role"), str):
            ctx.ref("role", item["role"], join(ptr, "approvers", index, "role"), "request_approval")
        elif isinstance(item, str):
            _principal_ref(ctx, item, join(ptr, "approvers", index), "request_approval")
    return None if p.get("role") or approvers else "names no role or approvers"


def _check_ai(ctx: FileContext, p: dict, ptr: str, wf: str | None) -> str | None:
    agent = p.get("agent")
    if isinstance(agent, str):
        ctx.ref("agent", agent, f"{ptr}/agent", "AI action")
    return None


def _check_extension(ctx: FileContext, p: dict, ptr: str, wf: str | None) -> str | None:
    name = p.get("extension")
    if not isinstance(name, str) or not name:
        return "names no extension"
    ctx.ref("extension", name.split(".", 1)[0], f"{ptr}/extension", name)
    return None


_CHECKS = {
    "notify": _check_notify,
    "webhook": _check_webhook,
    "transition": _check_transition,
    "assign": _check_assign,
    "set_field": _check_set_field,
    "add_label": _check_label,
    "remove_label": _check_label,
    "add_comment": _check_comment,
    "add_watcher": _check_watcher,
    "escalate": _check_escalate,
    "create_issue": _check_create_issue,
    "schedule_reminder": _check_reminder,
    "request_approval": _check_approval,
    "ai_analyze": _check_ai,
    "ai_suggest": _check_ai,
    "ai_action": _check_ai,
    "ai_generate": _check_ai,
    "extension": _check_extension,
}
