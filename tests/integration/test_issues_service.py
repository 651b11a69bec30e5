"""Issue services on the bundled templates: creation, typed custom fields, edits, locking, every gate kind."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from tests.support.issue_event_calls import event_calls  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def _events(event_calls):
    return event_calls


def make_project(owner, key="BUG", template="bug_tracking"):
    from app.services import projects

    return projects.create_project(owner, key, f"Project {key}", "", template)


def add_member(project, user, role):
    from app.extensions import db
    from app.models import ProjectMembership

    db.session.add(ProjectMembership(project_id=project.id, user_id=user.id, role=role))
    db.session.commit()


def new_bug(project, owner, **overrides):
    from app.services.runtime import issues

    values = {"issue_type": "bug", "title": "Crash on save", "custom_fields": {"severity": "high"}}
    values.update(overrides)
    return issues.create_issue(project, owner, **values)


def test_create_pins_the_workflow_version_and_allocates_keys(app, owner):
    from app.extensions import db
    from app.models.issues import IssueTransition
    from app.services import audit
    from app.services.sync import configuration

    project = make_project(owner)
    first = new_bug(project, owner)
    second = new_bug(project, owner, title="Second")
    workflow = configuration.project_config(project).workflows["bug"]
    assert (first.key, second.key) == ("BUG-1", "BUG-2")
    assert first.state == "reported" and first.workflow_id == "bug" and first.workflow_version == workflow.version
    assert first.custom_fields == {"severity": "high"} and first.lock_version == 1
    assert db.session.scalar(select(func.count()).select_from(IssueTransition)) == 2
    assert audit.verify(project.id).ok


@pytest.mark.parametrize("fields, problem", [
    ({}, "Severity is required"),
    ({"severity": "apocalyptic"}, "must be one of critical, high, medium, low"),
    ({"severity": "low", "colour": "red"}, "is not a field of Bug"),
])
def test_custom_fields_are_validated_per_issue_type(app, owner, fields, problem):
    from app.services.errors import Invalid

    project = make_project(owner)
    with pytest.raises(Invalid) as caught:
        new_bug(project, owner, custom_fields=fields)
    assert any(problem in str(v) for v in caught.value.problems.values()), caught.value.problems


@pytest.mark.parametrize("kind, raw, expected", [
    ("integer", "42", 42), ("integer", "4.5", ValueError), ("number", "2.5", 2.5), ("number", "nan", ValueError),
    ("boolean", "on", True), ("boolean", "maybe", ValueError), ("date", "2026-02-28", "2026-02-28"),
    ("date", "2026-02-30", ValueError), ("datetime", "2026-02-28T10:00", "2026-02-28T10:00:00+00:00"),
    ("email", "a@b.io", "a@b.io"), ("email", "nope", ValueError), ("url", "https://x.io/a", "https://x.io/a"),
    ("url", "javascript:alert(1)", ValueError), ("multi_enum", ["a", "B"], ["a", "b"]),
    ("multi_enum", ["z"], ValueError), ("string", "x" * 300, ValueError),
])
def test_coerce_field_types(app, kind, raw, expected):
    from app.kiket.model import FieldDef
    from app.services.runtime.fields import coerce_field

    fdef = FieldDef(key="f", label="F", type=kind, options=(("a", "A"), ("b", "B")))
    if expected is ValueError:
        with pytest.raises(ValueError):
            coerce_field(fdef, raw)
    else:
        assert coerce_field(fdef, raw) == expected


def test_min_and_max_bound_numbers(app):
    from app.kiket.model import FieldDef
    from app.services.runtime.fields import coerce_field

    fdef = FieldDef(key="n", label="N", type="integer", min=1, max=10)
    assert coerce_field(fdef, "10") == 10
    for bad in ("0", "11"):
        with pytest.raises(ValueError):
            coerce_field(fdef, bad)


def test_inactive_types_and_strangers_are_refused(app, owner, make_user):
    from app.services.errors import Invalid, NotFound
    from app.services.runtime import issues

    project = make_project(owner)
    with pytest.raises(Invalid):
        issues.create_issue(project, owner, issue_type="epic", title="x")
    stranger = make_user("stranger@example.com", "member")
    with pytest.raises(NotFound):
        new_bug(project, stranger)


def test_viewers_read_but_cannot_change(app, owner, make_user):
    from app.services.errors import Forbidden
    from app.services.runtime import issue_queries, issues, transitions

    project = make_project(owner)
    viewer = make_user("viewer@example.com", "member")
    add_member(project, viewer, "viewer")
    issue = new_bug(project, owner)
    assert issue_queries.get_issue(viewer, project.key, issue.number).id == issue.id
    with pytest.raises(Forbidden):
        new_bug(project, viewer)
    with pytest.raises(Forbidden):
        issues.update_issue(issue.id, viewer, issue.lock_version, title="mine")
    with pytest.raises(Forbidden):
        transitions.add_comment(issue.id, viewer, "hello")
    with pytest.raises(Forbidden):
        transitions.apply_transition(issue.id, viewer, transition="reported__triaging")
    verdict = transitions.simulate(issue.id, viewer, transition="reported__triaging")
    assert "You lack the issue.transition permission" in verdict.reasons


def test_stale_lock_version_is_a_conflict(app, owner):
    from app.services.errors import Conflict
    from app.services.runtime import issue_queries, issues

    project = make_project(owner)
    issue = new_bug(project, owner)
    version = issue.lock_version
    issues.update_issue(issue.id, owner, version, title="First edit")
    with pytest.raises(Conflict, match="changed by someone else"):
        issues.update_issue(issue.id, owner, version, title="Second edit")
    assert issue_queries.get_issue(owner, "BUG", 1).title == "First edit"


def test_update_validates_custom_fields_and_records_audit(app, owner):
    from app.extensions import db
    from app.models.audit import AuditEvent
    from app.services.errors import Invalid
    from app.services.runtime import issues

    project = make_project(owner)
    issue = new_bug(project, owner)
    with pytest.raises(Invalid):
        issues.update_issue(issue.id, owner, issue.lock_version, custom_fields={"severity": "meh"})
    updated = issues.update_issue(issue.id, owner, issue.lock_version, custom_fields={"severity": "critical"},
                                  labels="ui, crash")
    assert updated.custom_fields["severity"] == "critical" and updated.labels == ["ui", "crash"]
    kinds = db.session.scalars(select(AuditEvent.kind).order_by(AuditEvent.seq)).all()
    assert kinds == ["issue.created", "issue.updated"]


def test_gates_on_the_bug_tracking_template(app, owner, make_user):
    """Required fields, roles and comment required, each with its reason; a stale lock is a conflict."""
    from app.services.errors import Conflict
    from app.services.runtime import transitions

    project = make_project(owner)
    developer = make_user("dev@example.com", "member")
    add_member(project, developer, "member")
    issue = new_bug(project, developer)
    issue = transitions.apply_transition(issue.id, developer, transition="reported__triaging")
    assert issue.state == "triaging" and issue.lock_version == 2

    with pytest.raises(transitions.TransitionBlocked) as caught:
        transitions.apply_transition(issue.id, developer, target="fixing")
    reasons = caught.value.verdict.reasons
    assert "Field 'Assignee' is required" in reasons
    assert any("Only roles triager, developer may use 'Accept'" in r for r in reasons)
    assert set(caught.value.verdict.failed) == {"required_fields", "permission"}

    with pytest.raises(transitions.TransitionBlocked) as caught:
        transitions.apply_transition(issue.id, developer, target="wont_fix")
    assert caught.value.verdict.failed == ("comment",)
    moved = transitions.apply_transition(issue.id, developer, target="wont_fix", comment="Duplicate of BUG-9")
    assert moved.state == "wont_fix" and moved.resolved_at is not None
    with pytest.raises(Conflict):
        transitions.apply_transition(issue.id, developer, target="fixing", lock_version=2)


def test_the_role_gate_applies_even_to_owners(app, owner):
    from app.services.runtime import issue_queries, issues, transitions

    project = make_project(owner)
    issue = new_bug(project, owner)
    transitions.apply_transition(issue.id, owner, target="triaging")
    verdict = transitions.simulate(issue.id, owner, target="fixing")
    assert not verdict.allowed and verdict.failed == ("permission", "required_fields")
    issue = issue_queries.get_issue(owner, "BUG", 1)
    issues.update_issue(issue.id, owner, issue.lock_version, assignee_id=owner.id)
    # owner holds `*` but not the declared roles: the role gate still applies
    verdict = transitions.simulate(issue.id, owner, target="fixing")
    assert verdict.failed == ("permission",)


def test_checklist_guard_and_reset(app, owner):
    from app.extensions import db
    from app.models.issues import ChecklistProgress
    from app.services.runtime import transitions
    from app.services.sync import configuration
    from app.services.sync.layers import save_layer_file

    project = make_project(owner)
    # Let the owner use every transition: grant the template's roles through team.yaml.
    result = save_layer_file(owner, "team.yaml", "team:\n  members:\n    - {user: owner@example.com, "
                             "roles: [developer, qa, triager]}\n", project=project)
    assert result.saved, result.diagnostics
    configuration.clear_cache()
    issue = new_bug(project, owner, assignee_id=owner.id)
    for target in ("triaging", "fixing", "verifying"):
        issue = transitions.apply_transition(issue.id, owner, target=target)
    verdict = transitions.simulate(issue.id, owner, target="closed")
    assert verdict.failed == ("checklists",)
    assert verdict.reasons == ("Checklist 'Verification' is not complete: 0 of 2 required items checked",)
    transitions.tick_checklist(issue.id, owner, "verification", "reproduced_before", True)
    transitions.tick_checklist(issue.id, owner, "verification", "fixed_after", True)
    assert transitions.simulate(issue.id, owner, target="closed").allowed
    # Back to fixing and in again: the ticks reset on re-entry.
    transitions.apply_transition(issue.id, owner, target="fixing")
    transitions.apply_transition(issue.id, owner, target="verifying")
    assert db.session.scalar(select(func.count()).select_from(ChecklistProgress)) == 0
    assert not transitions.simulate(issue.id, owner, target="closed").allowed


def test_simulate_changes_nothing(app, owner):
    from app.extensions import db
    from app.models.audit import AuditEvent
    from app.models.issues import Issue, IssueTransition
    from app.services.runtime import transitions

    project = make_project(owner)
    issue = new_bug(project, owner)
    before = (issue.state, issue.lock_version)
    counts = lambda: (db.session.scalar(select(func.count()).select_from(IssueTransition)),  # noqa: E731
                      db.session.scalar(select(func.count()).select_from(AuditEvent)))
    start = counts()
    verdict = transitions.simulate(issue.id, owner, target="triaging")
    assert verdict.allowed and [g.gate for g in verdict.gates][:2] == ["permission", "conditions"]
    db.session.expire_all()
    again = db.session.get(Issue, issue.id)
    assert (again.state, again.lock_version) == before and counts() == start


def test_wip_block_column_refuses_the_move(app, owner):
    from app.services.runtime import issues, transitions

    project = make_project(owner, key="KAN", template="kanban")
    moved = []
    for n in range(4):
        issue = issues.create_issue(project, owner, issue_type="task", title=f"Task {n}", assignee_id=owner.id)
        issue = transitions.apply_transition(issue.id, owner, target="in_progress")
        if n < 3:
            moved.append(transitions.apply_transition(issue.id, owner, target="review"))
    with pytest.raises(transitions.TransitionBlocked) as caught:
        transitions.apply_transition(issue.id, owner, target="review")
    assert caught.value.verdict.failed == ("wip",)
    assert "Column 'Review' is at its WIP limit (3/3)" in caught.value.verdict.reasons


def test_comments_watchers_and_attachments(app, owner, make_user):
    from app.services.errors import Invalid
    from app.services.runtime import issue_page, issue_queries, issues, transitions

    project = make_project(owner)
    issue = new_bug(project, owner)
    with pytest.raises(Invalid):
        transitions.add_comment(issue.id, owner, "   ")
    comment = transitions.add_comment(issue.id, owner, "**bold** <script>x</script>")
    assert comment.id
    issues.watch(issue.id, owner, watching=False)
    issues.watch(issue.id, owner, watching=True)
    attachment = transitions.upload_attachment(issue.id, owner, io.BytesIO(b"%PDF-1"), "r.pdf", "application/pdf",
                                               document_key="report")
    found, path = transitions.attachment_for_download(issue.id, owner, attachment.id)
    assert found.document_key == "report" and path.read_bytes() == b"%PDF-1"
    view = issue_page.issue_view(owner, issue_queries.get_issue(owner, "BUG", 1))
    assert view.watching and [c.id for c in view.comments] == [comment.id]
    assert [h.kind for h in view.history][:1] == ["transition"]


CONTRACT_WORKFLOW = """model_version: "1.0"
workflow:
  id: deal
  name: Deal
  version: 1.0.0
