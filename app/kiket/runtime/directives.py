"""Turn an `Action` plus the event's context into a concrete, validated `Directive` the service performs (§10.3).

Pure: nothing is sent, stored or assigned here. Templates render in the §12 sandbox; `env.*` secrets only
reach webhook url, headers and body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from app.kiket.actions import CORE_CHANNELS, HTTP_METHODS, LEVELS
from app.kiket.conditions import normalize_path, resolve_path
from app.kiket.durations import parse_duration
from app.kiket.model import Action
from app.kiket.templating import MissingSecret, render_body

PERSON_FIELDS = {"assignee": "assignee", "reporter": "reporter", "submitter": "reporter", "creator": "reporter"}
# Fields an action may not overwrite: they belong to the transition service and the issue's identity.
PROTECTED_FIELDS = frozenset({"id", "key", "status", "workflow", "created_at", "updated_at", "resolved_at", "project"})
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}")
MAX_LABEL = 64
SYSTEM_USER = "system"


@dataclass(frozen=True)
class Directory:
    """Who is who, as the service knows it: role members, known users, open-issue load and rotation cursors."""

    role_members: Mapping[str, Sequence[str]] = field(default_factory=dict)
    users: frozenset[str] = frozenset()
    load: Mapping[str, int] = field(default_factory=dict)
    rotation: Mapping[str, int] = field(default_factory=dict)

    def role(self, name: str) -> str | None:
        """The declared role key matching `name` (case-insensitive), or None."""
        if name in self.role_members:
            return name
        folded = name.casefold()
        return next((r for r in self.role_members if r.casefold() == folded), None)


@dataclass(frozen=True)
class Recipients:
    """Resolved people (identities), e-mail addresses, and what could not be resolved."""

    users: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    unresolved: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when nobody would receive anything."""
        return not self.users and not self.emails


@dataclass(frozen=True)
class Directive:
    """A concrete instruction for the service; `kind` is the action type, `skipped` or `failed`."""

    kind: str
    action_type: str
    params: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None
    missing: tuple[str, ...] = ()

    @property
    def runnable(self) -> bool:
        """False for skipped and failed directives."""
        return self.kind not in ("skipped", "failed")


def _skipped(action: Action, reason: str) -> Directive:
    return Directive("skipped", action.type, {}, reason)


def _failed(action: Action, reason: str, missing: Sequence[str] = ()) -> Directive:
    return Directive("failed", action.type, {}, reason, tuple(missing))


class _Renderer:
    """Renders params and keeps track of missing placeholders for the run log."""

    def __init__(self, context: Mapping, secrets: Mapping[str, str] | None) -> None:
        self.context = context
        self.secrets = secrets
        self.missing: list[str] = []

    def value(self, raw: Any, *, allow_env: bool = False) -> Any:
        if raw is None:
            return None
        result = render_body(raw, self.context, secrets=self.secrets if allow_env else None, allow_env=allow_env)
        self.missing.extend(result.missing)
        return result.value

    def text(self, raw: Any, *, allow_env: bool = False) -> str | None:
        value = self.value(raw, allow_env=allow_env)
        if value is None:
            return None
        return value if isinstance(value, str) else str(value)


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _issue(context: Mapping) -> Mapping:
    issue = context.get("issue")
    return issue if isinstance(issue, Mapping) else context


def resolve_principal(ref: Any, context: Mapping, directory: Directory) -> Recipients:
    """People behind one recipient reference: a pseudo-principal, person field, `@role`, role, e-mail or user."""
    if not isinstance(ref, str) or not ref.strip():
        return Recipients(unresolved=(repr(ref),))
    name = ref.strip()
    issue = _issue(context)
    if name in PERSON_FIELDS or name == "current_assignee":
        value = issue.get(PERSON_FIELDS.get(name, "assignee"))
        return _people(value, name)
    if name == "watchers":
        return _people(issue.get("watchers"), name)
    if name in ("actor", "@me", "me"):
        actor = context.get("actor")
        identity = actor.get("identity") if isinstance(actor, Mapping) else None
        return _people(identity if not (isinstance(actor, Mapping) and actor.get("type") == "automation") else None, name)
    if name.startswith(("custom_fields.", "fields.", "issue.")):
        path = normalize_path(name)
        return _people(resolve_path(issue, path) if path else None, name)
    if EMAIL.fullmatch(name):
        return Recipients(users=(name,)) if name in directory.users else Recipients(emails=(name,))
    bare = name[1:] if name.startswith("@") else name
    role = directory.role(bare)
    if role is not None:
        members = tuple(dict.fromkeys(directory.role_members[role]))
        return Recipients(users=members) if members else Recipients(unresolved=(f"role {role} has no members",))
    if name.startswith("@") or not directory.users or bare in directory.users:
        return Recipients(users=(bare,))
    return Recipients(unresolved=(f"{name} is neither a role with members nor a known user",))


