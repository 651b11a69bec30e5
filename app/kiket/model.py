"""The normalized configuration model (spec §4): frozen dataclasses, tuples, provenance everywhere."""

from __future__ import annotations

import dataclasses
from collections import abc
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from app.kiket.calendar import BusinessHours
from app.kiket.conditions import All, Any as AnyOf, ChecklistComplete, Compare, Condition, Never, Not
from app.kiket.diagnostics import Diagnostic, Provenance

__all__ = [
    "All", "AnyOf", "ChecklistComplete", "Compare", "Condition", "Never", "Not",
    "Source", "Action", "SlaRule", "SlaPolicy", "Approver", "ApprovalGroup", "ApprovalLevel", "ApprovalPolicy",
    "ChecklistItem", "Checklist",
    "State", "Transition", "Workflow", "FieldDef", "DocumentDef", "IssueType", "Role", "Member", "Team",
    "SeedIssue", "BusinessHours", "Project", "Automation", "Column", "Swimlane", "Swimlanes",
    "BoardFilter", "CardTemplate", "QuickFilter", "Board", "PreservedDocument", "ConfigRevision",
    "to_plain", "content_hash",
]

StateKind = Literal["initial", "active", "final"]
Support = Literal["core", "stub", "unknown"]
HOOK_NAMES = ("on_enter", "on_exit", "on_sla_warning", "on_sla_breach", "on_checklist_complete")


@dataclass(frozen=True)
class Source:
    """Where a revision was read from: repository, branch and full commit SHA."""

    repo: str | None = None
    branch: str | None = None
    commit_sha: str | None = None


@dataclass(frozen=True)
class Action:
    """One hook or automation action in any spelling (§10.3), normalized to a type and params."""

    type: str
    params: Mapping[str, Any]
    support: Support
    prov: Provenance = field(default_factory=Provenance, compare=False)
    templates: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SlaRule:
    """One SLA rule: applies when `when` holds (None = unconditional)."""

    when: Condition | None
    warning_s: int | None
    breach_s: int | None
    warning_share: float | None = None
    default: bool = False
    prov: Provenance = field(default_factory=Provenance, compare=False)


@dataclass(frozen=True)
class SlaPolicy:
    """A state's SLA: ordered rules, the calendar flag and its own warning/breach actions."""

    rules: tuple[SlaRule, ...]
    business_hours: bool = False
    on_warning: tuple[Action, ...] = ()
    on_breach: tuple[Action, ...] = ()
    prov: Provenance = field(default_factory=Provenance, compare=False)


@dataclass(frozen=True)
class Approver:
    """Who may approve: a role, a user or a person field, optionally only when a condition holds.

    `undeclared` marks a role that is neither declared nor built in: organization owners and admins
    decide in its place (§16). `message` is shown to the approvers.
    """

    kind: Literal["role", "user", "field"]
    ref: str
    when: Condition | None = None
    prov: Provenance = field(default_factory=Provenance, compare=False)
    message: str | None = None
    undeclared: bool = False


@dataclass(frozen=True)
class ApprovalGroup:
    """One parallel group of an approval level: `need` approvals from its approvers (None = each of them)."""

    name: str
    approvers: tuple[Approver, ...]
    need: int | None = 1
    prov: Provenance = field(default_factory=Provenance, compare=False)


@dataclass(frozen=True)
class ApprovalLevel:
    """One level of an approval chain (§16), decided after the levels before it.

    Either plain (`approvers`, `need`: 1 = any, None = all, n = that many people) or made of parallel
    `groups` combined by `logic`. A level whose `when` does not hold when it is reached is skipped;
    `timeout_s` makes it overdue (`approval.overdue`, once) that long after it was reached.
    """

    name: str
    approvers: tuple[Approver, ...] = ()
    need: int | None = 1
    groups: tuple[ApprovalGroup, ...] = ()
    logic: Literal["and", "or"] = "and"
    when: Condition | None = None
    timeout_s: int | None = None
    message: str | None = None
    prov: Provenance = field(default_factory=Provenance, compare=False)


