"""Conditions (spec §9): parse every YAML form into one tree, evaluate it against a plain snapshot, explain failures."""

from __future__ import annotations

import math
import re
import typing as t
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import date, datetime, timezone

from app.kiket.codes import CODES as REGISTRY
from app.kiket.diagnostics import Diagnostic, Provenance, Severity

Locate = Callable[[str], Provenance]


@dataclass(frozen=True)
class All:
    """True when every item holds (vacuously true when empty)."""

    items: tuple = ()
    prov: Provenance = field(default_factory=Provenance)


@dataclass(frozen=True)
class Any:
    """True when at least one item holds (false when empty)."""

    items: tuple = ()
    prov: Provenance = field(default_factory=Provenance)


@dataclass(frozen=True)
class Not:
    """True when the item does not hold; a Never anywhere inside keeps it false (fails closed)."""

    item: object = None
    prov: Provenance = field(default_factory=Provenance)


@dataclass(frozen=True)
class Compare:
    """`path op value` with a canonical operator (see OPERATORS)."""

    path: str = ""
    op: str = "eq"
    value: object = None
    prov: Provenance = field(default_factory=Provenance)


@dataclass(frozen=True)
class ChecklistComplete:
    """True when checklist `id` is complete (`expected=True`) or not complete (`expected=False`)."""

    id: str = ""
    expected: bool = True
    prov: Provenance = field(default_factory=Provenance)


@dataclass(frozen=True)
class Never:
    """A condition that could not be understood: always false, so guards fail closed."""

    reason: str = ""
    prov: Provenance = field(default_factory=Provenance)


Condition = t.Union[All, Any, Not, Compare, ChecklistComplete, Never]

OPERATORS: tuple[str, ...] = (
    "eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "not_contains",
    "starts_with", "ends_with", "is_present", "is_blank",
)
UNARY_OPERATORS = frozenset({"is_present", "is_blank"})

OPERATOR_ALIASES: dict[str, str] = {
    **{op: op for op in OPERATORS},
    "=": "eq", "==": "eq", "equals": "eq", "is": "eq",
    "!=": "ne", "not_equals": "ne", "is_not": "ne",
    ">": "gt", "greater_than": "gt",
    ">=": "gte", "greater_or_equal": "gte", "greater_than_or_equal": "gte",
    "<": "lt", "less_than": "lt",
    "<=": "lte", "less_or_equal": "lte", "less_than_or_equal": "lte",
    "one_of": "in",
    "present": "is_present", "exists": "is_present", "is_not_empty": "is_present",
    "blank": "is_blank", "is_empty": "is_blank", "not_present": "is_blank",
}

STANDARD_FIELDS = frozenset({
    "id", "key", "title", "description", "status", "issue_type", "workflow", "priority", "assignee",
    "reporter", "labels", "due_date", "parent", "created_at", "updated_at", "resolved_at",
})
EVENT_FIELDS = frozenset({
    "event", "from_status", "to_status", "transition", "actor", "changes",
    # Event payload roots of §10.2 (comment, sla, approval, checklist, revision, project).
    "comment", "sla", "approval", "checklist", "revision", "project",
})
COMPUTED_FIELDS = frozenset({
    "state_category", "sla_status", "hours_in_state", "hours_since_last_update", "hours_until_due", "age_hours",
})
# Paths whose value changes with the clock alone: automations using them also need the time sweep (§10.2).
TIME_BASED_FIELDS = frozenset({"hours_in_state", "hours_since_last_update", "hours_until_due", "age_hours"})
PATH_ALIASES = {"from": "from_status", "to": "to_status"}
KNOWN_ROOTS = STANDARD_FIELDS | EVENT_FIELDS | COMPUTED_FIELDS | {"custom_fields"}

MAX_DEPTH = 32
MAX_NODES = 1024
MAX_PATH_LENGTH = 256

# The codes conditions and expressions emit; severities and descriptions live in the registry.
CODES: dict[str, tuple[Severity, str]] = {code: REGISTRY[code] for code in (
    "unknown_operator",
    "invalid_condition",
    "invalid_path",
    "invalid_checklist",
    "missing_value",
    "ignored_value",
    "unknown_key",
    "condition_too_complex",
    "expression_syntax",
    "expression_too_complex",
    "expression_too_large",
    "unsupported_function",
    "unsupported_comparison",
    "case_vocabulary",
)}

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DATE_PREFIX = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MISSING = object()


