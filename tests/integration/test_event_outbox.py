"""The issue-event outbox: events commit or roll back with their change, one wake-up queues one drain,
the drain turns rows into jobs and deletes them, and nothing is lost when Redis is away at commit time."""

from __future__ import annotations

import pytest
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq.job import Job
from sqlalchemy import select

from tests.support.issue_events import run_default

@pytest.fixture
def project(owner):
    from app.services import projects

    return projects.create_project(owner, "KAN", "Kanban", "", "kanban")


def outbox() -> list[tuple[str, int, str]]:
    from app.extensions import db
    from app.models import IssueEvent

    return [(e.kind, e.issue_id, e.record) for e in db.session.scalars(select(IssueEvent).order_by(IssueEvent.id))]


def queued(app) -> list[str]:
    from app.queue import get_queue
    from app.services.runtime import events

    assert events.settle()
    return [job.func_name for job in get_queue("default").get_jobs()]


class RedisSwitch:
    """Switch the app's Redis to a port nothing listens on (a real connection refusal) and back."""

    def __init__(self, app):
        self.app, self.saved = app, app.extensions["redis"]

    def away(self):
        self.app.extensions["redis"] = Redis(host="127.0.0.1", port=9, socket_connect_timeout=1, socket_timeout=1,
                                             retry=Retry(NoBackoff(), 0))

    def back(self):
        self.app.extensions["redis"] = self.saved


@pytest.fixture
def redis(app):
    switch = RedisSwitch(app)
    yield switch
    switch.back()


def test_a_transition_writes_its_event_in_its_own_transaction_and_one_drain_sends_it(app, owner, project):
    from app.services.runtime import events, issues, transitions

    issue = issues.create_issue(project, owner, issue_type="task", title="Outboxed")
    moved = transitions.apply_transition(issue.id, owner, target="in_progress")
    assert outbox() == [("issue.created", issue.id, str(issue.id)),
                        ("issue.transitioned", issue.id, str(moved.record_id))]
    # Two commits with events, one wake-up flag, one drain job.
    assert queued(app) == [events.DRAIN_JOB]
    assert app.extensions["redis"].get(events.WAKE_KEY) == b"1"

    run_default(app)
    assert outbox() == []
    assert app.extensions["redis"].get(events.WAKE_KEY) is None
    # Each event became its job, named after (event, issue, record), and ran.
    for name in (f"event-issue_created-{issue.id}-{issue.id}", f"event-issue_transitioned-{issue.id}-{moved.record_id}"):
        assert Job.fetch(name, connection=app.extensions["redis"]).get_status() == "finished"


def test_a_refused_transition_leaves_no_event(app, owner, project):
    from app.services.errors import Conflict
    from app.services.runtime import issues, transitions

    issue = issues.create_issue(project, owner, issue_type="task", title="Stale")
    before = outbox()
    with pytest.raises(Conflict):
        transitions.apply_transition(issue.id, owner, target="in_progress", lock_version=issue.lock_version + 5)
    with pytest.raises(transitions.TransitionBlocked):
        transitions.apply_transition(issue.id, owner, target="done")
    assert outbox() == before


def test_events_of_a_rolled_back_transaction_are_gone_and_wake_nothing(app, owner, project):
    from app.extensions import db
    from app.services.runtime import events, issues

    issue = issues.create_issue(project, owner, issue_type="task", title="Undone")
    run_default(app)
    events.issue_commented(issue.id, 999, owner.id)
    db.session.rollback()
    db.session.commit()
    assert outbox() == []
    assert queued(app) == []


def test_events_committed_while_redis_is_away_are_sent_by_the_sweep(app, owner, project, redis):
    from app.services.runtime import issues, transitions
    from jobs.default import sweep

    issue = issues.create_issue(project, owner, issue_type="task", title="Offline")
    run_default(app)
    redis.away()
    # The change commits; its event waits in the outbox.
    moved = transitions.apply_transition(issue.id, owner, target="in_progress")
    assert outbox() == [("issue.transitioned", issue.id, str(moved.record_id))]
    redis.back()
    sweep()
    assert outbox() == []
    assert f"event-issue_transitioned-{issue.id}-{moved.record_id}" in [j.id for j in _default_jobs(app)]


def test_a_failed_enqueue_rolls_the_claimed_rows_back(app, owner, project, redis):
    from app.services.runtime import events, issues

    issues.create_issue(project, owner, issue_type="task", title="Kept")
    rows = outbox()
    redis.away()
    with pytest.raises(Exception):
        events.drain()
    assert outbox() == rows


def test_the_worker_sweep_drains_what_a_lost_wake_up_left(app, owner, project):
    from app.services.runtime import events, issues
    from jobs.default import sweep

    issue = issues.create_issue(project, owner, issue_type="task", title="Stranded")
    # The wake-up was lost (its drain job is gone, the flag expired).
    assert events.settle()
    app.extensions["redis"].flushdb()
    assert outbox() == [("issue.created", issue.id, str(issue.id))]
    sweep()
    assert outbox() == []
    assert f"event-issue_created-{issue.id}-{issue.id}" in [j.id for j in _default_jobs(app)]


def _default_jobs(app):
    from app.queue import get_queue

    return get_queue("default").get_jobs()


def test_seed_issues_emit_issue_created_with_the_project(app, owner):
    from app.extensions import db
    from app.models import Issue
    from app.services import projects
    from app.services.runtime import seeding

    project = projects.create_project(owner, "BUG", "Bugs", "", "bug_tracking", seed=seeding.seed_issues_once)
    seeds = list(db.session.scalars(select(Issue.id).where(Issue.project_id == project.id).order_by(Issue.id)))
    assert seeds and outbox() == [("issue.created", i, str(i)) for i in seeds]
