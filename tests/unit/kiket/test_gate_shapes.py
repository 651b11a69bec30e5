"""The richer gate shapes of §16 are read and enforced; a gate is never lost, and none becomes a silent trap."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from app.kiket.loader import load_revision
from app.kiket.runtime.approvals import approval_status, can_decide, gating_policy, messages, overdue
from app.kiket.runtime.snapshot import Actor, ApprovalRecord, IssueSnapshot
from app.kiket.runtime.transitions import evaluate_request, find_transition

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
TEAM = b"""
team:
  roles: [{name: manager}, {name: finance}, {name: legal}, {name: cto}, {name: release}]
"""
MEMBER = Actor("m", frozenset({"member"}), frozenset({"issue.*"}))


def load(workflow: str, **files: str):
    data = {".kiket/team.yaml": TEAM, ".kiket/workflows/wf.yaml": workflow.encode()}
    data.update({f".kiket/{path.replace('__', '/')}.yaml": text.encode() for path, text in files.items()})
    result = load_revision(data, include_bundled=False)
    assert result.ok, [d.format() for d in result.diagnostics if d.severity == "fatal"]
    return result


def codes(result, *severities):
    return [(d.code, d.line) for d in result.diagnostics if d.severity in severities]


def rec(who, *roles, minute=0, decision="approved", org_admin=False):
    return ApprovalRecord(who, frozenset(roles), decision, NOW + timedelta(minutes=minute), org_admin=org_admin)


def issue(state, **kw):
    return IssueSnapshot(id=1, key="W-1", title="T", status=state, workflow="wf", issue_type="task",
                         state_entered_at=NOW - timedelta(hours=1), **kw)


BASE = """
states:
  draft: {type: initial}
  review: {type: active}
  live: {type: final}
transitions:
"""


def test_require_approval_needs_one_approval_from_each_entry_in_any_order():
    result = load(BASE + """
  - {from: draft, to: review}
  - from: review
    to: live
    name: Go live
    require_approval:
      - assignment: {type: role, identifier: manager}
        metadata: {message: Check the rollout plan}
      - assignment: {type: user, identifier: cfo@example.com}
""")
    workflow = result.revision.workflows["wf"]
    go = find_transition(workflow, "review", "Go live")
    assert go.approval_required is True and go.approval.mode == "parallel"
    assert [(a.kind, a.ref, a.message) for a in go.approval.approvers] == [
        ("role", "manager", "Check the rollout plan"), ("user", "cfo@example.com", None)]
    policy = gating_policy(workflow, go, "review")
    assert messages(policy, {}) == ("Check the rollout plan",)
    assert not approval_status(policy, (rec("mo", "manager"),), {}).satisfied
    assert approval_status(policy, (rec("cfo@example.com", minute=1), rec("mo", "manager", minute=2)), {}).satisfied
    assert not evaluate_request(workflow, issue("review"), actor=MEMBER, transition="Go live", now=NOW).allowed


CHAIN = BASE + """
  - {from: draft, to: review}
  - from: review
    to: live
    name: Deploy to production
    approval_chain:
      chain:
        - level: 2
          name: Sign-off
          parallel:
            - {group: finance, assignments: [{type: role, identifier: finance}], required: any}
            - {group: legal, assignments: [{type: role, identifier: legal}], required: any}
          logic: AND
          timeout: 48h
        - level: 1
          name: Manager
          assignments: [{type: role, identifier: manager}, {type: user, identifier: boss@example.com}]
          required: any
          timeout: 24h
          metadata: {message: Is the change window booked?}
        - level: 3
          name: CTO for big ones
          assignments: [{type: role, identifier: cto}]
          required: all
          conditions: [{field: custom_fields.cost, operator: gt, value: 10000}]
