"""Automations (spec §10): project files (list or one per file) and workflow-scoped recipes."""

from __future__ import annotations

import re
from typing import Any

from app.kiket.actions import normalize_actions
from app.kiket.conditions import All, TIME_BASED_FIELDS, parse_condition, referenced_paths
from app.kiket.filecache import per_file
from app.kiket.model import Automation
from app.kiket.reader import FileContext, humanize, join, type_name
from app.kiket.suggest import catalogue_hint

# The §10.2 catalogue, in the order the reference lists it.
CATALOGUE = (
    "issue.created", "issue.updated", "issue.transitioned", "issue.assigned", "issue.commented", "issue.closed",
    "sla.warning", "sla.breach", "approval.requested", "approval.granted", "approval.denied", "approval.overdue",
    "checklist.completed", "schedule.cron", "workflow.updated", "ai.suggested", "intake.submitted",
)
EVENTS = frozenset(CATALOGUE)
ISSUE_EVENT_SUFFIXES = ("created", "updated", "transitioned", "assigned", "commented", "closed")
# The workspace/case vocabulary (§16): `case.created` is `issue.created`.
CASE_EVENTS = {f"case.{suffix}": f"issue.{suffix}" for suffix in ISSUE_EVENT_SUFFIXES}
# Aliases read silently (the original names of §10.2) ...
EVENT_ALIASES = {"comment.created": "issue.commented", "sla_warning": "sla.warning", "sla.breached": "sla.breach",
                 "sla_breach": "sla.breach", "config.synced": "workflow.updated", **CASE_EVENTS}
# ... and the later ones, read with a warning naming the catalogue event (§16).
WARNED_ALIASES = {"schedule": "schedule.cron", "scheduled": "schedule.cron",
                  "workflow.after_transition": "issue.transitioned"}
NEVER_EMITTED = frozenset({"ai.suggested", "intake.submitted"})
AUTOMATION_KEYS = frozenset({"id", "key", "name", "description", "version", "enabled", "trigger", "conditions", "when",
                             "actions", "requires_approval", "metadata", "cron", "schedule", "event", "on"})
TRIGGER_KEYS = frozenset({"event", "events", "on", "conditions", "when", "cron", "schedule"})
_CRON_FIELD = re.compile(r"^[0-9*/,\-A-Za-z?]+$")


@per_file
def normalize_automation_file(ctx: FileContext, scope: str, recipe: bool) -> list[Automation]:
    """All automations of one file, with their scope (`project` or a workflow id)."""
    data = ctx.doc.data
    if recipe:
        ctx.extra(data, "", {"model_version", "recipe", "recipes"}, "the recipe file")
        if isinstance(data.get("recipe"), dict):
            entries = [(data["recipe"], "/recipe")]
        else:
            nodes = ctx.listing(data.get("recipes"), "/recipes", "recipes")
            entries = [(node, join("/recipes", i)) for i, node in enumerate(nodes)]
            if not entries:
                ctx.diag("missing_trigger", "The recipe file has no `recipe:` block; nothing is loaded.",
                         "Put the recipe under `recipe:`.", "")
    elif "automations" in data:
        ctx.extra(data, "", {"model_version", "automations"}, "the automations file")
        nodes = ctx.listing(data["automations"], "/automations", "automations")
        entries = [(node, join("/automations", i)) for i, node in enumerate(nodes)]
    elif isinstance(data.get("automation"), dict):
        ctx.extra(data, "", {"model_version", "automation"}, "the automation file")
        entries = [(data["automation"], "/automation")]
    else:
        entries = [({k: v for k, v in data.items() if k != "model_version"}, "")]
    result = []
    for index, (node, ptr) in enumerate(entries, start=1):
        automation = _automation(ctx, node, ptr, scope, index, len(entries))
        if automation is not None:
            result.append(automation)
    return result


def canonical_event_name(name: str) -> str | None:
    """The catalogue event a name or any alias means, None when unknown."""
    name = name.strip()
    name = EVENT_ALIASES.get(name) or WARNED_ALIASES.get(name) or name
    return name if name in EVENTS else None


def _events(ctx: FileContext, value: Any, ptr: str) -> tuple[str, ...] | None:
    names = value if isinstance(value, list) else [value]
    events = []
    for index, name in enumerate(names):
        item_ptr = join(ptr, index) if isinstance(value, list) else ptr
        canonical = canonical_event_name(name) if isinstance(name, str) else None
        if canonical is None:
            known = list(CATALOGUE) + sorted(EVENT_ALIASES) + sorted(WARNED_ALIASES)
            ctx.diag("unknown_event", f"The trigger event {name!r} does not exist; the automation is dropped.",
                     catalogue_hint(str(name), known, "Events"), item_ptr)
            return None
        written = name.strip()
        if written in WARNED_ALIASES:
            ctx.diag("event_alias", f"The trigger event '{written}' is read as '{canonical}'.",
                     f"Write `{canonical}`.", item_ptr)
        elif written in CASE_EVENTS:
            ctx.vocabulary(item_ptr, written)
        if canonical in NEVER_EMITTED:
            ctx.diag("event_never_emitted", f"The event {canonical} is accepted but never emitted by this server; the"
                     " automation never runs.", "Trigger on another event.", item_ptr)
        events.append(canonical)
    return tuple(events)


