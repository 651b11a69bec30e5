"""Dialects, defaults, inference rules and the fatal/error boundary of the loader."""

from __future__ import annotations

from collections import Counter

import pytest

from app.kiket import LayerInput, Source, load_revision
from app.kiket.codes import CODES
from app.kiket.model import content_hash

SIMPLE = b"states: {open: {type: initial}, done: {type: final}}\ntransitions: [{from: open, to: done}]\n"


def load(files: dict[str, str | bytes], **kwargs):
    data = {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}
    return load_revision(data, include_bundled=kwargs.pop("include_bundled", False), **kwargs)


def codes(result, severity: str | None = None) -> Counter:
    return Counter(d.code for d in result.diagnostics if severity is None or d.severity == severity)


def test_docs_dialect_category_as_kind_and_aliases():
    result = load({".kiket/workflows/support.yaml": """
key: support
name: Support
states:
  new: {category: initial, label: New}
  working: {category: active}
  closed: {category: final}
transitions:
  - {from: new, to: working, requires_comment: true}
  - {from: working, to: closed, when: "priority == 'high' && assignee != null"}
  - {from: "*", to: closed, name: Abort}
"""})
    assert result.ok and not codes(result, "warning")
    wf = result.revision.workflows["support"]
    assert wf.dialect == "docs" and wf.name == "Support"
    assert {k: (s.kind, s.category) for k, s in wf.states.items()} == {
        "new": ("initial", "pending"), "working": ("active", "active"), "closed": ("final", "completed")}
    assert [(t.id, t.sources, t.comment_required) for t in wf.transitions] == [
        ("new__working", ("new",), True), ("working__closed", ("working",), False), ("any__closed", "*", False)]
    assert wf.transitions[1].required_predicate is not None and wf.transitions[0].name == "Working"


def test_list_dialect_infers_kinds_with_a_warning():
    result = load({".kiket/workflows/simple.yml": "workflow:\n  name: Simple\n  states: [todo, doing, done]\n"
                   "  transitions:\n    - {from: todo, to: doing}\n    - {from: doing, to: done}\n"})
    wf = result.revision.workflows["simple"]
    assert wf.dialect == "list" and {k: s.kind for k, s in wf.states.items()} == {
        "todo": "initial", "doing": "active", "done": "final"}
    assert codes(result, "warning") == {"kind_inferred": 1}


def test_model_version_two_warns_and_three_is_fatal():
    two = load({".kiket/workflows/a.yaml": b"model_version: '2.0'\nprocess: {x: 1}\n" + SIMPLE})
    assert two.ok and codes(two, "warning") == {"newer_model_version": 1}
    assert two.revision.workflows["a"].model_version == "2.0"
    assert two.revision.workflows["a"].extra == {"process": {"x": 1}}
    three = load({".kiket/workflows/a.yaml": b"model_version: 3\n" + SIMPLE})
    assert not three.ok and three.revision is None and codes(three, "fatal") == {"unsupported_model_version": 1}
    assert load({".kiket/workflows/a.yaml": b"model_version: 1.0\n" + SIMPLE}).revision.model_version == "1.0"


@pytest.mark.parametrize("files,code", [
    ({}, "missing_config_dir"),
    ({".kiket/workflows/a.yaml": "states: {}\n"}, "no_states"),
    ({".kiket/workflows/a.yaml": "states: {a: {type: active}, b: {type: final}}\n"}, "no_initial_state"),
    ({".kiket/workflows/a.yaml": "states: {a: {type: initial}, b: {type: start}}\n"}, "multiple_initial_states"),
    ({".kiket/workflows/a.yaml": "states: {a: {type: initial}, A: {type: final}}\n"}, "duplicate_state"),
    ({".kiket/workflows/a.yaml": "states: {a: {type: initial}, b: {type: final}}\ntransitions: [{from: a, to: c}]\n"},
     "unknown_state"),
    ({".kiket/workflows/a.yaml": "states: {a: {type: initial}, b: {type: final}}\n"
      "transitions: [{from: a, to: b, conditions: [{checklist: nope, complete: true}]}]\n"}, "unknown_checklist"),
    ({".kiket/workflows/a.yaml": "states:\n  a: {type: initial, checklist: {id: c}}\n  b: {type: final, "
      "checklist: {id: C}}\n"}, "duplicate_checklist"),
    ({".kiket/workflows/a.yaml": SIMPLE, ".kiket/workflows/a.yml": SIMPLE}, "duplicate_file"),
    ({".kiket/workflows/a.yaml": SIMPLE, ".kiket/workflows/b.yaml": b"workflow: {id: A}\n" + SIMPLE},
     "duplicate_workflow"),
    ({".kiket/workflows/a.yaml": SIMPLE, ".kiket/issue_types.yaml": "issue_types: [{key: bug}, {key: Bug}]\n"},
     "duplicate_issue_type"),
    ({".kiket/workflows/a.yaml": SIMPLE, ".kiket/boards/b.yaml": "columns: [\n"}, "yaml_syntax"),
    ({".kiket/workflows/a.yaml": "- a\n"}, "yaml_not_mapping"),
    ({".kiket/workflows/a.yaml": SIMPLE, ".kiket/agents/big.yaml": b"x" * (600 * 1024)}, "file_too_large"),
    ({f".kiket/agents/a{i}.yaml": "a: 1\n" for i in range(1001)}, "too_many_files"),
])
def test_fatal_problems_reject_the_revision(files, code):
    result = load(files)
    assert not result.ok and result.revision is None
    assert code in codes(result, "fatal") and CODES[code][0] == "fatal"


