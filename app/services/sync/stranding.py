"""Issues a configuration would strand: on a workflow it lacks, or in a state its workflow lacks (§16).

An issue keeps running on the workflow version it is pinned to while that version's canonical copy
exists, so a removed state only strands issues pinned to no revision (those of a project's bundled
template). A removed workflow strands every issue on it. A sync that would strand issues waits for a
project owner or admin to confirm it (`runs.confirm_activation`); a rollback needs the same consent;
the runtime's migration page then maps the issues onto the active configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from app.extensions import db
from app.kiket import model as km
from app.models.issues import Issue


@dataclass(frozen=True)
class Stranded:
    """The issues of one workflow a configuration would leave without a place to run."""

    workflow: str
    removed: bool  # the whole workflow is gone (else some of its states are)
    states: dict[str, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(self.states.values())

    def describe(self) -> str:
        """`12 issues on workflow kanban, which this configuration lacks` (or in states it lacks)."""
        noun = "issue" if self.count == 1 else "issues"
        if self.removed:
            return f"{self.count} {noun} on workflow {self.workflow}, which this configuration lacks"
        states = ", ".join(sorted(self.states))
        return f"{self.count} {noun} of workflow {self.workflow} in states it lacks ({states})"

    def to_dict(self) -> dict:
        return {"workflow": self.workflow, "removed": self.removed, "states": dict(self.states), "count": self.count}


def stranded_issues(project_id: int, config: km.ConfigRevision) -> list[Stranded]:
    """Every workflow whose issues `config` would strand, with their counts per state (one query)."""
    rows = db.session.execute(
        select(Issue.workflow_id, Issue.state, Issue.config_revision_id.is_(None).label("unpinned"), func.count())
        .where(Issue.project_id == project_id)
        .group_by(Issue.workflow_id, Issue.state, Issue.config_revision_id.is_(None))
    ).all()
    found: dict[str, Stranded] = {}
    for workflow_id, state, unpinned, count in rows:
        workflow = config.workflows.get(workflow_id)
        if workflow is not None and (state in workflow.states or not unpinned):
            continue
        entry = found.setdefault(workflow_id, Stranded(workflow_id, workflow is None))
        entry.states[state] = entry.states.get(state, 0) + count
    return sorted(found.values(), key=lambda s: s.workflow)


def summary(stranded: list[Stranded]) -> list[dict]:
    """The JSON form a sync run and a revision keep."""
    return [s.to_dict() for s in stranded]
