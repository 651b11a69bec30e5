"""Moving cards: a drop on a column asks the one transition service for a transition into its states."""

from __future__ import annotations

from dataclasses import dataclass

from app.kiket.board_view import ColumnLayout
from app.kiket.runtime.transitions import GateResult, Verdict, available_transitions, outgoing
from app.models import Project
from app.models.base import utcnow
from app.services.runtime import access, issue_queries, issues, snapshots, transitions, wip
from app.services.sync import configuration
from app.services.boards.board import EDITABLE_LANE_FIELDS, BoardView, board_view_shell
from app.services.errors import Invalid, NotFound


class MoveRefused(Invalid):
    """No transition into the target column passes its gates; `verdict` has every failing gate."""

    def __init__(self, verdict: Verdict, column: ColumnLayout):
        self.verdict = verdict
        self.column = column
        reasons = list(verdict.reasons) or ["The move is not allowed"]
        super().__init__({"transition": reasons}, detail="; ".join(reasons))


@dataclass(frozen=True)
class Move:
    """A card that moved: where from and where to (its issue id and the columns whose figures changed)."""

    issue_id: int
    from_column: str
    to_column: str
    lock_version: int


def _issue_on_board(actor, project: Project, board_id: str, issue_id: int) -> tuple[BoardView, object]:
    view = board_view_shell(actor, project, board_id)
    issue = issue_queries.load_issue(actor, issue_id)
    if issue.project_id != project.id or issue.workflow_id not in view.layout.workflows:
        raise NotFound("No such card on this board.")
    return view, issue


def verdicts(actor, issue) -> tuple[Verdict, ...]:
    """Every transition out of the issue's state with its gates, as the issue page evaluates them."""
    config = configuration.project_config(issue.project)
    runtime = access.runtime_actor(actor, issue.project, config)
    workflow = snapshots.issue_workflow(issue, config)
    by_target = {}
    for transition in outgoing(workflow, issue.state):
        info = wip.wip_for(issue, config, transition.target)
        if info is not None:
            by_target[transition.target] = info
    return available_transitions(
        workflow, snapshots.snapshot_of(issue, config), actor=runtime, now=utcnow(), wip_by_target=by_target,
        documents_declared=snapshots.documents_declared(config, issue.issue_type),
        field_labels=snapshots.field_labels(config, issue.issue_type), calendar=snapshots.calendar_of(config))


def move_targets(actor, project: Project, board_id: str, issue_id: int) -> tuple[BoardView, object, list[ColumnLayout]]:
    """The columns the card may move to now (a transition into one of their states passes every gate)."""
    view, issue = _issue_on_board(actor, project, board_id, issue_id)
    allowed = {v.transition.target for v in verdicts(actor, issue) if v.allowed}
    current = view.layout.column_of(issue.state)
    columns = [c for c in view.layout.columns if c.key != current.key and allowed & set(c.states)]
    return view, issue, columns


def move_card(actor, project: Project, board_id: str, issue_id: int, column_key: str, *, lane: str | None = None,
              lock_version: int | None = None) -> Move:
    """Move a card to a column (and lane): the first of the column's states a declared transition reaches
    with every gate passing. Refused moves raise MoveRefused with the first candidate's failing gates."""
    view, issue = _issue_on_board(actor, project, board_id, issue_id)
    layout = view.layout
    target = layout.column(column_key)
    if target is None or target.unmapped:
        raise NotFound(f"No column {column_key!r} on this board.")
    source = layout.column_of(issue.state)
    version = lock_version
    if target.key != source.key:
        workflow = snapshots.issue_workflow(issue, configuration.project_config(project))
        reachable = {t.target for t in outgoing(workflow, issue.state)}
        candidates = sorted(target.states, key=lambda s: s not in reachable)
        first: transitions.TransitionBlocked | None = None
        moved = None
        for state in candidates:
            try:
                moved = transitions.apply_transition(issue_id, actor, target=state, lock_version=version)
                break
            except transitions.TransitionBlocked as blocked:
                first = first or blocked
        if moved is None:
            verdict = first.verdict if first is not None else Verdict(False, None, (GateResult(
                "transition", False, (f"Column '{target.name}' shows no state of this issue's workflow",)),))
            raise MoveRefused(verdict, target)
        version = moved.lock_version
    if lane is not None and view.lane_editable and lane != _lane_of(view, issue):
        version = _set_lane_value(actor, view, issue_id, lane, version)
    return Move(issue_id, source.key, target.key, version if version is not None else issue.lock_version)


def _lane_of(view: BoardView, issue) -> str | None:
    from app.services.boards.board import card_on_board

    card = card_on_board(view, issue.id)
    return card.lane if card is not None else None


def _set_lane_value(actor, view: BoardView, issue_id: int, lane_key: str, lock_version: int | None) -> int:
    lane = view.layout.lane(lane_key)
    if lane is None or lane.condition is None:
        raise Invalid({"lane": ["Cards can only be dropped on a lane with a declared value."]})
    field = view.lane_field
    if lock_version is None:
        lock_version = issue_queries.load_issue(actor, issue_id).lock_version
    if field in EDITABLE_LANE_FIELDS:
        changed = issues.update_issue(issue_id, actor, lock_version, **{field: lane.value})
    else:
        changed = issues.update_issue(issue_id, actor, lock_version,
                                      custom_fields={field.split(".", 1)[1]: lane.value})
    return changed.lock_version