def test_errors_drop_elements_but_the_revision_activates():
    result = load({
        ".kiket/workflows/a.yaml": SIMPLE,
        ".kiket/boards/nocols.yaml": "id: nocols\n",
        ".kiket/boards/one.yaml": "id: one\nworkflow: a\ncolumns: [{key: x, states: [open]}, {key: x, states: [done]}]\n",
        ".kiket/boards/two.yaml": "id: one\nworkflow: a\ncolumns: [{key: y, states: [open]}]\n",
        ".kiket/boards/ghost.yaml": "workflow: ghost\ncolumns: [{key: y, states: [open]}]\n",
        ".kiket/automations/x.yaml": "automations:\n  - {id: a1, trigger: nope.event, actions: [{type: add_label, label: x}]}\n"
                                    "  - {id: a2, trigger: issue.created}\n"
                                    "  - {id: a3, trigger: issue.created, actions: [{type: add_label, label: x}]}\n"
                                    "  - {id: a3, trigger: issue.created, actions: [{type: add_label, label: y}]}\n",
        ".kiket/issue_types.yaml": "issue_types:\n  - {label: No key}\n  - {key: bug, workflow: nope}\n"
                                  "  - {key: 9bad}\n",
    })
    assert result.ok
    assert codes(result, "error") == {"missing_columns": 1, "duplicate_column": 1, "duplicate_board": 1,
                                      "unknown_workflow": 3, "unknown_event": 1, "missing_actions": 1,
                                      "duplicate_automation": 1, "missing_key": 1, "invalid_identifier": 1}
    revision = result.revision
    assert set(revision.boards) == {"one"} and [c.key for c in revision.boards["one"].columns] == ["x"]
    assert set(revision.automations) == {"a3"}
    assert revision.issue_types["bug"].workflow == "a"


def test_state_details_sla_checklists_and_approval_forms():
    result = load({".kiket/workflows/a.yaml": """
states:
  a:
    type: start
    sla: {warning: "80%", breach: 10h}
    checklist: {items: ["Do the thing", {id: x, check_type: auto}]}
  b:
    type: weird
    category: odd
    sla: [{condition: {field: priority, equals: high}, breach: 30m}, {default: true, breach: 2h}, {breach: 15}]
    approval: {type: sequential, chain: [counsel, {role: cfo}], conditional: {cfo: {when: "total_value_usd > 100000"}}}
    required_documents: [signed_contract]
  c: {type: done}
transitions:
  - {from: a, to: b, approval_required: true}
  - {from: b, to: c, actions: [{transition: {to: zz}}, {notify: {message: hi}}, {type: frobnicate},
                               {set_field: {priority: critical}}, {extension: twilio.send_sms, params: {to: x}}]}
  - {from: b, to: c}
  - {from: b, to: c}
"""})
    assert result.ok
    wf = result.revision.workflows["a"]
    a, b = wf.states["a"], wf.states["b"]
    assert a.kind == "initial" and wf.states["c"].kind == "final" and b.kind == "active"
    assert a.sla.rules[0].warning_s == 8 * 3600 and a.sla.rules[0].warning_share == 0.8
    checklist = a.checklists["a_checklist"]
    assert [(i.id, i.label, i.check_type, i.required) for i in checklist.items] == [
        ("do_the_thing", "Do the thing", "manual", False), ("x", "X", "manual", False)]
    assert [r.breach_s for r in b.sla.rules] == [1800, 7200]
    assert b.approval.mode == "sequential" and b.approval.required == 2
    assert [(x.ref, x.when is not None) for x in b.approval.approvers] == [("counsel", False), ("cfo", True)]
    transition = next(t for t in wf.transitions if t.target == "c")
    assert [x.type for x in transition.actions] == ["notify", "frobnicate", "set_field", "extension"]
    assert [x.support for x in transition.actions] == ["core", "unknown", "core", "stub"]
    assert transition.actions[2].params == {"field": "priority", "value": "critical"}
    # counsel and cfo are declared nowhere: the approval of b could never be given (§16).
    assert codes(result, "error") == {"auto_item_without_condition": 1, "invalid_duration": 1,
                                      "invalid_sla_rule": 1, "duplicate_transition": 2, "invalid_action": 1,
                                      "unsatisfiable_gate": 2}
    assert all(x.undeclared for x in b.approval.approvers)
    assert {"unknown_state_kind", "unknown_category", "unknown_action", "approval_without_policy",
            "unknown_required_document", "extension_not_installed"} <= set(codes(result, "warning"))


