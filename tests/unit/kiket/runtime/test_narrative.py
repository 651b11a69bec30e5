"""History sentences: people, states, transitions, checklists and automations by their names, never raw ids."""

import pytest

from app.kiket.bundled import template_files
from app.kiket.loader import load_revision
from app.kiket.model import Source
from app.kiket.runtime.narrative import Names, automation_sentence, event_sentence, transition_sentence


@pytest.fixture(scope="module")
def names():
    revision = load_revision(template_files("bug_tracking"), source=Source(repo="template:bug_tracking")).revision
    return Names(workflow=revision.workflows["bug"], people={7: "Grace"},
                 automations={"critical_alert": "Critical bug alert"},
                 fields={"custom_fields.severity": "Severity"})


def test_transitions_read_with_state_labels_and_the_transition_name(names):
    bug = names.workflow
    accept = next(t for t in bug.transitions if t.name == "Accept")
    assert transition_sentence("Ada", "triaging", "fixing", accept.id, names) == \
        "Ada moved it from Triaging to Fixing (Accept)"
    assert transition_sentence("Kiket", None, "reported", None, names) == "Kiket created it in Reported"
    assert transition_sentence("Owner", "triaging", "fixing", accept.id, names,
                               forced={"reason": "hotfix", "skipped": ["Field 'Assignee' is required"]}) == \
        "Owner forced it from Triaging to Fixing: hotfix (skipped: Field 'Assignee' is required)"


def test_automation_runs_say_what_they_did(names):
    actions = [{"type": "notify", "status": "applied", "detail": "slack: 0 notified", "target": "#oncall"},
               {"type": "ai_analyze", "status": "skipped", "detail": "stub"}]
    assert automation_sentence(names, "critical_alert", "applied", actions) == \
        "Automation 'Critical bug alert' notified #oncall (1 action skipped)"
    assert automation_sentence(names, "critical_alert", "applied",
                               [{"type": "notify", "status": "applied", "detail": "in_app: 2 notified"},
                                {"type": "transition", "status": "applied", "detail": "moved to fixing"}]) == \
        "Automation 'Critical bug alert' notified 2 people and moved it to Fixing"
    assert automation_sentence(names, "other", "awaiting_approval") == "Automation 'other' waits for approval before it runs"
    assert automation_sentence(names, "other", "failed: webhook: timeout") == "Automation 'other' failed: webhook: timeout"


def test_events_name_people_fields_and_checklist_items(names):
    assert event_sentence("hooks.run", "Kiket", {"state": "fixing", "actions": [
        {"type": "notify", "status": "applied"}, {"type": "webhook", "status": "applied"},
        {"type": "ai_suggest", "status": "skipped"}]}, names) == "Hooks of Fixing ran: 2 actions, 1 skipped"
    assert event_sentence("issue.updated", "Ada", {"assignee_id": {"from": None, "to": 7},
                                                   "priority": {"from": "low", "to": "high"}}, names) == \
        "Ada assigned it to Grace and set the priority to high"
    assert event_sentence("issue.updated", "An automation",
                          {"changes": {"custom_fields.severity": ["low", "critical"]}, "by": "automation"}, names) == \
        "An automation set the Severity to critical"
    assert event_sentence("checklist.ticked", "Ada", {"checklist": "verification", "item": "fixed_after",
                                                      "checked": True}, names) == \
        "Ada checked 'Bug gone after the fix' (Verification)"
    assert event_sentence("approval.decided", "Grace", {"decision": "denied", "state": "verifying"}, names,
                          reason="not yet") == "Grace denied it in Verifying: not yet"
    assert event_sentence("automation.run", "Kiket", {"automation": "critical_alert", "outcome": "applied"}, names,
                          run_actions=[{"type": "notify", "status": "applied", "target": "#oncall"}]) == \
        "Automation 'Critical bug alert' notified #oncall"
    assert event_sentence("something.new", "Ada", {}, names) == "Ada: something new"


def test_label_actions_say_which_labels(names):
    assert automation_sentence(names, "critical_alert", "applied",
                               [{"type": "add_label", "status": "applied", "detail": "added triaged"},
                                {"type": "remove_label", "status": "applied", "detail": "removed fresh, stale"}]) == \
        "Automation 'Critical bug alert' added the label triaged and removed the labels fresh, stale"
