"""Workflow files (spec §8): header, states, kinds, SLA, documents, approval, checklists, hooks, transitions."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from app.kiket.actions import normalize_actions
from app.kiket.conditions import All, Any as AnyOf, ChecklistComplete, Not, parse_condition
from app.kiket.diagnostics import Diagnostic
from app.kiket.durations import parse_duration, parse_share
from app.kiket.filecache import per_file
from app.kiket.model import (
    ApprovalPolicy, Approver, Checklist, ChecklistItem, SlaPolicy, SlaRule, State, Transition, Workflow,
    content_hash,
)
from app.kiket.approvals import ApprovalReader
from app.kiket.reader import FileContext, humanize, join, looks_like_gate, resolve_key, slugify, type_name

KIND_ALIASES = {
    "initial": "initial", "start": "initial", "new": "initial",
    "active": "active",
    "final": "final", "end": "final", "terminal": "final", "done": "final", "closed": "final",
    "gateway": "active",
}
CATEGORIES = frozenset({"pending", "active", "review", "completed", "blocked", "cancelled"})
DEFAULT_CATEGORY = {"initial": "pending", "active": "active", "final": "completed"}
HOOKS = {"on_enter": "on_enter", "on_exit": "on_exit", "on_sla_warning": "on_sla_warning",
         "on_sla_breach": "on_sla_breach", "on_complete": "on_checklist_complete",
         "on_checklist_complete": "on_checklist_complete"}
STATE_KEYS = frozenset({
    "key", "id", "type", "kind", "category", "metadata", "label", "name", "color", "icon", "description",
    "wip_limit", "sla", "required_documents", "approval", "checklist", "checklists", "conditions",
    "require_approval", "requires_approval", "approval_chain", *HOOKS,
})
METADATA_KEYS = frozenset({"label", "name", "color", "icon", "description"})
TOP_KEYS = frozenset({"model_version", "workflow", "key", "id", "name", "description", "version", "states",
                      "transitions", "process"})
HEADER_KEYS = frozenset({"id", "key", "name", "description", "version", "states", "transitions", "metadata"})
TRANSITION_KEYS = frozenset({
    "from", "to", "name", "key", "id", "conditions", "requires", "required_fields", "when", "comment_required",
    "requires_comment", "approval_required", "requires_approval", "approval", "roles", "actions",
    "on_transition", "description", "metadata", "require_approval", "approval_chain",
})
REQUIRES_KEYS = frozenset({"fields", "predicate", "comment", "approval", "roles"})
# Gates a transition's `metadata` may carry (§16), by the canonical gate they mean.
METADATA_GATES = {"fields": ("requires_fields", "required_fields"), "comment": ("requires_comment", "comment_required"),
                  "approval": ("requires_approval", "approval_required")}


@per_file
def normalize_workflow(ctx: FileContext, model_version: str) -> Workflow | None:
    """Normalize one workflow file; None when it has a fatal problem (already reported)."""
    data: dict = ctx.doc.data
    header = ctx.mapping(data.get("workflow"), "/workflow", "The workflow block") or {}
    extra = ctx.extra(data, "", TOP_KEYS, "the workflow file")
    if "process" in data:
        extra["process"] = data["process"]  # model_version 2 starters: kept, not interpreted (§2)
    if header:
        extra.update(ctx.extra(header, "/workflow", HEADER_KEYS, "the workflow block"))
    wf_id, id_ptr = None, ""
    for node, key, ptr in ((header, "id", "/workflow/id"), (header, "key", "/workflow/key"),
                           (data, "key", "/key"), (data, "id", "/id")):
        if node.get(key) is not None:
            wf_id, id_ptr = node[key], ptr
            break
    if wf_id is None:
        wf_id, id_ptr = ctx.stem, ""
    wf_id = ctx.identifier(wf_id, id_ptr, "The workflow id")
    if wf_id is None:
        return None
    if wf_id != ctx.stem:
        ctx.diag("workflow_id_mismatch", f"The workflow id '{wf_id}' differs from its file name '{ctx.stem}'.",
                 "References use the id; the file name only helps find it.", id_ptr)
    name = ctx.text(data.get("name", header.get("name")), "/name" if "name" in data else "/workflow/name",
                    "The workflow name") or humanize(wf_id)
    description = ctx.text(data.get("description", header.get("description")), "/description", "The description")
    declared_version = ctx.text(data.get("version", header.get("version")), "/version", "The version")
    if "states" in data:
        states_node, states_ptr = data["states"], "/states"
    else:
        states_node, states_ptr = header.get("states"), "/workflow/states"
    if "transitions" in data:
        trans_node, trans_ptr = data["transitions"], "/transitions"
    else:
        trans_node, trans_ptr = header.get("transitions"), "/workflow/transitions"
    dialect = "list" if isinstance(states_node, list) else "repo" if "workflow" in data else "docs"
    builder = _WorkflowBuilder(ctx, wf_id)
    raw_states = builder.raw_states(states_node, states_ptr)
    if raw_states is None:
        return None
    raw_transitions = builder.raw_transitions(trans_node, trans_ptr, raw_states)
    states = builder.states(raw_states, raw_transitions)
    if states is None:
        return None
    transitions = builder.transitions(raw_transitions, states)
    if builder.fatal:
        return None
    transitions = builder.apply_gates(states, transitions)
    builder.check_graph(states, transitions)
    initial = next(key for key, state in states.items() if state.kind == "initial")
    finals = tuple(key for key, state in states.items() if state.kind == "final")
    workflow = Workflow(
        id=wf_id, name=name, version="", states=states, transitions=transitions, initial=initial,
        finals=finals, dialect=dialect, description=description, declared_version=declared_version,
        model_version=model_version, prov=ctx.locate(id_ptr).at(pointer=""), extra=extra,
    )
    # The hash sorts mapping keys, so the declaration order of states is hashed explicitly.
    return replace(workflow, version=content_hash((workflow, tuple(states))))


class _WorkflowBuilder:
    def __init__(self, ctx: FileContext, wf_id: str) -> None:
        self.ctx = ctx
        self.wf_id = wf_id
        self.fatal = False
        self.checklist_ids: dict[str, str] = {}
        self.item_ids: set[str] = set()
        self.approvals = ApprovalReader(ctx, wf_id)

    def raw_states(self, node: Any, pointer: str) -> list[tuple[str, dict, str]] | None:
        ctx = self.ctx
        entries: list[tuple[Any, Any, str]] = []
        if isinstance(node, dict):
            entries = [(key, body, join(pointer, key)) for key, body in node.items()]
        elif isinstance(node, list):
            for index, item in enumerate(node):
                ptr = join(pointer, index)
                if isinstance(item, dict):
                    key = item.get("key", item.get("id"))
                    entries.append((key, {k: v for k, v in item.items() if k not in ("key", "id")}, ptr))
                else:
                    entries.append((item, {}, ptr))
        elif node is not None:
            ctx.diag("invalid_value", f"states should be a mapping or a list, not {type_name(node)}.",
                     "Write `states:` followed by one key per state.", pointer)
        result: list[tuple[str, dict, str]] = []
        seen: dict[str, str] = {}
        for key, body, ptr in entries:
            key = ctx.identifier(key, ptr, "The state key")
            if key is None:
                continue
            if body is None:
                body = {}
            if not isinstance(body, dict):
                ctx.diag("invalid_value", f"State '{key}' should be a mapping, not {type_name(body)}; defaults used.",
                         "Write the state's settings as keys under it.", ptr)
                body = {}
            if key.lower() in seen:
                ctx.diag("duplicate_state", f"State '{key}' is declared twice in workflow '{self.wf_id}'"
                         f" (as '{seen[key.lower()]}' too).", "State keys must differ, also in letter case.", ptr)
                self.fatal = True
                continue
            seen[key.lower()] = key
            result.append((key, body, ptr))
        if not result:
            ctx.diag("no_states", f"Workflow '{self.wf_id}' declares no states.", "Add a `states:` section.",
                     pointer if node is not None else "")
            return None
        return result

    def _state_ref(self, name: Any, keys: list[str], pointer: str, what: str) -> str | None:
        ctx = self.ctx
        if not isinstance(name, (str, int)) or isinstance(name, bool):
            ctx.diag("unknown_state", f"The transition's {what} is {type_name(name)}, not a state key.",
                     "Name a state of this workflow.", pointer)
            self.fatal = True
            return None
        found, how = resolve_key(str(name), keys)
        if found is None:
            ctx.diag("unknown_state", f"The transition's {what} '{name}' is not a state of workflow '{self.wf_id}'.",
                     "Use one of: " + ", ".join(keys) + ".", pointer)
            self.fatal = True
            return None
        if how != "exact":
            ctx.diag("fuzzy_reference", f"'{name}' matched state '{found}' by {how}.", f"Write '{found}'.", pointer)
        return found

    def raw_transitions(self, node: Any, pointer: str, raw_states: list) -> list[dict]:
        ctx = self.ctx
        keys = [key for key, _, _ in raw_states]
        entries: list[tuple[dict, str, str | None]] = []
        if isinstance(node, list):
            for index, item in enumerate(node):
                entries.append((item, join(pointer, index), None))
        elif isinstance(node, dict):
            for key, item in node.items():
                entries.append((item, join(pointer, key), str(key)))
        elif node is not None:
            ctx.diag("invalid_value", f"transitions should be a list, not {type_name(node)}.",
                     "Write `transitions:` as a list of `{from, to, name}`.", pointer)
        result = []
        for item, ptr, map_key in entries:
            if not isinstance(item, dict) or "to" not in item or "from" not in item:
                ctx.diag("invalid_transition", "A transition needs `from` and `to`; it is dropped.",
                         "Write e.g. `- {from: open, to: done, name: Close}`.", ptr)
                continue
            raw_from = item["from"]
            if raw_from == "*":
                sources: Any = "*"
            else:
                names = raw_from if isinstance(raw_from, list) else [raw_from]
                sources = []
                for index, name in enumerate(names):
                    found = self._state_ref(name, keys, join(ptr, "from", index) if isinstance(raw_from, list)
                                            else f"{ptr}/from", "source")
                    if found and found not in sources:
                        sources.append(found)
                sources = tuple(sources)
                if not sources:
                    continue
            target = self._state_ref(item["to"], keys, f"{ptr}/to", "target")
            if target is None:
                continue
            result.append({"node": item, "ptr": ptr, "sources": sources, "target": target, "map_key": map_key})
        return result

    def states(self, raw_states: list, raw_transitions: list) -> dict[str, State] | None:
        ctx = self.ctx
        kinds: dict[str, str | None] = {}
        gateways: set[str] = set()
        categories: dict[str, tuple[str | None, str]] = {}
        for key, body, ptr in raw_states:
            kind_value, kind_ptr = ctx.pick(body, ptr, "type", "kind")
            category = body.get("category")
            kind = None
            if kind_value is not None:
                if isinstance(kind_value, str) and kind_value.lower() in KIND_ALIASES:
                    kind = KIND_ALIASES[kind_value.lower()]
                    if kind_value.lower() == "gateway":
                        gateways.add(key)
                else:
                    ctx.diag("unknown_state_kind", f"State '{key}' has type {kind_value!r}; it is treated as active.",
                             "Use initial, active, final or gateway.", kind_ptr)
                    kind = "active"
                categories[key] = (category, f"{ptr}/category")
            elif isinstance(category, str) and category.lower() in ("initial", "active", "final"):
                kind = category.lower()
                categories[key] = (None, f"{ptr}/category")
            else:
                categories[key] = (category, f"{ptr}/category")
            kinds[key] = kind
        if all(kind is None for kind in kinds.values()):
            outgoing = {s for t in raw_transitions for s in (kinds if t["sources"] == "*" else t["sources"])}
            first = raw_states[0][0]
            for key in kinds:
                kinds[key] = "initial" if key == first else "active" if key in outgoing else "final"
            ctx.diag("kind_inferred", f"No state of workflow '{self.wf_id}' declares a type: '{first}' is initial, "
                     "states without outgoing transitions are final.",
                     "Add `type: initial|active|final` to the states.", raw_states[0][2])
        else:
            kinds = {key: kind or "active" for key, kind in kinds.items()}
        initials = [key for key, kind in kinds.items() if kind == "initial"]
        if len(initials) != 1:
            first_ptr = raw_states[0][2]
            if not initials:
                ctx.diag("no_initial_state", f"Workflow '{self.wf_id}' has no initial state.",
                         "Mark exactly one state with `type: initial`.", first_ptr)
            else:
                ptr = next(p for k, _, p in raw_states if k == initials[1])
                ctx.diag("multiple_initial_states",
                         f"Workflow '{self.wf_id}' has {len(initials)} initial states: {', '.join(initials)}.",
                         "Keep `type: initial` on one state only.", ptr)
            self.fatal = True
            return None
        if "final" not in kinds.values():
            ctx.diag("no_final_state", f"Workflow '{self.wf_id}' has no final state, so its issues never resolve.",
                     "Mark at least one state with `type: final`.", raw_states[0][2])
        states: dict[str, State] = {}
        for key, body, ptr in raw_states:
            states[key] = self.state(key, body, ptr, kinds[key], key in gateways, categories[key])
        return states

    def state(self, key: str, body: dict, ptr: str, kind: str, gateway: bool,
              category_info: tuple[Any, str]) -> State:
        ctx = self.ctx
        owner = f"state '{key}' of workflow '{self.wf_id}'"
        extra = ctx.extra(body, ptr, STATE_KEYS, f"state '{key}'", gate=owner)
        meta = ctx.mapping(body.get("metadata"), f"{ptr}/metadata", "metadata") or {}
        if meta:
            extra.update(ctx.extra(meta, f"{ptr}/metadata", METADATA_KEYS, f"the metadata of state '{key}'",
                                   gate=owner))

        def attr(name: str, *aliases: str) -> str | None:
            for source, base in ((meta, f"{ptr}/metadata"), (body, ptr)):
                for candidate in (name, *aliases):
                    if source.get(candidate) is not None:
                        return ctx.text(source[candidate], join(base, candidate), f"The {name} of state '{key}'")
            return None

        category, cat_ptr = category_info
        if category is None:
            category = DEFAULT_CATEGORY[kind]
        elif not isinstance(category, str):
            ctx.diag("invalid_value", f"The category of state '{key}' is not text; {DEFAULT_CATEGORY[kind]} is used.",
                     "Use pending, active, review or completed.", cat_ptr)
            category = DEFAULT_CATEGORY[kind]
        elif category not in CATEGORIES:
            ctx.diag("unknown_category", f"State '{key}' has category '{category}', which is not one of "
                     "pending, active, review, completed, blocked, cancelled; it is kept.",
                     "Use one of the standard categories so boards and reports group it.", cat_ptr)
        checklists, on_complete = self.checklists(key, body, ptr)
        hooks = {}
        for name, canonical in HOOKS.items():
            if name in body:
                actions = normalize_actions(ctx, body[name], join(ptr, name), f"{name} of state '{key}'", self.wf_id)
                hooks[canonical] = hooks.get(canonical, ()) + actions
        if on_complete:
            hooks["on_checklist_complete"] = hooks.get("on_checklist_complete", ()) + on_complete
        approval = self.approvals.gather(body, ptr, owner)
        if approval is None and body.get("requires_approval") is True:
            approval = ApprovalPolicy(mode="any", required=1, approvers=(), prov=ctx.locate(f"{ptr}/requires_approval"))
        entry_guard = None
        if body.get("conditions") is not None:
            entry_guard, diags = parse_condition(body["conditions"], f"{ptr}/conditions", ctx.locate)
            ctx.extend(diags)
            ctx.diag("entry_guard", f"The conditions of state '{key}' guard every transition into it.", "",
                     f"{ptr}/conditions")
        documents = []
        for index, doc in enumerate(ctx.listing(body.get("required_documents"), f"{ptr}/required_documents",
                                                "required_documents")):
            doc_key = doc.get("key") if isinstance(doc, dict) else doc
            if isinstance(doc_key, str) and doc_key:
                documents.append(doc_key)
                ctx.ref("document", doc_key, join(ptr, "required_documents", index), key, self.wf_id)
        return State(
            key=key, label=attr("label", "name") or humanize(key), kind=kind, category=category,
            description=attr("description"), color=attr("color"), icon=attr("icon"), gateway=gateway,
            wip_limit=ctx.integer(body.get("wip_limit"), f"{ptr}/wip_limit", f"wip_limit of state '{key}'", 1),
            sla=self.sla(key, body.get("sla"), f"{ptr}/sla") if body.get("sla") is not None else None,
            required_documents=tuple(documents),
            approval=approval, checklists=checklists, hooks=hooks, prov=ctx.locate(ptr), extra=extra,
            entry_guard=entry_guard,
        )

    def _duration(self, value: Any, pointer: str, what: str) -> int | None:
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.ctx.diag("invalid_duration", f"The SLA {what} threshold: {exc}; it is dropped.",
                          "Write e.g. `15m`, `4h`, `2d` or `1d12h`.", pointer)
            return None

    def sla_rule(self, node: dict, ptr: str, state: str, default: bool) -> SlaRule | None:
        ctx = self.ctx
        breach_value, breach_ptr = ctx.pick(node, ptr, "breach", "target", "duration")
        breach = self._duration(breach_value, breach_ptr, "breach") if breach_value is not None else None
        warning = share = None
        if node.get("warning") is not None:
            try:
                share = parse_share(node["warning"])
            except ValueError as exc:
                ctx.diag("invalid_duration", f"The SLA warning threshold: {exc}; it is dropped.",
                         "Write a duration like `4h` or a share like `80%`.", f"{ptr}/warning")
                share = -1.0
            if share is None:
                warning = self._duration(node["warning"], f"{ptr}/warning", "warning")
            elif share < 0:
                share = None
            elif breach is None:
                ctx.diag("invalid_value", "An SLA warning given as a share needs a breach threshold; it is dropped.",
                         "Add `breach:`.", f"{ptr}/warning")
                share = None
            else:
                warning = int(breach * share)
        if warning is None and breach is None:
            ctx.diag("invalid_sla_rule", f"An SLA rule of state '{state}' has no valid warning or breach threshold;"
                     " it is dropped.", "Add `breach: 48h` (and optionally `warning: 24h`).", ptr)
            return None
        if warning is not None and breach is not None and warning >= breach:
            ctx.diag("sla_warning_after_breach", f"The SLA warning of state '{state}' is not earlier than its breach.",
                     "Make the warning threshold shorter than the breach threshold.", f"{ptr}/warning")
        condition = None
        if not default and node.get("condition", node.get("when")) is not None:
            cond_value, cond_ptr = ctx.pick(node, ptr, "condition", "when")
            condition, diags = parse_condition(cond_value, cond_ptr, ctx.locate)
            ctx.extend(diags)
        return SlaRule(when=condition, warning_s=warning, breach_s=breach, warning_share=share, default=default,
                       prov=ctx.locate(ptr))

    def sla(self, state: str, node: Any, ptr: str) -> SlaPolicy | None:
        ctx = self.ctx
        rules: list[SlaRule] = []
        business_hours = False
        on_warning: tuple = ()
        on_breach: tuple = ()
        known_rule = {"condition", "when", "default", "warning", "breach", "target", "duration", "business_hours"}
        if isinstance(node, (str, int, float)) and not isinstance(node, bool):
            breach = self._duration(node, ptr, "breach")
            if breach is not None:
                rules.append(SlaRule(when=None, warning_s=None, breach_s=breach, default=True, prov=ctx.locate(ptr)))
        elif isinstance(node, dict):
            ctx.extra(node, ptr, known_rule | {"on_warning", "on_breach"}, f"the SLA of state '{state}'")
            rule = self.sla_rule(node, ptr, state, True)
            if rule:
                rules.append(rule)
            business_hours = ctx.boolean(node.get("business_hours"), f"{ptr}/business_hours", "business_hours",
                                         False)
            on_warning = normalize_actions(ctx, node.get("on_warning"), f"{ptr}/on_warning", "on_warning",
                                           self.wf_id)
            on_breach = normalize_actions(ctx, node.get("on_breach"), f"{ptr}/on_breach", "on_breach", self.wf_id)
        elif isinstance(node, list):
            seen_default = False
            for index, item in enumerate(node):
                item_ptr = join(ptr, index)
                if not isinstance(item, dict):
                    ctx.diag("invalid_sla_rule", f"An SLA rule should be a mapping, not {type_name(item)}; dropped.",
                             "Write `- {warning: 1h, breach: 4h, condition: ...}`.", item_ptr)
                    continue
                ctx.extra(item, item_ptr, known_rule | {"on_warning", "on_breach"}, "an SLA rule")
                is_default = item.get("default") is True or item.get("condition", item.get("when")) is None
                rule = self.sla_rule(item, item_ptr, state, is_default)
                if rule is None:
                    continue
                if is_default and seen_default:
                    ctx.diag("invalid_sla_rule", f"State '{state}' has a second default SLA rule; it is dropped.",
                             "Keep one `default: true` rule, last.", item_ptr)
                    continue
                if seen_default and not is_default:
                    ctx.diag("sla_default_not_last", f"The default SLA rule of state '{state}' is not the last;"
                             " rules after it are only used when their condition holds first.",
                             "Move the `default: true` rule to the end.", item_ptr)
                seen_default = seen_default or is_default
                rules.append(rule)
                if item.get("business_hours") is True:
                    business_hours = True
        else:
            ctx.diag("invalid_value", f"The SLA of state '{state}' should be a mapping or a list; it is ignored.",
                     "Write `sla: {warning: 24h, breach: 48h}`.", ptr)
        if not rules and not on_warning and not on_breach:
            return None
        return SlaPolicy(rules=tuple(rules), business_hours=business_hours, on_warning=on_warning,
                         on_breach=on_breach, prov=ctx.locate(ptr))

    def checklists(self, state: str, body: dict, ptr: str) -> tuple[dict[str, Checklist], tuple]:
        """The state's checklists, and the actions of their own `on_complete` (§16: the state's on_complete)."""
        ctx = self.ctx
        owner = f"the checklist of state '{state}' of workflow '{self.wf_id}'"
        on_complete: tuple = ()
        nodes: list[tuple[Any, str]] = []
        if body.get("checklist") is not None:
            nodes.append((body["checklist"], f"{ptr}/checklist"))
        for index, item in enumerate(ctx.listing(body.get("checklists"), f"{ptr}/checklists", "checklists")):
            nodes.append((item, join(ptr, "checklists", index)))
        result: dict[str, Checklist] = {}
        for node, node_ptr in nodes:
            if isinstance(node, list):
                node = {"items": node}
            if not isinstance(node, dict):
                ctx.diag("invalid_value", f"A checklist should be a mapping, not {type_name(node)}; ignored.",
                         "Write `checklist: {id, title, items: [...]}`.", node_ptr)
                continue
            ctx.extra(node, node_ptr, {"id", "key", "title", "name", "required_mode", "mode", "items", "on_complete",
                                       "description"}, "the checklist", gate=owner)
            if node.get("on_complete") is not None:
                on_complete += normalize_actions(ctx, node["on_complete"], f"{node_ptr}/on_complete",
                                                 f"on_complete of the checklist of state '{state}'", self.wf_id)
            raw_id, id_ptr = ctx.pick(node, node_ptr, "id", "key")
            cl_id = ctx.identifier(raw_id if raw_id is not None else f"{state}_checklist", id_ptr, "The checklist id")
            if cl_id is None:
                continue
            if cl_id.lower() in self.checklist_ids:
                ctx.diag("duplicate_checklist", f"Checklist '{cl_id}' is declared twice in workflow '{self.wf_id}'.",
                         "Give each checklist of a workflow its own id.", id_ptr)
                self.fatal = True
                continue
            self.checklist_ids[cl_id.lower()] = cl_id
            mode_value, mode_ptr = ctx.pick(node, node_ptr, "required_mode", "mode")
            mode = mode_value if mode_value in ("all", "any") else "all"
            if mode_value is not None and mode_value not in ("all", "any"):
                ctx.diag("invalid_value", f"required_mode {mode_value!r} is not all or any; all is used.",
                         "Use all or any.", mode_ptr)
            items = []
            for index, item in enumerate(ctx.listing(node.get("items"), f"{node_ptr}/items", "items")):
                parsed = self.item(item, join(node_ptr, "items", index), owner)
                if parsed:
                    items.append(parsed)
            title_value, title_ptr = ctx.pick(node, node_ptr, "title", "name")
            result[cl_id] = Checklist(id=cl_id, title=ctx.text(title_value, title_ptr, "The title") or humanize(cl_id),
                                      mode=mode, items=tuple(items), state=state, prov=ctx.locate(node_ptr))
        return result, on_complete

    def item(self, node: Any, ptr: str, owner: str) -> ChecklistItem | None:
        ctx = self.ctx
        if isinstance(node, str):
            node = {"label": node}
        if not isinstance(node, dict):
            ctx.diag("invalid_value", f"A checklist item should be text or a mapping, not {type_name(node)}; ignored.",
                     "Write `- Label` or `- {id, label}`.", ptr)
            return None
        ctx.extra(node, ptr, {"id", "key", "label", "name", "check_type", "type", "required", "condition", "when",
                              "description"}, "the checklist item", gate=owner)
        label_value, label_ptr = ctx.pick(node, ptr, "label", "name")
        label = ctx.text(label_value, label_ptr, "The item label")
        raw_id, id_ptr = ctx.pick(node, ptr, "id", "key")
        item_id = ctx.identifier(raw_id if raw_id is not None else slugify(label or "item"), id_ptr, "The item id")
        if item_id is None:
            return None
        if item_id in self.item_ids:
            ctx.diag("duplicate_checklist_item", f"Checklist item '{item_id}' is used twice in workflow "
                     f"'{self.wf_id}'; the later one is dropped.", "Give each item its own id.", ptr)
            return None
        self.item_ids.add(item_id)
        check_value, check_ptr = ctx.pick(node, ptr, "check_type", "type")
        check_type = check_value if check_value in ("manual", "auto") else "manual"
        if check_value is not None and check_value not in ("manual", "auto"):
            ctx.diag("invalid_value", f"check_type {check_value!r} is not manual or auto; manual is used.",
                     "Use manual or auto.", check_ptr)
        cond_value, cond_ptr = ctx.pick(node, ptr, "condition", "when")
        when = None
        if check_type == "auto":
            if cond_value is None:
                ctx.diag("auto_item_without_condition", f"Auto item '{item_id}' has no condition; it becomes manual.",
                         "Add `condition:` or use `check_type: manual`.", ptr)
                check_type = "manual"
            else:
                when, diags = parse_condition(cond_value, cond_ptr, ctx.locate)
                ctx.extend(diags)
        required = ctx.boolean(node.get("required"), f"{ptr}/required", "required", check_type == "auto")
        return ChecklistItem(id=item_id, label=label or humanize(item_id), check_type=check_type, required=required,
                             when=when, prov=ctx.locate(ptr))

    def transitions(self, raw: list[dict], states: dict[str, State]) -> tuple[Transition, ...]:
        ctx = self.ctx
        result: list[Transition] = []
        seen: set[tuple] = set()
        ids: dict[str, int] = {}
        for entry in raw:
            node, ptr, sources, target = entry["node"], entry["ptr"], entry["sources"], entry["target"]
            name = ctx.text(node.get("name"), f"{ptr}/name", "The transition name") or states[target].label
            owner = f"transition '{name}' of workflow '{self.wf_id}'"
            extra = ctx.extra(node, ptr, TRANSITION_KEYS, "the transition", gate=owner)
            signature = (sources, target, name)
            if signature in seen:
                ctx.diag("duplicate_transition", f"The transition '{name}' to '{target}' is declared twice;"
                         " the second is dropped.", "Remove the duplicate or give it another name.", ptr)
                continue
            seen.add(signature)
            id_value, id_ptr = ctx.pick(node, ptr, "key", "id")
            if id_value is None and entry["map_key"]:
                id_value = entry["map_key"]
            if id_value is not None:
                t_id = ctx.identifier(id_value, id_ptr, "The transition key")
                if t_id is None:
                    continue
            else:
                base = f"{'any' if sources == '*' else '_'.join(sources)}__{target}"
                ids[base] = ids.get(base, 0) + 1
                t_id = base if ids[base] == 1 else f"{base}_{ids[base]}"
            guard = None
            if node.get("conditions") is not None:
                guard, diags = parse_condition(node["conditions"], f"{ptr}/conditions", ctx.locate)
                ctx.extend(diags)
            checklists = self.guard_checklists(guard, states, f"{ptr}/conditions")
            entry_guard = states[target].entry_guard
            if entry_guard is not None:
                guard = All((guard, entry_guard), entry_guard.prov) if guard is not None else entry_guard
                checklists += self.guard_checklists(entry_guard, states, states[target].prov.pointer)
            requires = ctx.mapping(node.get("requires"), f"{ptr}/requires", "requires") or {}
            if requires:
                ctx.extra(requires, f"{ptr}/requires", REQUIRES_KEYS, "requires", gate=owner)
            meta = self.transition_metadata(node, ptr, owner)
            fields_value = requires.get("fields", node.get("required_fields"))
            fields_ptr = f"{ptr}/requires/fields" if "fields" in requires else f"{ptr}/required_fields"
            required_fields = ctx.strings(fields_value, fields_ptr, "required fields")
            if "fields" in meta:
                extra_fields = ctx.strings(meta["fields"][0], meta["fields"][1], "required fields")
                required_fields = tuple(dict.fromkeys(required_fields + extra_fields))
            predicate = None
            pred_value = requires.get("predicate", node.get("when"))
            if pred_value is not None:
                pred_ptr = f"{ptr}/requires/predicate" if "predicate" in requires else f"{ptr}/when"
                predicate, diags = parse_condition(pred_value, pred_ptr, ctx.locate)
                ctx.extend(diags)
                checklists += self.guard_checklists(predicate, states, pred_ptr)
            comment_value, comment_ptr = ctx.pick(node, ptr, "comment_required", "requires_comment")
            if comment_value is None and "comment" in requires:
                comment_value, comment_ptr = requires["comment"], f"{ptr}/requires/comment"
            if comment_value is None and "comment" in meta:
                comment_value, comment_ptr = meta["comment"]
            approval_required = None
            flags = [(node.get(key), join(ptr, key)) for key in ("approval_required", "requires_approval")]
            flags += [(requires.get("approval"), f"{ptr}/requires/approval"), meta.get("approval", (None, ""))]
            for value, value_ptr in flags:
                if isinstance(value, bool) or (value is not None and not isinstance(value, (dict, list))):
                    flag = ctx.boolean(value, value_ptr, "approval_required", False)
                    approval_required = flag if approval_required is None else approval_required or flag
            policy_node = node
            if isinstance(requires.get("approval"), (dict, list)) and "requires_approval" not in node:
                policy_node = {**node, "requires_approval": requires["approval"]}
            approval = self.approvals.gather(policy_node, ptr, owner)
            if approval is not None:
                approval_required = True
            roles_value, roles_ptr = (node.get("roles"), f"{ptr}/roles") if node.get("roles") is not None \
                else (requires.get("roles"), f"{ptr}/requires/roles")
            roles = ctx.strings(roles_value, roles_ptr, "roles")
            for index, role in enumerate(roles):
                ctx.ref("transition_role", role.lstrip("@"), join(roles_ptr, index) if isinstance(roles_value, list)
                        else roles_ptr, owner, self.wf_id)
            actions_value, actions_ptr = ctx.pick(node, ptr, "actions", "on_transition")
            actions = normalize_actions(ctx, actions_value, actions_ptr, "transition actions", self.wf_id)
            if sources != "*" and any(states[s].kind == "final" for s in sources):
                ctx.diag("final_state_exit", f"The transition '{name}' leaves a final state; issues can be reopened"
                         " this way.", "", ptr)
            result.append(Transition(
                id=t_id, name=name, sources=sources, target=target, guard=guard, required_fields=required_fields,
                required_predicate=predicate,
                comment_required=ctx.boolean(comment_value, comment_ptr, "comment_required", False),
                approval_required=approval_required, approval=approval, allowed_roles=roles, actions=actions,
                checklists=tuple(dict.fromkeys(checklists)), prov=ctx.locate(ptr), extra=extra,
            ))
        return tuple(result)

    def transition_metadata(self, node: dict, ptr: str, owner: str) -> dict[str, tuple[Any, str]]:
        """Gates written under a transition's `metadata` (§16): enforced, with an info; the rest is free-form."""
        ctx = self.ctx
        meta = node.get("metadata")
        if not isinstance(meta, dict):
            if meta is not None:
                ctx.mapping(meta, f"{ptr}/metadata", "metadata")
            return {}
        found: dict[str, tuple[Any, str]] = {}
        for gate, keys in METADATA_GATES.items():
            for key in keys:
                if key in meta and gate not in found:
                    found[gate] = (meta[key], join(ptr, "metadata", key))
                    ctx.diag("gate_in_metadata", f"metadata.{key} of {owner} is enforced as a gate.",
                             f"Move it out of metadata (e.g. `requires: {{fields: [...]}}`).",
                             join(ptr, "metadata", key))
        known = {key for keys in METADATA_GATES.values() for key in keys} | {k for k in meta if not looks_like_gate(k)}
        ctx.extra(meta, f"{ptr}/metadata", known, "the transition metadata", gate=owner)
        return found

    def guard_checklists(self, condition: Any, states: dict[str, State], ptr: str) -> tuple[str, ...]:
        found: list[ChecklistComplete] = []

        def visit(node: Any) -> None:
            if isinstance(node, ChecklistComplete):
                found.append(node)
            elif isinstance(node, (All, AnyOf)):
                for item in node.items:
                    visit(item)
            elif isinstance(node, Not):
                visit(node.item)

        visit(condition)
        if not found:
            return ()
        known = {cl for state in states.values() for cl in state.checklists}
        for node in found:
            if node.id not in known:
                # The guard's own node, so several guards on one transition stay distinguishable.
                prov = node.prov if node.prov.line is not None else self.ctx.locate(ptr)
                self.ctx.diagnostics.append(Diagnostic(
                    "unknown_checklist", "fatal", f"The guard names checklist '{node.id}', which no state of workflow "
                    f"'{self.wf_id}' declares.", "Use the id of a checklist of this workflow"
                    + (": " + ", ".join(sorted(known)) if known else "."), prov))
                self.fatal = True
        return tuple(node.id for node in found)

    def apply_gates(self, states: dict[str, State], transitions: tuple[Transition, ...]) -> tuple[Transition, ...]:
        """Explicit approval_required wins; if no outgoing transition sets it, all are gated (§8.5)."""
        ctx = self.ctx
        result = list(transitions)
        leaving: dict[str, list[int]] = {}
        for index, transition in enumerate(result):
            for source in states if transition.sources == "*" else transition.sources:
                leaving.setdefault(source, []).append(index)
        for key, state in states.items():
            outgoing = leaving.get(key, [])
            if state.approval is not None:
                if outgoing and all(result[i].approval_required is None for i in outgoing):
                    ctx.diag("approval_gates_all", f"State '{key}' requires approval and none of its transitions sets"
                             " approval_required: all of them wait for the approval.",
                             "Set `approval_required: true` on the transitions that need it.",
                             state.prov.pointer)
                    for i in outgoing:
                        if result[i].sources != "*":
                            result[i] = replace(result[i], approval_required=True)
            else:
                for i in outgoing:
                    t = result[i]
                    if t.approval_required and t.approval is None and t.sources != "*":
                        ctx.diag("approval_without_policy", f"The transition '{t.name}' requires approval but state "
                                 f"'{key}' has no approval policy: one approval by anyone allowed to approve.",
                                 "Add an `approval:` policy to the state or to the transition.", t.prov.pointer)
        return tuple(result)

    def check_graph(self, states: dict[str, State], transitions: tuple[Transition, ...]) -> None:
        ctx = self.ctx
        targets = {t.target for t in transitions}
        star = any(t.sources == "*" for t in transitions)
        sources = {s for t in transitions if t.sources != "*" for s in t.sources}
        for key, state in states.items():
            if state.kind != "initial" and key not in targets:
                ctx.diag("unreachable_state", f"No transition leads to state '{key}' of workflow '{self.wf_id}'.",
                         "Add a transition into it or remove it.", state.prov.pointer)
            if state.kind != "final" and key not in sources and not star:
                ctx.diag("dead_end_state", f"State '{key}' is not final but has no way out.",
                         "Add a transition out of it, or mark it `type: final`.", state.prov.pointer)