def test_workflow_version_is_a_stable_hash_of_the_normalized_form():
    first = load({".kiket/workflows/a.yaml": SIMPLE}).revision.workflows["a"]
    spaced = load({".kiket/workflows/a.yaml": b"# comment\n\nstates:\n  open: {type: initial}\n  done:\n"
                   b"    type: final\ntransitions:\n  - from: open\n    to: done\n"}).revision.workflows["a"]
    changed = load({".kiket/workflows/a.yaml": SIMPLE.replace(b"to: done}", b"to: done, name: Finish}")})
    assert len(first.version) == 64 and first.version == spaced.version
    assert first.prov.line != spaced.prov.line or first.states["done"].prov.line != spaced.states["done"].prov.line
    assert changed.revision.workflows["a"].version != first.version
    assert content_hash(first) == first.version or first.version != ""


def test_default_workflow_rules():
    two = {".kiket/workflows/zeta.yaml": SIMPLE, ".kiket/workflows/alpha.yaml": SIMPLE}
    assert load(two).revision.default_workflow == "alpha"
    declared = load({**two, ".kiket/project.yaml": "project: {default_workflow: zeta}\n"})
    assert declared.revision.default_workflow == "zeta"
    bad = load({**two, ".kiket/project.yaml": "project: {default_workflow: nope}\n"})
    assert bad.revision.default_workflow == "alpha" and codes(bad, "error") == {"unknown_workflow": 1}


def test_generated_issue_type_and_fallback_board_without_bundled_layer():
    result = load({".kiket/workflows/a.yaml": SIMPLE})
    revision = result.revision
    assert list(revision.issue_types) == ["task"] and revision.issue_types["task"].workflow == "a"
    board = revision.boards["a-board"]
    assert board.generated and board.prov.generated and board.prov.derived_from == "workflow:a"
    assert [(c.key, c.states) for c in board.columns] == [("open", ("open",)), ("done", ("done",))]
    assert {"generated_issue_type", "generated_board"} <= set(codes(result, "info"))


def test_seed_issues_are_checked_and_skipped_with_warnings():
    result = load({
        ".kiket/workflows/a.yaml": SIMPLE,
        ".kiket/issue_types.yaml": "issue_types: [{key: Task, label: Chore}]\n",
        ".kiket/project.yaml": "project:\n  seed_data:\n    issues:\n      - {title: ok, issue_type: chore}\n"
                               "      - {title: bad status, issue_type: Task, status: nope}\n"
                               "      - {title: bad priority, issue_type: Task, priority: urgent}\n"
                               "      - {description: no title}\n",
    })
    seeds = result.revision.project.seed_issues
    assert [(s.title, s.issue_type, s.status) for s in seeds] == [("ok", "Task", "open")]
    assert codes(result, "warning") == {"invalid_seed_issue": 3, "fuzzy_reference": 1}


def test_team_file_roles_members_and_refused_grants():
    result = load({
        ".kiket/workflows/a.yaml": SIMPLE,
        ".kiket/project.yaml": "project:\n  team:\n    roles: [{name: lead, description: From project}, qa]\n",
        ".kiket/team.yaml": "team:\n  roles:\n    - {name: admin}\n    - {name: lead, permissions: [issue.approve, '*', bogus]}\n"
                            "  members: [{user: a@example.com, roles: [owner, lead]}, {user: ghost@example.com}]\n"
                            "permissions: {qa: [issue.transition, board.manage]}\n",
    }, known_users=frozenset({"a@example.com"}))
    roles = result.revision.team.roles
    assert roles["lead"].description == "From project" and roles["lead"].permissions == {"issue.approve"}
    assert "board.manage" in roles["qa"].permissions and "issue.read" in roles["qa"].permissions
    assert roles["owner"].builtin and roles["owner"].permissions == {"*"}
    assert [(m.identity, m.roles) for m in result.revision.team.members] == [("a@example.com", ("lead",))]
    assert codes(result, "error") == {"builtin_role_redefined": 1, "privileged_grant": 2}
    assert codes(result, "warning") == {"unknown_permission": 1, "unknown_member": 1}


