"""§9 conditions as SQL, for board filters, quick filters and swimlanes.

The domain core defines what a condition means (`app.kiket.conditions.evaluate`); a board must count
thousands of issues without loading them, so the database evaluates the same conditions. `Compiler`
translates the fields a board can filter or lane on into SQL with §9's semantics: strings compare
case-insensitively, a missing value is null (`eq null` true, `ne x` true, `in` false, `not_in` true),
lists (labels) match when any element does. tests/integration/test_board_sql.py checks the
translation against `evaluate` issue by issue. A path the compiler cannot express fails closed
(false), as `Never` does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from app.kiket.conditions import All, Any as AnyOf, Compare, Never, Not, normalize_path
from app.models import User
from app.models.issues import Issue, SlaTimer

log = logging.getLogger(__name__)

COLUMNS = {
    "status": Issue.state, "issue_type": Issue.issue_type, "priority": Issue.priority, "workflow": Issue.workflow_id,
    "key": Issue.key, "title": Issue.title, "id": Issue.id,
}
PERSON = {"assignee": "assignee_id", "reporter": "reporter_id"}
# The clock SLA status is read against: a parameter, so that compiled statements can be kept.
NOW = sa.bindparam("now")


@dataclass
class Compiler:
    """Builds SQL expressions over `issues`; remembers which joins (people, SLA timer) they need. Statements
    using `sla_status` take the moment as the parameter `now`."""

    state_categories: dict[tuple[str, str], str] = field(default_factory=dict)
    joins: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.people = {name: aliased(User, name=f"{name}_user") for name in PERSON}
        self.timer = aliased(SlaTimer, name="sla_timer")

    def select_from(self, base=None):
        """`issues` with the outer joins the compiled expressions use."""
        source = base if base is not None else Issue.__table__
        for name, column in PERSON.items():
            if name in self.joins:
                person = self.people[name]
                source = source.outerjoin(person, person.id == getattr(Issue, column))
        if "sla" in self.joins:
            timer = self.timer
            source = source.outerjoin(timer, sa.and_(timer.issue_id == Issue.id, timer.state == Issue.state,
                                                     timer.state_entry == Issue.state_entry,
                                                     timer.stopped_at.is_(None)))
        return source

    def value(self, path: str):
        """The SQL value of a field path, or None when boards cannot read it in SQL."""
        path = normalize_path(path) or path
        if path in COLUMNS:
            return COLUMNS[path]
        if path in PERSON:
            self.joins.add(path)
            return self.people[path].email
        if path == "due_date":
            return sa.cast(Issue.due_date, sa.String)
        if path == "sla_status":
            self.joins.add("sla")
            return self.sla_status()
        if path == "state_category" and self.state_categories:
            return sa.case(*((sa.and_(Issue.workflow_id == wf, Issue.state == state), category)
                             for (wf, state), category in self.state_categories.items()), else_=None)
        if path.startswith("custom_fields.") and path.count(".") >= 1:
            parts = path.split(".")[1:]
            return Issue.custom_fields[tuple(parts) if len(parts) > 1 else parts[0]].as_string()
        return None

    def sla_status(self):
        """`none|ok|warning|breached` of the current state entry, from its timer's precomputed moments."""
        timer = self.timer
        return sa.case(
            (timer.breach_at <= NOW, "breached"),
            (timer.warning_at <= NOW, "warning"),
            (sa.or_(timer.breach_at.is_not(None), timer.warning_at.is_not(None)), "ok"),
            else_="none")

    def condition(self, cond) -> sa.ColumnElement[bool]:
        """A §9 condition as a boolean SQL expression."""
        if cond is None:
            return sa.true()
        if isinstance(cond, All):
            return sa.and_(sa.true(), *(self.condition(c) for c in cond.items))
        if isinstance(cond, AnyOf):
            return sa.or_(sa.false(), *(self.condition(c) for c in cond.items))
        if isinstance(cond, Not):
            return sa.not_(self.condition(cond.item))
        if isinstance(cond, Compare):
            return self.compare(cond)
        if not isinstance(cond, Never):
            log.warning("board filter cannot use %s; it matches nothing", type(cond).__name__)
        return sa.false()

    def compare(self, cond: Compare) -> sa.ColumnElement[bool]:
        path = normalize_path(cond.path) or cond.path
        if path == "labels":
            return self._labels(cond.op, cond.value)
        expr = self.value(path)
        if expr is None:
            log.warning("board filter on %r cannot be evaluated by the database; it matches nothing", cond.path)
            return sa.false()
        return _compare(expr, cond.op, cond.value)

    def _labels(self, op: str, value: Any) -> sa.ColumnElement[bool]:
        text = sa.func.lower(sa.cast(Issue.labels, sa.String))
        empty = sa.or_(Issue.labels.is_(None), one_of(sa.cast(Issue.labels, sa.String), ["[]", "null"]))

        def has(item: Any) -> sa.ColumnElement[bool]:
            needle = '"' + _escape_like(str(item).casefold()) + '"'
            return text.like(f"%{needle}%", escape="\\")

        options = list(value) if isinstance(value, (list, tuple)) else [value]
        if op in ("eq", "in", "contains"):
            if value is None and op == "eq":
                return empty
            return sa.or_(sa.false(), *(has(v) for v in options if v is not None))
        if op in ("ne", "not_in", "not_contains"):
            if value is None and op == "ne":
                return sa.not_(empty)
            return sa.not_(sa.or_(sa.false(), *(has(v) for v in options if v is not None)))
        if op == "is_present":
            return sa.not_(empty)
        if op == "is_blank":
            return empty
        return sa.false()


