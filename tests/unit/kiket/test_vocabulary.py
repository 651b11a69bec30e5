"""Both vocabularies (§16): a workspace/case repository loads to the same model as its project/issue twin."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from app.kiket.loader import load_revision
from app.kiket.model import to_plain
from app.kiket.runtime.snapshot import IssueSnapshot, template_context

PROJECT = """
project:
  key: OPS
  name: Operations
  team:
    roles:
      - {name: lead, description: Team lead}
  extensions: {required: [email]}
  seed_data:
    issues:
      - {title: First ticket, issue_type: ticket, status: doing, priority: high}
      - {title: A chore, issue_type: chore}
"""
WORKSPACE = """
workspace:
  key: OPS
  name: Operations
  team:
    roles:
      - {name: lead, description: Team lead}
  extensions: {required: [email]}
  seed_data:
    cases:
      - {title: First ticket, case_type: ticket, status: doing, priority: high}
      - {title: A chore, case_type: chore}
"""
ISSUE_TYPES = """
issue_types:
  - {key: ticket, label: Ticket, workflow: ops, fields: [{key: budget, type: number}]}
  - {key: chore, label: Chore, workflow: ops}
"""
CASE_TYPES = ISSUE_TYPES.replace("issue_types:", "case_types:")
WORKFLOW = """
workflow: {id: ops, name: Ops}
states:
  open: {type: initial}
  doing:
    type: active
    on_enter:
      - action: notify
        recipients: {roles: [lead]}
        message: "Started ${issue.key}: {{issue.title}}"
  done: {type: final}
transitions:
  - from: open
    to: doing
    name: Start
    conditions:
      - {field: issue_type, equals: ticket}
    roles: [lead]
  - from: doing
    to: done
    name: Finish
    requires:
      predicate: "issue.issue_type == 'ticket' && issue.budget > 10"
"""
BOARD = """
board: {id: ops-board, name: Ops, workflow: ops}
filters: {issue_types: [ticket, chore]}
swimlanes: {field: issue_type}
quick_filters:
  - {label: Tickets, field: issue_type, value: ticket}
columns:
  - {key: todo, states: [open]}
  - {key: wip, states: [doing]}
  - {key: done, states: [done]}
"""
AUTOMATIONS = """
automations:
  - id: ticket-created
    trigger: {event: issue.created, conditions: "issue_type == 'ticket'"}
    actions:
      - {type: add_comment, body: "Thanks for {{issue.title}}"}
      - {type: create_issue, title: "Follow up {{issue.key}}", issue_type: chore}
  - id: on-comment
    trigger: issue.commented
    actions: [{type: add_label, label: discussed}]