@dataclass(frozen=True)
class ApprovalPolicy:
    """Approval needed in a state or on a transition (§8.5, §16).

    `chain` policies decide their `levels` in order; the others use `approvers` and `required`.
    The policy applies only while `when` holds (None: always).
    """

    mode: Literal["sequential", "parallel", "any", "quorum", "chain"]
    required: int
    approvers: tuple[Approver, ...]
    prov: Provenance = field(default_factory=Provenance, compare=False)
    extra: Mapping[str, Any] = field(default_factory=dict)
    levels: tuple[ApprovalLevel, ...] = ()
    when: Condition | None = None
    message: str | None = None

    def all_approvers(self) -> tuple[Approver, ...]:
        """Every approver entry, of the policy and of each level and group."""
        found = list(self.approvers)
        for level in self.levels:
            found.extend(level.approvers)
            for group in level.groups:
                found.extend(group.approvers)
        return tuple(found)


@dataclass(frozen=True)
class ChecklistItem:
    """One checklist item; auto items are checked while their condition holds."""

    id: str
    label: str
    check_type: Literal["manual", "auto"]
    required: bool
    when: Condition | None = None
    prov: Provenance = field(default_factory=Provenance, compare=False)


@dataclass(frozen=True)
class Checklist:
    """A state's checklist (§8.6)."""

    id: str
    title: str
    mode: Literal["all", "any"]
    items: tuple[ChecklistItem, ...]
    state: str = ""
    prov: Provenance = field(default_factory=Provenance, compare=False)


@dataclass(frozen=True)
class State:
    """One workflow state with its kind, category and everything attached to it."""

    key: str
    label: str
    kind: StateKind
    category: str
    description: str | None = None
    color: str | None = None
    icon: str | None = None
    gateway: bool = False
    wip_limit: int | None = None
    sla: SlaPolicy | None = None
    required_documents: tuple[str, ...] = ()
    approval: ApprovalPolicy | None = None
    checklists: Mapping[str, Checklist] = field(default_factory=dict)
    hooks: Mapping[str, tuple[Action, ...]] = field(default_factory=dict)
    prov: Provenance = field(default_factory=Provenance, compare=False)
    extra: Mapping[str, Any] = field(default_factory=dict)
    # State-level `conditions` (§16): already part of the guard of every transition into the state.
    entry_guard: Condition | None = None

    @property
    def is_final(self) -> bool:
        """Issues in a final state are resolved."""
        return self.kind == "final"


@dataclass(frozen=True)
class Transition:
    """A declared move between states with its gates and actions (§8.8)."""

    id: str
    name: str
    sources: tuple[str, ...] | Literal["*"]
    target: str
    guard: Condition | None = None
    required_fields: tuple[str, ...] = ()
    required_predicate: Condition | None = None
    comment_required: bool = False
    approval_required: bool | None = None
    approval: ApprovalPolicy | None = None
    allowed_roles: tuple[str, ...] = ()
    actions: tuple[Action, ...] = ()
    checklists: tuple[str, ...] = ()
    prov: Provenance = field(default_factory=Provenance, compare=False)
    extra: Mapping[str, Any] = field(default_factory=dict)
    # `allowed_roles` entries no one can hold (neither declared nor built in): org owners and admins pass them.
    undeclared_roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Workflow:
    """A normalized workflow; `version` is the hash of its normalized form."""

    id: str
    name: str
    version: str
    states: Mapping[str, State]
    transitions: tuple[Transition, ...]
    initial: str
    finals: tuple[str, ...]
    dialect: Literal["repo", "docs", "list"]
    description: str | None = None
    declared_version: str | None = None
    model_version: str = "1.0"
    prov: Provenance = field(default_factory=Provenance, compare=False)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def checklist(self, checklist_id: str) -> Checklist | None:
        """The checklist with this id in any state of the workflow."""
        for state in self.states.values():
            if checklist_id in state.checklists:
                return state.checklists[checklist_id]
        return None


@dataclass(frozen=True)
class FieldDef:
    """A custom field of an issue type."""

    key: str
    label: str
    type: str
    required: bool = False
    options: tuple[tuple[Any, str], ...] = ()
    default: Any = None
    min: Any = None
    max: Any = None
    prov: Provenance = field(default_factory=Provenance, compare=False)
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Added because a gate reads it and no bound issue type declares it (§16).
    inferred: bool = False