def test_unknown_keys_aliases_and_preserved_files():
    result = load({
        ".kiket/workflows/a.yaml": b"colour: red\n" + SIMPLE,
        ".kiket/boards/b.yaml": "board: {id: b, workflow: a}\nid: top\ncolumns: [{id: c, statuses: open, limit: 3}]\n",
        ".kiket/misc.yaml": "a: 1\n",
        ".kiket/notes.md": "hello",
        ".kiket/manifest.yaml": "name: x\n",
        ".kiket/workflows/a/readme.yaml": "x: 1\n",
    })
    assert result.ok
    assert result.revision.workflows["a"].extra == {"colour": "red"}
    board = result.revision.boards["top"]
    assert [(c.key, c.states, c.wip_limit) for c in board.columns] == [("c", ("open",), 3)]
    assert codes(result, "warning") == {"unknown_key": 1, "unknown_file": 2, "unsupported_section": 1}
    assert codes(result, "info")["non_yaml_file"] == 1
    assert {p.path for p in result.revision.preserved} == {".kiket/misc.yaml", ".kiket/manifest.yaml",
                                                           ".kiket/workflows/a/readme.yaml"}


def test_docs_automation_board_and_card_spellings():
    result = load({
        ".kiket/workflows/a.yaml": SIMPLE,
        ".kiket/automations/single.yaml": "key: single\ntrigger: {on: comment.created}\n"
                                          "when: \"priority == 'high'\"\nactions: [{add_comment: {body: hi}}]\n",
        ".kiket/automations/cron.yaml": "trigger: {cron: '0 9 * * 1'}\nactions: [{type: add_label, label: weekly}]\n",
        ".kiket/boards/docs.yaml": "key: docs\nname: Docs\nworkflow: a\ncolumns: [{key: o, states: [OPEN]}, {key: d, states: done}]\n"
                                   "swimlanes: {by: assigneeId, labels: {strategy: x}}\n"
                                   "card: {template: '{{issue.title}}', badges: [sla_status, sparkle]}\n",
    })
    revision = result.revision
    single = revision.automations["single"]
    assert single.events == ("issue.commented",) and single.actions[0].type == "add_comment"
    assert revision.automations["cron"].events == ("schedule.cron",) and revision.automations["cron"].cron
    board = revision.boards["docs"]
    assert board.swimlanes.field == "assignee" and board.swimlanes.other_label == "Unassigned"
    assert board.card.badges == ("sla_status",) and board.card.text is not None
    assert board.columns[0].states == ("open",)
    assert codes(result, "warning") == {"unknown_badge": 1, "fuzzy_reference": 1}


def test_recipe_in_unknown_workflow_directory_is_dropped():
    result = load({".kiket/workflows/a.yaml": SIMPLE,
                   ".kiket/workflows/ghost/automation_recipes/r.yaml":
                       "recipe: {key: r, trigger: issue.created, actions: [{type: add_label, label: x}]}\n"})
    assert result.ok and not result.revision.automations and codes(result, "error") == {"unknown_workflow": 1}


def test_internal_failures_become_a_fatal_diagnostic(monkeypatch):
    import app.kiket.workflows as workflows

    def boom(*args, **kwargs):
        raise RuntimeError("kaput")

    monkeypatch.setattr("app.kiket.loader.normalize_workflow", boom)
    result = load({".kiket/workflows/a.yaml": SIMPLE})
    assert not result.ok and codes(result, "fatal") == {"internal_error": 1}
    assert workflows.normalize_workflow is not boom


def test_source_is_recorded_on_elements_and_diagnostics():
    sha = "a" * 40
    result = load({".kiket/workflows/a.yaml": b"odd: 1\n" + SIMPLE},
                  source=Source(repo="acme/config", branch="main", commit_sha=sha))
    state = result.revision.workflows["a"].states["open"]
    assert (state.prov.repo, state.prov.branch, state.prov.commit_sha) == ("acme/config", "main", sha)
    warning = next(d for d in result.diagnostics if d.code == "unknown_key")
    assert warning.prov.commit_sha == sha and warning.line == 1 and warning.pointer == "/odd"
    assert result.revision.source.commit_sha == sha


def test_summary_counts_and_layer_input_type():
    result = load({".kiket/workflows/a.yaml": SIMPLE})
    assert result.summary() == {"workflows": 1, "states": 2, "transitions": 1, "boards": 1, "issue_types": 1,
                                "automations": 0}
    assert set(result.counts) == {"fatal", "error", "warning", "info"}
    assert LayerInput("project_override", {}, "override:1").layer == "project_override"


def test_reordering_states_changes_the_workflow_version():
    swapped = b"states: {done: {type: final}, open: {type: initial}}\ntransitions: [{from: open, to: done}]\n"
    first = load({".kiket/workflows/a.yaml": SIMPLE}).revision.workflows["a"]
    second = load({".kiket/workflows/a.yaml": swapped}).revision.workflows["a"]
    assert list(second.states) == ["done", "open"] and first.version != second.version