def _people(value: Any, what: str) -> Recipients:
    # Person fields hold account identities (which may look like e-mail addresses): always in-app users.
    users = [item.strip() for item in _as_list(value) if isinstance(item, str) and item.strip()]
    if not users:
        return Recipients(unresolved=(f"{what} is empty",))
    return Recipients(users=tuple(users))


def _merge(parts: Sequence[Recipients]) -> Recipients:
    users = tuple(dict.fromkeys(u for p in parts for u in p.users))
    emails = tuple(dict.fromkeys(e for p in parts for e in p.emails))
    unresolved = tuple(dict.fromkeys(u for p in parts for u in p.unresolved))
    return Recipients(users, emails, unresolved)


def resolve_recipients(spec: Any, context: Mapping, directory: Directory) -> Recipients:
    """Resolve a §10.3 recipients spec: `{user, users, roles, fields}`, a list, or one string."""
    parts: list[Recipients] = []
    if isinstance(spec, Mapping):
        for key in ("user", "users", "fields", "emails", "email"):
            parts.extend(resolve_principal(ref, context, directory) for ref in _as_list(spec.get(key)))
        for role in _as_list(spec.get("roles")):
            if isinstance(role, str) and directory.role(role.lstrip("@")) is not None:
                parts.append(resolve_principal("@" + role.lstrip("@"), context, directory))
            else:
                parts.append(Recipients(unresolved=(f"role {role} has no members",)))
    else:
        parts.extend(resolve_principal(ref, context, directory) for ref in _as_list(spec))
    return _merge(parts)