def diagnostic(code: str, message: str, prov: Provenance, hint: str = "") -> Diagnostic:
    """Build a Diagnostic whose severity comes from CODES."""
    return Diagnostic(code=code, severity=CODES[code][0], message=message, hint=hint, prov=prov)


def canonical_operator(name: object) -> str | None:
    """Canonical operator for a name or alias (case-insensitive), or None if unknown."""
    if not isinstance(name, str):
        return None
    return OPERATOR_ALIASES.get(name.strip().lower())


def normalize_path(path: object) -> str | None:
    """Canonical field path (§9): strip `issue.`, `fields.x` → `custom_fields.x`, unknown bare names → custom fields.

    Returns None for paths that are empty, malformed or touch `_`-prefixed segments.
    """
    if not isinstance(path, str) or len(path) > 4 * MAX_PATH_LENGTH:
        return None
    return _normalize_text(path)


@lru_cache(maxsize=4096)
def _normalize_text(path: str) -> str | None:
    """`normalize_path` of a text: the same few paths recur in every condition of a repository."""
    text = path.strip()
    if not text or len(text) > MAX_PATH_LENGTH:
        return None
    segments = text.split(".")
    if any(not s or s.startswith("_") or not _SEGMENT.fullmatch(s) for s in segments):
        return None
    if segments[0] in ("issue", "case") and len(segments) > 1:
        segments = segments[1:]
    if segments[0] == "case_type":
        segments[0] = "issue_type"
    if segments[0] == "fields" and len(segments) > 1:
        segments = ["custom_fields", *segments[1:]]
    segments[0] = PATH_ALIASES.get(segments[0], segments[0])
    if segments[0] not in KNOWN_ROOTS:
        segments = ["custom_fields", *segments]
    return ".".join(segments)


class _Budget:
    """Counts nodes so hostile YAML (huge or deep trees) stops early."""

    def __init__(self) -> None:
        self.nodes = 0
        self.exceeded = False


def parse_condition(node: object, pointer: str, locate: Locate) -> tuple[Condition, list[Diagnostic]]:
    """Parse any §9 form (list, all/any/not, field/operator/value, shorthand, checklist, expression string)."""
    diagnostics: list[Diagnostic] = []
    budget = _Budget()
    cond = _parse(node, pointer, locate, diagnostics, 0, budget)
    if budget.exceeded:
        prov = locate(pointer)
        diagnostics.append(diagnostic(
            "condition_too_complex",
            f"condition is nested deeper than {MAX_DEPTH} levels or has more than {MAX_NODES} nodes",
            prov, "split it into simpler conditions",
        ))
        return Never("condition too complex", prov), diagnostics
    return cond, diagnostics


def _parse(node: object, pointer: str, locate: Locate, diags: list[Diagnostic], depth: int, budget: _Budget) -> Condition:
    budget.nodes += 1
    if depth > MAX_DEPTH or budget.nodes > MAX_NODES:
        budget.exceeded = True
        return Never("condition too complex")
    if budget.exceeded:
        return Never("condition too complex")
    prov = locate(pointer)
    if isinstance(node, bool):
        return All((), prov) if node else Never("literal false", prov)
    if isinstance(node, str):
        from app.kiket.expressions import parse_expression

        cond, expr_diags = parse_expression(node, pointer, locate)
        diags.extend(expr_diags)
        return cond
    if isinstance(node, list):
        items = tuple(_parse(item, f"{pointer}/{i}", locate, diags, depth + 1, budget) for i, item in enumerate(node))
        return All(items, prov)
    if isinstance(node, dict) or isinstance(node, Mapping):  # dict first: ABC checks are slow
        return _parse_mapping(node, pointer, prov, locate, diags, depth, budget)
    diags.append(diagnostic(
        "invalid_condition", f"a condition must be a list, a mapping or an expression string, got {_kind(node)}",
        prov, "use e.g. {field: priority, operator: eq, value: high}",
    ))
    return Never(f"invalid condition ({_kind(node)})", prov)