"""


def chain_policy():
    workflow = load(CHAIN).revision.workflows["wf"]
    transition = find_transition(workflow, "review", "Deploy to production")
    return workflow, gating_policy(workflow, transition, "review")


def test_approval_chain_levels_are_decided_in_order():
    _, policy = chain_policy()
    assert policy.mode == "chain" and [level.name for level in policy.levels] == [
        "Manager", "Sign-off", "CTO for big ones"]
    assert [level.timeout_s for level in policy.levels] == [24 * 3600, 48 * 3600, None]
    status = approval_status(policy, (), {})
    assert status.level == 0 and status.reasons == (
        "Waiting for level 1 of 3 (Manager): needs 1 approval from role manager or user boss@example.com (0 so far)",)
    assert messages(policy, {}) == ("Is the change window booked?",)
    # Finance cannot decide before the manager level is complete.
    assert can_decide(policy, rec("fi", "finance"), (), {}, may_approve=True).startswith("Only role manager")
    done_one = (rec("boss@example.com", minute=1),)
    status = approval_status(policy, done_one, {})
    assert status.level == 1 and status.reached_at == NOW + timedelta(minutes=1)
    assert "group legal" in status.reasons[0] and "group finance" in status.reasons[0]
    both = done_one + (rec("fi", "finance", minute=2), rec("le", "legal", minute=3))
    small = approval_status(policy, both, {"custom_fields": {"cost": 500}})
    assert small.satisfied and small.skipped == ("CTO for big ones",)
    big = approval_status(policy, both, {"custom_fields": {"cost": 50000}})
    assert not big.satisfied and big.level == 2
    assert approval_status(policy, both + (rec("cy", "cto", minute=4),), {"custom_fields": {"cost": 50000}}).satisfied


def test_parallel_groups_with_or_logic_need_one_group():
    _, policy = chain_policy()
    from dataclasses import replace

    either = replace(policy, levels=(replace(policy.levels[1], logic="or"),))
    assert approval_status(either, (rec("le", "legal"),), {}).satisfied
    assert not approval_status(policy, (rec("m", "manager"), rec("le", "legal")), {}).satisfied


def test_a_level_overdue_once_past_its_timeout_from_when_it_was_reached():
    _, policy = chain_policy()
    entered = NOW - timedelta(hours=30)
    late = overdue(policy, (), {}, entered, NOW)
    assert late is not None and (late.level, late.name) == (0, "Manager")
    assert late.due_at == entered + timedelta(hours=24)
    # The second level was reached when the manager approved; it has 48h from then.
    records = (rec("m", "manager"),)
    assert overdue(policy, records, {}, entered, NOW + timedelta(hours=47)) is None
    assert overdue(policy, records, {}, entered, NOW + timedelta(hours=48)).name == "Sign-off"
    assert overdue(policy, records + (rec("f", "finance", minute=1), rec("l", "legal", minute=2)),
                   {"custom_fields": {"cost": 1}}, entered, NOW + timedelta(days=9)) is None


def test_approval_conditions_make_the_policy_apply_only_while_they_hold():
    result = load(BASE + "  - {from: draft, to: review}\n  - {from: review, to: live}\n", )
    assert result.ok
    result = load("""
states:
  draft: {type: initial}
  review:
    type: active
    approval:
      required: 1
      approvers: [{role: legal}]
      conditions: [{field: priority, operator: eq, value: critical}]
  live: {type: final}
transitions:
  - {from: draft, to: review}
  - {from: review, to: live, name: Ship}
""")
    workflow = result.revision.workflows["wf"]
    calm = evaluate_request(workflow, issue("review", priority="low"), actor=MEMBER, transition="Ship", now=NOW)
    urgent = evaluate_request(workflow, issue("review", priority="critical"), actor=MEMBER, transition="Ship",
                              now=NOW)
    assert calm.allowed and not urgent.allowed and urgent.failed == ("approval",)


def test_state_conditions_guard_every_transition_into_the_state():
    result = load("""
states:
  draft: {type: initial}
  review: {type: active}
  live:
    type: final
    conditions: [{field: custom_fields.tests_passed, operator: eq, value: true}]
transitions:
  - {from: draft, to: review}
  - {from: review, to: live, name: Ship}
  - {from: draft, to: live, name: Hotfix, conditions: [{field: assignee, operator: is_present}]}
