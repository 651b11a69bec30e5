"""Board filters and swimlanes are §9 conditions evaluated by the database: for every condition a board can
hold, the issues the SQL selects are exactly those `app.kiket.conditions.evaluate` accepts, issue by issue."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from app.kiket.conditions import All, Any, Compare, Not

VALUES = [None, "", "critical", "Critical", "high", "P1", "p1", "low-ish", "3", 3]
CONDITIONS = [
    Compare("custom_fields.severity", "eq", "critical"),
    Compare("custom_fields.severity", "eq", "P1"),
    Compare("custom_fields.severity", "eq", None),
    Compare("custom_fields.severity", "ne", "critical"),
    Compare("custom_fields.severity", "in", ("critical", "high")),
    Compare("custom_fields.severity", "not_in", ("critical", "high")),
    Compare("custom_fields.severity", "is_blank"),
    Compare("custom_fields.severity", "is_present"),
    Compare("custom_fields.severity", "contains", "ish"),
    Compare("custom_fields.severity", "starts_with", "LOW"),
    Compare("custom_fields.severity", "ends_with", "-ISH"),
    Compare("custom_fields.severity", "eq", 3),
    Compare("custom_fields.severity", "gt", 2),
    Compare("priority", "eq", "HIGH"),
    Compare("priority", "in", ("low", "critical")),
    Compare("status", "in", ("in_progress", "review")),
    Compare("issue_type", "eq", "bug"),
    Compare("labels", "eq", "ui"),
    Compare("labels", "in", ("api", "UI")),
    Compare("labels", "contains", "api"),
    Compare("labels", "not_in", ("ui",)),
    Compare("labels", "is_blank"),
    Compare("assignee", "eq", "owner@example.com"),
    Compare("assignee", "eq", "OWNER@example.com"),
    Compare("assignee", "is_blank"),
    Compare("due_date", "is_present"),
    Compare("title", "contains", "NUMBER 1"),
    All((Compare("priority", "eq", "high"), Compare("issue_type", "eq", "task"))),
    Any((Compare("priority", "eq", "high"), Compare("labels", "eq", "api"))),
    Not(Compare("status", "eq", "backlog")),
]


@pytest.fixture
def issues(app, make_user):
    from app.services import projects
    from tests.support.issue_events import make_issue

    owner = make_user("owner@example.com", "owner")
    project = projects.create_project(owner, "KAN", "Kanban", "", "kanban")
    states = ("backlog", "in_progress", "review", "done")
    made = []
    for n, value in enumerate(VALUES * 2):
        issue = make_issue(project, f"Number {n}", issue_type=("task", "bug", "story")[n % 3], state=states[n % 4],
                           assignee=owner if n % 2 else None, priority=(None, "high", "low", "critical")[n % 4],
                           custom_fields={} if value is None and n % 2 else {"severity": value}, emit=False)
        issue.labels = [["ui"], ["api", "ui"], [], ["API"]][n % 4]
        issue.due_date = date(2026, 1, 1 + n) if n % 3 == 0 else None
        made.append(issue)
    from app.extensions import db

    db.session.commit()
    return project, made


def test_sql_selects_what_the_condition_language_accepts(app, issues):
    from app.extensions import db
    from app.kiket.conditions import evaluate
    from app.kiket.runtime.snapshot import IssueSnapshot, to_context
    from app.models.base import utcnow
    from app.models.issues import Issue
    from app.services.boards.sql import Compiler

    project, made = issues
    now = utcnow()
    contexts = {issue.id: to_context(IssueSnapshot(
        id=issue.id, key=issue.key, title=issue.title, status=issue.state, issue_type=issue.issue_type,
        workflow=issue.workflow_id, priority=issue.priority, assignee=issue.assignee.email if issue.assignee else None,
        labels=tuple(issue.labels or ()), due_date=issue.due_date, custom_fields=dict(issue.custom_fields or {})),
        now) for issue in made}
    wrong = []
    for condition in CONDITIONS:
        compiler = Compiler()
        expression = compiler.condition(condition)
        selected = set(db.session.scalars(sa.select(Issue.id).select_from(compiler.select_from())
                                          .where(Issue.project_id == project.id, expression), {"now": now}))
        expected = {ident for ident, context in contexts.items() if evaluate(condition, context)}
        if selected != expected:
            wrong.append((condition, sorted(selected ^ expected)))
    assert not wrong
