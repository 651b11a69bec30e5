"""WIP limits: how many issues a board column holds, and what moving an issue into one would do."""

from __future__ import annotations

import functools
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy import func, select

from app.extensions import db
from app.kiket import model as km
from app.kiket.runtime.wip import WipInfo, column_for_state, wip_info, wip_limit
from app.models.issues import Issue
from app.services.prepared import Prepared

def _matches_filters(issue: Issue, board: km.Board) -> bool:
    filters = board.filters
    if filters.issue_types and issue.issue_type not in filters.issue_types:
        return False
    if filters.labels and not set(filters.labels) & set(issue.labels or ()):
        return False
    if filters.priorities and (issue.priority or "") not in filters.priorities:
        return False
    if filters.states and issue.state not in filters.states:
        return False
    return True


def column_count(project_id: int, board: km.Board, column: km.Column) -> int:
    """Issues now in a board column: its states, on the board's workflows, matching the board's filters."""
    workflows = set(board.workflows) | {board.workflow}
    if board.filters.workflows:
        workflows &= set(board.filters.workflows)
    if not workflows or not column.states:
        return 0
    filters = board.filters
    by_fields = bool(filters.issue_types or filters.labels or filters.priorities or filters.states)
    db.session.flush()
    states, workflows = list(column.states), sorted(workflows)
    rows, _ = _column_statement(by_fields, len(states), len(workflows)).execute({
        "project_id": project_id, **{f"state_{n}": s for n, s in enumerate(states)},
        **{f"workflow_{n}": w for n, w in enumerate(workflows)}})
    if not by_fields:
        return rows[0][0]
    # Only the columns the filters read: no Issue objects to build for a count.
    return sum(1 for row in rows if _matches_filters(_ColumnRow(*row), board))


class _ColumnRow(NamedTuple):
    issue_type: str
    labels: list[str]
    priority: str | None
    state: str


@functools.cache
def _column_statement(by_fields: bool, states: int, workflows: int) -> Prepared:
    """A column's issues: counted by the database, or (with field filters) the fields the filters read."""
    columns = (Issue.issue_type, Issue.labels, Issue.priority, Issue.state) if by_fields else (func.count(),)
    return Prepared(select(*columns).select_from(Issue).where(
        Issue.project_id == sa.bindparam("project_id"),
        Issue.state.in_([sa.bindparam(f"state_{n}") for n in range(states)]),
        Issue.workflow_id.in_([sa.bindparam(f"workflow_{n}") for n in range(workflows)])))


def wip_for(issue: Issue, config: km.ConfigRevision, to_state: str) -> WipInfo | None:
    """WIP facts for moving `issue` to `to_state` on the active boards: a blocking overflow wins, else the first."""
    found: WipInfo | None = None
    for board in config.boards.values():
        if not _matches_filters(issue, board) or (board.filters.workflows and
                                                  issue.workflow_id not in board.filters.workflows):
            continue
        column = column_for_state(board, issue.workflow_id, to_state)
        if column is None:
            continue
        workflows = [config.workflows[w] for w in (set(board.workflows) | {board.workflow}) if w in config.workflows]
        if wip_limit(column, workflows) is None:
            continue
        info = wip_info(board, workflows, issue.workflow_id, issue.state, to_state,
                        column_count(issue.project_id, board, column))
        if info is None:
            continue
        if info.over_limit and info.policy == "block":
            return info
        found = found or info
    return found