@dataclass(frozen=True)
class DocumentDef:
    """A document an issue type can carry (e.g. a signed contract)."""

    key: str
    label: str
    required: bool = False
    accept: tuple[str, ...] = ()
    prov: Provenance = field(default_factory=Provenance, compare=False)


@dataclass(frozen=True)
class IssueType:
    """An issue type bound to a workflow (§7)."""

    key: str
    label: str
    workflow: str | None
    description: str | None = None
    icon: str | None = None
    color: str | None = None
    position: int = 0
    active: bool = True
    allow_children: bool = False
    child_types: tuple[str, ...] | None = None
    parent_types: tuple[str, ...] | None = None
    fields: tuple[FieldDef, ...] = ()
    documents: tuple[DocumentDef, ...] = ()
    workflow_declared: bool = False
    prov: Provenance = field(default_factory=Provenance, compare=False)
    workflow_prov: Provenance | None = field(default=None, compare=False)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Role:
    """A project role and the permissions it grants."""

    name: str
    description: str | None = None
    permissions: frozenset[str] = frozenset()
    builtin: bool = False
    inherits: str | None = None
    prov: Provenance = field(default_factory=Provenance, compare=False)


@dataclass(frozen=True)
class Member:
    """A person (existing account) and their roles."""

    identity: str
    roles: tuple[str, ...]
    prov: Provenance = field(default_factory=Provenance, compare=False)


@dataclass(frozen=True)
class Team:
    """Roles and members of the project (§6)."""

    roles: Mapping[str, Role] = field(default_factory=dict)
    members: tuple[Member, ...] = ()
    prov: Provenance = field(default_factory=Provenance, compare=False)


@dataclass(frozen=True)
class SeedIssue:
    """An issue created once when a project is made from this configuration."""

    title: str
    issue_type: str | None = None
    description: str | None = None
    status: str | None = None
    priority: str | None = None
    labels: tuple[str, ...] = ()
    assignee: str | None = None
    custom_fields: Mapping[str, Any] = field(default_factory=dict)
    workflow: str | None = None
    prov: Provenance = field(default_factory=Provenance, compare=False)


@dataclass(frozen=True)
class Project:
    """Project settings (§5); None values mean "use the database project's value"."""

    key: str | None = None
    name: str | None = None
    description: str | None = None
    version: str | None = None
    extensions_required: tuple[str, ...] = ()
    extensions_optional: tuple[str, ...] = ()
    business_hours: BusinessHours = field(default_factory=BusinessHours)
    priorities: tuple[str, ...] = ("low", "medium", "high", "critical")
    seed_issues: tuple[SeedIssue, ...] = ()
    default_workflow: str | None = None
    inherit: Mapping[str, Any] = field(default_factory=dict)
    prov: Provenance = field(default_factory=Provenance, compare=False)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Automation:
    """A project or workflow-scoped automation (§10)."""

    id: str
    name: str
    scope: str
    events: tuple[str, ...]
    actions: tuple[Action, ...]
    condition: Condition | None = None
    cron: str | None = None
    description: str | None = None
    version: str | None = None
    enabled: bool = True
    requires_approval: bool = False
    sweep: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)
    prov: Provenance = field(default_factory=Provenance, compare=False)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Column:
    """A board column mapping one or more states (§11.2)."""

    key: str
    name: str
    states: tuple[str, ...]
    wip_limit: int | None = None
    wip_policy: Literal["warn", "block"] = "warn"
    color: str | None = None
    prov: Provenance = field(default_factory=Provenance, compare=False)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Swimlane:
    """One declared lane value."""

    value: Any
    label: str
    prov: Provenance = field(default_factory=Provenance, compare=False)


@dataclass(frozen=True)
class Swimlanes:
    """Board swimlanes by a field (§11.4)."""

    field: str
    values: tuple[Swimlane, ...] = ()
    other_label: str = "Other"
    prov: Provenance = field(default_factory=Provenance, compare=False)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BoardFilter:
    """Which issues a board shows."""

    issue_types: tuple[str, ...] = ()
    workflows: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()
    assignee: str | None = None
    states: tuple[str, ...] = ()
    prov: Provenance = field(default_factory=Provenance, compare=False)


