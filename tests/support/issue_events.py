"""Helpers for the effects, SLA and automation tests: issues made through the service when it exists
(else inserted through the models), state moves, a burst worker on `default`, a local webhook receiver."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import select


def run_default(app) -> None:
    """Work off the `default` queue in this process (the test's app context is reused by the jobs)."""
    from rq import SimpleWorker

    from app.queue import get_queue

    from app.extensions import db
    from app.services.runtime import events

    # The commits so far have queued their drain job (their wake-ups go out from a background thread). Jobs
    # commit too: a burst worker can find the queue empty before their wake-ups arrive, so work until none come.
    queue = get_queue("default")
    events.settle()
    while True:
        SimpleWorker([queue], connection=app.extensions["redis"]).work(burst=True)
        events.settle()
        if queue.count == 0:
            break
    # Jobs ran in their own sessions: forget what this one loaded before.
    db.session.expire_all()


def save_override(owner, project, path: str, text: str) -> None:
    from app.services.sync import layers

    result = layers.save_layer_file(owner, path, text, project=project)
    assert result.saved, result.diagnostics


CRITICAL_ALERT = """model_version: "1.0"
automations:
  - id: critical_alert
    name: Critical bug alert
    trigger: issue.created
    actions:
      - action: notify
        recipients:
          fields: [reporter]
        message: "A new bug"
"""


def triaged_crash(app, owner):
    """Project BUG from the bug template with a 'Critical bug alert' automation, and its critical bug "Crash on
    save" reported (the automation has run) and moved to Triaging. (project, issue)."""
    from app.services import projects
    from app.services.runtime import issues, transitions

    project = projects.create_project(owner, "BUG", "Bugs", "", "bug_tracking")
    save_override(owner, project, "automations/alerts.yaml", CRITICAL_ALERT)
    issue = issues.create_issue(project, owner, issue_type="bug", title="Crash on save",
                                custom_fields={"severity": "critical"})
    run_default(app)
    transitions.apply_transition(issue.id, owner, transition="Start Triage")
    return project, issue


def make_issue(project, title: str, *, issue_type: str = "bug", state: str | None = None, reporter=None,
               assignee=None, custom_fields=None, priority=None, entered_at: datetime | None = None,
               emit: bool = True):
    """An issue row on the project's active configuration, plus its creation record; emits `issue.created`."""
    from app.extensions import db
    from app.models import Issue, IssueTransition
    from app.models.base import utcnow
    from app.services import audit
    from app.services.runtime import events, issues
    from app.services.runtime.issue_keys import allocate_number, issue_key
    from app.services.sync import configuration

    config = configuration.project_config(project)
    workflow = config.workflow_for(issue_type)
    number = allocate_number(project.id)
    moment = entered_at or utcnow()
    issue = Issue(project_id=project.id, number=number, key=issue_key(project.key, number), issue_type=issue_type,
                  title=title, description="", state=state or workflow.initial, workflow_id=workflow.id,
                  workflow_version=workflow.version, custom_fields=dict(custom_fields or {}), labels=[],
                  priority=priority, reporter_id=reporter.id if reporter else None,
                  assignee_id=assignee.id if assignee else None, state_entered_at=moment, created_at=moment,
                  updated_at=moment, config_revision_id=issues.pinning_revision_id(project.id))
    db.session.add(issue)
    db.session.flush()
    db.session.add(IssueTransition(issue_id=issue.id, from_state=None, to_state=issue.state, at=moment))
    audit.record(project.id, "issue.created", reporter.id if reporter else None, issue.id, {"key": issue.key})
    if emit:
        events.issue_created(issue.id, reporter.id if reporter else None)
    db.session.commit()
    return issue


def move(issue, to_state: str, actor=None, *, at: datetime | None = None, chain=()):
    """Transition an issue row directly (as the transition service does) and emit `issue.transitioned`."""
    from app.extensions import db
    from app.models import IssueTransition
    from app.models.base import utcnow
    from app.services import audit
    from app.services.runtime import events
    from app.services.sync import configuration

    # Jobs ran in their own sessions: start from the row as it is now.
    db.session.refresh(issue)
    config = configuration.project_config(issue.project)
    workflow = config.workflows[issue.workflow_id]
    transition = next(t for t in workflow.transitions
                      if t.target == to_state and (t.sources == "*" or issue.state in t.sources))
    moment = at or utcnow()
    row = IssueTransition(issue_id=issue.id, from_state=issue.state, to_state=to_state, transition_id=transition.id,
                          actor_id=actor.id if actor else None, at=moment)
    issue.state = to_state
    issue.state_entry += 1
    issue.state_entered_at = moment
    if to_state in workflow.finals:
        issue.resolved_at = moment
    db.session.add(row)
    db.session.flush()
    audit.record(issue.project_id, "issue.transitioned", actor.id if actor else None, issue.id,
                 {"from": row.from_state, "to": to_state})
    events.issue_transitioned(issue.id, row.id, actor.id if actor else None, chain=chain)
    db.session.commit()
    return row


def hook_runs(project_id: int, issue_id: int | None = None):
    from app.extensions import db
    from app.models import AuditEvent

    query = select(AuditEvent).where(AuditEvent.project_id == project_id, AuditEvent.kind == "hooks.run")
    if issue_id is not None:
        query = query.where(AuditEvent.issue_id == issue_id)
    return list(db.session.scalars(query.order_by(AuditEvent.seq)))


class Receiver:
    """A local HTTP endpoint recording each request (path, headers, body); answers `status`."""

    def __init__(self, status: int = 200):
        self.requests: list[dict] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                receiver.requests.append({"path": self.path, "method": self.command, "headers": dict(self.headers),
                                          "body": json.loads(body) if body.startswith(("{", "[")) else body})
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok")

            do_POST = do_PUT = do_GET = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