"""


def _case_words(text: str) -> str:
    """The same text in the workspace/case vocabulary."""
    text = text.replace("issue_types:", "case_types:").replace("issue_type", "case_type")
    text = re.sub(r"(\{\{|\$\{)\s*issue\.", r"\1case.", text)
    text = text.replace("issue.created", "case.created").replace("issue.commented", "case.commented")
    return text.replace("'issue.case_type", "'case.case_type").replace('"issue.', '"case.')


ISSUE_REPO = {
    ".kiket/project.yaml": PROJECT,
    ".kiket/issue_types.yaml": ISSUE_TYPES,
    ".kiket/workflows/ops.yaml": WORKFLOW,
    ".kiket/boards/ops.yaml": BOARD,
    ".kiket/automations/ops.yaml": AUTOMATIONS,
}
CASE_REPO = {
    ".kiket/workspace.yaml": WORKSPACE,
    ".kiket/case_types.yaml": CASE_TYPES,
    ".kiket/workflows/ops.yaml": _case_words(WORKFLOW),
    ".kiket/boards/ops.yaml": _case_words(BOARD),
    ".kiket/automations/ops.yaml": _case_words(AUTOMATIONS),
}
# Old and new words side by side, file by file and inside one file.
MIXED_REPO = {
    ".kiket/project.yaml": PROJECT.replace("    issues:\n", "    cases:\n").replace("issue_type: chore", "case_type: chore"),
    ".kiket/case_types.yaml": CASE_TYPES,
    ".kiket/workflows/ops.yaml": WORKFLOW.replace("{{issue.title}}", "{{case.title}}"),
    ".kiket/boards/ops.yaml": BOARD.replace("filters: {issue_types:", "filters: {case_types:"),
    ".kiket/automations/ops.yaml": AUTOMATIONS.replace("trigger: issue.commented", "trigger: case.commented"),
}


def load(files: dict[str, str]):
    result = load_revision({path: text.encode() for path, text in files.items()}, include_bundled=False,
                           project_key="OPS", project_name="Operations")
    assert result.ok, [d.format() for d in result.diagnostics if d.severity == "fatal"]
    return result


def _plain(value):
    """The model without provenance, template texts written in one vocabulary, workflow versions left out."""
    def walk(node):
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items() if k not in ("version", "templates")}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            return re.sub(r"(\{\{|\$\{)\s*case\.", r"\1issue.", node)
        return node

    return walk(to_plain(value))


@pytest.mark.parametrize("files", [CASE_REPO, MIXED_REPO], ids=["case", "mixed"])
def test_both_vocabularies_load_to_the_same_model(files):
    twin, case = load(ISSUE_REPO).revision, load(files).revision
    for part in ("issue_types", "workflows", "boards", "automations", "team", "default_workflow"):
        assert _plain(getattr(case, part)) == _plain(getattr(twin, part)), part
    assert _plain(case.project) == _plain(twin.project)
    assert [(s.title, s.issue_type, s.status, s.priority) for s in case.project.seed_issues] == [
        ("First ticket", "ticket", "doing", "high"), ("A chore", "chore", "open", None)]


def test_templates_render_the_case_root_as_the_issue():
    workflow = load(CASE_REPO).revision.workflows["ops"]
    action = workflow.states["doing"].hooks["on_enter"][0]
    snapshot = IssueSnapshot(id=1, key="OPS-1", title="Pump", status="doing", workflow="ops")
    from datetime import datetime, timezone

    context = template_context(snapshot, datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert action.templates["/message"].render(context).value == "Started OPS-1: Pump"


def test_one_case_vocabulary_info_per_file_that_uses_the_new_words():
    result = load(CASE_REPO)
    notes = Counter(d.file for d in result.diagnostics if d.code == "case_vocabulary")
    assert notes == {path: 1 for path in CASE_REPO}
    assert all(d.severity == "info" for d in result.diagnostics if d.code == "case_vocabulary")
    assert not [d.format() for d in result.diagnostics if d.severity in ("fatal", "error", "warning")]
    assert not any(d.code == "case_vocabulary" for d in load(ISSUE_REPO).diagnostics)


def test_project_yaml_wins_over_workspace_yaml_key_by_key():
    result = load({**ISSUE_REPO, ".kiket/workspace.yaml": WORKSPACE.replace("name: Operations", "name: Other")
                   .replace("seed_data:", "description: From the workspace\n  seed_data:")})
    project = result.revision.project
    assert project.name == "Operations" and project.description == "From the workspace"
    warning = next(d for d in result.diagnostics if d.code == "duplicate_project_file")
    assert warning.severity == "warning" and warning.file == ".kiket/workspace.yaml" and warning.line == 1
    assert ".kiket/project.yaml" in warning.message and "name" in warning.message


def test_case_templates_are_an_unsupported_section_not_an_unknown_file():
    result = load({**CASE_REPO, ".kiket/case_templates/bug.yaml": "template: {title: Bug}\n",
                   ".kiket/issue_templates/task.yaml": "template: {title: Task}\n"})
    codes = {d.file: d.code for d in result.diagnostics if d.file.startswith((".kiket/case_", ".kiket/issue_t"))
             and d.code != "case_vocabulary"}
    assert codes == {".kiket/case_templates/bug.yaml": "unsupported_section",
                     ".kiket/issue_templates/task.yaml": "unsupported_section"}


def test_case_events_and_intakes_resolve_like_issue_ones():
    files = {**CASE_REPO, ".kiket/intakes/request.yaml":
             "intake_form:\n  settings: {default_case_type: Ticket}\n  case: {case_type: chore, workflow: ops}\n"}
    result = load(files)
    fuzzy = [d for d in result.diagnostics if d.code == "fuzzy_reference"]
    assert [(d.file, d.line) for d in fuzzy] == [(".kiket/intakes/request.yaml", 2)]
    assert not any(d.code in ("unknown_issue_type", "unknown_workflow") for d in result.diagnostics)
    events = {a.id: a.events for a in result.revision.automations.values()}
    assert events == {"ticket-created": ("issue.created",), "on-comment": ("issue.commented",)}


def test_names_and_keys_that_differ_from_the_app_are_told_never_applied():
    result = load_revision({".kiket/workspace.yaml": b"workspace: {key: OPS2, name: Ops two}\n",
                            ".kiket/workflows/ops.yaml": WORKFLOW.encode()}, include_bundled=False,
                           project_key="OPS", project_name="Operations")
    found = {d.code: d for d in result.diagnostics if d.code.startswith("project_")}
    assert {code: d.severity for code, d in found.items()} == {"project_key_mismatch": "info",
                                                                "project_name_mismatch": "info"}
    assert "'Ops two'" in found["project_name_mismatch"].message and "'Operations'" in found["project_name_mismatch"].message
    assert (found["project_name_mismatch"].file, found["project_name_mismatch"].line) == (".kiket/workspace.yaml", 1)


def test_liquid_filter_names_and_seed_spellings_of_newer_repositories():
    files = {**CASE_REPO,
             ".kiket/workspace.yaml": WORKSPACE.replace("case_type: chore}", "type: chore, state: doing}"),
             ".kiket/workflows/ops.yaml": _case_words(WORKFLOW).replace("{{case.title}}", "{{ case.title | upcase }}")}
    result = load(files)
    assert not [d.format() for d in result.diagnostics if d.severity in ("fatal", "error", "warning")]
    assert [(s.issue_type, s.status) for s in result.revision.project.seed_issues] == [("ticket", "doing"),
                                                                                      ("chore", "doing")]
    action = result.revision.workflows["ops"].states["doing"].hooks["on_enter"][0]
    from datetime import datetime, timezone

    context = template_context(IssueSnapshot(key="OPS-1", title="Pump"), datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert action.templates["/message"].render(context).value == "Started OPS-1: PUMP"