def _cron(node: dict) -> Any:
    """The cron expression of a trigger or automation: `cron`, or `schedule` as text or `{cron: ...}` (§16)."""
    if node.get("cron") is not None:
        return node["cron"]
    schedule = node.get("schedule")
    if isinstance(schedule, dict):
        return schedule.get("cron", schedule.get("expression"))
    return schedule


def _automation(ctx: FileContext, node: Any, ptr: str, scope: str, index: int, count: int) -> Automation | None:
    if not isinstance(node, dict):
        ctx.diag("missing_trigger", f"An automation should be a mapping, not {type_name(node)}; dropped.",
                 "Write `- {id, trigger, actions}`.", ptr)
        return None
    extra = ctx.extra(node, ptr, AUTOMATION_KEYS, "the automation")
    raw_id, id_ptr = ctx.pick(node, ptr, "id", "key")
    if raw_id is None:
        raw_id = ctx.stem if count == 1 and not ptr.startswith("/automations") else f"{ctx.stem}-{index}"
        id_ptr = ptr
    auto_id = ctx.identifier(raw_id, id_ptr, "The automation id")
    if auto_id is None:
        return None
    trigger = node.get("trigger", node.get("event", node.get("on")))
    trigger_ptr = f"{ptr}/trigger" if "trigger" in node else join(ptr, "event" if "event" in node else "on")
    conditions: list[tuple[Any, str]] = []
    cron = _cron(node)
    if isinstance(trigger, dict):
        ctx.extra(trigger, trigger_ptr, TRIGGER_KEYS, "the trigger")
        event_value, event_ptr = ctx.pick(trigger, trigger_ptr, "event", "events", "on")
        for key in ("conditions", "when"):
            if trigger.get(key) is not None:
                conditions.append((trigger[key], join(trigger_ptr, key)))
        trigger_cron = _cron(trigger)
        cron = trigger_cron if trigger_cron is not None else cron
    else:
        event_value, event_ptr = trigger, trigger_ptr
    if event_value is None and cron is not None:
        event_value = "schedule.cron"
    if event_value is None:
        ctx.diag("missing_trigger", f"Automation '{auto_id}' has no trigger event; it is dropped.",
                 "Add `trigger: {event: issue.created}`.", ptr)
        return None
    events = _events(ctx, event_value, event_ptr)
    if events is None:
        return None
    if "schedule.cron" in events:
        if not isinstance(cron, str) or len(cron.split()) != 5 or not all(_CRON_FIELD.match(f) for f in cron.split()):
            ctx.diag("invalid_cron", f"Automation '{auto_id}' runs on schedule.cron but has no valid 5-field `cron`;"
                     " it is dropped.", "Write e.g. `cron: \"0 9 * * 1\"`.", ptr)
            return None
    for key in ("conditions", "when"):
        if node.get(key) is not None:
            conditions.append((node[key], join(ptr, key)))
    parsed = []
    for value, cond_ptr in conditions:
        condition, diags = parse_condition(value, cond_ptr, ctx.locate)
        ctx.extend(diags)
        parsed.append(condition)
    condition = parsed[0] if len(parsed) == 1 else All(items=tuple(parsed), prov=ctx.locate(ptr)) if parsed else None
    actions_node = node.get("actions")
    actions = normalize_actions(ctx, actions_node, f"{ptr}/actions", "actions",
                                None if scope == "project" else scope)
    if not actions:
        ctx.diag("missing_actions", f"Automation '{auto_id}' has no valid actions; it is dropped.",
                 "Add at least one action under `actions:`.", f"{ptr}/actions" if actions_node else ptr)
        return None
    sweep = bool(condition is not None and any(p.split(".")[0] in TIME_BASED_FIELDS
                                               for p in referenced_paths(condition)))
    metadata = ctx.mapping(node.get("metadata"), f"{ptr}/metadata", "metadata") or {}
    return Automation(
        id=auto_id, name=ctx.text(node.get("name"), f"{ptr}/name", "The name") or humanize(auto_id),
        scope=scope, events=events, actions=actions, condition=condition, cron=cron if isinstance(cron, str) else None,
        description=ctx.text(node.get("description"), f"{ptr}/description", "The description"),
        version=ctx.text(node.get("version"), f"{ptr}/version", "The version"),
        enabled=ctx.boolean(node.get("enabled"), f"{ptr}/enabled", "enabled", True),
        requires_approval=ctx.boolean(node.get("requires_approval"), f"{ptr}/requires_approval",
                                      "requires_approval", False),
        sweep=sweep, metadata=metadata, prov=ctx.locate(ptr), extra=extra,
    )