""", issue_types="issue_types: [{key: task, fields: [{key: tests_passed, type: boolean}]}]")
    assert ("entry_guard", 7) in codes(result, "info")
    workflow = result.revision.workflows["wf"]
    assert workflow.states["live"].entry_guard is not None
    for state, name in (("review", "Ship"), ("draft", "Hotfix")):
        blocked = evaluate_request(workflow, issue(state, assignee="a"), actor=MEMBER, transition=name, now=NOW)
        assert blocked.failed == ("conditions",), name
        ok = evaluate_request(workflow, issue(state, assignee="a", custom_fields={"tests_passed": True}),
                              actor=MEMBER, transition=name, now=NOW)
        assert ok.allowed, name
    assert evaluate_request(workflow, issue("draft"), actor=MEMBER, transition="Review", now=NOW).allowed


def test_metadata_requires_fields_and_requires_approval_are_enforced():
    result = load(BASE + """
  - from: draft
    to: review
    name: Submit
    metadata: {requires_fields: [custom_fields.summary], owner_note: free text}
  - {from: review, to: live, name: Ship, requires: {approval: true}}
""", issue_types="issue_types: [{key: task, fields: [{key: summary}]}]")
    assert ("gate_in_metadata", 11) in codes(result, "info")
    assert codes(result, "warning", "error") == [("approval_without_policy", 12)]
    workflow = result.revision.workflows["wf"]
    submit = find_transition(workflow, "draft", "Submit")
    assert submit.required_fields == ("custom_fields.summary",)
    assert evaluate_request(workflow, issue("draft"), actor=MEMBER, transition="Submit", now=NOW).failed == (
        "required_fields",)
    ship = find_transition(workflow, "review", "Ship")
    assert ship.approval_required is True
    assert evaluate_request(workflow, issue("review"), actor=MEMBER, transition="Ship", now=NOW).failed == (
        "approval",)


def test_a_checklists_own_on_complete_is_the_states_on_complete():
    result = load("""
states:
  draft:
    type: initial
    checklist:
      items: [Write it]
      on_complete: [{action: add_label, label: ready}]
    on_complete: [{action: add_comment, body: done}]
  live: {type: final}
transitions:
  - {from: draft, to: live}
""")
    hooks = result.revision.workflows["wf"].states["draft"].hooks["on_checklist_complete"]
    assert [a.type for a in hooks] == ["add_comment", "add_label"]


def test_several_approval_shapes_on_one_transition_are_all_enforced_in_order():
    workflow = load(BASE + """
  - {from: draft, to: review}
  - from: review
    to: live
    name: Ship
    approval: {required: 1, approvers: [{role: release}]}
    approval_chain: [{name: CTO, assignments: [{type: role, identifier: cto}]}]
""").revision.workflows["wf"]
    policy = find_transition(workflow, "review", "Ship").approval
    assert policy.mode == "chain" and [len(level.approvers) for level in policy.levels] == [1, 1]
    assert not approval_status(policy, (rec("r", "release"),), {}).satisfied
    assert approval_status(policy, (rec("r", "release"), rec("c", "cto", minute=1)), {}).satisfied


@pytest.mark.parametrize("where, snippet, line", [
    ("state", "  review:\n    type: active\n    requires_approvals: 2\n", 5),
    ("transition", "  review: {type: active}\n", 9),
    ("approval", "  review:\n    type: active\n    approval: {approvers: [{role: legal}], min_approvals: 2}\n", 5),
    ("checklist", "  review:\n    type: active\n    checklist: {items: [a], blocking: true}\n", 5),
])
def test_unknown_gate_like_keys_are_errors_naming_what_is_now_unguarded(where, snippet, line):
    transitions = "  - {from: draft, to: review}\n  - {from: review, to: live}\n"
    if where == "transition":
        transitions = "  - {from: draft, to: review}\n  - from: review\n    to: live\n    guard: {field: assignee}\n"
    result = load("states:\n  draft: {type: initial}\n" + snippet + "  live: {type: final}\ntransitions:\n"
                  + transitions)
    ignored = [d for d in result.diagnostics if d.code == "ignored_gate"]
    assert [(d.severity, d.line) for d in ignored] == [("error", line)]
    assert "not enforced" in ignored[0].message and "workflow 'wf'" in ignored[0].message
    assert not any(d.code == "unknown_key" for d in result.diagnostics)


def test_ignored_gate_hints_the_nearest_known_key():
    result = load(BASE + "  - {from: draft, to: review, requires_comments: true}\n  - {from: review, to: live}\n")
    ignored = next(d for d in result.diagnostics if d.code == "ignored_gate")
    assert ignored.hint.startswith("Did you mean 'requires_comment'?") and "docs/diagnostics.md#ignored_gate" in ignored.hint


def test_a_guard_on_an_undeclared_custom_field_infers_the_field():
    result = load(BASE + """
  - {from: draft, to: review, requires: {fields: [custom_fields.ticket_ref]}}
  - from: review
    to: live
    name: Ship
    conditions: "custom_fields.budget <= 5000 and custom_fields.budget > 0"