@dataclass(frozen=True)
class CardTemplate:
    """What a card shows (§11.5)."""

    size: str = "standard"
    primary: tuple[str, ...] = ("title", "assignee")
    secondary: tuple[str, ...] = ("priority", "due_date")
    badges: tuple[str, ...] = ("sla_status",)
    text: Any = None
    prov: Provenance = field(default_factory=Provenance, compare=False)


@dataclass(frozen=True)
class QuickFilter:
    """A one-click board filter."""

    label: str
    field: str
    values: tuple[Any, ...]
    prov: Provenance = field(default_factory=Provenance, compare=False)


@dataclass(frozen=True)
class Board:
    """A board over one or more workflows (§11)."""

    id: str
    name: str
    type: str
    workflow: str
    workflows: tuple[str, ...]
    columns: tuple[Column, ...]
    description: str | None = None
    swimlanes: Swimlanes | None = None
    filters: BoardFilter = field(default_factory=BoardFilter)
    card: CardTemplate = field(default_factory=CardTemplate)
    quick_filters: tuple[QuickFilter, ...] = ()
    generated: bool = False
    unmapped_states: tuple[tuple[str, str], ...] = ()
    prov: Provenance = field(default_factory=Provenance, compare=False)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def column_for(self, state_key: str) -> Column | None:
        """The column showing a state, or None (the board's "Unmapped" column)."""
        for column in self.columns:
            if state_key in column.states:
                return column
        return None


@dataclass(frozen=True)
class PreservedDocument:
    """An unsupported section kept verbatim (§15)."""

    section: str
    path: str
    raw_text: str
    data: Any = None
    prov: Provenance = field(default_factory=Provenance, compare=False)