def _parse_mapping(
    node: Mapping, pointer: str, prov: Provenance, locate: Locate, diags: list[Diagnostic], depth: int, budget: _Budget
) -> Condition:
    keys = [k for k in node if isinstance(k, str)]
    for group, cls in (("all", All), ("any", Any)):
        if group in node:
            _warn_extra_keys(node, {group}, pointer, locate, diags)
            raw = node[group]
            sub = f"{pointer}/{group}"
            if isinstance(raw, list):
                items = tuple(_parse(x, f"{sub}/{i}", locate, diags, depth + 1, budget) for i, x in enumerate(raw))
            else:
                items = (_parse(raw, sub, locate, diags, depth + 1, budget),)
            return cls(items, prov)
    if "not" in node:
        _warn_extra_keys(node, {"not"}, pointer, locate, diags)
        inner = _parse(node["not"], f"{pointer}/not", locate, diags, depth + 1, budget)
        if contains_never(inner):
            return Never("negation of a condition that cannot be evaluated", prov)
        return Not(inner, prov)
    if "checklist" in node:
        return _parse_checklist(node, pointer, prov, locate, diags)
    if "field" in node:
        return _parse_compare(node, pointer, prov, locate, diags)
    diags.append(diagnostic(
        "invalid_condition",
        f"condition mapping has none of all/any/not/field/checklist (keys: {', '.join(map(str, keys[:8])) or 'none'})",
        prov, "use {field: x, operator: eq, value: y}, {all: [...]}, {any: [...]}, {not: ...} or {checklist: id}",
    ))
    return Never("invalid condition mapping", prov)


def _warn_extra_keys(node: Mapping, allowed: set[str], pointer: str, locate: Locate, diags: list[Diagnostic]) -> None:
    for key in node:
        if key not in allowed:
            diags.append(diagnostic("unknown_key", f"key {key!r} is ignored in this condition", locate(f"{pointer}/{key}")))


def _parse_checklist(node: Mapping, pointer: str, prov: Provenance, locate: Locate, diags: list[Diagnostic]) -> Condition:
    _warn_extra_keys(node, {"checklist", "complete"}, pointer, locate, diags)
    checklist_id = node.get("checklist")
    expected = node.get("complete", True)
    if not isinstance(checklist_id, str) or not checklist_id.strip():
        diags.append(diagnostic("invalid_checklist", f"checklist id must be a string, got {checklist_id!r}", prov))
        return Never("invalid checklist guard", prov)
    if not isinstance(expected, bool):
        diags.append(diagnostic(
            "invalid_checklist", f"`complete` must be true or false, got {expected!r}", locate(f"{pointer}/complete")
        ))
        return Never("invalid checklist guard", prov)
    return ChecklistComplete(checklist_id.strip(), expected, prov)


def _parse_compare(node: Mapping, pointer: str, prov: Provenance, locate: Locate, diags: list[Diagnostic]) -> Condition:
    raw_path = node.get("field")
    path = normalize_path(raw_path)
    if path is not None and uses_case_words(raw_path):
        diags.append(case_vocabulary(raw_path, locate(f"{pointer}/field")))
    if path is None:
        diags.append(diagnostic(
            "invalid_path", f"field {raw_path!r} is not a valid dotted path", locate(f"{pointer}/field"),
            "use a field name such as priority or custom_fields.severity; names starting with _ are not allowed",
        ))
        return Never("invalid field path", prov)

    op_key: str | None = None
    if "operator" in node or "op" in node:
        op_key = "operator" if "operator" in node else "op"
        raw_op = node[op_key]
        has_value = "value" in node or "values" in node
        value = node.get("value", node.get("values"))
        extra = set(node) - {"field", op_key, "value", "values"}
    else:
        candidates = [k for k in node if k not in ("field", "value", "values")]
        if not candidates:
            if "value" in node or "values" in node:
                raw_op, has_value, value = "eq", True, node.get("value", node.get("values"))
            else:
                diags.append(diagnostic(
                    "invalid_condition", f"condition on {raw_path!r} has no operator", prov,
                    "add e.g. `operator: is_present` or `equals: value`",
                ))
                return Never("condition without operator", prov)
            extra = set()
        else:
            known = [k for k in candidates if canonical_operator(k) is not None]
            op_key = known[0] if known else candidates[0]
            raw_op, has_value, value = op_key, True, node[op_key]
            extra = set(candidates) - {op_key}
            if "value" in node or "values" in node:
                extra.add("value" if "value" in node else "values")
    for key in sorted(map(str, extra)):
        diags.append(diagnostic("unknown_key", f"key {key!r} is ignored in this condition", locate(f"{pointer}/{key}")))

    op = canonical_operator(raw_op)
    op_pointer = f"{pointer}/{op_key}" if op_key else pointer
    if op is None:
        diags.append(diagnostic(
            "unknown_operator", f"unknown operator {raw_op!r}; this condition never holds", locate(op_pointer),
            "use one of: " + ", ".join(OPERATORS),
        ))
        return Never(f"unknown operator {raw_op!r}", prov)
    if op in UNARY_OPERATORS:
        if op_key not in ("operator", "op") and value is False:
            # Shorthand `{field: x, present: false}` reads as "not present".
            op = "is_blank" if op == "is_present" else "is_present"
        elif has_value and value is not None and op_key in ("operator", "op"):
            diags.append(diagnostic("ignored_value", f"operator {op} takes no value", locate(f"{pointer}/value")))
        value = None
    elif not has_value:
        diags.append(diagnostic(
            "missing_value", f"operator {raw_op!r} on {raw_path!r} has no value; comparing with null", prov,
        ))
    if op in ("in", "not_in") and isinstance(value, (tuple, set, frozenset)):
        value = list(value)
    return Compare(path, op, _freeze(value), prov)


