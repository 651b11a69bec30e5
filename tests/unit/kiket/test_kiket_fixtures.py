"""The four real configuration repositories load cleanly, with exactly the warnings the spec predicts."""

from __future__ import annotations

from collections import Counter

import pytest

from app.kiket.conditions import ChecklistComplete, Compare
from tests.support.fixture_repos import REVISIONS

# Every warning is one the spec predicts: undeclared roles (§6), unsupported sections (§15), the
# scrum/kanban intakes' fuzzy issue types (§2), teams: channels without the extension (Appendix),
# develop's older `id:` project key (§5) and kanban's intake naming a type that does not exist.
EXPECTED_WARNINGS = {
    ("engineering", "main"): {"unknown_role": 12, "unsupported_section": 9},
    ("engineering", "develop"): {"unknown_role": 12, "unsupported_section": 9, "project_legacy_id": 1},
    ("scrum", "main"): {"unsupported_section": 6, "unknown_role": 4, "unknown_channel": 3, "fuzzy_reference": 2},
    ("kanban", "main"): {"unsupported_section": 8, "unknown_channel": 3, "unknown_role": 3, "fuzzy_reference": 1,
                         "unknown_issue_type": 1},
    ("legal", "main"): {"unknown_role": 11, "unsupported_section": 6},
}
# The one error of the four fixtures (§16): legal's approvers name the role `legal`, which is declared nowhere,
# so the approval of both its legal_review states could never be given. Nothing else may be an error.
EXPECTED_ERRORS = {
    ("legal", "main"): [("unsatisfiable_gate", ".kiket/workflows/contract.yaml", "legal_review"),
                        ("unsatisfiable_gate", ".kiket/workflows/gdpr.yaml", "legal_review")],
}
UNKNOWN_ROLES = {
    ("engineering", "main"): {"engineering_lead", "oncall", "engineering", "product"},
    ("scrum", "main"): {"manager", "engineering_manager", "operations_manager", "team_lead"},
    ("kanban", "main"): {"engineering_manager", "operations_manager", "team_lead"},
    ("legal", "main"): {"legal", "compliance", "executive", "manager", "sales"},
}
SUMMARIES = {
    ("engineering", "main"): dict(workflows=2, states=11, transitions=15, boards=2, issue_types=4, automations=5),
    ("engineering", "develop"): dict(workflows=2, states=11, transitions=15, boards=2, issue_types=4, automations=5),
    ("scrum", "main"): dict(workflows=1, states=5, transitions=6, boards=1, issue_types=5, automations=3),
    ("kanban", "main"): dict(workflows=1, states=4, transitions=5, boards=1, issue_types=4, automations=3),
    ("legal", "main"): dict(workflows=2, states=15, transitions=22, boards=1, issue_types=3, automations=4),
}