@dataclass(frozen=True)
class ConfigRevision:
    """One loaded, merged and resolved configuration."""

    source: Source
    model_version: str
    project: Project
    team: Team
    issue_types: Mapping[str, IssueType]
    workflows: Mapping[str, Workflow]
    default_workflow: str | None
    boards: Mapping[str, Board]
    automations: Mapping[str, Automation]
    preserved: tuple[PreservedDocument, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()

    def workflow_for(self, issue_type: str) -> Workflow | None:
        """The workflow an issue type runs on (its own, else the default)."""
        itype = self.issue_types.get(issue_type)
        key = (itype.workflow if itype else None) or self.default_workflow
        return self.workflows.get(key) if key else None


_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def to_plain(value: Any, *, with_prov: bool = False) -> Any:
    """JSON-ready form of model objects (dataclasses, mappings, tuples); provenance dropped by default."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, dict):
        return {str(k): to_plain(v, with_prov=with_prov) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v, with_prov=with_prov) for v in value]
    cls = type(value)
    if hasattr(cls, "__dataclass_fields__"):
        out: dict[str, Any] = {} if with_prov else {"__type__": cls.__name__}
        for name in _field_names(cls):
            if not with_prov and (name == "prov" or name.endswith("_prov")):
                continue
            out[name] = to_plain(getattr(value, name), with_prov=with_prov)
        return out
    if isinstance(value, abc.Mapping):
        return {str(k): to_plain(v, with_prov=with_prov) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((to_plain(v, with_prov=with_prov) for v in value), key=repr)
    if isinstance(value, (str, int, float)):
        return value
    return str(value)


_HASH_FIELDS: dict[type, tuple[str, ...]] = {}
# Fields added after workflow versions were first stored: left out of the hash while they hold their default,
# so a workflow that does not use them keeps the version (and its pinned issues) it always had.
_LATER_FIELDS = frozenset({
    (State, "entry_guard"), (Transition, "undeclared_roles"), (Approver, "message"), (Approver, "undeclared"),
    (ApprovalPolicy, "levels"), (ApprovalPolicy, "when"), (ApprovalPolicy, "message"), (FieldDef, "inferred"),
})
_UNSET = (None, (), False)


def _hash_fields(cls: type) -> tuple[str, ...]:
    names = _HASH_FIELDS.get(cls)
    if names is None:
        # Provenance says where, not what; parsed templates are derived from params, which are hashed.
        names = _HASH_FIELDS[cls] = tuple(name for name in _field_names(cls)
                                          if name != "prov" and not name.endswith("_prov") and name != "templates")
    return names


def _hashable(value: Any) -> Any:
    """The provenance-free form `content_hash` hashes as canonical JSON (kept as its reference definition)."""
    kind = type(value)
    if value is None or kind is str or kind is int or kind is bool or kind is float:
        return value
    if kind is dict:
        return {str(k): _hashable(v) for k, v in value.items()}
    if kind is tuple or kind is list:
        return [_hashable(v) for v in value]
    if hasattr(kind, "__dataclass_fields__"):
        out = {"__type__": kind.__name__}
        for name in _hash_fields(kind):
            item = getattr(value, name)
            if (kind, name) in _LATER_FIELDS and any(item is unset or item == unset for unset in _UNSET):
                continue
            out[name] = _hashable(item)
        return out
    return to_plain(value)


def content_hash(value: Any) -> str:
    """sha256 hex of an object's normalized, provenance-free form.

    The text hashed is `json.dumps(_hashable(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    default=str)`, written out directly: building the intermediate dicts and then encoding them cost a fifth
    of loading a large repository.
    """
    return hashlib.sha256(_canonical(value).encode("utf-8")).hexdigest()


_encode_str = json.encoder.encode_basestring  # the C encoder's own function (ensure_ascii=False)
_FLOATS = {float("inf"): "Infinity", float("-inf"): "-Infinity"}
_ENCODERS: dict[type, Any] = {}


def _dataclass_encoder(kind: type) -> Any:
    """A function writing one dataclass of `kind` as canonical JSON: its fields in sorted key order, in one f-string.

    `__type__` sorts before every field name, so each field is written with the comma before it, and a field
    of `_LATER_FIELDS` that holds its default is written as nothing.
    """
    lines = ["def encode(value):"]
    pieces = ["{{" + _encode_str("__type__") + ":" + _encode_str(kind.__name__)]
    for number, name in enumerate(sorted(_hash_fields(kind))):
        label = "," + _encode_str(name) + ":"
        lines.append(f"    item = value.{name}")
        # The common leaves inline: text, null, empty tuples and mappings, booleans and whole numbers.
        text = ("encode_str(item) if (t := type(item)) is str else 'null' if item is None else '[]' if item is EMPTY"
                " else '{}' if t is dict and not item else 'true' if item is True else 'false' if item is False else"
                " int_repr(item) if t is int else canonical(item)")
        if (kind, name) in _LATER_FIELDS:
            lines.append(f"    f{number} = '' if any(item is unset or item == unset for unset in UNSET) else "
                         f"{label!r} + ({text})")
            pieces.append(f"{{f{number}}}")
        else:
            lines.append(f"    f{number} = {text}")
            pieces.append(f"{label}{{f{number}}}")
    pieces.append("}}")
    lines.append("    return f" + repr("".join(pieces)))
    scope = {"encode_str": _encode_str, "canonical": _canonical, "UNSET": _UNSET, "EMPTY": (), "int_repr": int.__repr__}
    exec("\n".join(lines), scope)  # noqa: S102 - generated from field names, as dataclasses does
    return _ENCODERS.setdefault(kind, scope["encode"])


def _canonical(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    encoder = _ENCODERS.get(kind)  # model elements first: most values that get here are
    if encoder is not None:
        return encoder(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        return float.__repr__(value) if value == value and value not in _FLOATS else _FLOATS.get(value, "NaN")
    if kind is tuple or kind is list:
        if not value:
            return "[]"
        return "[" + ",".join([_encode_str(item) if type(item) is str else _canonical(item) for item in value]) + "]"
    if kind is dict:
        if not value:
            return "{}"
        items = {str(k): v for k, v in value.items()}
        return "{" + ",".join([_encode_str(key) + ":" + _canonical(items[key]) for key in sorted(items)]) + "}"
    if hasattr(kind, "__dataclass_fields__"):
        return _dataclass_encoder(kind)(value)
    return json.dumps(to_plain(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