def _freeze(value: object) -> object:
    """Lists become tuples so conditions stay hashable and immutable."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def uses_case_words(path: object) -> bool:
    """True when a written field path uses the workspace/case vocabulary (`case_type`, `case.title`, §16)."""
    if not isinstance(path, str):
        return False
    head = path.strip().split(".", 1)[0]
    return head == "case_type" or (head == "case" and "." in path)


def case_vocabulary(path: str, prov: Provenance) -> Diagnostic:
    """The info that a path was read in the project/issue vocabulary."""
    return diagnostic("case_vocabulary", f"'{path}' uses the workspace/case vocabulary; it is read as "
                      f"'{normalize_path(path)}'.", prov)


def _kind(node: object) -> str:
    return "null" if node is None else type(node).__name__


def contains_never(cond: object) -> bool:
    """True if a Never appears anywhere in the tree."""
    stack = [cond]
    while stack:
        item = stack.pop()
        if isinstance(item, Never):
            return True
        if isinstance(item, (All, Any)):
            stack.extend(item.items)
        elif isinstance(item, Not):
            stack.append(item.item)
    return False


def referenced_paths(cond: object) -> set[str]:
    """All field paths a condition reads."""
    paths: set[str] = set()
    stack = [cond]
    while stack:
        item = stack.pop()
        if isinstance(item, Compare):
            paths.add(item.path)
        elif isinstance(item, (All, Any)):
            stack.extend(item.items)
        elif isinstance(item, Not):
            stack.append(item.item)
    return paths


def resolve_path(snapshot: object, path: str) -> object:
    """Value at a dotted path through dicts and lists only; missing (or `_`-prefixed) → None."""
    if not isinstance(path, str):
        return None
    value = _resolve(snapshot, path)
    return None if value is _MISSING else value


def _resolve(snapshot: object, path: str) -> object:
    current = snapshot
    for segment in path.split("."):
        if not segment or segment.startswith("_"):
            return _MISSING
        if isinstance(current, Mapping):
            if segment not in current:
                return _MISSING
            current = current[segment]
        elif isinstance(current, (list, tuple)) and segment.isdigit() and segment.isascii():
            index = int(segment)
            if index >= len(current):
                return _MISSING
            current = current[index]
        else:
            return _MISSING
    return current


def evaluate(cond: object, snapshot: Mapping, *, checklists: Mapping[str, bool] | None = None) -> bool:
    """Evaluate a condition against a plain snapshot (§9 semantics); never raises on data."""
    return _eval(cond, snapshot, checklists or {}, 0)


def _eval(cond: object, snapshot: Mapping, checklists: Mapping[str, bool], depth: int) -> bool:
    if depth > MAX_DEPTH * 4:
        return False
    if isinstance(cond, Compare):
        return _compare_holds(cond, resolve_path(snapshot, cond.path))
    if isinstance(cond, All):
        return all(_eval(c, snapshot, checklists, depth + 1) for c in cond.items)
    if isinstance(cond, Any):
        return any(_eval(c, snapshot, checklists, depth + 1) for c in cond.items)
    if isinstance(cond, Not):
        if contains_never(cond.item):
            return False
        return not _eval(cond.item, snapshot, checklists, depth + 1)
    if isinstance(cond, ChecklistComplete):
        return bool(checklists.get(cond.id, False)) is cond.expected
    return False


def _compare_holds(cond: Compare, actual: object) -> bool:
    try:
        return _apply(cond.op, actual, cond.value)
    except (TypeError, ValueError, OverflowError, ArithmeticError):
        return False


def _apply(op: str, actual: object, expected: object) -> bool:
    if op == "is_present":
        return not _is_blank(actual)
    if op == "is_blank":
        return _is_blank(actual)
    if op == "eq":
        return _eq_any(actual, expected)
    if op == "ne":
        return not _eq_any(actual, expected)
    if op in ("gt", "gte", "lt", "lte"):
        order = _order(actual, expected)
        if order is None:
            return False
        return {"gt": order > 0, "gte": order >= 0, "lt": order < 0, "lte": order <= 0}[op]
    if op == "in":
        return _in(actual, expected)
    if op == "not_in":
        return not _in(actual, expected)
    if op == "contains":
        return _contains(actual, expected)
    if op == "not_contains":
        return not _contains(actual, expected)
    if op in ("starts_with", "ends_with"):
        return _affix(op, actual, expected)
    return False


def _is_blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        return len(value) == 0
    return False


def _is_list(value: object) -> bool:
    return isinstance(value, (list, tuple, set, frozenset))


def _eq_any(actual: object, expected: object) -> bool:
    """Equality with list semantics: a list field equals a value if any element does."""
    if actual is None or expected is None:
        return actual is None and expected is None
    if _is_list(actual) and _is_list(expected):
        a, e = list(actual), list(expected)
        return len(a) == len(e) and all(_eq(x, y) for x, y in zip(a, e))
    if _is_list(actual):
        return any(_eq(x, expected) for x in actual)
    return _eq(actual, expected)


def _eq(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is None and b is None
    order = _order(a, b, equality=True)
    if order is not None:
        return order == 0
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        return a == b
    return False


def _in(actual: object, expected: object) -> bool:
    if actual is None:
        return False
    options = list(expected) if _is_list(expected) else [expected]
    if _is_list(actual):
        return any(_eq(x, o) for x in actual for o in options)
    return any(_eq(actual, o) for o in options)


def _contains(actual: object, expected: object) -> bool:
    if actual is None:
        return False
    if _is_list(actual):
        return any(_eq(x, expected) for x in actual)
    if isinstance(actual, Mapping):
        return any(_eq(k, expected) for k in actual)
    if isinstance(actual, str) and expected is not None and not _is_list(expected):
        return _text(expected).casefold() in actual.casefold()
    return False


def _affix(op: str, actual: object, expected: object) -> bool:
    if actual is None or expected is None or _is_list(expected) or isinstance(expected, Mapping):
        return False
    if _is_list(actual):
        return any(_affix(op, x, expected) for x in actual)
    if isinstance(actual, (Mapping, bool)) or isinstance(expected, bool):
        return False
    a, e = _text(actual).casefold(), _text(expected).casefold()
    return a.startswith(e) if op == "starts_with" else a.endswith(e)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _order(a: object, b: object, *, equality: bool = False) -> int | None:
    """-1/0/1 comparing two scalars (numbers, ISO dates, strings case-insensitively), None if incomparable."""
    if a is None or b is None or _is_list(a) or _is_list(b) or isinstance(a, Mapping) or isinstance(b, Mapping):
        return None
    if isinstance(a, bool) or isinstance(b, bool):
        if not equality:
            return None
        return 0 if _text(a).casefold() == _text(b).casefold() else 1
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        if isinstance(na, float) and math.isnan(na) or isinstance(nb, float) and math.isnan(nb):
            return None
        return (na > nb) - (na < nb)
    da, db = _moment(a), _moment(b)
    if da is not None and db is not None:
        return (da > db) - (da < db)
    if isinstance(a, str) and isinstance(b, str):
        fa, fb = a.casefold(), b.casefold()
        return (fa > fb) - (fa < fb)
    if equality and type(a) is type(b):
        return 0 if a == b else 1
    if equality and (isinstance(a, str) or isinstance(b, str)):
        return 0 if _text(a).casefold() == _text(b).casefold() else 1
    return None


def _number(value: object) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and len(value) <= 64:
        text = value.strip()
        if _NUMBER.fullmatch(text):
            try:
                if re.fullmatch(r"[+-]?[0-9]+", text):
                    return int(text)
                return float(text)
            except (ValueError, OverflowError):
                return None
    return None


def _moment(value: object) -> datetime | None:
    """ISO-8601 date or datetime as an aware datetime (naive → UTC, date → midnight UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and 10 <= len(value.strip()) <= 40 and _DATE_PREFIX.match(value.strip()):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


_OP_PHRASES = {
    "eq": "equal", "ne": "differ from", "gt": "be greater than", "gte": "be at least", "lt": "be less than",
    "lte": "be at most", "in": "be one of", "not_in": "not be one of", "contains": "contain",
    "not_contains": "not contain", "starts_with": "start with", "ends_with": "end with",
    "is_present": "be present", "is_blank": "be blank",
}


def describe(cond: object, _depth: int = 0) -> str:
    """One-line human form of a condition, e.g. `priority equals 'high'`."""
    if _depth > 8:
        return "..."
    if isinstance(cond, Compare):
        if cond.op in UNARY_OPERATORS:
            return f"{cond.path} {'is present' if cond.op == 'is_present' else 'is blank'}"
        return f"{cond.path} {_verb(cond.op)} {_show(cond.value)}"
    if isinstance(cond, (All, Any)):
        label = "all of" if isinstance(cond, All) else "any of"
        return f"{label} (" + "; ".join(describe(c, _depth + 1) for c in cond.items[:10]) + ")"
    if isinstance(cond, Not):
        return f"not ({describe(cond.item, _depth + 1)})"
    if isinstance(cond, ChecklistComplete):
        return f"checklist {cond.id} is {'complete' if cond.expected else 'not complete'}"
    if isinstance(cond, Never):
        return f"never ({cond.reason})"
    return type(cond).__name__


def _verb(op: str) -> str:
    return {
        "eq": "equals", "ne": "does not equal", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "in": "is one of",
        "not_in": "is not one of", "contains": "contains", "not_contains": "does not contain",
        "starts_with": "starts with", "ends_with": "ends with",
    }.get(op, op)


def _show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in list(value)[:20]) + "]"
    text = repr(value) if isinstance(value, str) else _text(value)
    return text if len(text) <= 80 else text[:77] + "..."


