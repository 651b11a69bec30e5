"""Extensions, pure: API scopes, manifests (protocol spec §6) and extension replies (§5).

No I/O: the gateway reads the manifest text and the reply body and hands them here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.kiket.diagnostics import Diagnostic, Provenance
from app.kiket.yamlload import parse_yaml

# Every scope a credential can hold; `*` (personal tokens only) grants whatever the user may do.
SCOPES: dict[str, str] = {
    "projects:read": "List and read projects",
    "projects:write": "Create projects",
    "config:read": "Read workflow repositories, sync runs, workflows and boards",
    "config:write": "Connect workflow repositories",
    "config:sync": "Sync workflow repositories",
    "issues:read": "List and read issues, their transitions and gates",
    "issues:write": "Create and edit issues",
    "issues:transition": "Move issues through their workflow",
    "comments:read": "Read comments",
    "comments:write": "Comment on issues",
    "notifications:write": "Send in-app notifications to a project's admins",
    "webhooks:manage": "Create, list and delete webhook subscriptions and redeliver their events",
    "extensions:manage": "Install, rotate and remove extensions",
}
ALL_SCOPES = "*"

# What an extension reply's directive needs (spec §5).
DIRECTIVE_SCOPES = {
    "add_comment": "comments:write",
    "set_field": "issues:write",
    "transition": "issues:transition",
    "assign": "issues:write",
    "notify": "notifications:write",
}

# A manifest that declares no scopes gets what its directives need (the SDK shape has no scope list).
DEFAULT_EXTENSION_SCOPES = ("issues:read", "issues:write", "issues:transition", "comments:read", "comments:write",
                            "notifications:write")

# Docs-shape scope words: `scopes: {read: [issue, comment], write: [comment]}` (spec §6).
_WORDS = {
    ("read", "issue"): "issues:read",
    ("read", "comment"): "comments:read",
    ("read", "project"): "projects:read",
    ("read", "workflow"): "config:read",
    ("read", "board"): "config:read",
    ("read", "config"): "config:read",
    ("read", "repository"): "config:read",
    ("write", "issue"): "issues:write",
    ("write", "comment"): "comments:write",
    ("write", "workflow"): "issues:transition",
    ("write", "transition"): "issues:transition",
    ("write", "notification"): "notifications:write",
    ("write", "webhook"): "webhooks:manage",
    ("write", "config"): "config:sync",
}

# Events an installation or subscription can receive (configuration spec §10.2).
EVENT_TYPES = (
    "issue.created", "issue.updated", "issue.transitioned", "issue.closed", "issue.assigned", "issue.commented",
    "checklist.completed", "approval.requested", "approval.granted", "approval.denied", "sla.warning", "sla.breach",
    "workflow.updated",
)
EVENT_ALIASES = {"comment.created": "issue.commented", "config.synced": "workflow.updated",
                 "sla.breached": "sla.breach", "sla_breach": "sla.breach", "sla_warning": "sla.warning"}

LEVELS = ("info", "success", "warning", "critical")
MANIFEST_NAMES = ("extension.yaml", "extension.yml", "manifest.yaml")
EXTENSION_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$")
EVENT_VERSION = re.compile(r"^v[0-9]{1,3}$")
PROPERTY_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
MAX_COMMENT = 20_000


def singular(word: str) -> str:
    word = word.strip().lower()
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def scope_for(word: str, access: str | None = None) -> str | None:
    """The API scope a manifest scope word names (`read`+`issue`, `issues:read`, `issue.write`…), or None."""
    text = word.strip().lower()
    if text in SCOPES:
        return text
    if access is not None:
        return _WORDS.get((access.strip().lower(), singular(text)))
    parts = re.split(r"[:.]", text, maxsplit=1)
    if len(parts) != 2:
        return None
    first, second = parts
    if first in ("read", "write"):
        return _WORDS.get((first, singular(second)))
    candidate = f"{singular(first)}s:{second}"
    if candidate in SCOPES:
        return candidate
    return _WORDS.get((second, singular(first)))


def parse_scope_list(values: Any) -> tuple[list[str], list[str]]:
    """(known API scopes, unknown words) from a list of scope strings."""
    known, unknown = [], []
    for value in values if isinstance(values, (list, tuple)) else [values]:
        scope = scope_for(str(value)) if isinstance(value, str) else None
        if scope is None:
            unknown.append(str(value))
        elif scope not in known:
            known.append(scope)
    return known, unknown


@dataclass(frozen=True)
class EventSubscription:
    name: str
    version: str = "v1"


@dataclass(frozen=True)
class ConfigProperty:
    key: str
    type: str = "string"
    default: Any = None
    secret: bool = False
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Manifest:
    """An extension manifest in either shape, normalized."""

    id: str
    name: str
    version: str
    vendor: str = ""
    description: str = ""
    scopes: tuple[str, ...] = ()
    declares_scopes: bool = False
    events: tuple[EventSubscription, ...] = ()
    declares_events: bool = False
    actions: tuple[Mapping[str, Any], ...] = ()
    base_url: str | None = None
    secret: str | None = None
    properties: tuple[ConfigProperty, ...] = ()

    def event_version(self, event: str) -> str | None:
        """The version the manifest asks `event` in, or None when it does not want the event."""
        if not self.declares_events:
            return "v1"
        return next((e.version for e in self.events if e.name == event), None)

    @property
    def secret_keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.properties if p.secret)


@dataclass(frozen=True)
class ManifestResult:
    manifest: Manifest | None
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity in ("fatal", "error"))


def _is_reference(value: str) -> bool:
    """`env.X`, `${X}` or `$X`: a secret the manifest points at instead of containing."""
    text = value.strip()
    return text.startswith(("env.", "$", "ENV[")) or "{{" in text


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def parse_manifest(data: bytes | str, path: str = "extension.yaml") -> ManifestResult:
    """Parse and validate a manifest; diagnostics carry the line of each problem."""
    raw = data.encode() if isinstance(data, str) else data
    prov = Provenance(layer="repository", path=path)
    doc = parse_yaml(raw, path, prov)
    if not doc.ok:
        return ManifestResult(None, doc.diagnostics)
    problems: list[Diagnostic] = list(doc.diagnostics)
    root, base = doc.data, ""
    if isinstance(root.get("extension"), Mapping):
        root, base = root["extension"], "/extension"

    def report(pointer: str, code: str, message: str, hint: str = "", severity: str = "error") -> None:
        position = doc.position(base + pointer)
        line, column = position if position else (None, None)
        problems.append(Diagnostic(code, severity, message, hint, prov.at(line=line, column=column,
                                                                         pointer=base + pointer)))

    def text(key: str) -> str:
        value = root.get(key)
        if value is None:
            return ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            report(f"/{key}", "manifest_type", f"`{key}` must be text.")
            return ""
        return str(value).strip()

    name, vendor = text("name"), text("vendor")
    ext_id = text("id").lower()
    if not ext_id and name:
        ext_id = ".".join(p for p in (_slug(vendor) or "local", _slug(name)) if p)
    if not ext_id:
        report("", "manifest_id", "The manifest has neither `id` nor `name`.",
               "Add `id: com.example.my-extension` (SDK shape) or `name:` (docs shape).")
    elif not EXTENSION_ID.match(ext_id) or len(ext_id) > 128:
        report("/id", "manifest_id", f"`{ext_id[:80]}` is not a reverse-DNS id.",
               "Use lower-case words separated by dots, like com.example.marketing.")
    version = text("version") or "0.0.0"

    scopes: list[str] = []
    declares_scopes = "scopes" in root
    raw_scopes = root.get("scopes")
    if isinstance(raw_scopes, Mapping):
        for access, words in raw_scopes.items():
            if str(access).lower() not in ("read", "write"):
                report(f"/scopes/{access}", "manifest_scope", f"Scope group `{access}` is neither read nor write.")
                continue
            for index, word in enumerate(words if isinstance(words, list) else [words]):
                scope = scope_for(str(word), str(access)) if isinstance(word, str) else None
                if scope is None:
                    report(f"/scopes/{access}/{index}", "manifest_scope", f"Unknown scope `{access}: {word}`; ignored.",
                           "Known words: " + ", ".join(sorted({w for _, w in _WORDS})), "warning")
                elif scope not in scopes:
                    scopes.append(scope)
    elif isinstance(raw_scopes, list):
        for index, word in enumerate(raw_scopes):
            scope = scope_for(word) if isinstance(word, str) else None
            if scope is None:
                report(f"/scopes/{index}", "manifest_scope", f"Unknown scope `{word}`; ignored.",
                       "Use API scopes such as issues:read or comments:write.", "warning")
            elif scope not in scopes:
                scopes.append(scope)
    elif raw_scopes is not None:
        report("/scopes", "manifest_type", "`scopes` must be a list or a `{read: [...], write: [...]}` mapping.")

    events: list[EventSubscription] = []
    raw_events = root.get("events")
    if raw_events is not None and not isinstance(raw_events, list):
        report("/events", "manifest_type", "`events` must be a list of event names or `{name, version}`.")
        raw_events = []
    for index, item in enumerate(raw_events or ()):
        event_name, event_version = (item, "v1") if isinstance(item, str) else (
            (item.get("name") or item.get("event"), str(item.get("version") or "v1")) if isinstance(item, Mapping)
            else (None, "v1"))
        if not isinstance(event_name, str) or not event_name.strip():
            report(f"/events/{index}", "manifest_event", "An event needs a name like issue.created.")
            continue
        event_name = EVENT_ALIASES.get(event_name.strip(), event_name.strip())
        if not EVENT_VERSION.match(event_version):
            report(f"/events/{index}", "manifest_event", f"Event version `{event_version}` is not like v1 or v2.")
            continue
        if event_name not in EVENT_TYPES:
            report(f"/events/{index}", "manifest_event", f"Kiket never sends `{event_name}`; kept but idle.",
                   "Events sent: " + ", ".join(EVENT_TYPES), "warning")
        if all(e.name != event_name for e in events):
            events.append(EventSubscription(event_name, event_version))

    base_url, secret = None, None
    delivery = root.get("delivery")
    if isinstance(delivery, str):
        secret = delivery
    elif isinstance(delivery, Mapping):
        callback = delivery.get("callback") if isinstance(delivery.get("callback"), Mapping) else delivery
        if isinstance(callback.get("url"), str) and callback["url"].strip():
            base_url = callback["url"].strip()
        if isinstance(callback.get("secret"), str):
            secret = callback["secret"]
    elif delivery is not None:
        report("/delivery", "manifest_type", "`delivery` must be `{callback: {url, secret}}` or the secret.")
    if secret is not None and (not secret.strip() or _is_reference(secret)):
        secret = None
    if base_url is not None and not re.match(r"^https?://[^\s/]+", base_url):
        report("/delivery/callback/url", "manifest_url", f"`{base_url[:80]}` is not an http(s) URL.")
        base_url = None

    properties: list[ConfigProperty] = []
    configuration = root.get("configuration")
    raw_properties = configuration.get("properties") if isinstance(configuration, Mapping) else None
    if isinstance(raw_properties, Mapping):
        for key, spec in raw_properties.items():
            key = str(key)
            if not PROPERTY_KEY.match(key):
                report(f"/configuration/properties/{key}", "manifest_property", f"`{key[:64]}` is not a valid key.",
                       "Use letters, digits and _ . - (at most 64).")
                continue
            spec = spec if isinstance(spec, Mapping) else {}
            properties.append(ConfigProperty(
                key=key, type=str(spec.get("type") or "string"), default=spec.get("default"),
                secret=spec.get("secret") is True, description=str(spec.get("description") or ""),
                required=spec.get("required") is True))
    elif configuration is not None and raw_properties is not None:
        report("/configuration/properties", "manifest_type", "`configuration.properties` must be a mapping.")

    actions = root.get("actions") if isinstance(root.get("actions"), list) else []
    if any(d.severity in ("fatal", "error") for d in problems):
        return ManifestResult(None, tuple(problems))
    manifest = Manifest(
        id=ext_id, name=name or ext_id, version=version, vendor=vendor, description=text("description"),
        scopes=tuple(scopes) if declares_scopes else DEFAULT_EXTENSION_SCOPES, declares_scopes=declares_scopes,
        events=tuple(events), declares_events=raw_events is not None, actions=tuple(a for a in actions
                                                                                    if isinstance(a, Mapping)),
        base_url=base_url, secret=secret, properties=tuple(properties),
    )
    return ManifestResult(manifest, tuple(problems))


# Replies


@dataclass(frozen=True)
class ReplyDirective:
    kind: str
    params: Mapping[str, Any]

    @property
    def scope(self) -> str:
        return DIRECTIVE_SCOPES[self.kind]


@dataclass(frozen=True)
class Decision:
    status: str
    message: str = ""
    output_fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """What an extension's 2xx reply asks for: directives, or a decision; `ignored` says what was not understood."""

    directives: tuple[ReplyDirective, ...] = ()
    decision: Decision | None = None
    ignored: tuple[str, ...] = ()


