"""The plain context conditions and templates evaluate against, and the package's purity."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from app.kiket.conditions import evaluate, parse_condition
from app.kiket.diagnostics import Provenance
from app.kiket.runtime.events import Event
from app.kiket.runtime.snapshot import Actor, IssueSnapshot, has_permission, template_context, to_context

from .conftest import NOW

ROOT = Path(__file__).resolve().parents[4]


def snap(**kw):
    base = dict(id=5, key="ENG-5", title="T", status="triaging", issue_type="bug", workflow="bug", priority="P1",
                labels=("ui", "login"), created_at=NOW - timedelta(hours=30), updated_at=NOW - timedelta(hours=6),
                state_entered_at=NOW - timedelta(hours=2), due_date=NOW + timedelta(hours=12),
                custom_fields={"severity": "critical", "ai_risk_score": 0.9})
    base.update(kw)
    return IssueSnapshot(**base)


def cond(node):
    parsed, _ = parse_condition(node, "", lambda p: Provenance(pointer=p))
    return parsed


def test_context_fields(revision):
    workflow = revision("engineering").workflows["bug"]
    context = to_context(snap(), NOW, workflow=workflow)
    assert context["status"] == "triaging" and context["labels"] == ["ui", "login"]
    assert context["state_category"] == "active"
    assert (context["hours_in_state"], context["hours_since_last_update"], context["age_hours"],
            context["hours_until_due"]) == (2, 6, 30, 12)
    assert context["sla_status"] == "warning"  # critical: warning after 1h, breach after 4h
    assert context["issue"]["custom_fields"]["severity"] == "critical"
    assert context["created_at"] == (NOW - timedelta(hours=30)).isoformat()


def test_sla_status_follows_the_severity_rule(revision):
    workflow = revision("engineering").workflows["bug"]
    assert to_context(snap(), NOW, workflow=workflow)["sla_status"] == "warning"
    assert to_context(snap(custom_fields={}), NOW, workflow=workflow)["sla_status"] == "ok"


@pytest.mark.parametrize("node, holds", [
    ({"field": "priority", "equals": "p1"}, True),
    ({"field": "issue.labels", "contains": "UI"}, True),
    ("severity == 'CRITICAL' && hours_in_state >= 2", True),
    ({"field": "ai_risk_score", "operator": ">=", "value": 0.7}, True),
    ({"field": "to_status", "equals": "fixing"}, True),
    ({"field": "actor.type", "equals": "user"}, True),
    ({"field": "changes.priority", "contains": "P1"}, True),
    ({"field": "hours_until_due", "operator": "<=", "value": 8}, False),
])
def test_conditions_read_the_context(node, holds):
    event = Event("issue.transitioned", Actor("a"), {"to_status": "fixing", "changes": {"priority": ["P2", "P1"]}})
    assert evaluate(cond(node), to_context(snap(), NOW, event)) is holds


def test_date_only_due_dates_fall_due_at_the_end_of_the_day():
    context = to_context(snap(due_date=date(2026, 3, 2)), NOW)
    assert context["hours_until_due"] == 14 and context["due_date"] == "2026-03-02"


def test_naive_datetimes_are_treated_as_utc():
    naive = snap(created_at=datetime(2026, 3, 1, 10, 0), updated_at=None, state_entered_at=None, due_date=None)
    context = to_context(naive, NOW)
    assert context["age_hours"] == 24 and context["hours_since_last_update"] == 24
    assert context["hours_in_state"] is None and context["hours_until_due"] is None


def test_template_context_roots(revision):
    workflow = revision("engineering").workflows["bug"]
    event = Event("issue.transitioned", Actor("a", is_automation=True), {"from_status": "reported",
                                                                        "to_status": "triaging", "transition": "Go"})
    out = template_context(snap(), NOW, event, workflow=workflow, project={"key": "ENG"}, issue_url="https://k/ENG-5")
    assert out["issue"]["status_label"] == "Triaging" and out["issue"]["url"] == "https://k/ENG-5"
    assert out["transition"] == {"from": "reported", "to": "triaging", "name": "Go"}
    assert out["actor"]["type"] == "automation" and out["project"] == {"key": "ENG"}
    assert out["context"] == {"incident_duration": 1800, "time_in_state": "2h"}
    assert out["now"] == NOW.astimezone(timezone.utc).isoformat()


@pytest.mark.parametrize("granted, needed, ok", [
    ({"*"}, "issue.transition", True), ({"issue.*"}, "issue.transition", True),
    ({"issue.transition"}, "issue.transition", True), ({"issue.read"}, "issue.transition", False),
    ({"board.*"}, "issue.approve", False), (set(), "issue.approve", False),
])
def test_permissions(granted, needed, ok):
    assert has_permission(frozenset(granted), needed) is ok


def test_runtime_imports_no_framework():
    code = ("import sys\n"
            "import app.kiket.runtime.transitions, app.kiket.runtime.effects, app.kiket.runtime.sla\n"
            "import app.kiket.runtime.automations, app.kiket.runtime.directives, app.kiket.runtime.migration\n"
            "import app.kiket.runtime.wip, app.kiket.runtime.events\n"
            "bad = [m for m in ('flask', 'sqlalchemy', 'redis') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