states:
  drafting:
    type: initial
    required_documents: [signed_copy]
  signed:
    type: final
transitions:
  - from: drafting
    to: signed
    name: Sign
    requires:
      predicate: "custom_fields.value <= 1000"
"""

CONTRACT_TYPES = """model_version: "1.0"
issue_types:
  - key: deal
    label: Deal
    workflow: deal
    fields:
      - {key: value, label: Value, type: integer, required: true, min: 1, max: 100000}
      - {key: region, label: Region, type: multi_enum, options: [emea, amer, apac]}
      - {key: closes_on, label: Closes on, type: date}
    documents:
      - {key: signed_copy, label: Signed copy}
  - key: task
    label: Task
  - key: legacy
    label: Legacy
    active: false
"""


def test_predicate_and_required_document_gates_on_an_override_workflow(app, owner, event_calls):
    from app.services.errors import Invalid
    from app.services.runtime import issues, transitions
    from app.services.sync import configuration, layers

    project = make_project(owner, key="DEAL", template="kanban")
    for path, text in (("workflows/deal.yaml", CONTRACT_WORKFLOW), ("issue_types.yaml", CONTRACT_TYPES)):
        result = layers.save_layer_file(owner, path, text, project=project)
        assert result.saved, [d for d in result.diagnostics if d["severity"] in ("fatal", "error")]
    configuration.clear_cache()
    with pytest.raises(Invalid) as caught:
        issues.create_issue(project, owner, issue_type="deal", title="Big", custom_fields={"value": "0",
                                                                                         "region": ["mars"]})
    assert set(caught.value.problems) == {"custom_fields.value", "custom_fields.region"}
    with pytest.raises(Invalid, match="no longer used"):
        issues.create_issue(project, owner, issue_type="legacy", title="Old")
    deal = issues.create_issue(project, owner, issue_type="deal", title="Big",
                               custom_fields={"value": "5000", "region": ["EMEA"], "closes_on": "2026-12-31"})
    assert deal.custom_fields == {"value": 5000, "region": ["emea"], "closes_on": "2026-12-31"}
    assert event_calls[-1] == ("issue_created", (deal.id, owner.id))

    verdict = transitions.simulate(deal.id, owner, target="signed")
    assert verdict.failed == ("predicate", "documents")
    assert "Document 'Signed copy' is required before leaving 'Drafting'" in verdict.reasons
    transitions.upload_attachment(deal.id, owner, io.BytesIO(b"signed"), "deal.pdf", "application/pdf",
                                  document_key="signed_copy")
    issues.update_issue(deal.id, owner, deal.lock_version, custom_fields={"value": "900"})
    signed = transitions.apply_transition(deal.id, owner, target="signed")
    assert signed.state == "signed" and signed.resolved_at is not None
    assert event_calls[-1][0] == "issue_transitioned" and event_calls[-1][1][0] == deal.id


def test_automations_skip_the_permission_gate_but_not_the_others(app, owner, event_calls):
    from app.extensions import db
    from app.models.issues import IssueTransition
    from app.services.runtime import transitions

    project = make_project(owner)
    issue = new_bug(project, owner)
    transitions.apply_transition(issue.id, None, target="triaging", as_automation=True, chain=("rule-1",))
    with pytest.raises(transitions.TransitionBlocked) as caught:
        transitions.apply_transition(issue.id, None, target="fixing", as_automation=True)
    assert caught.value.verdict.failed == ("required_fields",)
    assert caught.value.verdict.gate("permission").reasons == ("skipped for automations",)
    row = db.session.scalar(select(IssueTransition).where(IssueTransition.from_state == "reported"))
    assert row.actor_kind == "automation" and row.actor_id is None
    assert event_calls[-1] == ("issue_transitioned", (issue.id, row.id, None))
