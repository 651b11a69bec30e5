"""SLA clocks (§8.3) with a controlled clock: rule selection, business hours, status and once-only events."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from app.kiket.calendar import BusinessHours
from app.kiket.model import SlaPolicy, SlaRule
from app.kiket.runtime.sla import (
    due_events, next_check_at, select_rule, sla_clock, sla_hook_actions, sla_payload, state_clock,
)
from app.kiket.runtime.snapshot import IssueSnapshot, to_context

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
FRIDAY_4PM = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)


def policy(breach: int, warning: int | None = None, *, business: bool = False, share: float | None = None):
    return SlaPolicy((SlaRule(None, warning, breach, share, default=True),), business_hours=business)


def ctx(severity=None, **fields):
    return {"custom_fields": {"severity": severity}, **fields}


@pytest.mark.parametrize("severity, warning, breach", [
    ("critical", 3600, 4 * 3600),
    ("CRITICAL", 3600, 4 * 3600),
    ("high", 4 * 3600, 24 * 3600),
    ("low", 24 * 3600, 72 * 3600),
    (None, 24 * 3600, 72 * 3600),
])
def test_engineering_triage_rules(revision, severity, warning, breach):
    sla = revision("engineering").workflows["bug"].states["triaging"].sla
    rule = select_rule(sla, ctx(severity))
    assert (rule.warning_s, rule.breach_s) == (warning, breach)


@pytest.mark.parametrize("severity, breach", [("p1", 900), ("P1", 900), ("P2", 3600), ("p3", 4 * 3600),
                                              ("p4", 24 * 3600)])
def test_incident_rules_compare_case_insensitively(revision, severity, breach):
    sla = revision("engineering").workflows["incident"].states["investigating"].sla
    assert select_rule(sla, ctx(severity)).breach_s == breach


def test_rule_is_reselected_when_severity_changes(revision):
    """Severity set after entry: the clock re-reads the rule, so a P1 set late is already breached."""
    workflow = revision("engineering").workflows["incident"]
    entered = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    now = entered + timedelta(minutes=20)
    before = state_clock(workflow, "investigating", entered, now, None, ctx(None))
    after = state_clock(workflow, "investigating", entered, now, None, ctx("P1"))
    assert before.status == "ok" and before.breach_s == 24 * 3600
    assert after.status == "breached" and after.breach_s == 900
    assert due_events(after, set()) == ("sla.warning", "sla.breach")


def test_unconditional_rule_that_is_not_flagged_default_still_applies():
    rules = SlaPolicy((SlaRule(None, 60, 120),))
    assert sla_clock(rules, FRIDAY_4PM, FRIDAY_4PM, None).status == "ok"


def test_only_conditional_rules_and_none_holds(revision):
    sla = revision("engineering").workflows["bug"].states["triaging"].sla
    conditional = replace(sla, rules=sla.rules[:2])
    clock = sla_clock(conditional, FRIDAY_4PM, FRIDAY_4PM + timedelta(days=9), None, context=ctx("low"))
    assert clock.rule is None and clock.status == "none" and due_events(clock, set()) == ()


def test_friday_afternoon_plus_four_business_hours_is_monday_noon():
    clock = sla_clock(policy(4 * 3600, business=True), FRIDAY_4PM, FRIDAY_4PM, BusinessHours())
    assert clock.breach_at == datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
    saturday = sla_clock(policy(4 * 3600, business=True), FRIDAY_4PM, FRIDAY_4PM + timedelta(days=1), BusinessHours())
    assert saturday.elapsed_s == 3600 and saturday.status == "ok" and saturday.remaining_s == 3 * 3600


def test_business_hours_over_the_dst_week_in_berlin():
    cal = BusinessHours(timezone="Europe/Berlin")
    entered = datetime(2026, 3, 27, 16, 0, tzinfo=BERLIN)  # Friday, CET; clocks jump on Sunday the 29th
    clock = sla_clock(policy(4 * 3600, business=True), entered, entered, cal)
    assert clock.breach_at == datetime(2026, 3, 30, 12, 0, tzinfo=BERLIN)
    assert clock.breach_at.astimezone(UTC) == datetime(2026, 3, 30, 10, 0, tzinfo=UTC)
    monday_11 = sla_clock(policy(4 * 3600, business=True), entered, datetime(2026, 3, 30, 11, 0, tzinfo=BERLIN), cal)
    assert monday_11.elapsed_s == 3 * 3600 and monday_11.status == "ok"


def test_48h_of_business_time_is_six_working_days():
    monday_9 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    clock = sla_clock(policy(48 * 3600, business=True), monday_9, monday_9, None)
    assert clock.breach_at == datetime(2026, 3, 9, 17, 0, tzinfo=UTC)  # Mon–Fri plus the next Monday


def test_business_hours_flag_off_counts_wall_time():
    clock = sla_clock(policy(4 * 3600), FRIDAY_4PM, FRIDAY_4PM + timedelta(hours=5), BusinessHours())
    assert clock.breach_at == FRIDAY_4PM + timedelta(hours=4) and clock.status == "breached"


@pytest.mark.parametrize("share, expected", [(0.8, 80 * 36 * 48), (0.5, 24 * 3600)])
def test_warning_as_a_share_of_breach(share, expected):
    clock = sla_clock(policy(48 * 3600, share=share), FRIDAY_4PM, FRIDAY_4PM, None)
    assert clock.warning_s == expected
    assert clock.warning_at == FRIDAY_4PM + timedelta(seconds=expected)


def test_warning_and_breach_fire_once_each_over_a_sweep(revision):
    """Legal review: 48h warning, 120h breach in business hours; a 15-minute sweep over three weeks."""
    state = revision("legal").workflows["contract"].states["legal_review"]
    cal = revision("legal").project.business_hours
    entered = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    fired: set[str] = set()
    log: list[tuple[str, datetime]] = []
    moment = entered
    while moment < entered + timedelta(days=21):
        clock = sla_clock(state.sla, entered, moment, cal, context={})
        for name in due_events(clock, fired):
            fired.add(name)
            log.append((name, moment))
        moment += timedelta(minutes=15)
    assert [name for name, _ in log] == ["sla.warning", "sla.breach"]
    assert log[0][1] == datetime(2026, 3, 9, 17, 0, tzinfo=UTC)   # six 8-hour days later
    assert log[1][1] == datetime(2026, 3, 20, 17, 0, tzinfo=UTC)  # fifteen 8-hour days later
    assert next_check_at(clock, fired) is None


def test_next_check_at_points_at_the_next_threshold():
    clock = sla_clock(policy(4 * 3600, 3600), FRIDAY_4PM, FRIDAY_4PM, None)
    assert next_check_at(clock, set()) == FRIDAY_4PM + timedelta(hours=1)
    assert next_check_at(clock, {"sla.warning"}) == FRIDAY_4PM + timedelta(hours=4)


@pytest.mark.parametrize("minutes, status", [(0, "ok"), (59, "ok"), (60, "warning"), (239, "warning"),
                                             (240, "breached"), (10_000, "breached")])
def test_status(minutes, status):
    clock = sla_clock(policy(4 * 3600, 3600), FRIDAY_4PM, FRIDAY_4PM + timedelta(minutes=minutes), None)
    assert clock.status == status


def test_payload_is_humanized():
    clock = sla_clock(policy(4 * 3600, 3600), FRIDAY_4PM, FRIDAY_4PM + timedelta(minutes=40), None)
    payload = sla_payload("triaging", clock, "sla.warning")
    assert payload == {
        "state": "triaging", "threshold": "1h", "started_at": "2026-03-06T16:00:00+00:00",
        "due_at": "2026-03-06T17:00:00+00:00", "breach_at": "2026-03-06T20:00:00+00:00", "elapsed": "40m",
        "time_remaining": "3h 20m", "status": "ok", "business_hours": False,
    }


def test_hook_actions_state_level_then_policy(revision):
    state = revision("legal").workflows["contract"].states["legal_review"]
    warning = sla_hook_actions(state, "sla.warning")
    breach = sla_hook_actions(state, "sla.breach")
    assert [a.type for a in warning] == ["notify"] and warning[0].params["recipients"]["roles"] == ["legal"]
    assert breach[0].params["level"] == "critical"


def test_sla_status_in_the_issue_context(revision):
    workflow = revision("scrum").workflows["scrum"]
    entered = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    snap = IssueSnapshot(id=1, status="review", workflow="scrum", state_entered_at=entered)
    cal = revision("scrum").project.business_hours
    assert to_context(snap, entered + timedelta(hours=2), workflow=workflow, calendar=cal)["sla_status"] == "ok"
    assert to_context(snap, entered + timedelta(days=3, hours=2), workflow=workflow, calendar=cal)["sla_status"] == \
        "warning"
    assert to_context(snap, entered + timedelta(days=8), workflow=workflow, calendar=cal)["sla_status"] == "breached"
    assert to_context(replace(snap, status="done"), entered, workflow=workflow)["sla_status"] == "none"