def _directive(item: Any) -> ReplyDirective | str:
    """A validated directive, or why it is ignored."""
    if not isinstance(item, Mapping):
        return "an action is not an object"
    kind = item.get("kind") or item.get("type") or item.get("action")
    if kind == "comment":
        kind = "add_comment"
    if kind not in DIRECTIVE_SCOPES:
        return f"unknown action kind {str(kind)[:40]!r}"
    if kind == "add_comment":
        body = item.get("body")
        if not isinstance(body, str) or not body.strip():
            return "add_comment needs a non-empty body"
        return ReplyDirective(kind, {"body": body.strip()[:MAX_COMMENT]})
    if kind == "set_field":
        name = item.get("field")
        if not isinstance(name, str) or not name.strip():
            return "set_field needs a field"
        return ReplyDirective(kind, {"field": name.strip(), "value": item.get("value")})
    if kind == "transition":
        target, transition = item.get("to"), item.get("transition")
        if not isinstance(target, str) and not isinstance(transition, str):
            return "transition needs `to` or `transition`"
        return ReplyDirective(kind, {"to": target if isinstance(target, str) else None,
                                     "transition": transition if isinstance(transition, str) else None})
    if kind == "assign":
        assignee = item.get("assignee", item.get("to"))
        if assignee is not None and not isinstance(assignee, str):
            return "assign needs an assignee email (or null)"
        return ReplyDirective(kind, {"assignee": assignee.strip() if isinstance(assignee, str) and assignee.strip()
                                     else None})
    title, body = item.get("title"), item.get("body", item.get("message"))
    if not isinstance(title, str) and not isinstance(body, str):
        return "notify needs a title or a body"
    level = str(item.get("level") or "info").lower()
    level = "critical" if level == "error" else level
    return ReplyDirective(kind, {"title": (title or "")[:200], "body": (body or "")[:2000],
                                 "level": level if level in LEVELS else "info"})


def parse_reply(body: Any) -> Reply:
    """Read a 2xx reply's JSON (spec §5); anything not understood is listed in `ignored`, never raised."""
    if not isinstance(body, Mapping):
        return Reply(ignored=("the reply is not a JSON object",) if body not in (None, "") else ())
    directives, ignored = [], []
    actions = body.get("actions")
    if actions is not None:
        for item in actions if isinstance(actions, list) else [actions]:
            parsed = _directive(item)
            if isinstance(parsed, str):
                ignored.append(parsed)
            else:
                directives.append(parsed)
    decision = None
    status = body.get("status")
    if isinstance(status, str) and status in ("allow", "deny", "pending"):
        metadata = body.get("metadata") if isinstance(body.get("metadata"), Mapping) else {}
        raw_fields = metadata.get("output_fields") if isinstance(metadata.get("output_fields"), Mapping) else {}
        decision = Decision(status, str(body.get("message") or "")[:2000],
                            {str(k)[:100]: str(v)[:1000] for k, v in list(raw_fields.items())[:50]})
    elif status is not None:
        ignored.append(f"unknown decision status {str(status)[:20]!r}")
    return Reply(tuple(directives), decision, tuple(ignored))
