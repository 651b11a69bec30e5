"""Approval shapes (spec §8.5, §16) normalized to one `ApprovalPolicy`; none is ever dropped silently.

Shapes: the repo's `approval: {required, approvers}`, the docs' `approval: {type, chain, conditional}`,
`require_approval: [{assignment: {type, identifier}, metadata: {message}}]` (one approval from each
entry, any order) and `approval_chain: {chain: [level…]}` (levels decided in order). Several shapes on
one state or transition are all enforced: they combine into one chain, in the order written.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from app.kiket.conditions import All, Condition, parse_condition
from app.kiket.durations import parse_duration
from app.kiket.model import ApprovalGroup, ApprovalLevel, ApprovalPolicy, Approver
from app.kiket.reader import FileContext, humanize, join, looks_like_gate, type_name

MODES = ("sequential", "parallel", "any", "quorum")
APPROVAL_KEYS = frozenset({"type", "mode", "required", "approvers", "chain", "conditional", "conditions", "when",
                           "message", "metadata", "name", "description"})
ASSIGNMENT_KEYS = frozenset({"assignment", "type", "identifier", "id", "role", "user", "field", "metadata", "message",
                             "when", "conditions", "name", "description"})
ASSIGNEE_KINDS = {"role": "role", "group": "role", "team": "role", "user": "user", "person": "user", "email": "user",
                  "field": "field"}
LEVEL_KEYS = frozenset({"level", "name", "assignments", "approvers", "required", "timeout", "conditions", "when",
                        "metadata", "message", "parallel", "logic", "description"})
GROUP_KEYS = frozenset({"group", "name", "assignments", "approvers", "required", "description"})
CHAIN_KEYS = frozenset({"chain", "levels", "name", "description", "conditions", "when", "metadata", "message"})
# Every key of a state or transition that carries an approval gate (besides the approval_required flag).
POLICY_KEYS = ("approval", "require_approval", "requires_approval", "approval_chain")


class ApprovalReader:
    """Reads the approval gates of one workflow file, reporting into its context."""

    def __init__(self, ctx: FileContext, wf_id: str) -> None:
        self.ctx = ctx
        self.wf_id = wf_id

    def gather(self, node: dict, ptr: str, owner: str) -> ApprovalPolicy | None:
        """Every approval shape under `node` (a state or transition), combined; None when it has none."""
        policies = []
        for key in POLICY_KEYS:
            value = node.get(key)
            if value is None or isinstance(value, bool):
                continue  # `requires_approval: true` is the approval_required flag, read by the caller.
            key_ptr = join(ptr, key)
            if key == "approval_chain":
                policy = self.chain(value, key_ptr, owner)
            elif isinstance(value, list):
                policy = self.assignments(value, key_ptr, owner)
            else:
                policy = self.policy(value, key_ptr, owner)
            if policy is not None:
                policies.append(policy)
        return combine(policies)

    def _message(self, node: dict, ptr: str) -> str | None:
        meta = node.get("metadata")
        if isinstance(meta, dict) and meta.get("message") is not None:
            return self.ctx.text(meta["message"], f"{ptr}/metadata/message", "The message")
        return self.ctx.text(node.get("message"), f"{ptr}/message", "The message")

    def _metadata(self, node: dict, ptr: str, owner: str) -> None:
        """Metadata is free-form, except that a gate hiding in it must not pass unnoticed."""
        meta = node.get("metadata")
        if isinstance(meta, dict):
            self.ctx.extra(meta, f"{ptr}/metadata", {"message"} | {k for k in meta if not looks_like_gate(k)},
                           "the metadata", gate=owner)

    def _when(self, node: dict, ptr: str) -> Condition | None:
        value, value_ptr = self.ctx.pick(node, ptr, "conditions", "when")
        if value is None:
            return None
        condition, diags = parse_condition(value, value_ptr, self.ctx.locate)
        self.ctx.extend(diags)
        return condition

    def approver(self, item: Any, ptr: str, owner: str) -> Approver | None:
        """One approver: a role name, `{role|user|field: x}`, or `{assignment: {type, identifier}}` (§16)."""
        ctx = self.ctx
        if isinstance(item, str) and item.strip():
            approver = Approver("role", item.strip().lstrip("@"), None, ctx.locate(ptr))
        elif isinstance(item, dict):
            ctx.extra(item, ptr, ASSIGNMENT_KEYS, "the approver", gate=owner)
            self._metadata(item, ptr, owner)
            body, body_ptr = item, ptr
            if isinstance(item.get("assignment"), dict):
                body, body_ptr = item["assignment"], f"{ptr}/assignment"
                ctx.extra(body, body_ptr, {"type", "identifier", "id", "name", "value"}, "the assignment", gate=owner)
            kind = ref = None
            for name in ("role", "user", "field"):
                if isinstance(body.get(name), str):
                    kind, ref = name, body[name]
                    break
            if kind is None:
                raw_kind = body.get("type", "role")
                ident, _ = ctx.pick(body, body_ptr, "identifier", "id", "name", "value")
                kind = ASSIGNEE_KINDS.get(str(raw_kind).lower()) if isinstance(raw_kind, str) else None
                if kind is None and isinstance(ident, str):
                    kind = "user" if "@" in ident.lstrip("@") else "role"
                    ctx.diag("invalid_value", f"Assignment type {raw_kind!r} is not role, user or field; "
                             f"'{ident}' is read as a {kind}.", "Use type: role, user or field.", f"{body_ptr}/type")
                ref = ident if isinstance(ident, str) else None
            if kind is None or not ref or not ref.strip():
                ctx.diag("invalid_approval", f"An approver of {owner} names nobody; it is left out.",
                         "Write e.g. `{assignment: {type: role, identifier: legal}}`.", ptr)
                return None
            approver = Approver(kind, ref.strip().lstrip("@") if kind != "field" else ref.strip(),
                                self._when(item, ptr), ctx.locate(ptr), message=self._message(item, ptr))
        else:
            ctx.diag("invalid_value", "An approver should be a role name or `{role|user|field: ...}`; ignored.",
                     "Write e.g. `{role: legal}`.", ptr)
            return None
        if approver.kind == "role":
            ctx.ref("approver_role", approver.ref, ptr, owner, self.wf_id)
        return approver

    def _approvers(self, value: Any, ptr: str, owner: str) -> list[Approver]:
        found = []
        for index, item in enumerate(self.ctx.listing(value, ptr, "approvers")):
            approver = self.approver(item, join(ptr, index), owner)
            if approver is not None:
                found.append(approver)
        return found

    def policy(self, node: Any, ptr: str, owner: str) -> ApprovalPolicy | None:
        """The `approval:` mapping: repo `{required, approvers}` or docs `{type, chain, conditional}`."""
        ctx = self.ctx
        if not isinstance(node, dict):
            ctx.diag("invalid_approval", f"The approval should be a mapping, not {type_name(node)}; dropped.",
                     "Write `approval: {required: 1, approvers: [{role: legal}]}`.", ptr)
            return None
        if isinstance(node.get("chain"), list) and any(isinstance(i, dict) and ("assignments" in i or "parallel" in i)
                                                       for i in node["chain"]):
            return self.chain(node, ptr, owner)  # an approval_chain written under `approval:`
        extra = ctx.extra(node, ptr, APPROVAL_KEYS, "the approval", gate=owner)
        self._metadata(node, ptr, owner)
        mode_value, mode_ptr = ctx.pick(node, ptr, "type", "mode")
        entries_value, entries_ptr = ctx.pick(node, ptr, "approvers", "chain")
        approvers = self._approvers(entries_value, entries_ptr, owner)
        conditional = ctx.mapping(node.get("conditional"), f"{ptr}/conditional", "conditional") or {}
        for name, cond_node in conditional.items():
            cond_ptr = join(ptr, "conditional", name)
            target = next((i for i, a in enumerate(approvers) if a.ref == name), None)
            when_node = cond_node.get("when") if isinstance(cond_node, dict) else cond_node
            if target is None or when_node is None:
                ctx.diag("invalid_value", f"conditional names '{name}', which is not an approver of the chain; ignored.",
                         "Name an entry of `chain`.", cond_ptr)
                continue
            when, diags = parse_condition(when_node, f"{cond_ptr}/when" if isinstance(cond_node, dict)
                                          else cond_ptr, ctx.locate)
            ctx.extend(diags)
            approvers[target] = replace(approvers[target], when=when)
        if mode_value is None:
            mode = "sequential" if "chain" in node and "approvers" not in node else "quorum"
        elif mode_value in MODES:
            mode = mode_value
        else:
            ctx.diag("invalid_approval", f"Approval type {mode_value!r} is not sequential, parallel, any or quorum;"
                     " the approval is dropped.", "Use sequential, parallel or any.", mode_ptr)
            return None
        required = node.get("required")
        if mode == "quorum":
            if required is None:
                required = 1
            elif isinstance(required, bool) or not isinstance(required, int) or required < 1:
                ctx.diag("invalid_value", f"approval.required should be a whole number ≥ 1, not {required!r}; 1 is used.",
                         "Write `required: 1`.", f"{ptr}/required")
                required = 1
        else:
            required = 1 if mode == "any" else len(approvers)
        if not approvers and mode != "quorum":
            ctx.diag("invalid_approval", "The approval chain names no approver; the approval is dropped.",
                     "List approvers in `chain:`.", ptr)
            return None
        return ApprovalPolicy(mode=mode, required=required, approvers=tuple(approvers), prov=ctx.locate(ptr),
                              extra=extra, when=self._when(node, ptr), message=self._message(node, ptr))

    def assignments(self, items: list, ptr: str, owner: str) -> ApprovalPolicy | None:
        """`require_approval: [{assignment: {type, identifier}, metadata: {message}}]`: each entry, any order."""
        approvers = self._approvers(items, ptr, owner)
        if not approvers:
            self.ctx.diag("invalid_approval", f"The approval of {owner} names nobody: one approval by anyone allowed "
                          "to approve is required instead.", "List `assignment: {type, identifier}` entries.", ptr)
        mode = "parallel" if approvers else "any"
        return ApprovalPolicy(mode=mode, required=len(approvers) or 1, approvers=tuple(approvers),
                              prov=self.ctx.locate(ptr))

    def _need(self, node: dict, ptr: str) -> int | None:
        """`required: any` → 1, `all` (the default) → None, a whole number → that many people."""
        value = node.get("required", "all")
        if isinstance(value, str) and value.strip().lower() in ("any", "one"):
            return 1
        if isinstance(value, str) and value.strip().lower() == "all":
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        self.ctx.diag("invalid_value", f"required should be any, all or a whole number, not {value!r}; all is used.",
                      "Write `required: any` or `required: all`.", f"{ptr}/required")
        return None

    def _group(self, node: Any, ptr: str, owner: str) -> ApprovalGroup | None:
        if not isinstance(node, dict):
            self.ctx.diag("invalid_value", f"A parallel group should be a mapping, not {type_name(node)}; ignored.",
                          "Write `- {group: finance, assignments: [...], required: any}`.", ptr)
            return None
        self.ctx.extra(node, ptr, GROUP_KEYS, "the approval group", gate=owner)
        value, value_ptr = self.ctx.pick(node, ptr, "assignments", "approvers")
        approvers = self._approvers(value, value_ptr, owner)
        name = self.ctx.text(node.get("group", node.get("name")), f"{ptr}/group", "The group name")
        return ApprovalGroup(name=name or "group", approvers=tuple(approvers), need=self._need(node, ptr),
                             prov=self.ctx.locate(ptr))

    def level(self, node: Any, ptr: str, owner: str, index: int) -> ApprovalLevel | None:
        """One level of a chain: plain assignments, or parallel groups combined by `logic`."""
        ctx = self.ctx
        if not isinstance(node, dict):
            ctx.diag("invalid_value", f"An approval level should be a mapping, not {type_name(node)}; ignored.",
                     "Write `- {level: 1, name: Manager, assignments: [...]}`.", ptr)
            return None
        ctx.extra(node, ptr, LEVEL_KEYS, "the approval level", gate=owner)
        self._metadata(node, ptr, owner)
        name = ctx.text(node.get("name"), f"{ptr}/name", "The level name") or f"Level {index + 1}"
        value, value_ptr = ctx.pick(node, ptr, "assignments", "approvers")
        approvers = self._approvers(value, value_ptr, owner)
        groups = []
        for g_index, group in enumerate(ctx.listing(node.get("parallel"), f"{ptr}/parallel", "parallel")):
            parsed = self._group(group, join(ptr, "parallel", g_index), owner)
            if parsed is not None:
                groups.append(parsed)
        logic = str(node.get("logic", "and")).strip().lower()
        if logic not in ("and", "or"):
            ctx.diag("invalid_value", f"logic should be AND or OR, not {node.get('logic')!r}; AND is used.",
                     "Write `logic: AND`.", f"{ptr}/logic")
            logic = "and"
        timeout = None
        if node.get("timeout") is not None:
            try:
                timeout = parse_duration(node["timeout"])
            except ValueError as exc:
                ctx.diag("invalid_duration", f"The timeout of approval level '{name}': {exc}; it is dropped (the level"
                         " stays).", "Write e.g. `24h` or `2d`.", f"{ptr}/timeout")
        if not approvers and not any(g.approvers for g in groups):
            ctx.diag("invalid_approval", f"Approval level '{name}' of {owner} names nobody: one approval by anyone "
                     "allowed to approve decides it instead.", "Add `assignments:`.", ptr)
        return ApprovalLevel(name=name, approvers=tuple(approvers), need=self._need(node, ptr),
                             groups=tuple(groups), logic=logic, when=self._when(node, ptr), timeout_s=timeout,
                             message=self._message(node, ptr), prov=ctx.locate(ptr))

    def chain(self, node: Any, ptr: str, owner: str) -> ApprovalPolicy | None:
        """`approval_chain: {chain: [level…]}` (or the list itself): levels in order of their `level` number."""
        ctx = self.ctx
        when = message = None
        if isinstance(node, dict):
            ctx.extra(node, ptr, CHAIN_KEYS | {"type", "mode"}, "the approval chain", gate=owner)
            self._metadata(node, ptr, owner)
            items, items_ptr = ctx.pick(node, ptr, "chain", "levels")
            when, message = self._when(node, ptr), self._message(node, ptr)
        else:
            items, items_ptr = node, ptr
        levels = []
        for index, item in enumerate(ctx.listing(items, items_ptr, "the approval chain")):
            level = self.level(item, join(items_ptr, index), owner, index)
            if level is not None:
                number = item.get("level") if isinstance(item, dict) else None
                levels.append((number if isinstance(number, (int, float)) and not isinstance(number, bool)
                               else index, index, level))
        if not levels:
            ctx.diag("invalid_approval", f"The approval chain of {owner} has no level: one approval by anyone allowed"
                     " to approve is required instead.", "Add levels under `chain:`.", ptr)
            return ApprovalPolicy(mode="any", required=1, approvers=(), prov=ctx.locate(ptr), when=when,
                                  message=message)
        ordered = tuple(level for _, _, level in sorted(levels, key=lambda entry: (entry[0], entry[1])))
        return ApprovalPolicy(mode="chain", required=len(ordered), approvers=(), prov=ctx.locate(ptr),
                              levels=ordered, when=when, message=message)


def _and(first: Condition | None, second: Condition | None) -> Condition | None:
    if first is None or second is None:
        return first or second
    return All((first, second))


def as_levels(policy: ApprovalPolicy) -> tuple[ApprovalLevel, ...]:
    """A policy as chain levels, its `when` carried into each of them."""
    if policy.mode == "chain":
        levels = policy.levels
    elif policy.mode == "sequential":
        levels = tuple(ApprovalLevel(name=humanize(a.ref), approvers=(replace(a, when=None),), when=a.when,
                                     message=a.message or policy.message, prov=a.prov) for a in policy.approvers)
    else:
        need = {"quorum": policy.required, "any": 1, "parallel": None}[policy.mode]
        levels = (ApprovalLevel(name="Approval", approvers=policy.approvers, need=need if policy.approvers else 1,
                                message=policy.message, prov=policy.prov),)
    if policy.when is None:
        return levels
    return tuple(replace(level, when=_and(policy.when, level.when)) for level in levels)


def combine(policies: list[ApprovalPolicy]) -> ApprovalPolicy | None:
    """One policy for all the shapes found on an element: itself if one, else a chain of all their levels."""
    if not policies:
        return None
    if len(policies) == 1:
        return policies[0]
    levels = tuple(level for policy in policies for level in as_levels(policy))
    return ApprovalPolicy(mode="chain", required=len(levels), approvers=(), prov=policies[0].prov, levels=levels)
