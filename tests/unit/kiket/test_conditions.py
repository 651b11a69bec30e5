"""Conditions (spec §9): parse forms, operator aliases, evaluation semantics, explanations."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.kiket.conditions import (
    CODES,
    OPERATOR_ALIASES,
    OPERATORS,
    All,
    Any,
    ChecklistComplete,
    Compare,
    Never,
    Not,
    canonical_operator,
    describe,
    evaluate,
    explain,
    normalize_path,
    parse_condition,
    referenced_paths,
    resolve_path,
)
from app.kiket.codes import CODES as REGISTRY
from app.kiket.diagnostics import Provenance


def locate(pointer: str) -> Provenance:
    return Provenance(path=".kiket/workflows/bug.yaml", line=1, pointer=pointer)


def parse(node):
    return parse_condition(node, "/c", locate)


def codes(diags) -> list[str]:
    return [d.code for d in diags]


def holds(node, snapshot, **kw) -> bool:
    cond, _ = parse(node)
    return evaluate(cond, snapshot, **kw)


# ---- operator canonicalization -------------------------------------------------------------

ALIASES = [
    ("=", "eq"), ("==", "eq"), ("equals", "eq"), ("is", "eq"), ("eq", "eq"),
    ("!=", "ne"), ("not_equals", "ne"), ("is_not", "ne"), ("ne", "ne"),
    (">", "gt"), ("greater_than", "gt"), ("gt", "gt"),
    (">=", "gte"), ("greater_or_equal", "gte"), ("greater_than_or_equal", "gte"), ("gte", "gte"),
    ("<", "lt"), ("less_than", "lt"), ("lt", "lt"),
    ("<=", "lte"), ("less_or_equal", "lte"), ("less_than_or_equal", "lte"), ("lte", "lte"),
    ("in", "in"), ("one_of", "in"), ("not_in", "not_in"),
    ("contains", "contains"), ("not_contains", "not_contains"),
    ("starts_with", "starts_with"), ("ends_with", "ends_with"),
    ("is_present", "is_present"), ("present", "is_present"), ("exists", "is_present"),
    ("is_not_empty", "is_present"),
    ("is_blank", "is_blank"), ("blank", "is_blank"), ("is_empty", "is_blank"), ("not_present", "is_blank"),
]


@pytest.mark.parametrize(("alias", "canonical"), ALIASES)
def test_operator_alias_canonicalizes(alias, canonical):
    assert canonical_operator(alias) == canonical
    assert canonical_operator(f" {alias.upper()} ") == canonical


def test_alias_table_covers_every_operator():
    assert set(OPERATOR_ALIASES.values()) == set(OPERATORS)
    assert {a for a, _ in ALIASES} == set(OPERATOR_ALIASES)


@pytest.mark.parametrize(("alias", "canonical"), ALIASES)
def test_operator_alias_in_full_form_parses(alias, canonical):
    cond, diags = parse({"field": "priority", "operator": alias, "value": "high"})
    assert isinstance(cond, Compare) and cond.op == canonical
    assert "unknown_operator" not in codes(diags)


@pytest.mark.parametrize(("alias", "canonical"), [a for a in ALIASES if a[0].replace("_", "").isalpha()])
def test_operator_alias_as_shorthand_key(alias, canonical):
    cond, diags = parse({"field": "priority", alias: "high"})
    assert isinstance(cond, Compare) and cond.op == canonical
    assert not [d for d in diags if d.severity in ("error", "warning")]


@pytest.mark.parametrize("bad", ["matches", "~=", "regex", "===", 3, None])
def test_unknown_operator_warns_and_fails_closed(bad):
    cond, diags = parse({"field": "priority", "operator": bad, "value": "high"})
    assert isinstance(cond, Never)
    assert codes(diags) == ["unknown_operator"]
    assert diags[0].severity == "warning"
    assert diags[0].pointer == "/c/operator"
    assert evaluate(cond, {"priority": "high"}) is False


def test_unknown_shorthand_operator_is_never():
    cond, diags = parse({"field": "priority", "matches": "hi.*"})
    assert isinstance(cond, Never) and codes(diags) == ["unknown_operator"]


def test_unknown_operator_under_not_does_not_open_the_guard():
    cond, _ = parse({"not": {"field": "priority", "operator": "bogus", "value": 1}})
    assert evaluate(cond, {}) is False
    assert evaluate(Not(Never("x")), {}) is False
    assert evaluate(Not(All((Never("x"),))), {}) is False


# ---- parse forms ------------------------------------------------------------------------------

def test_list_is_all_with_item_pointers():
    cond, diags = parse([{"field": "a", "equals": 1}, {"field": "b", "equals": 2}])
    assert isinstance(cond, All) and len(cond.items) == 2
    assert [c.prov.pointer for c in cond.items] == ["/c/0", "/c/1"]
    assert diags == []


@pytest.mark.parametrize(("key", "cls"), [("all", All), ("any", Any)])
def test_groups(key, cls):
    cond, diags = parse({key: [{"field": "a", "equals": 1}, "b == 2"]})
    assert isinstance(cond, cls) and len(cond.items) == 2
    assert cond.items[0].prov.pointer == f"/c/{key}/0"
    assert diags == []


def test_group_with_single_mapping_is_accepted():
    cond, _ = parse({"any": {"field": "a", "equals": 1}})
    assert isinstance(cond, Any) and len(cond.items) == 1


def test_not():
    cond, diags = parse({"not": {"field": "status", "equals": "done"}})
    assert isinstance(cond, Not) and isinstance(cond.item, Compare)
    assert cond.item.prov.pointer == "/c/not"
    assert evaluate(cond, {"status": "open"}) and not evaluate(cond, {"status": "DONE"})
    assert diags == []


def test_nested_groups():
    node = {"all": [{"any": [{"field": "priority", "equals": "high"}, {"field": "labels", "contains": "urgent"}]},
                    {"not": {"field": "assignee", "operator": "is_blank"}}]}
    cond, diags = parse(node)
    assert diags == []
    assert evaluate(cond, {"priority": "low", "labels": ["urgent"], "assignee": "a"})
    assert not evaluate(cond, {"priority": "low", "labels": [], "assignee": "a"})
    assert not evaluate(cond, {"priority": "high", "assignee": ""})


def test_checklist_guard():
    cond, diags = parse({"checklist": "bug_testing", "complete": True})
    assert cond == ChecklistComplete("bug_testing", True, locate("/c"))
    assert diags == []
    assert evaluate(cond, {}, checklists={"bug_testing": True})
    assert not evaluate(cond, {}, checklists={"bug_testing": False})
    assert not evaluate(cond, {})


def test_checklist_guard_defaults_to_complete_and_supports_false():
    assert parse({"checklist": "x"})[0].expected is True
    cond, _ = parse({"checklist": "x", "complete": False})
    assert evaluate(cond, {}, checklists={}) and not evaluate(cond, {}, checklists={"x": True})


@pytest.mark.parametrize("node", [{"checklist": ""}, {"checklist": 3}, {"checklist": "x", "complete": "yes"}])
def test_invalid_checklist_guard(node):
    cond, diags = parse(node)
    assert isinstance(cond, Never) and codes(diags) == ["invalid_checklist"]


def test_expression_string_form():
    cond, diags = parse("priority == 'high' && assignee != null")
    assert diags == []
    assert evaluate(cond, {"priority": "HIGH", "assignee": "ann"})
    assert not evaluate(cond, {"priority": "high"})


def test_field_value_without_operator_means_eq():
    cond, _ = parse({"field": "status", "value": "done"})
    assert isinstance(cond, Compare) and cond.op == "eq"


@pytest.mark.parametrize(("node", "code"), [
    ({"field": "status"}, "invalid_condition"),
    ({"foo": "bar"}, "invalid_condition"),
    ({}, "invalid_condition"),
    (42, "invalid_condition"),
    (None, "invalid_condition"),
    (3.5, "invalid_condition"),
    ({"field": "", "equals": 1}, "invalid_path"),
    ({"field": "a..b", "equals": 1}, "invalid_path"),
    ({"field": "__class__", "equals": 1}, "invalid_path"),
    ({"field": "issue._private", "equals": 1}, "invalid_path"),
    ({"field": ["x"], "equals": 1}, "invalid_path"),
    ({"field": "a b", "equals": 1}, "invalid_path"),
    ("", "expression_syntax"),
    ("priority ==", "expression_syntax"),
])
def test_invalid_forms_fail_closed(node, code):
    cond, diags = parse(node)
    assert isinstance(cond, Never)
    assert code in codes(diags)
    assert evaluate(cond, {"status": "x"}) is False


def test_booleans_are_constant_conditions():
    assert evaluate(parse(True)[0], {}) is True
    assert evaluate(parse(False)[0], {}) is False


def test_missing_value_is_compared_with_null():
    cond, diags = parse({"field": "assignee", "operator": "eq"})
    assert codes(diags) == ["missing_value"] and cond.value is None
    assert evaluate(cond, {}) and not evaluate(cond, {"assignee": "a"})


def test_value_on_unary_operator_is_ignored():
    cond, diags = parse({"field": "assignee", "operator": "is_present", "value": "x"})
    assert cond.value is None and codes(diags) == ["ignored_value"]
    assert diags[0].severity == "info"


@pytest.mark.parametrize(("node", "op"), [
    ({"field": "assignee", "is_present": True}, "is_present"),
    ({"field": "assignee", "exists": False}, "is_blank"),
    ({"field": "assignee", "present": False}, "is_blank"),
    ({"field": "assignee", "is_blank": False}, "is_present"),
    ({"field": "assignee", "is_empty": True}, "is_blank"),
])
def test_unary_shorthand_flag(node, op):
    cond, diags = parse(node)
    assert (cond.op, cond.value, diags) == (op, None, [])


def test_unknown_keys_warn_but_keep_the_condition():
    cond, diags = parse({"field": "a", "operator": "eq", "value": 1, "note": "x"})
    assert isinstance(cond, Compare) and codes(diags) == ["unknown_key"]
    assert diags[0].pointer == "/c/note"
    cond, diags = parse({"all": [], "extra": 1})
    assert isinstance(cond, All) and codes(diags) == ["unknown_key"]


def test_in_with_scalar_value_and_values_key():
    assert holds({"field": "priority", "in": "high"}, {"priority": "High"})
    assert holds({"field": "priority", "operator": "in", "values": ["low", "high"]}, {"priority": "high"})


def test_values_are_frozen_to_tuples():
    cond, _ = parse({"field": "priority", "in": ["P1", ["x"]]})
    assert cond.value == ("P1", ("x",))
    hash(cond)


def test_every_emitted_code_is_registered():
    nodes = [{"field": "a", "operator": "zz"}, {"x": 1}, {"field": "_a", "eq": 1}, {"checklist": 1},
             {"field": "a", "operator": "eq"}, {"field": "a", "operator": "is_present", "value": 1},
             {"field": "a", "eq": 1, "zz": 2}, "a ==", "f(1)", "a == b", "(" * 40 + "a" + ")" * 40,
             " || ".join(["a"] * 300), "x" * 5000, [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]
    for node in nodes:
        _, diags = parse(node)
        assert diags, node
        for d in diags:
            assert d.code in CODES
            assert d.severity == CODES[d.code][0]


# ---- path normalization -----------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("priority", "priority"),
    ("issue.priority", "priority"),
    ("issue_type", "issue_type"),
    ("custom_fields.severity", "custom_fields.severity"),
    ("issue.custom_fields.severity", "custom_fields.severity"),
    ("fields.severity", "custom_fields.severity"),
    ("issue.fields.severity", "custom_fields.severity"),
    ("ai_risk_score", "custom_fields.ai_risk_score"),
    ("total_value_usd", "custom_fields.total_value_usd"),
    ("severity", "custom_fields.severity"),
    ("to_status", "to_status"),
    ("from_status", "from_status"),
    ("to", "to_status"),
    ("from", "from_status"),
    ("actor.type", "actor.type"),
    ("changes.assignee", "changes.assignee"),
    ("event", "event"),
    ("transition", "transition"),
    ("hours_since_last_update", "hours_since_last_update"),
    ("hours_until_due", "hours_until_due"),
    ("hours_in_state", "hours_in_state"),
    ("age_hours", "age_hours"),
    ("state_category", "state_category"),
    ("sla_status", "sla_status"),
    ("labels.0", "labels.0"),
    ("  status  ", "status"),
    ("issue", "custom_fields.issue"),
])
def test_normalize_path(raw, expected):
    assert normalize_path(raw) == expected


@pytest.mark.parametrize("raw", ["", " ", "a.", ".a", "a..b", "_x", "a._b", "a.__class__", "a b", "a/b", None, 5,
                                 "x" * 300, "a.-b"])
def test_normalize_path_rejects(raw):
    assert normalize_path(raw) is None


# ---- evaluation semantics ---------------------------------------------------------------------

SNAP = {
    "id": 7, "title": "Login broken", "status": "in_progress", "priority": "P1", "assignee": "ann",
    "reporter": None, "labels": ["Backend", "urgent"], "description": "",
    "due_date": "2026-12-01", "created_at": "2026-11-20T10:00:00Z",
    "custom_fields": {"severity": "critical", "ai_risk_score": 0.85, "count": "12", "flag": True, "empty": [],
                      "nested": {"deep": [{"v": "x"}]}},
    "hours_since_last_update": 50, "hours_until_due": 4.5, "to_status": "postmortem",
}

TABLE = [
    # eq / ne, case-insensitive, numeric-looking
    ("status", "eq", "IN_PROGRESS", True),
    ("status", "eq", "done", False),
    ("priority", "eq", "p1", True),
    ("status", "ne", "done", True),
    ("status", "ne", "In_Progress", False),
    ("custom_fields.count", "eq", 12, True),
    ("custom_fields.count", "eq", "12.0", True),
    ("id", "eq", "7", True),
    ("custom_fields.ai_risk_score", "eq", "0.85", True),
    ("custom_fields.flag", "eq", True, True),
    ("custom_fields.flag", "eq", "true", True),
    ("custom_fields.flag", "eq", False, False),
    # null semantics
    ("reporter", "eq", None, True),
    ("missing_field", "eq", None, True),
    ("assignee", "eq", None, False),
    ("missing_field", "ne", "x", True),
    ("missing_field", "ne", None, False),
    ("missing_field", "gt", 1, False),
    ("missing_field", "gte", 1, False),
    ("missing_field", "lt", 1, False),
    ("missing_field", "lte", 1, False),
    ("missing_field", "in", ["a", None], False),
    ("missing_field", "not_in", ["a"], True),
    ("missing_field", "is_blank", None, True),
    ("missing_field", "is_present", None, False),
    ("missing_field", "contains", "a", False),
    ("missing_field", "not_contains", "a", True),
    ("missing_field", "starts_with", "a", False),
    ("missing_field", "ends_with", "a", False),
    ("status", "gt", None, False),
    # ordering: numbers, numeric strings, dates, strings
    ("hours_since_last_update", "gte", 48, True),
    ("hours_since_last_update", "gt", 50, False),
    ("hours_since_last_update", "gte", "48", True),
    ("hours_until_due", "lte", 8, True),
    ("hours_until_due", "lt", 4.5, False),
    ("custom_fields.count", "gt", 9, True),
    ("custom_fields.count", "gt", "9", True),
    ("custom_fields.ai_risk_score", "gte", 0.7, True),
    ("due_date", "lt", "2026-12-02", True),
    ("due_date", "gt", "2026-11-30T23:59:59Z", True),
    ("due_date", "eq", date(2026, 12, 1), True),
    ("created_at", "lt", "2026-11-20T11:00:00+01:00", False),
    ("created_at", "eq", "2026-11-20T11:00:00+01:00", True),
    ("created_at", "gte", datetime(2026, 11, 20, 10, tzinfo=timezone.utc), True),
    ("status", "gt", "a", True),
    ("status", "lt", "B", False),
    ("status", "gt", 5, False),
    ("custom_fields.flag", "gt", False, False),
    ("labels", "gt", "a", False),
    ("custom_fields.nested", "gt", 1, False),
    # in / not_in
    ("priority", "in", ["P1", "P2"], True),
    ("priority", "in", ["p2"], False),
    ("status", "in", ["IN_PROGRESS", "review"], True),
    ("status", "not_in", ["done"], True),
    ("status", "not_in", ["In_Progress"], False),
    ("id", "in", ["7", "8"], True),
    ("labels", "in", ["backend", "x"], True),
    ("labels", "in", ["x"], False),
    ("labels", "not_in", ["x"], True),
    # list semantics
    ("labels", "eq", "URGENT", True),
    ("labels", "eq", "frontend", False),
    ("labels", "ne", "frontend", True),
    ("labels", "contains", "backend", True),
    ("labels", "contains", "back", False),
    ("labels", "not_contains", "frontend", True),
    ("labels", "eq", ["backend", "URGENT"], True),
    ("labels", "starts_with", "back", True),
    ("labels", "is_present", None, True),
    ("custom_fields.empty", "is_blank", None, True),
    ("custom_fields.empty", "contains", "x", False),
    # strings
    ("title", "contains", "BROKEN", True),
    ("title", "not_contains", "broken", False),
    ("title", "starts_with", "login", True),
    ("title", "ends_with", "BROKEN", True),
    ("title", "ends_with", "login", False),
    ("id", "starts_with", "7", True),
    ("custom_fields.flag", "starts_with", "t", False),
    # blank / present
    ("description", "is_blank", None, True),
    ("description", "is_present", None, False),
    ("assignee", "is_present", None, True),
    ("reporter", "is_blank", None, True),
    ("custom_fields.flag", "is_present", None, True),
    # dotted paths, indices
    ("custom_fields.nested.deep.0.v", "eq", "X", True),
    ("custom_fields.nested.deep.1.v", "eq", None, True),
    ("labels.1", "eq", "urgent", True),
    ("to_status", "eq", "postmortem", True),
]


@pytest.mark.parametrize(("path", "op", "value", "expected"), TABLE)
def test_evaluate_table(path, op, value, expected):
    assert evaluate(Compare(path, op, value), SNAP) is expected


@pytest.mark.parametrize("op", OPERATORS)
def test_every_operator_is_in_the_table(op):
    assert any(row[1] == op for row in TABLE)


@pytest.mark.parametrize("op", OPERATORS)
def test_every_operator_tolerates_odd_values(op):
    for actual in (None, 1, "x", [1, "a"], {"k": 1}, True, 1.5, float("nan"), float("inf"), date(2020, 1, 1)):
        for value in (None, 1, "x", ["x"], {"k": 1}, True, float("nan"), "2020-01-01"):
            assert evaluate(Compare("v", op, value), {"v": actual}) in (True, False)


def test_nan_never_compares():
    assert not evaluate(Compare("v", "eq", float("nan")), {"v": float("nan")})
    assert not evaluate(Compare("v", "gt", 1), {"v": float("nan")})


def test_date_vs_datetime_and_naive():
    assert evaluate(Compare("d", "lt", "2026-01-01T00:00:01"), {"d": "2026-01-01"})
    assert evaluate(Compare("d", "eq", "2026-01-01T00:00:00Z"), {"d": datetime(2026, 1, 1)})


def test_invalid_date_strings_fall_back_to_text():
    assert evaluate(Compare("d", "eq", "2026-13-45"), {"d": "2026-13-45"})
    assert not evaluate(Compare("d", "lt", "2026-12-01"), {"d": "2026-13-45x"})


def test_empty_groups():
    assert evaluate(All(()), {}) is True
    assert evaluate(Any(()), {}) is False


def test_never_is_false_everywhere():
    assert evaluate(Never("x"), SNAP) is False
    assert evaluate(Any((Never("x"), Compare("status", "eq", "in_progress"))), SNAP) is True
    assert evaluate(All((Never("x"), Compare("status", "eq", "in_progress"))), SNAP) is False


def test_unknown_objects_evaluate_false():
    assert evaluate("priority == 'P1'", SNAP) is False
    assert evaluate(None, SNAP) is False


# ---- sandbox in path resolution ---------------------------------------------------------------

class Sneaky:
    secret = "s"

    def __getitem__(self, key):
        raise AssertionError("must not be indexed")


def test_resolution_never_uses_getattr_or_private_keys():
    snapshot = {"obj": Sneaky(), "custom_fields": {"_hidden": "x", "s": "abc"}, "status": "open"}
    assert resolve_path(snapshot, "obj.secret") is None
    assert resolve_path(snapshot, "custom_fields._hidden") is None
    assert resolve_path(snapshot, "status.__class__") is None
    assert resolve_path(snapshot, "custom_fields.s.0") is None
    assert resolve_path(snapshot, "status.upper") is None
    assert resolve_path({"l": [1, 2]}, "l.-1") is None
    assert resolve_path({"l": [1, 2]}, "l.5") is None
    assert evaluate(Compare("custom_fields._hidden", "eq", "x"), snapshot) is False


# ---- explain, describe, referenced_paths ------------------------------------------------------

def test_explain_lists_failing_leaves():
    cond, _ = parse([{"field": "assignee", "operator": "is_present"},
                     {"field": "priority", "in": ["P1", "P2"]},
                     {"checklist": "bug_testing", "complete": True}])
    reasons = explain(cond, {"priority": "P3"}, checklists={})
    assert len(reasons) == 3
    assert "assignee must be present" in reasons[0]
    assert "priority must be one of ['P1', 'P2'] (it is 'P3')" == reasons[1]
    assert "bug_testing" in reasons[2]
    assert explain(cond, {"priority": "p1", "assignee": "a"}, checklists={"bug_testing": True}) == []


def test_explain_names_labelled_fields_by_their_labels():
    cond, _ = parse([{"field": "custom_fields.value", "operator": "lte", "value": 500},
                     {"field": "priority", "operator": "eq", "value": "P1"}])
    reasons = explain(cond, {"custom_fields": {"value": 900}, "priority": "P2"},
                      labels={"custom_fields.value": "Deal value"})
    assert reasons == ["Deal value must be at most 500 (it is 900)", "priority must equal 'P1' (it is 'P2')"]


def test_explain_any_not_never():
    cond = Any((Compare("status", "eq", "done"), Compare("priority", "eq", "P1")))
    (reason,) = explain(cond, {"status": "open", "priority": "P2"})
    assert reason.startswith("none of the alternatives holds")
    assert explain(Not(Compare("status", "eq", "open")), {"status": "open"}) == ["must not hold: status equals 'open'"]
    assert explain(Never("unknown operator 'zz'"), {}) == ["condition can never hold: unknown operator 'zz'"]
    assert explain(Any(()), {}) == ["no alternative is given"]
    assert explain(Not(Never("x")), {})[0].startswith("cannot be evaluated")


def test_describe():
    assert describe(Compare("a", "is_blank")) == "a is blank"
    assert describe(All((Compare("a", "gt", 1), ChecklistComplete("c", False)))) == \
        "all of (a > 1; checklist c is not complete)"


def test_referenced_paths():
    cond, _ = parse({"all": [{"field": "hours_since_last_update", "operator": "greater_or_equal", "value": 48},
                             {"not": {"field": "status", "in": ["done"]}}, {"checklist": "x"},
                             {"any": ["ai_risk_score > 0.5"]}]})
    assert referenced_paths(cond) == {"hours_since_last_update", "status", "custom_fields.ai_risk_score"}


# ---- the fixture repositories' conditions, verbatim ------------------------------------------

FIXTURE_CONDITIONS = [
    # (node, snapshot that satisfies it, snapshot that does not)
    ([{"checklist": "bug_testing", "complete": True}], {}, None),
    ([{"checklist": "postmortem_checklist", "complete": True}], {}, None),
    ([{"equals": "bug", "field": "issue_type"}, {"equals": "critical", "field": "custom_fields.severity"}],
     {"issue_type": "bug", "custom_fields": {"severity": "Critical"}}, {"issue_type": "bug"}),
    ([{"equals": "bug", "field": "issue_type"}], {"issue_type": "Bug"}, {"issue_type": "incident"}),
    ([{"equals": "gdpr_request", "field": "issue_type"}, {"equals": "completed", "field": "to_status"}],
     {"issue_type": "gdpr_request", "to_status": "completed"}, {"issue_type": "gdpr_request", "to_status": "x"}),
    ([{"equals": "gdpr_request", "field": "issue_type"}], {"issue_type": "gdpr_request"}, {}),
    ([{"equals": "incident", "field": "issue_type"}, {"equals": "postmortem", "field": "to_status"}],
     {"issue_type": "incident", "to_status": "postmortem"}, {"issue_type": "incident"}),
    ([{"equals": "incident", "field": "issue_type"}, {"field": "custom_fields.severity", "in": ["P1", "P2"]}],
     {"issue_type": "incident", "custom_fields": {"severity": "p1"}},
     {"issue_type": "incident", "custom_fields": {"severity": "p3"}}),
    ([{"equals": "postmortem", "field": "status"}], {"status": "postmortem"}, {"status": "resolved"}),
    ([{"field": "assignee", "operator": "is_present"}], {"assignee": "ann"}, {"assignee": None}),
    ({"all": [{"field": "ai_risk_score", "operator": "greater_or_equal", "value": 0.7},
              {"field": "status", "operator": "in", "value": ["in_progress", "review"]}]},
     {"custom_fields": {"ai_risk_score": 0.7}, "status": "review"},
     {"custom_fields": {"ai_risk_score": "0.69"}, "status": "review"}),
    ({"all": [{"field": "hours_since_last_update", "operator": "greater_or_equal", "value": 48},
              {"field": "status", "operator": "in", "value": ["in_progress", "review"]}]},
     {"hours_since_last_update": 48.5, "status": "in_progress"}, {"hours_since_last_update": 2, "status": "review"}),
    ({"all": [{"field": "priority", "operator": "in", "value": ["high", "critical"]},
              {"field": "hours_until_due", "operator": "less_or_equal", "value": 8},
              {"field": "status", "operator": "not_in", "value": ["done"]}]},
     {"priority": "High", "hours_until_due": 3, "status": "todo"},
     {"priority": "high", "hours_until_due": 3, "status": "done"}),
    ({"field": "custom_fields.ci_status", "operator": "=", "value": "passed"},
     {"custom_fields": {"ci_status": "passed"}}, {"custom_fields": {"ci_status": "failed"}}),
    ({"field": "custom_fields.integration_status", "operator": "=", "value": "passed"},
     {"custom_fields": {"integration_status": "PASSED"}}, {}),
    ({"field": "custom_fields.security_status", "operator": "=", "value": "clean"},
     {"custom_fields": {"security_status": "clean"}}, {"custom_fields": {"security_status": "dirty"}}),
    ({"field": "custom_fields.severity", "operator": "=", "value": "critical"},
     {"custom_fields": {"severity": "critical"}}, {"custom_fields": {"severity": "high"}}),
    ({"field": "custom_fields.severity", "operator": "=", "value": "high"},
     {"custom_fields": {"severity": "high"}}, {"custom_fields": {"severity": "critical"}}),
    ({"field": "custom_fields.severity", "operator": "=", "value": "p1"},
     {"custom_fields": {"severity": "P1"}}, {"custom_fields": {"severity": "P2"}}),
    ({"field": "custom_fields.severity", "operator": "=", "value": "p2"},
     {"custom_fields": {"severity": "P2"}}, {"custom_fields": {}}),
    ({"field": "custom_fields.severity", "operator": "=", "value": "p3"},
     {"custom_fields": {"severity": "p3"}}, {}),
    # analytics dashboards (preserved, but the language must accept them)
    ("avg_cycle_days > 4", {"custom_fields": {"avg_cycle_days": 4.5}}, {"custom_fields": {"avg_cycle_days": 4}}),
    ("avg_cycle_days > 5", {"custom_fields": {"avg_cycle_days": 6}}, {}),
    ("avg_turnaround_days > 14", {"custom_fields": {"avg_turnaround_days": 15}}, {}),
    ("bug_count > 5", {"custom_fields": {"bug_count": "6"}}, {"custom_fields": {"bug_count": 5}}),
    ("completion_ratio < 0.5", {"custom_fields": {"completion_ratio": 0.2}}, {"custom_fields": {"completion_ratio": 1}}),
    ("days_remaining < 5", {"custom_fields": {"days_remaining": 1}}, {}),
    ("days_until_renewal < 30 AND renewal_status = 'not_started'",
     {"custom_fields": {"days_until_renewal": 10, "renewal_status": "not_started"}},
     {"custom_fields": {"days_until_renewal": 10, "renewal_status": "started"}}),
    ("issues_completed < 3", {"custom_fields": {"issues_completed": 2}}, {}),
    ("issues_completed < 5", {"custom_fields": {"issues_completed": 4}}, {}),
    ("mttr_minutes > 60", {"custom_fields": {"mttr_minutes": 61}}, {}),
    ("total_story_points > 0", {"custom_fields": {"total_story_points": 1}}, {"custom_fields": {"total_story_points": 0}}),
    # docs dialect (§8.5 conditional approvals, §9 example)
    ("total_value_usd > 100000", {"custom_fields": {"total_value_usd": 250000}}, {"custom_fields": {"total_value_usd": 10}}),
    ("priority == 'high' && assignee != null", {"priority": "high", "assignee": "a"}, {"priority": "high"}),
]


@pytest.mark.parametrize(("node", "good", "bad"), FIXTURE_CONDITIONS)
def test_fixture_conditions(node, good, bad):
    cond, diags = parse(node)
    assert diags == []
    checklists = {"bug_testing": True, "postmortem_checklist": True}
    assert evaluate(cond, good, checklists=checklists) is True
    if bad is not None:
        assert evaluate(cond, bad, checklists=checklists) is False
        assert explain(cond, bad, checklists=checklists)
    else:
        assert evaluate(cond, good, checklists={}) is False


# ---- hostile input ----------------------------------------------------------------------------

def test_ten_thousand_deep_list_returns_quickly():
    node: object = {"field": "a", "equals": 1}
    for _ in range(10_000):
        node = [node]
    cond, diags = parse(node)
    assert isinstance(cond, Never) and codes(diags) == ["condition_too_complex"]


def test_deep_not_chain():
    node: object = {"field": "a", "equals": 1}
    for _ in range(5_000):
        node = {"not": node}
    cond, diags = parse(node)
    assert isinstance(cond, Never) and "condition_too_complex" in codes(diags)


def test_too_many_nodes():
    cond, diags = parse([{"field": "a", "equals": i} for i in range(5000)])
    assert isinstance(cond, Never) and codes(diags) == ["condition_too_complex"]


def test_hand_built_deep_tree_evaluates_without_recursion_error():
    cond: object = Compare("a", "eq", 1)
    for _ in range(3000):
        cond = All((cond,))
    assert evaluate(cond, {"a": 1}) is False
    assert explain(cond, {"a": 1})


def test_huge_string_values_are_fine():
    big = "x" * 1_000_000
    assert evaluate(Compare("t", "contains", "xx"), {"t": big})
    assert evaluate(Compare("t", "eq", big), {"t": big.upper()})
    assert not evaluate(Compare("t", "gt", 5), {"t": "9" * 5000})


# ---- properties -------------------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
                    st.dates().map(str), st.datetimes().map(lambda d: d.isoformat()))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=5), inner, max_size=4)),
                      max_leaves=12)
snapshots = st.dictionaries(st.sampled_from(["a", "status", "labels", "custom_fields", "_x"]), values, max_size=5)


@settings(max_examples=100, deadline=None)
@given(op=st.sampled_from(OPERATORS), value=values, snapshot=snapshots,
       path=st.sampled_from(["a", "status", "labels.0", "custom_fields.a", "custom_fields.a.b", "_x"]))
def test_evaluate_never_raises(op, value, snapshot, path):
    cond = All((Compare(path, op, value), Not(Compare(path, op, value))))
    assert evaluate(cond, snapshot) is False
    assert evaluate(Compare(path, op, value), snapshot) in (True, False)
    explain(Any((Compare(path, op, value),)), snapshot)


yaml_like = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=15),
              st.sampled_from(["all", "any", "not", "field", "operator", "value", "in", "equals"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["all", "any", "not", "field", "operator", "value", "in", "equals",
                                         "checklist", "complete", "x"]), inner, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(node=yaml_like)
def test_parse_condition_never_raises(node):
    cond, diags = parse(node)
    evaluate(cond, {"field": 1})
    for d in diags:
        assert d.code in CODES


def test_hand_built_odd_conditions_do_not_raise():
    for cond in (Compare("a", "bogus", 1), Compare(5, "eq", 1), Compare("a", "eq", object())):  # type: ignore[arg-type]
        assert evaluate(cond, {"a": 1}) in (True, False)
        explain(cond, {"a": 1})
        describe(cond)


def test_codes_match_the_registry():
    for code, (severity, _) in CODES.items():
        assert REGISTRY[code][0] == severity, code


def test_leaf_modules_import_no_framework():
    code = ("import sys; import app.kiket.conditions, app.kiket.expressions, app.kiket.templating, "
            "app.kiket.durations, app.kiket.calendar; "
            "print(sorted(m for m in ('flask', 'sqlalchemy', 'redis') if m in sys.modules))")
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root).stdout
    assert out.strip() == "[]"