def explain(cond: object, snapshot: Mapping, *, checklists: Mapping[str, bool] | None = None,
            labels: Mapping[str, str] | None = None) -> list[str]:
    """Human-readable reasons for each failing leaf; empty when the condition holds.

    `labels` names field paths as people know them (an issue type's field labels); other paths are shown as written.
    """
    reasons: list[str] = []
    _explain(cond, snapshot, checklists or {}, reasons, 0, labels or {})
    return reasons


def _explain(cond: object, snapshot: Mapping, checklists: Mapping[str, bool], out: list[str], depth: int,
             labels: Mapping[str, str]) -> None:
    if _eval(cond, snapshot, checklists, 0):
        return
    if depth > MAX_DEPTH:
        out.append(f"condition does not hold: {describe(cond)}")
        return
    if isinstance(cond, Compare):
        actual = resolve_path(snapshot, cond.path)
        out.append(f"{labels.get(cond.path, cond.path)} must {_OP_PHRASES.get(cond.op, cond.op)}"
                   + ("" if cond.op in UNARY_OPERATORS else f" {_show(cond.value)}")
                   + (" (it is not set)" if actual is None else f" (it is {_show(actual)})"))
    elif isinstance(cond, All):
        for item in cond.items:
            _explain(item, snapshot, checklists, out, depth + 1, labels)
    elif isinstance(cond, Any):
        if not cond.items:
            out.append("no alternative is given")
            return
        nested: list[str] = []
        for item in cond.items:
            _explain(item, snapshot, checklists, nested, depth + 1, labels)
        out.append("none of the alternatives holds: " + "; or ".join(nested))
    elif isinstance(cond, Not):
        if contains_never(cond.item):
            out.append(f"cannot be evaluated: {describe(cond.item)}")
        else:
            out.append(f"must not hold: {describe(cond.item)}")
    elif isinstance(cond, ChecklistComplete):
        out.append(f"checklist {cond.id} must {'be complete' if cond.expected else 'not be complete'}")
    elif isinstance(cond, Never):
        out.append(f"condition can never hold: {cond.reason}")
    else:
        out.append(f"not a condition: {type(cond).__name__}")