def build_directive(
    action: Action,
    context: Mapping,
    *,
    directory: Directory | None = None,
    secrets: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> Directive:
    """A validated directive for one action and a `template_context`; stubs come back `skipped: not supported`."""
    if action.support != "core":
        return _skipped(action, "not supported")
    builder = _BUILDERS.get(action.type)
    if builder is None:
        return _skipped(action, "not supported")
    renderer = _Renderer(context, secrets)
    try:
        directive = builder(action, dict(action.params), renderer, directory or Directory(), now)
    except MissingSecret as exc:
        return _failed(action, f"project secret {exc.name!r} is not set; nothing was sent", renderer.missing)
    if renderer.missing and not directive.missing:
        directive = Directive(directive.kind, directive.action_type, directive.params, directive.reason,
                              tuple(dict.fromkeys(renderer.missing)))
    return directive


def build_directives(actions: Sequence[Action], context: Mapping, **kwargs: Any) -> tuple[Directive, ...]:
    """Directives for a list of actions, in order."""
    return tuple(build_directive(a, context, **kwargs) for a in actions)


def _level(raw: Any, default: str = "info") -> str:
    return LEVELS.get(raw, default) if isinstance(raw, str) else default


def _notify(action: Action, p: dict, r: _Renderer, d: Directory, now: datetime | None) -> Directive:
    channel = p.get("channel") or "in_app"
    if not isinstance(channel, str) or channel not in CORE_CHANNELS:
        return _skipped(action, f"channel {channel!r} is not supported")
    recipients = resolve_recipients(p.get("recipients"), r.context, d)
    message = r.text(p.get("message") or p.get("body") or p.get("title"))
    params = {
        "channel": channel, "level": _level(p.get("level")), "message": message, "template": p.get("template"),
        "title": r.text(p.get("title")), "users": recipients.users, "emails": recipients.emails,
        "unresolved": recipients.unresolved,
    }
    if recipients.empty:
        return Directive("skipped", action.type, params, "no recipients resolved")
    return Directive("notify", action.type, params)


def _webhook(action: Action, p: dict, r: _Renderer, d: Directory, now: datetime | None) -> Directive:
    url = r.text(p.get("url"), allow_env=True)
    if not url or not url.strip():
        return _failed(action, "webhook url renders empty", r.missing)
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return _failed(action, f"webhook url must be http(s) with a host, got scheme {parts.scheme or 'none'!r}")
    if any(c in url for c in "\r\n\t ") or parts.username or parts.password:
        return _failed(action, "webhook url contains whitespace or credentials")
    method = str(p.get("method") or "POST").upper()
    if method not in HTTP_METHODS:
        return _failed(action, f"HTTP method {method!r} is not allowed")
    headers: dict[str, str] = {}
    raw_headers = p.get("headers") or {}
    if not isinstance(raw_headers, Mapping):
        return _failed(action, "webhook headers must be a mapping")
    for name, raw in raw_headers.items():
        value = r.text(raw, allow_env=True) or ""
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            return _failed(action, f"header name {name!r} is not valid")
        if any(c in value for c in "\r\n\x00"):
            # A rendered value with a line break would smuggle extra headers into the request.
            return _failed(action, f"header {name} renders to a value with a line break")
        headers[name] = value
    body = r.value(p.get("body"), allow_env=True) if "body" in p else None
    timeout = p.get("timeout_s", 10)
    timeout = timeout if isinstance(timeout, int) and 0 < timeout <= 60 else 10
    return Directive("webhook", action.type, {"url": url, "method": method, "headers": headers, "body": body,
                                              "timeout_s": timeout})


def _transition(action: Action, p: dict, r: _Renderer, d: Directory, now: datetime | None) -> Directive:
    target = p.get("to")
    if not isinstance(target, str) or not target:
        return _failed(action, "transition action names no target state")
    return Directive("transition", action.type, {"to": target, "name": p.get("name")})


def pick_assignee(candidates: Sequence[str], strategy: str | None, key: str, directory: Directory) -> str | None:
    """One of `candidates`: least_loaded (fewest open issues, then order) or round_robin (after the cursor)."""
    people = list(dict.fromkeys(candidates))
    if not people:
        return None
    if strategy == "least_loaded":
        return min(people, key=lambda u: (directory.load.get(u, 0), people.index(u)))
    cursor = directory.rotation.get(key, -1)
    return people[(cursor + 1) % len(people)]


def _resolve_assignee(ref: Any, p: dict, r: _Renderer, d: Directory) -> tuple[str | None, str | None, int | None]:
    """(user, role it came from, rotation index) for an `assign` target."""
    if not isinstance(ref, str) or not ref.strip():
        return None, None, None
    name = ref.strip()
    issue = _issue(r.context)
    if name == "current_assignee":
        current = issue.get("assignee")
        return (current, None, None) if isinstance(current, str) and current else (None, None, None)
    if name in PERSON_FIELDS or name.startswith(("custom_fields.", "fields.")):
        found = resolve_principal(name, r.context, d)
        return (found.users[0], None, None) if found.users else (None, None, None)
    bare = name[1:] if name.startswith("@") else name
    role = d.role(bare)
    if role is not None:
        members = list(dict.fromkeys(d.role_members[role]))
        user = pick_assignee(members, p.get("strategy"), role, d)
        return user, role, (members.index(user) if user in members else None)
    if name.startswith("@") or not d.users or bare in d.users:
        return bare, None, None
    return None, None, None


def _assign(action: Action, p: dict, r: _Renderer, d: Directory, now: datetime | None) -> Directive:
    target = p.get("to", p.get("user", p.get("role")))
    path = normalize_path(p.get("field") or "assignee") or "assignee"
    user, role, index = _resolve_assignee(target, p, r, d)
    used = target
    if user is None and p.get("fallback") is not None:
        used = p.get("fallback")
        user, role, index = _resolve_assignee(used, p, r, d)
    if user is None:
        return Directive("skipped", action.type, {"field": path, "to": target}, "no one to assign")
    return Directive("assign", action.type, {"field": path, "user": user, "role": role, "from": used,
                                             "strategy": p.get("strategy"), "rotation_index": index})


def _set_field(action: Action, p: dict, r: _Renderer, d: Directory, now: datetime | None) -> Directive:
    path = normalize_path(p.get("field"))
    if path is None:
        return _failed(action, f"field {p.get('field')!r} is not a valid field path")
    if path in PROTECTED_FIELDS or path.startswith(("event", "actor", "changes", "sla")):
        return _failed(action, f"field {path!r} cannot be set by an action")
    return Directive("set_field", action.type, {"field": path, "value": r.value(p.get("value"))})


def _labels(action: Action, p: dict, r: _Renderer, d: Directory, now: datetime | None) -> Directive:
    labels = []
    for raw in _as_list(p.get("labels")) + _as_list(p.get("label")):
        text = r.text(raw)
        if text and text.strip() and len(text.strip()) <= MAX_LABEL and "\n" not in text:
            labels.append(text.strip())
    if not labels:
        return _failed(action, "no usable label")
    return Directive(action.type, action.type, {"labels": tuple(dict.fromkeys(labels))})


def _comment(action: Action, p: dict, r: _Renderer, d: Directory, now: datetime | None) -> Directive:
    body = r.text(p.get("body"))
    if not body or not body.strip():
        return Directive("skipped", action.type, {}, "comment body renders empty")
    return Directive("add_comment", action.type, {"body": body, "author": SYSTEM_USER})


def _watcher(action: Action, p: dict, r: _Renderer, d: Directory, now: datetime | None) -> Directive:
    spec = {"users": _as_list(p.get("users")) + _as_list(p.get("user")), "roles": _as_list(p.get("roles"))}
    found = resolve_recipients(spec, r.context, d)
    if not found.users:
        return Directive("skipped", action.type, {"unresolved": found.unresolved}, "no watchers resolved")
    return Directive("add_watcher", action.type, {"users": found.users, "unresolved": found.unresolved})


def _escalate(action: Action, p: dict, r: _Renderer, d: Directory, now: datetime | None) -> Directive:
    found = resolve_recipients(_as_list(p.get("to")), r.context, d)
    message = r.text(p.get("message")) or "Escalated"
    return Directive("escalate", action.type, {
        "users": found.users, "emails": found.emails, "unresolved": found.unresolved, "message": message,
        "level": _level(p.get("level"), "critical"), "channel": "in_app", "label": "escalated",
    })


def _create_issue(action: Action, p: dict, r: _Renderer, d: Directory, now: datetime | None) -> Directive:
    title = r.text(p.get("title"))
    if not title or not title.strip():
        return _failed(action, "issue title renders empty")
    fields = r.value(p.get("fields")) if isinstance(p.get("fields"), Mapping) else {}
    return Directive("create_issue", action.type, {
        "workflow": p.get("workflow"), "issue_type": p.get("issue_type"), "title": title.strip()[:255],
        "description": r.text(p.get("description")), "fields": fields, "link": p.get("link"),
    })


def _reminder(action: Action, p: dict, r: _Renderer, d: Directory, now: datetime | None) -> Directive:
    delay = p.get("delay_s")
    if not isinstance(delay, int):
        try:
            delay = parse_duration(p.get("delay"))
        except ValueError as exc:
            return _failed(action, f"reminder delay: {exc}")
    recipients = p.get("recipients")
    return Directive("schedule_reminder", action.type, {
        "delay_s": delay, "due_at": (now + timedelta(seconds=delay)).isoformat() if now is not None else None,
        "message": r.text(p.get("message")),
        # Recipients and conditions are resolved and re-checked when the reminder is due.
        "recipients": recipients if recipients is not None else {"user": "assignee"},
        "condition": p.get("condition"),
    })


def _request_approval(action: Action, p: dict, r: _Renderer, d: Directory, now: datetime | None) -> Directive:
    approvers: list[str] = []
    if isinstance(p.get("role"), str):
        approvers.append("@" + p["role"].lstrip("@"))
    for item in _as_list(p.get("approvers")):
        if isinstance(item, Mapping) and isinstance(item.get("role"), str):
            approvers.append("@" + item["role"].lstrip("@"))
        elif isinstance(item, Mapping) and isinstance(item.get("user"), str):
            approvers.append(item["user"])
        elif isinstance(item, str):
            approvers.append(item)
    found = resolve_recipients(approvers, r.context, d)
    return Directive("request_approval", action.type, {
        "approvers": tuple(approvers), "users": found.users, "unresolved": found.unresolved,
        "reason": r.text(p.get("reason")),
    })


_BUILDERS = {
    "notify": _notify,
    "webhook": _webhook,
    "transition": _transition,
    "assign": _assign,
    "set_field": _set_field,
    "add_label": _labels,
    "remove_label": _labels,
    "add_comment": _comment,
    "add_watcher": _watcher,
    "escalate": _escalate,
    "create_issue": _create_issue,
    "schedule_reminder": _reminder,
    "request_approval": _request_approval,
}