""", issue_types="issue_types: [{key: task}, {key: epic, fields: [{key: owner_team}]}]")
    errors = [(d.code, d.line) for d in result.diagnostics if d.severity == "error"]
    infos = [(d.code, d.line) for d in result.diagnostics if d.code == "inferred_field"]
    assert errors == [("unsatisfiable_gate", 8), ("unsatisfiable_gate", 9)] and infos == [("inferred_field", 8),
                                                                                           ("inferred_field", 9)]
    fields = {f.key: (f.type, f.inferred) for f in result.revision.issue_types["task"].fields}
    assert fields == {"ticket_ref": ("string", True), "budget": ("number", True)}
    assert {f.key for f in result.revision.issue_types["epic"].fields} == {"owner_team", "ticket_ref", "budget"}


def test_declared_fields_are_not_inferred():
    result = load(BASE + "  - {from: draft, to: review, requires: {fields: [summary]}}\n  - {from: review, to: live}\n",
                  issue_types="issue_types: [{key: task, fields: [{key: summary}]}]")
    assert not any(d.code in ("unsatisfiable_gate", "inferred_field") for d in result.diagnostics)


def test_a_role_nobody_can_hold_is_passed_by_organization_owners_and_admins():
    result = load(BASE + "  - {from: draft, to: review, name: Submit, roles: [release_captain]}\n"
                  "  - {from: review, to: live}\n")
    error = next(d for d in result.diagnostics if d.code == "unsatisfiable_gate")
    assert "transition 'Submit'" in error.message and error.line == 7
    workflow = result.revision.workflows["wf"]
    member = evaluate_request(workflow, issue("draft"), actor=MEMBER, transition="Submit", now=NOW)
    assert member.failed == ("permission",) and "organization owners and admins pass it" in member.reasons[0]
    admin = Actor("o", frozenset({"owner"}), frozenset({"*"}), org_admin=True)
    assert evaluate_request(workflow, issue("draft"), actor=admin, transition="Submit", now=NOW).allowed


def test_unknown_events_and_actions_list_the_catalogue_after_a_guess():
    result = load(BASE + "  - {from: draft, to: review}\n  - {from: review, to: live}\n", automations__a="""
automations:
  - {id: a, trigger: issue.creatd, actions: [{type: add_label, label: x}]}
  - {id: b, trigger: issue.created, actions: [{type: notfy, message: hi}]}
""")
    event = next(d for d in result.diagnostics if d.code == "unknown_event")
    action = next(d for d in result.diagnostics if d.code == "unknown_action")
    assert event.hint.startswith("Did you mean 'issue.created'? Events: issue.created,")
    assert "approval.overdue" in event.hint and "case.created" in event.hint and "scheduled" in event.hint
    assert action.hint.startswith("Did you mean 'notify'? Actions")
    assert "ai_generate" in action.hint and "request_approval" in action.hint


def test_event_aliases_warn_naming_the_catalogue_event():
    result = load(BASE + "  - {from: draft, to: review}\n  - {from: review, to: live}\n", automations__a="""
automations:
  - {id: a, trigger: {event: scheduled, schedule: "0 9 * * 1"}, actions: [{type: add_label, label: x}]}
  - {id: b, trigger: workflow.after_transition, actions: [{type: ai_generate, agent: writer}]}
  - {id: c, trigger: schedule, actions: [{type: add_label, label: x}]}
""")
    aliases = [(d.severity, d.line, d.message) for d in result.diagnostics if d.code == "event_alias"]
    assert [(s, line) for s, line, _ in aliases] == [("warning", 3), ("warning", 4), ("warning", 5)]
    assert "'schedule.cron'" in aliases[0][2] and "'issue.transitioned'" in aliases[1][2]
    automations = result.revision.automations
    assert automations["a"].events == ("schedule.cron",) and automations["a"].cron == "0 9 * * 1"
    assert automations["b"].events == ("issue.transitioned",) and automations["b"].actions[0].support == "stub"
    assert "c" not in automations and ("invalid_cron", 5) in codes(result, "error")
