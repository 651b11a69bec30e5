"""The Board Configuration Service: boards of the active revision, read with a fixed number of queries.

A board is materialized by the core (`app.kiket.board_view`) from the cached, parsed configuration
(boards are never copied into tables); issues are read with three statements whatever their number:
exact counts per state and lane (board filters for WIP, the view's filters for what is shown), the
first `PAGE` cards of every column (or column and lane), and the badges of those cards.

Order within a column (documented in the README): highest priority first (the project's
`priorities`, last = highest; none after all), then the oldest issue first (lowest number).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable
from urllib.parse import urlencode

import sqlalchemy as sa

from app.extensions import db
from app.kiket import model as km
from app.kiket.board_view import OTHER_LANE, BoardLayout, ColumnLayout, board_list, materialize
from app.kiket.runtime.snapshot import Actor
from app.models import Project, User
from app.models.base import utcnow
from app.models.issues import Issue
from app.services.runtime import access
from app.services.sync import configuration
from app.services.boards.queries import (
    LANE_CHOICES, PAGE, Card, Plan, add_badges, cached, card_of, card_select, columns_of, first_cards, plan_for,
    read_counts, state_filter,
)
from app.services.errors import NotFound

log = logging.getLogger(__name__)

__all__ = ["Card", "LANE_CHOICES", "PAGE", "Plan"]

EDITABLE_LANE_FIELDS = ("priority",)


@dataclass(frozen=True)
class ViewParams:
    """What the URL chooses: quick filters (keys), simple filters, and the swimlane field."""

    quick: tuple[str, ...] = ()
    assignee: str | None = None
    issue_type: str | None = None
    label: str | None = None
    text: str | None = None
    # None = the board's own swimlanes; "none" = no lanes; else a field of LANE_CHOICES.
    lanes: str | None = None

    def query(self, **changes: Any) -> dict[str, Any]:
        """The URL query for these parameters (with `changes`), empty values left out."""
        values = {"q": list(self.quick), "assignee": self.assignee, "type": self.issue_type, "label": self.label,
                  "text": self.text, "lanes": self.lanes}
        values.update(changes)
        return {k: v for k, v in values.items() if v not in (None, "", [], ())}

    def urlencoded(self, **extra: Any) -> str:
        """The query string of these parameters plus `extra` (the live socket's URL)."""
        return urlencode({**extra, **self.query()}, doseq=True)

    def toggled(self, key: str) -> dict[str, Any]:
        """The URL query with quick filter `key` switched on or off."""
        quick = [q for q in self.quick if q != key] if key in self.quick else [*self.quick, key]
        return self.query(q=quick)

    @property
    def filtered(self) -> bool:
        return bool(self.quick or self.assignee or self.issue_type or self.label or self.text)


@dataclass
class Cell:
    """The cards of one column (and lane), the exact number matching, and whether more follow."""

    column: str
    lane: str | None
    cards: list[Card]
    count: int
    offset: int = 0

    @property
    def more(self) -> bool:
        return self.offset + len(self.cards) < self.count


@dataclass
class ColumnView:
    layout: ColumnLayout
    count: int
    wip_count: int
    cells: dict[str | None, Cell] = field(default_factory=dict)

    @property
    def over_limit(self) -> bool:
        return self.layout.wip_limit is not None and self.wip_count > self.layout.wip_limit

    @property
    def at_limit(self) -> bool:
        return self.layout.wip_limit is not None and self.wip_count >= self.layout.wip_limit


@dataclass
class LaneView:
    key: str
    label: str
    prov: Any
    count: int
    value: Any = None


@dataclass
class BoardView:
    """Everything the board page shows."""

    project: Project
    layout: BoardLayout
    config: km.ConfigRevision
    params: ViewParams
    columns: list[ColumnView]
    lanes: list[LaneView]
    lane_field: str | None
    boards: list[km.Board]
    revision_id: int | None
    actor: Actor
    can_move: bool
    field_labels: dict[str, str]

    @property
    def unmapped(self) -> ColumnView | None:
        return next((c for c in self.columns if c.layout.unmapped), None)

    def column(self, key: str) -> ColumnView | None:
        return next((c for c in self.columns if c.layout.key == key), None)

    @property
    def lane_editable(self) -> bool:
        return self.lane_field in EDITABLE_LANE_FIELDS or (self.lane_field or "").startswith("custom_fields.")

    @property
    def total(self) -> int:
        return sum(c.count for c in self.columns)


# Reading


def project_boards(actor, project: Project) -> list[km.Board]:
    """The boards a viewer may open in a project (declared, then generated)."""
    config = configuration.project_config(project)
    access.require(access.runtime_actor(actor, project, config), "board.read", "view boards")
    return board_list(config)


def default_board(config: km.ConfigRevision, workflow_id: str | None = None) -> km.Board | None:
    """The first board showing a workflow (or the first board at all)."""
    boards = board_list(config)
    if workflow_id is not None:
        for board in boards:
            if workflow_id in board.workflows or board.workflow == workflow_id:
                return board
    return boards[0] if boards else None


def _layout(project: Project, board_id: str) -> tuple[km.ConfigRevision, BoardLayout]:
    config = configuration.project_config(project)
    layout = cached(config, ("layout", board_id), lambda: materialize(config, board_id))
    if layout is None:
        raise NotFound(f"No board {board_id!r} in project {project.key}.")
    return config, layout


def _viewer(actor, project: Project, config: km.ConfigRevision) -> Actor:
    runtime = access.runtime_actor(actor, project, config)
    access.require(runtime, "board.read", "view boards")
    return runtime


def board_view(actor, project: Project, board_id: str, params: ViewParams = ViewParams(),
               now: datetime | None = None, *, only: set | None = None, issue_id: int | None = None) -> BoardView:
    """The whole board: every column's count and WIP figure, and its first PAGE cards (per lane).

    `only` (live updates): read the cards of these (column, lane) cells only, plus the cell `issue_id` is in
    now; every count is still read. A handful of small statements instead of the whole board's.
    """
    config, layout = _layout(project, board_id)
    runtime = _viewer(actor, project, config)
    plan = plan_for(config, layout, params, _me(actor))
    binds = {"project_id": project.id, "now": now or utcnow()}
    counts, buckets = read_counts(plan, binds)
    if only is None:
        cards = first_cards(plan, binds, buckets)
    else:
        wanted = set(only)
        if issue_id is not None:
            moved = _issue_card(plan, layout, issue_id, binds["now"])
            if moved is not None:
                wanted.add((moved.column, moved.lane))
        cards = [card for column_key, lane in sorted(wanted, key=str) if layout.column(column_key) is not None
                 for card in _cell_cards(plan, project.id, layout.column(column_key), lane, 0, binds["now"])]
    add_badges(cards, plan, config, binds["now"])
    columns = []
    lane_keys = _lane_keys(plan, counts)
    for column in columns_of(layout):
        mine = {k: v for k, v in counts.items() if _in_column(layout, k[0], column)}
        view = ColumnView(column, count=sum(v[1] for v in mine.values()), wip_count=sum(v[0] for v in mine.values()))
        for lane in lane_keys:
            if only is not None and (column.key, lane) not in wanted:
                continue
            cell_cards = [c for c in cards if c.column == column.key and (lane is None or c.lane == lane)]
            count = sum(v[1] for k, v in mine.items() if lane is None or k[1] == lane)
            view.cells[lane] = Cell(column.key, lane, cell_cards, count)
        if column.unmapped and view.count == 0 and view.wip_count == 0:
            continue
        columns.append(view)
    lanes = [LaneView(key, label, prov, sum(v[1] for k, v in counts.items() if k[1] == key), value)
             for key, label, prov, value in _lane_list(plan, counts, config)]
    return BoardView(project=project, layout=layout, config=config, params=params, columns=columns, lanes=lanes,
                     lane_field=plan.lane_field, boards=board_list(config),
                     revision_id=_revision_id(project.id) if only is None else None, actor=runtime,
                     can_move=runtime.can("issue.transition"),
                     field_labels=cached(config, ("labels",), lambda: field_labels(config)))


def _cell_cards(plan: Plan, project_id: int, column, lane: str | None, offset: int, now: datetime) -> list[Card]:
    """A page of one cell, in board order."""
    query = card_select(plan, sa.literal(column.key).label("column_key")).where(
        Issue.project_id == sa.bindparam("project_id"), plan.base, plan.view, state_filter(plan, column))
    if lane is not None and plan.lane is not None:
        query = query.where(plan.lane == lane)
    query = query.order_by(plan.priority_rank, Issue.number).offset(offset).limit(PAGE)
    rows = db.session.execute(query, {"now": now, "project_id": project_id}).mappings()
    return [card_of(row, plan) for row in rows]


def _issue_card(plan: Plan, layout: BoardLayout, issue_id: int, now: datetime) -> Card | None:
    rows = db.session.execute(card_select(plan).where(plan.base, plan.view, Issue.id == issue_id),
                              {"now": now}).mappings().all()
    return card_of(rows[0], plan) if rows else None


def cell_page(actor, project: Project, board_id: str, params: ViewParams, column_key: str, lane: str | None,
              offset: int, now: datetime | None = None) -> tuple[BoardView, Cell]:
    """One more page of a column (or column and lane), for "load more"."""
    view = board_view_shell(actor, project, board_id, params)
    column = view.layout.column(column_key)
    if column is None:
        raise NotFound(f"No column {column_key!r} on this board.")
    plan = plan_for(view.config, view.layout, params, _me(actor))
    binds = {"project_id": project.id, "now": now or utcnow()}
    cards = _cell_cards(plan, project.id, column, lane, max(0, int(offset)), binds["now"])
    add_badges(cards, plan, view.config, binds["now"])
    counts, _ = read_counts(plan, binds)
    count = sum(v[1] for k, v in counts.items() if _in_column(view.layout, k[0], column)
                and (lane is None or k[1] == lane))
    return view, Cell(column.key, lane, cards, count, max(0, int(offset)))


def board_view_shell(actor, project: Project, board_id: str, params: ViewParams = ViewParams()) -> BoardView:
    """The board without its issues (for fragments that render one card or one cell)."""
    config, layout = _layout(project, board_id)
    runtime = _viewer(actor, project, config)
    plan = plan_for(config, layout, params, _me(actor))
    return BoardView(project=project, layout=layout, config=config, params=params, columns=[], lanes=[],
                     lane_field=plan.lane_field, boards=[], revision_id=None, actor=runtime,
                     can_move=runtime.can("issue.transition"), field_labels=field_labels(config))


def card_on_board(view: BoardView, issue_id: int, now: datetime | None = None) -> Card | None:
    """One issue as a card of the board, or None when the board's filters exclude it."""
    plan = plan_for(view.config, view.layout, view.params, _email(view.actor))
    now = now or utcnow()
    query = card_select(plan).where(plan.base, plan.view, Issue.id == issue_id)
    rows = db.session.execute(query, {"now": now}).mappings().all()
    if not rows:
        return None
    cards = [card_of(row, plan) for row in rows]
    add_badges(cards, plan, view.config, now)
    return cards[0]


def _me(actor) -> str | None:
    return actor.email if actor is not None else None


def _email(runtime: Actor) -> str | None:
    return runtime.identity if "@" in (runtime.identity or "") else None


def _revision_id(project_id: int) -> int | None:
    revision = configuration.active_revision(project_id)
    return revision.id if revision is not None and revision.repository_id is not None else None


def _in_column(layout: BoardLayout, state: str, column: ColumnLayout) -> bool:
    if column.unmapped:
        return state not in layout.mapped_states
    return state in column.states


def field_labels(config: km.ConfigRevision) -> dict[str, str]:
    """How cards name fields: custom fields by their issue types' labels, others humanized."""
    labels: dict[str, str] = {}
    for itype in config.issue_types.values():
        for fdef in itype.fields:
            labels.setdefault(f"custom_fields.{fdef.key}", fdef.label)
    return labels


def _lane_keys(plan: Plan, counts) -> list[str | None]:
    if plan.lane is None:
        return [None]
    if plan.lanes:
        return [l.key for l in plan.lanes] + [OTHER_LANE]
    present = sorted({k[1] for k in counts if k[1] not in (None, OTHER_LANE)}, key=str)
    return [*present, OTHER_LANE]


def _lane_list(plan: Plan, counts, config: km.ConfigRevision) -> Iterable[tuple[str, str, Any, Any]]:
    if plan.lane is None:
        return []
    layout = plan.layout
    if plan.lanes:
        other = next((l for l in layout.lanes if l.key == OTHER_LANE), None)
        return [(l.key, l.label, l.prov, l.value) for l in plan.lanes] + [
            (OTHER_LANE, other.label if other else "Other", other.prov if other else None, None)]
    person = plan.lane_field in ("assignee", "reporter")
    names = _person_names(k[1] for k in counts) if person else {}
    types = {k: t.label for k, t in config.issue_types.items()}
    present = sorted({k[1] for k in counts if k[1] not in (None, OTHER_LANE)}, key=str)
    lanes = [(value, names.get(value) or (types.get(value) if plan.lane_field == "issue_type" else None) or value,
              None, value) for value in present]
    return lanes + [(OTHER_LANE, "Unassigned" if person else "Other", None, None)]


def _person_names(emails: Iterable[str | None]) -> dict[str, str]:
    wanted = sorted({e for e in emails if e and e != OTHER_LANE})
    if not wanted:
        return {}
    return {email: name or email for email, name in db.session.execute(
        sa.select(User.email, User.name).where(User.email.in_(wanted)))}