def one_of(expr, values) -> sa.ColumnElement[bool]:
    """`expr IN (…)` with one bound value each (not an expanding parameter: board statements are compiled once)."""
    return expr.in_([sa.literal(v) for v in values])


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _compare(expr, op: str, value: Any) -> sa.ColumnElement[bool]:
    lowered = sa.func.lower(sa.cast(expr, sa.String))
    blank = sa.or_(expr.is_(None), sa.func.trim(sa.cast(expr, sa.String)) == "")
    if op == "is_present":
        return sa.not_(blank)
    if op == "is_blank":
        return blank
    if op in ("eq", "ne"):
        if value is None:
            return expr.is_(None) if op == "eq" else expr.is_not(None)
        if isinstance(value, (list, tuple)):
            return sa.false() if op == "eq" else sa.true()
        same = sa.and_(expr.is_not(None), lowered == _text(value).casefold())
        return same if op == "eq" else sa.not_(same)
    if op in ("in", "not_in"):
        options = [_text(v).casefold() for v in (value if isinstance(value, (list, tuple)) else [value])
                   if v is not None]
        inside = sa.and_(expr.is_not(None), one_of(lowered, options)) if options else sa.false()
        return inside if op == "in" else sa.not_(inside)
    if op in ("contains", "not_contains", "starts_with", "ends_with"):
        if value is None or isinstance(value, (list, tuple, dict)):
            return sa.false() if op != "not_contains" else sa.true()
        needle = _escape_like(_text(value).casefold())
        pattern = {"contains": f"%{needle}%", "not_contains": f"%{needle}%", "starts_with": f"{needle}%",
                   "ends_with": f"%{needle}"}[op]
        found = sa.and_(expr.is_not(None), lowered.like(pattern, escape="\\"))
        return sa.not_(found) if op == "not_contains" else found
    if op in ("gt", "gte", "lt", "lte"):
        if isinstance(value, bool) or value is None:
            return sa.false()
        if isinstance(value, (int, float)):
            # Only numeric-looking text is cast: PostgreSQL refuses to cast anything else.
            numeric = sa.cast(expr, sa.String).regexp_match(r"^[+-]?[0-9]+(\.[0-9]+)?$")
            number = sa.case((numeric, sa.cast(sa.cast(expr, sa.String), sa.Float)), else_=None)
            return {"gt": number > value, "gte": number >= value, "lt": number < value, "lte": number <= value}[op]
        text = _text(value).casefold()
        return sa.and_(expr.is_not(None), {"gt": lowered > text, "gte": lowered >= text, "lt": lowered < text,
                                           "lte": lowered <= text}[op])
    return sa.false()
