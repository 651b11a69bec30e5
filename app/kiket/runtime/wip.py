"""Board WIP (spec §11.3): which column a state lands in, its limit, and what a move would do to it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from app.kiket.model import Board, Column, Workflow


@dataclass(frozen=True)
class WipInfo:
    """A target column's limit and current count, as the transition gate sees it."""

    column: str
    limit: int | None
    count: int
    policy: Literal["warn", "block"] = "warn"
    # True when the moving issue is already counted in `count` (a move between states of one column).
    includes_issue: bool = False

    @property
    def count_after(self) -> int:
        """The column's count once the issue has moved in."""
        return self.count if self.includes_issue else self.count + 1

    @property
    def over_limit(self) -> bool:
        """True when the move pushes the count over the limit."""
        return self.limit is not None and self.count_after > self.limit


def _workflows(workflows: Workflow | Iterable[Workflow]) -> tuple[Workflow, ...]:
    return (workflows,) if isinstance(workflows, Workflow) else tuple(workflows)


def column_for_state(board: Board, workflow_id: str, state: str) -> Column | None:
    """The board column showing `state` of `workflow_id`, or None (unmapped, or not a board workflow)."""
    if workflow_id not in board.workflows and workflow_id != board.workflow:
        return None
    return board.column_for(state)


def wip_limit(column: Column, workflows: Workflow | Iterable[Workflow]) -> int | None:
    """Column limit, else the sum of its states' `wip_limit` when every one of them has one."""
    if column.wip_limit is not None:
        return column.wip_limit
    limits: list[int] = []
    for key in column.states:
        declared = [wf.states[key] for wf in _workflows(workflows) if key in wf.states]
        if not declared:
            continue
        for state in declared:
            if state.wip_limit is None:
                return None
            limits.append(state.wip_limit)
    return sum(limits) if limits else None


def wip_info(
    board: Board,
    workflows: Workflow | Iterable[Workflow],
    workflow_id: str,
    from_state: str | None,
    to_state: str,
    count: int,
) -> WipInfo | None:
    """WIP facts for a move into `to_state` (`count` = matching issues now in that column); None without a limit."""
    target = column_for_state(board, workflow_id, to_state)
    if target is None:
        return None
    limit = wip_limit(target, workflows)
    if limit is None:
        return None
    source = column_for_state(board, workflow_id, from_state) if from_state else None
    same = source is not None and source.key == target.key
    return WipInfo(column=target.name, limit=limit, count=count, policy=target.wip_policy, includes_issue=same)