def line_of(files: dict[str, bytes], path: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing `needle`."""
    seen = 0
    for number, line in enumerate(files[path].decode().splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not in {path}")


@pytest.mark.parametrize("name,branch", REVISIONS)
def test_fixture_loads_with_exactly_the_predicted_errors(loaded, name, branch):
    result = loaded(name, branch)
    assert result.ok and result.revision is not None
    errors = [d for d in result.diagnostics if d.severity in ("fatal", "error")]
    assert [(d.code, d.file) for d in errors] == [(code, file) for code, file, _ in
                                                  EXPECTED_ERRORS.get((name, branch), [])]
    for diagnostic, (_, _, state) in zip(errors, EXPECTED_ERRORS.get((name, branch), [])):
        assert f"state '{state}'" in diagnostic.message and "Role 'legal'" in diagnostic.message


def test_legal_approvers_fall_back_to_organization_owners_and_admins(loaded):
    revision = loaded("legal").revision
    for workflow in ("contract", "gdpr"):
        approvers = revision.workflows[workflow].states["legal_review"].approval.approvers
        assert [(a.ref, a.undeclared) for a in approvers] == [("legal", True)]


@pytest.mark.parametrize("name,branch", REVISIONS)
def test_fixture_warnings_are_exactly_the_predicted_ones(loaded, name, branch):
    result = loaded(name, branch)
    warnings = Counter(d.code for d in result.diagnostics if d.severity == "warning")
    assert dict(warnings) == EXPECTED_WARNINGS[(name, branch)]


@pytest.mark.parametrize("name,branch", [k for k in UNKNOWN_ROLES])
def test_unknown_roles_are_the_undeclared_ones(loaded, name, branch):
    result = loaded(name, branch)
    named = {d.message.split("'")[1] for d in result.diagnostics if d.code == "unknown_role"}
    assert named == UNKNOWN_ROLES[(name, branch)]


@pytest.mark.parametrize("name,branch", REVISIONS)
def test_fixture_summary(loaded, name, branch):
    assert loaded(name, branch).summary() == SUMMARIES[(name, branch)]


@pytest.mark.parametrize("name,branch", REVISIONS)
def test_every_diagnostic_has_a_full_position(loaded, name, branch):
    for diagnostic in loaded(name, branch).diagnostics:
        assert diagnostic.file and diagnostic.line and diagnostic.column, diagnostic.format()


@pytest.mark.parametrize("name,branch", REVISIONS)
def test_unsupported_sections_are_preserved_verbatim(loaded, fixture_repos, name, branch):
    result = loaded(name, branch)
    files = fixture_repos.files(name, branch)
    preserved = {doc.path: doc for doc in result.revision.preserved}
    warned = {d.file for d in result.diagnostics if d.code == "unsupported_section"}
    assert set(preserved) == warned
    for path, doc in preserved.items():
        assert doc.raw_text == files[path].decode()


def test_engineering_bug_workflow(loaded):
    revision = loaded("engineering").revision
    bug = revision.workflows["bug"]
    assert list(bug.states) == ["reported", "triaging", "fixing", "testing", "deployed", "wont_fix"]
    assert bug.initial == "reported" and bug.finals == ("deployed", "wont_fix")
    assert bug.dialect == "repo" and bug.name == "Bug Tracking" and bug.declared_version == "1.0.0"
    assert len(bug.version) == 64
    assert [(t.sources, t.target, t.name) for t in bug.transitions][:2] == [
        (("reported",), "triaging", "Start Triage"), (("triaging",), "fixing", "Assign & Fix")]
    assert bug.states["testing"].category == "review" and bug.states["reported"].label == "Reported"
    assert bug.states["reported"].icon == "🐛"
    sla = bug.states["triaging"].sla
    assert [(r.warning_s, r.breach_s, r.default) for r in sla.rules] == [
        (3600, 14400, False), (14400, 86400, False), (86400, 259200, True)]
    first = sla.rules[0].when
    assert isinstance(first, Compare) and (first.path, first.op, first.value) == ("custom_fields.severity", "eq",
                                                                                   "critical")
    assert sla.business_hours is False
    checklist = bug.states["testing"].checklists["bug_testing"]
    assert checklist.mode == "all" and [i.id for i in checklist.items] == [
        "unit_tests", "integration_tests", "manual_qa", "security_scan"]
    assert [(i.check_type, i.required) for i in checklist.items] == [
        ("auto", True), ("auto", True), ("manual", True), ("auto", True)]
    deploy = next(t for t in bug.transitions if t.name == "Deploy")
    assert deploy.checklists == ("bug_testing",)
    assert any(isinstance(item, ChecklistComplete) and item.id == "bug_testing" for item in deploy.guard.items)
    regression = next(t for t in bug.transitions if t.name == "Regression Found")
    assert regression.sources == ("deployed",)
    webhook = bug.states["fixing"].hooks["on_enter"][0]
    assert webhook.type == "webhook" and webhook.support == "core" and webhook.params["method"] == "POST"
    assert [a.type for a in bug.states["reported"].hooks["on_enter"]] == ["ai_analyze", "ai_analyze", "ai_suggest"]
    assert {a.support for a in bug.states["reported"].hooks["on_enter"]} == {"stub"}


def test_engineering_incident_postmortem_guard_names_the_target_checklist(loaded):
    incident = loaded("engineering").revision.workflows["incident"]
    guard = next(t for t in incident.transitions if t.target == "postmortem")
    assert guard.sources == ("resolved",) and guard.checklists == ("postmortem_checklist",)
    assert incident.checklist("postmortem_checklist").state == "postmortem"
    assert [r.breach_s for r in incident.states["investigating"].sla.rules] == [900, 3600, 14400, 86400]
    assert incident.states["postmortem"].hooks["on_checklist_complete"][0].type == "anchor_data"


def test_engineering_boards_map_columns_to_states(loaded):
    revision = loaded("engineering").revision
    board = revision.boards["engineering-board"]
    assert board.workflow == "bug" and board.workflows == ("bug",) and board.type == "kanban"
    assert [(c.key, c.states, c.wip_limit) for c in board.columns] == [
        ("reported", ("reported",), None), ("triaging", ("triaging",), 10), ("fixing", ("fixing",), 8),
        ("testing", ("testing",), 10), ("deployed", ("deployed",), None)]
    assert board.unmapped_states == (("bug", "wont_fix"),)
    assert board.filters.issue_types == ("bug",)
    assert board.swimlanes.field == "custom_fields.severity" and len(board.swimlanes.values) == 4
    assert board.card.size == "compact" and board.card.badges == ("comments_count",)
    assert [(q.label, q.values) for q in board.quick_filters] == [
        ("My Bugs", ("@me",)), ("Critical/High", ("critical", "high")), ("SLA At Risk", ("warning", "breached"))]
    incidents = revision.boards["incidents-board"]
    assert incidents.column_for("postmortem").key == "postmortem" and not incidents.unmapped_states
    assert not any(b.generated for b in revision.boards.values())


def test_engineering_default_workflow_and_seeds(loaded):
    revision = loaded("engineering").revision
    assert revision.default_workflow == "bug" and revision.project.default_workflow == "bug"
    assert {k: t.workflow for k, t in revision.issue_types.items()} == {
        "bug": "bug", "incident": "incident", "task": "bug", "story": "bug"}
    seeds = revision.project.seed_issues
    assert len(seeds) == 6
    assert [(s.issue_type, s.status, s.workflow) for s in seeds][:3] == [
        ("bug", "fixing", "bug"), ("incident", "investigating", "incident"), ("task", "reported", "bug")]
    assert revision.project.key == "ENGINEERING" and revision.project.extensions_required == ("github",)
    assert {"developer", "qa", "devops", "tech_lead", "owner", "admin", "member", "viewer"} == set(revision.team.roles)
    assert revision.team.roles["qa"].inherits == "member" and "issue.transition" in revision.team.roles["qa"].permissions


def test_engineering_automations(loaded):
    automations = loaded("engineering").revision.automations
    assert list(automations) == ["bug-triage", "critical-bug-alert", "incident-commander", "postmortem-reminder",
                                 "bug-sla-breach"]
    assert automations["bug-sla-breach"].events == ("sla.breach",)
    assert automations["bug-triage"].scope == "project"
    reminder = automations["postmortem-reminder"].actions[1]
    assert reminder.type == "schedule_reminder" and reminder.params["delay_s"] == 48 * 3600
    assign = automations["incident-commander"].actions[0]
    assert assign.type == "assign" and assign.params["field"] == "custom_fields.incident_commander"


def test_engineering_develop_binds_every_type_to_the_default_workflow(loaded):
    revision = loaded("engineering", "develop").revision
    assert {t.workflow for t in revision.issue_types.values()} == {"bug"}
    assert revision.project.key == "ENGINEERING" and revision.project.seed_issues == ()
    assert revision.issue_types["incident"].icon == "exclamation-triangle"


def test_legal_default_workflow_approval_and_checklists(loaded):
    revision = loaded("legal").revision
    assert revision.default_workflow == "contract"
    assert revision.issue_types["compliance_task"].workflow == "contract"
    assert [(s.issue_type, s.status) for s in revision.project.seed_issues] == [
        ("contract", "legal_review"), ("gdpr_request", "processing"), ("compliance_task", "draft"),
        ("contract", "pending_signature"), ("gdpr_request", "verifying_identity"), ("compliance_task", "draft")]
    contract = revision.workflows["contract"]
    approval = contract.states["legal_review"].approval
    assert approval.mode == "quorum" and approval.required == 1
    assert [(a.kind, a.ref) for a in approval.approvers] == [("role", "legal")]
    gated = [t.name for t in contract.transitions if "legal_review" in t.sources]
    assert gated == ["Approve for Signature", "Request Changes", "Reject"]
    assert all(t.approval_required for t in contract.transitions if "legal_review" in t.sources)
    assert not any(t.approval_required for t in contract.transitions if "draft" in t.sources)
    active = contract.states["active"]
    assert active.kind == "active" and active.category == "completed" and not active.is_final
    assert contract.states["legal_review"].sla.business_hours is True
    assert contract.states["countersigned"].sla.rules[0].breach_s == 336 * 3600
    gdpr = revision.workflows["gdpr"]
    assert gdpr.states["processing"].sla.business_hours is False
    items = gdpr.states["verifying_identity"].checklists["identity_verification"].items
    assert [(i.id, i.required) for i in items] == [("email_verified", True), ("id_document", False),
                                                    ("account_match", True)]
    codes = Counter(d.code for d in loaded("legal").diagnostics if d.severity == "info")
    assert codes["approval_gates_all"] == 2


def test_legal_board_spans_both_workflows(loaded):
    board = loaded("legal").revision.boards["legal-board"]
    assert board.workflow == "gdpr" and board.workflows == ("gdpr", "contract")
    assert [(c.key, c.states) for c in board.columns] == [
        ("new", ("received", "draft")), ("processing", ("verifying_identity", "processing", "internal_review")),
        ("legal_review", ("legal_review",)), ("pending", ("pending_signature", "countersigned")),
        ("completed", ("completed", "active"))]
    assert set(board.unmapped_states) == {("gdpr", "rejected"), ("contract", "expired"), ("contract", "terminated"),
                                          ("contract", "cancelled")}
    assert board.swimlanes.field == "issue_type"


def test_scrum_fuzzy_references_warn(loaded):
    result = loaded("scrum")
    fuzzy = [d for d in result.diagnostics if d.code == "fuzzy_reference"]
    assert [(d.file, d.message.split("'")[1], d.message.split("'")[3]) for d in fuzzy] == [
        (".kiket/intakes/bug-report.yaml", "bug", "Bug"), (".kiket/intakes/story-request.yaml", "story", "UserStory")]
    assert all(d.severity == "warning" and d.line for d in fuzzy)


def test_scrum_workflow_recipes_and_board(loaded):
    revision = loaded("scrum").revision
    scrum = revision.workflows["scrum"]
    assert scrum.states["sprint_backlog"].gateway and scrum.states["sprint_backlog"].kind == "active"
    review = scrum.states["review"].sla
    assert review.business_hours and review.rules[0].warning_s == 86400
    assert [a.type for a in review.on_warning] == ["notify"] and review.on_breach[0].params["level"] == "critical"
    assert {a.scope for a in revision.automations.values()} == {"scrum"}
    assert revision.automations["silent_issue_follow_up"].sweep is True
    assert revision.automations["high_risk_issue_alert"].requires_approval is True
    assert revision.boards["scrum-sprint"].unmapped_states == (("scrum", "backlog"),)
    assert [s.status for s in revision.project.seed_issues] == [
        "in_progress", "sprint_backlog", "review", "in_progress", "backlog", "done"]
    assert revision.model_version == "1.0"


def test_kanban_without_project_file(loaded):
    result = loaded("kanban")
    revision = result.revision
    assert any(d.code == "project_missing" and d.severity == "info" for d in result.diagnostics)
    assert revision.project.key is None and revision.default_workflow == "kanban"
    assert {b.id for b in revision.boards.values()} == {"kanban-default"}
    assert [c.wip_limit for c in revision.boards["kanban-default"].columns] == [25, 6, 4, None]
    assert len(revision.automations) == 3 and all(a.scope == "kanban" for a in revision.automations.values())
    assert {p.path for p in revision.preserved if p.section == "analytics"} >= {"analytics/dbt/README.md"}


def test_positions_of_states_transitions_columns_and_sla_rules(loaded, fixture_repos):
    files = fixture_repos.files("engineering")
    revision = loaded("engineering").revision
    bug = revision.workflows["bug"]
    path = ".kiket/workflows/bug.yaml"
    triaging = bug.states["triaging"]
    assert (triaging.prov.path, triaging.prov.line, triaging.prov.column) == (path, line_of(files, path, "  triaging:"),
                                                                               3)
    assert triaging.prov.pointer == "/states/triaging" and triaging.prov.layer == "repository"
    second_rule = triaging.sla.rules[1]
    assert second_rule.prov.pointer == "/states/triaging/sla/1"
    assert second_rule.prov.line == line_of(files, path, "- condition:", 2)
    deploy = next(t for t in bug.transitions if t.name == "Deploy")
    assert deploy.prov.line == line_of(files, path, "name: Deploy") - 2 and deploy.prov.pointer == "/transitions/5"
    item = triaging.prov  # states: key position; list items: the node after "- "
    assert item.column == 3
    column = revision.boards["engineering-board"].columns[2]
    assert column.prov.path == ".kiket/boards/engineering.yaml"
    assert column.prov.line == line_of(files, ".kiket/boards/engineering.yaml", "- key: fixing")
    assert column.prov.pointer == "/columns/2"
    seed = revision.project.seed_issues[1]
    assert seed.prov.line == line_of(files, ".kiket/project.yaml", "Production database connection pool")


# Versions of the fixtures' workflows as stored before the §16 fields existed: unchanged, so issues pinned to them
# do not need a migration after an upgrade.
WORKFLOW_VERSIONS = {
    "engineering": {"bug": "a00b0454642bd095", "incident": "aeaa763cad811e3e"},
    "scrum": {"scrum": "2f4cf7d01adb4e1e"},
    "kanban": {"kanban": "35b462be133a3d50"},
    "legal": {"contract": "d0fc8459c27fc4cd", "gdpr": "3cfda5c4762359dd"},
}


@pytest.mark.parametrize("name", sorted(WORKFLOW_VERSIONS))
def test_workflow_versions_survive_fields_added_later(loaded, name):
    versions = {key: wf.version[:16] for key, wf in loaded(name).revision.workflows.items()}
    assert versions == WORKFLOW_VERSIONS[name]
