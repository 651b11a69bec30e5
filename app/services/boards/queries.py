"""A board's statements, built and compiled once per board, view parameters and `@me` viewer, and the cards
they read (the reading side of `app.services.boards.board`).

Three statements whatever the number of issues: exact counts per state, priority and lane (the board's
filters for WIP figures, the view's for what is shown); the first `PAGE` cards of every column, one index
probe per (workflow, state, priority) in number order, each with a LIMIT worked out from the counts (with
lanes, a window per column instead); and the badges of the cards shown. Statements are `Prepared`: compiled
once per dialect, `project_id` and `now` (the SLA clock) passed at each execution.

Order within a column: highest priority first (the project's `priorities`, last = highest; none and
unconfigured ones after all), then the oldest issue first (lowest number).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from app.extensions import db
from app.kiket import model as km
from app.kiket.board_view import ME, OTHER_LANE, BoardLayout, ColumnLayout, LaneLayout, QuickFilterLayout
from app.kiket.conditions import All, Compare, normalize_path
from app.kiket.runtime.checklists import checklist_progress, tickable_checklists
from app.kiket.runtime.snapshot import IssueSnapshot, to_context
from app.models.issues import Attachment, ChecklistProgress, Comment, Issue
from app.services.boards.sql import Compiler, one_of
from app.services.prepared import Prepared

if TYPE_CHECKING:
    from app.services.boards.board import ViewParams

PAGE = 50
LANE_CHOICES = ("assignee", "priority", "issue_type")


@dataclass
class Card:
    """What a card shows."""

    id: int
    number: int
    key: str
    title: str
    state: str
    issue_type: str
    priority: str | None
    assignee: str | None
    assignee_email: str | None
    labels: list[str]
    due_date: date | None
    custom_fields: dict[str, Any]
    workflow_id: str
    lock_version: int
    column: str
    lane: str | None
    sla_status: str = "none"
    comments: int = 0
    attachments: int = 0
    checklist: tuple[int, int] | None = None
    # Filled from the layout: labels for the fields the card template shows.
    state_label: str = ""
    type_label: str = ""


@dataclass
class Plan:
    """A board's statements for one set of view parameters (and viewer, for `@me`), built and compiled once.

    Statements take `project_id` and `now` (the SLA clock) as parameters; the first-cards statement also
    takes one LIMIT per bucket, worked out from the counts.
    """

    layout: BoardLayout
    compiler: Compiler
    base: Any
    view: Any
    lane: Any
    lane_field: str | None
    lanes: tuple[LaneLayout, ...]
    priority_rank: Any
    card_paths: frozenset[str]
    priorities: tuple[str, ...]
    filtered: bool
    counts: Prepared | None = None
    picks: Prepared | None = None
    # No lanes: (column key, state or None for the Unmapped column, rank, LIMIT parameter) per bucket.
    buckets: tuple[tuple[str, str | None, int, str], ...] = ()


def columns_of(layout: BoardLayout) -> list[ColumnLayout]:
    return [*layout.columns, layout.unmapped]


_cache: dict[tuple, tuple[weakref.ref, Any]] = {}
_cache_lock = threading.Lock()
CACHE_SIZE = 512


def cached(config: km.ConfigRevision, key: tuple, build):
    """A value derived from a configuration, kept while that configuration object lives (it is cached itself)."""
    full = (id(config), *key)
    with _cache_lock:
        found = _cache.get(full)
        if found is not None and found[0]() is config:
            return found[1]
    value = build()
    with _cache_lock:
        if len(_cache) >= CACHE_SIZE:
            for stale in [k for k, (ref, _) in _cache.items() if ref() is None] or list(_cache)[:CACHE_SIZE // 4]:
                _cache.pop(stale, None)
        _cache[full] = (weakref.ref(config), value)
    return value


# Compiling


def plan_for(config: km.ConfigRevision, layout: BoardLayout, params: ViewParams, me: str | None) -> Plan:
    """The board's compiled statements for these parameters (built once per configuration, params and viewer
    of `@me` filters)."""
    uses_me = params.assignee == "@me" or any(
        ME in q.values for q in layout.quick_filters if q.key in params.quick)
    key = ("plan", layout.id, params, me if uses_me else None)
    return cached(config, key, lambda: _build_plan(config, layout, params, me))


def _build_plan(config: km.ConfigRevision, layout: BoardLayout, params: ViewParams, me: str | None) -> Plan:
    compiler = Compiler(state_categories={
        (wf, key): state.category for wf in layout.workflows for key, state in config.workflows[wf].states.items()})
    base = sa.and_(one_of(Issue.workflow_id, layout.workflows), compiler.condition(layout.base_filter))
    view = compiler.condition(_view_condition(layout, params, me))
    if params.text and params.text.strip():
        needle = "%" + params.text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        view = sa.and_(view, sa.or_(Issue.title.ilike(needle, escape="\\"), Issue.key.ilike(needle, escape="\\")))
    lane_field, lanes = _lane_setup(layout, params)
    lane = None
    if lane_field is not None:
        if lanes:
            lane = sa.case(*((compiler.condition(l.condition), l.key) for l in lanes if l.condition is not None),
                           else_=OTHER_LANE)
        else:
            value = compiler.value(lane_field)
            lane = sa.func.coalesce(sa.cast(value, sa.String), OTHER_LANE) if value is not None \
                else sa.literal(OTHER_LANE)
    # Highest first; priorities are stored as configured (the issue service normalizes them).
    priorities = tuple(reversed(config.project.priorities))
    rank = sa.case(*((Issue.priority == p, index) for index, p in enumerate(priorities)), else_=len(priorities))
    card = layout.card
    paths = frozenset(normalize_path(p) or p for p in (*card.primary, *card.secondary)) | frozenset(card.badges)
    plan = Plan(layout, compiler, base, view, lane, lane_field, lanes, rank, paths, priorities, params.filtered)
    plan.counts = Prepared(_counts_statement(plan))
    if plan.lane is None:
        plan.picks, plan.buckets = _bucket_statement(plan)
    else:
        plan.picks = _lane_statement(plan)
    return plan


def _view_condition(layout: BoardLayout, params: ViewParams, me: str | None):
    items = []
    for key in params.quick:
        quick: QuickFilterLayout | None = layout.quick_filter(key)
        if quick is not None:
            items.append(quick.condition(me))
    if params.assignee:
        value = me if params.assignee == "@me" else (None if params.assignee == "none" else params.assignee)
        items.append(Compare("assignee", "eq", value))
    if params.issue_type:
        items.append(Compare("issue_type", "eq", params.issue_type))
    if params.label:
        items.append(Compare("labels", "contains", params.label))
    return All(tuple(items)) if items else None


def _lane_setup(layout: BoardLayout, params: ViewParams) -> tuple[str | None, tuple[LaneLayout, ...]]:
    if params.lanes == "none":
        return None, ()
    if params.lanes in LANE_CHOICES and params.lanes != layout.lane_field:
        return params.lanes, ()
    if layout.lane_field is None:
        return None, ()
    return layout.lane_field, tuple(l for l in layout.lanes if l.condition is not None)


# Statements

PROJECT = sa.bindparam("project_id")


def _counts_statement(plan: Plan):
    """(state, priority, lane, matching the board's filters, matching the view too), grouped."""
    lane = plan.lane if plan.lane is not None else sa.literal(None, sa.String)
    shown = sa.case((plan.view, 1), else_=0) if plan.filtered else sa.literal(1)
    inner = (sa.select(Issue.state.label("state"), Issue.priority.label("priority"), lane.label("lane"),
                       shown.label("shown"))
             .select_from(plan.compiler.select_from())
             .where(Issue.project_id == PROJECT, plan.base).subquery())
    if plan.lane is None and not plan.filtered:
        # The common case reads the index alone.
        return sa.select(Issue.state, Issue.priority, sa.literal(None, sa.String), sa.func.count(), sa.func.count()) \
            .select_from(plan.compiler.select_from()).where(Issue.project_id == PROJECT, plan.base) \
            .group_by(Issue.state, Issue.priority)
    return sa.select(inner.c.state, inner.c.priority, inner.c.lane, sa.func.count(), sa.func.sum(inner.c.shown)) \
        .group_by(inner.c.state, inner.c.priority, inner.c.lane)


def read_counts(plan: Plan, binds: dict) -> tuple[dict, dict]:
    """{(state, lane): (matching the board's filters, shown)} and {(state, priority): shown}: one statement."""
    rows, _ = plan.counts.execute(binds)
    counts: dict[tuple[str, str | None], tuple[int, int]] = {}
    buckets: dict[tuple[str, str | None], int] = {}
    for state, priority, lane, total, shown in rows:
        total, shown = int(total), int(shown or 0)
        before = counts.get((state, lane), (0, 0))
        counts[(state, lane)] = (before[0] + total, before[1] + shown)
        buckets[(state, priority)] = buckets.get((state, priority), 0) + shown
    return counts, buckets


def _card_columns(plan: Plan) -> list:
    compiler = plan.compiler
    compiler.joins.add("assignee")
    person = compiler.people["assignee"]
    columns = [Issue.id, Issue.number, Issue.key, Issue.title, Issue.state, Issue.issue_type, Issue.priority,
               Issue.assignee_id, person.email.label("assignee_email"), person.name.label("assignee_name"),
               Issue.labels, Issue.due_date, Issue.custom_fields, Issue.workflow_id, Issue.lock_version,
               Issue.state_entered_at, Issue.created_at, Issue.updated_at]
    if "sla_status" in plan.card_paths:
        compiler.joins.add("sla")
        columns.append(compiler.sla_status().label("sla_status"))
    columns.append((plan.lane if plan.lane is not None else sa.literal(None, sa.String)).label("lane"))
    return columns


def card_select(plan: Plan, *extra):
    """Everything a card shows, with its assignee and SLA timer joined."""
    return sa.select(*_card_columns(plan), *extra).select_from(plan.compiler.select_from())


def state_filter(plan: Plan, column: ColumnLayout):
    if column.unmapped:
        mapped = plan.layout.mapped_states
        return sa.not_(one_of(Issue.state, mapped)) if mapped else sa.true()
    return one_of(Issue.state, column.states)


def _bucket_statement(plan: Plan):
    """The first cards of every column, one index probe per (workflow, state, priority) in number order.

    Each probe reads at most its LIMIT entries of the (project, workflow, state, priority, number) index,
    whatever the size of the column; the LIMITs come from the counts, so that together the probes return
    little more than the PAGE cards each column shows.
    """
    parts, buckets = [], []
    configured = list(plan.priorities)
    other_rank = len(configured)
    for column in columns_of(plan.layout):
        key = sa.literal(column.key).label("column_key")
        if column.unmapped:
            name = f"lim_{len(buckets)}"
            buckets.append((column.key, None, other_rank, name))
            parts.append(card_select(plan, key, plan.priority_rank.label("rank"))
                         .where(Issue.project_id == PROJECT, plan.base, plan.view, state_filter(plan, column))
                         .order_by(plan.priority_rank, Issue.number).limit(sa.bindparam(name)).subquery())
            continue
        for workflow in plan.layout.workflows:
            for state in column.states:
                probes = [(Issue.priority == p, rank) for rank, p in enumerate(configured)]
                probes.append((Issue.priority.is_(None), other_rank))
                if configured:
                    probes.append((_other_priorities(configured), other_rank))
                for condition, rank in probes:
                    name = f"lim_{len(buckets)}"
                    buckets.append((column.key, state, rank, name))
                    parts.append(card_select(plan, key, sa.literal(rank).label("rank"))
                                 .where(Issue.project_id == PROJECT, Issue.workflow_id == workflow,
                                        Issue.state == state, condition, plan.base, plan.view)
                                 .order_by(Issue.number).limit(sa.bindparam(name)).subquery())
    if not parts:
        return None, ()
    return Prepared(sa.union_all(*(sa.select(*part.c) for part in parts))), tuple(buckets)


def _other_priorities(configured: list[str]):
    """Priorities the project does not configure, as ranges between the configured ones: the index skips
    straight past the (many) configured values instead of reading them, as NOT IN would."""
    values = sorted(set(configured))
    ranges = [Issue.priority < values[0], Issue.priority > values[-1]]
    ranges += [sa.and_(Issue.priority > low, Issue.priority < high) for low, high in zip(values, values[1:])]
    return sa.or_(*ranges)


def _lane_statement(plan: Plan):
    """With lanes (a computed value, no index order): each column ranked per lane by a window."""
    parts = []
    for column in columns_of(plan.layout):
        if not column.states and not column.unmapped:
            continue
        rank = sa.func.row_number().over(partition_by=plan.lane, order_by=(plan.priority_rank, Issue.number))
        inner = sa.select(*_card_columns(plan), sa.literal(column.key).label("column_key"),
                          plan.priority_rank.label("rank"), rank.label("rn")) \
            .select_from(plan.compiler.select_from()) \
            .where(Issue.project_id == PROJECT, plan.base, plan.view, state_filter(plan, column)).subquery()
        parts.append(sa.select(*(c for c in inner.c if c.name != "rn")).where(inner.c.rn <= PAGE))
    if not parts:
        return None
    return Prepared(parts[0] if len(parts) == 1 else sa.union_all(*parts))


def first_cards(plan: Plan, binds: dict, buckets: dict) -> list[Card]:
    """The first PAGE cards of every column (per lane): one statement, whatever the number of issues."""
    if plan.picks is None:
        return []
    params = dict(binds)
    if plan.lane is None:
        params.update(_limits(plan, buckets))
    rows, _ = plan.picks.execute(params)
    names = plan.picks.names
    cards = [(card_of(dict(zip(names, row)), plan), row[-1]) for row in rows]
    cards.sort(key=lambda pair: (pair[1], pair[0].number))
    if plan.lane is not None:
        return [card for card, _ in cards]
    shown: dict[str, int] = {}
    out = []
    for card, _ in cards:
        if shown.get(card.column, 0) < PAGE:
            shown[card.column] = shown.get(card.column, 0) + 1
            out.append(card)
    return out


def _limits(plan: Plan, buckets: dict) -> dict[str, int]:
    """Each probe's LIMIT: what its (state, priority) holds, up to what its column still needs at that rank."""
    configured = set(plan.priorities)
    per_rank: dict[tuple[str, int], list] = {}
    for column, state, rank, name in plan.buckets:
        per_rank.setdefault((column, rank), []).append((state, name))
    limits: dict[str, int] = {}
    needed = {column.key: PAGE for column in columns_of(plan.layout)}
    for (column, rank), probes in sorted(per_rank.items(), key=lambda item: item[0][1]):
        taken = 0
        for state, name in probes:
            if state is None:
                available = PAGE
            elif rank < len(plan.priorities):
                available = buckets.get((state, plan.priorities[rank]), 0)
            else:
                available = sum(n for (s, p), n in buckets.items() if s == state and p not in configured)
            limits[name] = min(available, needed[column])
            taken += limits[name]
        needed[column] = max(0, needed[column] - taken)
    return limits


def card_of(row, plan: Plan) -> Card:
    layout = plan.layout
    column = row.get("column_key") or layout.column_of(row["state"]).key
    return Card(
        id=row["id"], number=row["number"], key=row["key"], title=row["title"], state=row["state"],
        issue_type=row["issue_type"], priority=row["priority"],
        assignee=row["assignee_name"] or row["assignee_email"], assignee_email=row["assignee_email"],
        labels=list(row["labels"] or []), due_date=row["due_date"], custom_fields=dict(row["custom_fields"] or {}),
        workflow_id=row["workflow_id"], lock_version=row["lock_version"], column=column,
        lane=row["lane"] if plan.lane is not None else None, sla_status=row.get("sla_status") or "none",
    )


def add_badges(cards: list[Card], plan: Plan, config: km.ConfigRevision, now: datetime) -> None:
    """Counts and checklist progress of the cards shown, and their labels: one statement for every card."""
    for card in cards:
        wf = config.workflows.get(card.workflow_id)
        state = wf.states.get(card.state) if wf else None
        card.state_label = state.label if state else card.state
        itype = config.issue_types.get(card.issue_type)
        card.type_label = itype.label if itype else card.issue_type
    if not cards:
        return
    paths = plan.card_paths
    ids = sorted({c.id for c in cards})
    parts = []
    text, number = sa.cast(sa.null(), sa.String), sa.cast(sa.null(), sa.Integer)
    if "comments_count" in paths:
        parts.append(sa.select(sa.literal("c").label("kind"), Comment.issue_id.label("issue_id"),
                               sa.func.count().label("n"), text.label("a"), text.label("b"))
                     .where(Comment.issue_id.in_(ids)).group_by(Comment.issue_id))
    if "attachments_count" in paths:
        parts.append(sa.select(sa.literal("a"), Attachment.issue_id, sa.func.count(), text, text)
                     .where(Attachment.issue_id.in_(ids)).group_by(Attachment.issue_id))
    if "checklist_progress" in paths:
        parts.append(sa.select(sa.literal("t"), ChecklistProgress.issue_id,
                               sa.case((ChecklistProgress.checked, 1), else_=0), ChecklistProgress.checklist_id,
                               ChecklistProgress.item_id).where(ChecklistProgress.issue_id.in_(ids)))
    if not parts:
        return
    del number
    query = parts[0] if len(parts) == 1 else sa.union_all(*parts)
    by_id = {}
    for card in cards:
        by_id.setdefault(card.id, []).append(card)
    ticks: dict[int, dict[str, dict[str, bool]]] = {}
    for kind, issue_id, n, a, b in db.session.execute(query):
        for card in by_id.get(issue_id, ()):
            if kind == "c":
                card.comments = int(n)
            elif kind == "a":
                card.attachments = int(n)
        if kind == "t":
            ticks.setdefault(issue_id, {}).setdefault(a, {})[b] = bool(n)
    if "checklist_progress" in paths:
        for card in cards:
            card.checklist = _checklist(card, config, ticks.get(card.id, {}), now)


def _checklist(card: Card, config: km.ConfigRevision, ticks, now: datetime) -> tuple[int, int] | None:
    wf = config.workflows.get(card.workflow_id)
    if wf is None or card.state not in wf.states:
        return None
    ids = tickable_checklists(wf, card.state)
    if not ids:
        return None
    snapshot = IssueSnapshot(id=card.id, key=card.key, title=card.title, status=card.state,
                             issue_type=card.issue_type, workflow=card.workflow_id, priority=card.priority,
                             assignee=card.assignee_email, labels=tuple(card.labels), due_date=card.due_date,
                             custom_fields=card.custom_fields)
    context = to_context(snapshot, now, workflow=wf)
    done = total = 0
    for checklist_id in ids:
        checklist = wf.checklist(checklist_id)
        progress = checklist_progress(checklist, ticks.get(checklist_id), context)
        done += len(progress.checked)
        total += len(checklist.items)
    return done, total


