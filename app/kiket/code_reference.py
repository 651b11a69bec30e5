"""The reference entry of every diagnostic code: a minimal example and the fix (docs/diagnostics.md is made from it).

`codes.CODES` holds each code's severity and meaning; this module adds what a reader needs next. A test
fails when a registered code has no entry here, or when docs/diagnostics.md differs from
`diagnostics_markdown()`; regenerate it with `python -m app.kiket.code_reference docs/diagnostics.md`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from app.kiket.codes import CODES


@dataclass(frozen=True)
class CodeDoc:
    """How one code shows up (`example`, YAML with its file in a comment) and what to do about it (`fix`)."""

    section: str
    example: str
    fix: str


_FILES = "Files and the tree"
_YAML = "YAML"
_KEYS = "Versions, keys and values"
_PROJECT = "Project, workspace and team"
_TYPES = "Issue types"
_WORKFLOWS = "Workflows, states and transitions"
_GATES = "SLA, documents, approvals, checklists and gates"
_CONDITIONS = "Conditions, expressions and templates"
_AUTOMATIONS = "Actions and automations"
_BOARDS = "Boards"
_LAYERS = "Layers and precedence"
SECTIONS = (_FILES, _YAML, _KEYS, _PROJECT, _TYPES, _WORKFLOWS, _GATES, _CONDITIONS, _AUTOMATIONS, _BOARDS, _LAYERS)

WF = "# .kiket/workflows/bug.yaml\n"
STATES = WF + "states:\n  open: {type: initial}\n  done: {type: final}\n"

DOCS: dict[str, CodeDoc] = {
    # Files and the tree
    "missing_config_dir": CodeDoc(_FILES, "# the commit has README.md and src/, but no .kiket/ directory",
                                  "Add `.kiket/` with at least one workflow, or point the repository at the right "
                                  "configuration path."),
    "file_too_large": CodeDoc(_FILES, "# .kiket/workflows/huge.yaml is 600 KiB",
                              "Split the file or remove what is not configuration; each file may be 512 KiB."),
    "tree_too_large": CodeDoc(_FILES, "# .kiket/ holds 9 MiB of dashboards and exports",
                              "Keep generated data out of `.kiket/`; the whole tree may be 8 MiB."),
    "too_many_files": CodeDoc(_FILES, "# .kiket/boards/ holds 1,200 generated board files",
                              "Merge or remove files; the tree may hold 1,000."),
    "duplicate_file": CodeDoc(_FILES, "# .kiket/workflows/bug.yaml and .kiket/workflows/bug.yml both exist",
                              "Delete one of the two: `.yaml` and `.yml` name the same element."),
    "unknown_file": CodeDoc(_FILES, "# .kiket/workflow/bug.yaml  (workflow/, not workflows/)",
                            "Move the file where Kiket reads it (workflows/, boards/, automations/) or remove it."),
    "non_yaml_file": CodeDoc(_FILES, "# .kiket/README.md", "Nothing to do: the file is left out of the copy and the source view."),
    "symlink_skipped": CodeDoc(_FILES, "# .kiket/workflows/shared.yaml -> ../../shared/bug.yaml",
                               "Commit the file itself; links are never followed."),
    "submodule_skipped": CodeDoc(_FILES, "# .kiket/shared is a git submodule",
                                 "Copy the files into the repository; submodules are not read."),
    "unsupported_section": CodeDoc(_FILES, "# .kiket/agents/triage.yaml\nagent:\n  id: ai.triage",
                                   "Nothing to do: the section is kept verbatim and listed read-only."),
    # YAML
    "yaml_syntax": CodeDoc(_YAML, WF + "states:\n  open: {type: initial\n", "Fix the YAML at the line shown "
                           "(here: close the `{`)."),
    "yaml_encoding": CodeDoc(_YAML, WF + "name: Caf\\xe9   # Latin-1 bytes", "Save the file as UTF-8."),
    "yaml_tab_indent": CodeDoc(_YAML, WF + "states:\n\topen: {type: initial}", "Indent with spaces."),
    "yaml_duplicate_key": CodeDoc(_YAML, STATES + "  open: {type: active}", "Keep one of the two keys."),
    "yaml_custom_tag": CodeDoc(_YAML, WF + "name: !env WORKFLOW_NAME", "Write plain values; tags are refused."),
    "yaml_alias_limit": CodeDoc(_YAML, WF + "a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]  # ... and so on",
                                "Write the values out instead of nesting aliases."),
    "yaml_too_deep": CodeDoc(_YAML, WF + "a: [[[[[[ ... 101 levels ... ]]]]]]", "Flatten the structure."),
    "yaml_too_many_nodes": CodeDoc(_YAML, WF + "# a generated list of 300,000 values", "Keep data out of "
                                   "configuration files."),
    "yaml_number_too_long": CodeDoc(_YAML, WF + "wip_limit: 1:2:3:4:5:6:7:8:9: ... (200 characters)",
                                    "Write a short number, or quote the value if it is text."),
    "yaml_not_mapping": CodeDoc(_YAML, WF + "- open\n- done", "Write the file as `key: value` lines."),
    "yaml_multiple_documents": CodeDoc(_YAML, WF + "states: {}\n---\nstates: {}", "One document per file: "
                                       "remove the `---` and the second part, or move it to its own file."),
    "empty_file": CodeDoc(_YAML, WF + "# (nothing else)", "Fill the file or delete it."),
    "yaml_bom": CodeDoc(_YAML, WF + "\\ufeffworkflow: {id: bug}", "Nothing to do; editors can save without a BOM."),
    # Versions, keys and values
    "unsupported_model_version": CodeDoc(_KEYS, WF + "model_version: \"3.0\"", "Use `model_version: \"1.0\"`."),
    "newer_model_version": CodeDoc(_KEYS, WF + "model_version: \"2.0\"\nprocess: {steps: [...]}",
                                   "Check the loaded result, or write `model_version: \"1.0\"`."),
    "invalid_model_version": CodeDoc(_KEYS, WF + "model_version: latest", "Write `model_version: \"1.0\"`."),
    "invalid_identifier": CodeDoc(_KEYS, WF + "states:\n  9-open: {type: initial}",
                                  "Start keys with a letter; use letters, digits, `_`, `.` or `-` (64 at most)."),
    "missing_key": CodeDoc(_KEYS, "# .kiket/issue_types.yaml\nissue_types:\n  - {label: Bug}", "Add `key:`."),
    "unknown_key": CodeDoc(_KEYS, STATES + "    colour: red", "Fix the spelling (the hint names the nearest key) "
                           "or remove it; unknown keys are kept but do nothing."),
    "alias_conflict": CodeDoc(_KEYS, STATES + "transitions:\n  - {from: open, to: done, comment_required: true, "
                              "requires_comment: false}", "Keep one spelling; the canonical key wins."),
    "invalid_value": CodeDoc(_KEYS, STATES + "    wip_limit: many", "Give a value of the right kind (here a "
                             "whole number)."),
    "fuzzy_reference": CodeDoc(_KEYS, "# .kiket/intakes/bug.yaml\nintake_form:\n  settings: {default_issue_type: bug}"
                               "   # the type's key is Bug", "Write the exact key the hint gives."),
    "diagnostics_truncated": CodeDoc(_KEYS, "# 400 boards with the same unknown key",
                                     "Fix the ones listed; the rest are the same finding."),
    "internal_error": CodeDoc(_KEYS, "# any file that makes the loader fail unexpectedly",
                              "Report it with the file; the revision is rejected and the previous one stays."),
    # Project, workspace and team
    "project_missing": CodeDoc(_PROJECT, "# no .kiket/project.yaml (nor workspace.yaml)",
                               "Nothing to do: the name, key and description come from the app."),
    "project_flat": CodeDoc(_PROJECT, "# .kiket/project.yaml\nkey: OPS\nname: Operations",
                            "Put the settings under `project:` (or `workspace:`)."),
    "project_legacy_id": CodeDoc(_PROJECT, "# .kiket/project.yaml\nproject:\n  id: ops", "Write `key: OPS`."),
    "project_key_mismatch": CodeDoc(_PROJECT, "# .kiket/project.yaml (the project's key in the app is OPS)\n"
                                    "project:\n  key: OPERATIONS", "Align the file with the app, or change the "
                                    "key in the app; the file never renames a project."),
    "project_name_mismatch": CodeDoc(_PROJECT, "# .kiket/workspace.yaml (the project is called Operations)\n"
                                     "workspace:\n  name: Ops team", "Rename the project in its settings, or align "
                                     "the file; the file never renames a project."),
    "duplicate_project_file": CodeDoc(_PROJECT, "# .kiket/project.yaml and .kiket/workspace.yaml both exist",
                                      "Keep one; until then project.yaml wins key by key."),
    "case_vocabulary": CodeDoc(_PROJECT, "# .kiket/case_types.yaml\ncase_types:\n  - {key: ticket}",
                               "Nothing to do: workspace/case words are read as project/issue."),
    "extension_not_installed": CodeDoc(_PROJECT, "# .kiket/project.yaml\nproject:\n  extensions: {required: [docusign]}",
                                       "Install the extension; until then its actions are stubs."),
    "invalid_seed_issue": CodeDoc(_PROJECT, "# .kiket/project.yaml\nproject:\n  seed_data:\n    issues:\n"
                                  "      - {title: Hello, status: nowhere}", "Use a state of the type's workflow, a "
                                  "known issue type and priority, and give a title."),
    "unknown_priority": CodeDoc(_PROJECT, "# .kiket/project.yaml\nproject:\n  priorities: [low, high]\n"
                                "# a filter or seed says priority: urgent", "Use a declared priority or add it to "
                                "`priorities`."),
    "invalid_business_hours": CodeDoc(_PROJECT, "# .kiket/project.yaml\nproject:\n  business_hours: {start: 9am}",
                                      "Write `{timezone: Europe/Paris, days: [mon, tue, wed, thu, fri], start: "
                                      "\"09:00\", end: \"17:00\"}`."),
    "builtin_role_redefined": CodeDoc(_PROJECT, "# .kiket/team.yaml\nteam:\n  roles: [{name: admin}]",
                                      "Pick another name; owner, admin, member and viewer are built in."),
    "privileged_grant": CodeDoc(_PROJECT, "# .kiket/team.yaml\nteam:\n  roles: [{name: lead, permissions: ['*']}]",
                                "Grant administration in the app's project settings; a push must not make anyone "
                                "an administrator."),
    "unknown_permission": CodeDoc(_PROJECT, "# .kiket/team.yaml\npermissions: {qa: [issue.move]}",
                                  "Use a permission of the list (issue.transition, issue.approve, ...)."),
    "unknown_role": CodeDoc(_PROJECT, WF + "    on_enter:\n      - {action: notify, recipients: {roles: [oncall]}, "
                            "message: Hi}", "Declare the role under `team.roles`; until then it reaches no one."),
    "unknown_member": CodeDoc(_PROJECT, "# .kiket/team.yaml\nteam:\n  members: [{user: nobody@example.com}]",
                              "Invite the person first, or fix the address."),
    # Issue types
    "unknown_field_type": CodeDoc(_TYPES, "# .kiket/issue_types.yaml\nissue_types:\n  - key: bug\n    fields: "
                                  "[{key: size, type: slider}]", "Use a field type of the list; `string` is used."),
    "generated_issue_type": CodeDoc(_TYPES, "# no issue_types.yaml or case_types.yaml in any layer",
                                    "Add `.kiket/issue_types.yaml` to name your own types."),
    "default_workflow_inferred": CodeDoc(_TYPES, "# two workflows and no default_workflow in project.yaml",
                                         "Set `default_workflow:` in project.yaml to choose."),
    "unknown_workflow": CodeDoc(_TYPES, "# .kiket/issue_types.yaml\nissue_types:\n  - {key: bug, workflow: bugs}",
                                "Name an existing workflow id."),
    "unknown_issue_type": CodeDoc(_TYPES, "# .kiket/boards/main.yaml\nfilters: {issue_types: [epic]}",
                                  "Name a key of issue_types.yaml (or case_types.yaml)."),
    "inactive_issue_type": CodeDoc(_TYPES, "# .kiket/issue_types.yaml\nissue_types:\n  - {key: legacy, active: false}",
                                   "Nothing to do: existing issues keep the type, new ones cannot use it."),
    "inferred_field": CodeDoc(_GATES, WF + "transitions:\n  - from: review\n    to: done\n    conditions: "
                              "[{field: custom_fields.budget, operator: lt, value: 5000}]\n# no issue type declares "
                              "budget", "Declare the field under `fields:` of the issue type to choose its label and "
                              "type."),
    # Workflows, states and transitions
    "duplicate_workflow": CodeDoc(_WORKFLOWS, "# workflows/bug.yaml and workflows/Bug2.yaml both say id: bug",
                                  "Give each workflow its own id."),
    "duplicate_issue_type": CodeDoc(_WORKFLOWS, "# .kiket/issue_types.yaml\nissue_types:\n  - {key: bug}\n  - {key: Bug}",
                                    "Keep one; keys must differ also in letter case (across issue_types.yaml "
                                    "and case_types.yaml)."),
    "duplicate_state": CodeDoc(_WORKFLOWS, STATES + "  Open: {type: active}", "Rename one of the states."),
    "duplicate_checklist": CodeDoc(_WORKFLOWS, STATES + "# two states declare checklist id: review",
                                   "Give each checklist of a workflow its own id."),
    "no_states": CodeDoc(_WORKFLOWS, WF + "workflow: {id: bug}\ntransitions: []", "Add `states:`."),
    "no_initial_state": CodeDoc(_WORKFLOWS, WF + "states:\n  open: {type: active}\n  done: {type: final}",
                                "Mark one state `type: initial`."),
    "multiple_initial_states": CodeDoc(_WORKFLOWS, WF + "states:\n  new: {type: initial}\n  open: {type: initial}",
                                       "Keep `type: initial` on one state."),
    "unknown_state": CodeDoc(_WORKFLOWS, STATES + "transitions:\n  - {from: open, to: closed}",
                             "Name a declared state (the hint lists them)."),
    "unknown_checklist": CodeDoc(_WORKFLOWS, STATES + "transitions:\n  - {from: open, to: done, conditions: "
                                 "[{checklist: qa}]}", "Name a checklist of this workflow."),
    "workflow_id_mismatch": CodeDoc(_WORKFLOWS, WF + "workflow: {id: bugs}", "Nothing to do; references use the id."),
    "kind_inferred": CodeDoc(_WORKFLOWS, WF + "states: [open, doing, done]", "Add `type: initial|active|final`."),
    "unknown_state_kind": CodeDoc(_WORKFLOWS, STATES + "  waiting: {type: paused}",
                                  "Use initial, active, final or gateway."),
    "unknown_category": CodeDoc(_WORKFLOWS, STATES + "  waiting: {type: active, category: parked}",
                                "Use pending, active, review, completed, blocked or cancelled."),
    "no_final_state": CodeDoc(_WORKFLOWS, WF + "states:\n  open: {type: initial}\n  doing: {type: active}",
                              "Mark a state `type: final` so issues can be resolved."),
    "unreachable_state": CodeDoc(_WORKFLOWS, STATES + "  limbo: {type: active}   # no transition leads here",
                                 "Add a transition into it, or remove it."),
    "dead_end_state": CodeDoc(_WORKFLOWS, STATES + "  stuck: {type: active}   # no transition leaves",
                              "Add a way out, or mark it `type: final`."),
    "final_state_exit": CodeDoc(_WORKFLOWS, STATES + "transitions:\n  - {from: done, to: open, name: Reopen}",
                                "Nothing to do: issues can be reopened this way."),
    "duplicate_transition": CodeDoc(_WORKFLOWS, STATES + "transitions:\n  - {from: open, to: done}\n"
                                    "  - {from: open, to: done}", "Remove the copy or give it another name."),
    "invalid_transition": CodeDoc(_WORKFLOWS, STATES + "transitions:\n  - {from: open}", "Give `from` and `to`."),
    "unknown_state_reference": CodeDoc(_WORKFLOWS, "# an action or filter names state closed, which no workflow has",
                                       "Name an existing state."),
    # SLA, documents, approvals, checklists and gates
    "invalid_duration": CodeDoc(_GATES, STATES + "    sla: {breach: 48}", "Write a unit: `48h`, `2d`, `1d12h`, `PT4H`."),
    "invalid_sla_rule": CodeDoc(_GATES, STATES + "    sla:\n      - {condition: {field: priority, equals: high}}",
                                "Give each rule `breach:` (and optionally `warning:`), one default rule, last."),
    "sla_warning_after_breach": CodeDoc(_GATES, STATES + "    sla: {warning: 8h, breach: 4h}",
                                        "Make the warning shorter than the breach."),
    "sla_default_not_last": CodeDoc(_GATES, STATES + "    sla:\n      - {default: true, breach: 48h}\n"
                                    "      - {condition: \"priority == 'high'\", breach: 4h}",
                                    "Move the default rule to the end."),
    "unknown_required_document": CodeDoc(_GATES, STATES + "    required_documents: [signed_nda]\n# no issue type "
                                         "declares documents: [signed_nda]", "Declare it under `documents:` of the "
                                         "issue type; until then an attachment tagged signed_nda is asked for."),
    "approval_gates_all": CodeDoc(_GATES, STATES + "  review:\n    approval: {required: 1, approvers: [{role: lead}]}",
                                  "Set `approval_required: true` on the transitions that need the approval, if not "
                                  "all."),
    "approval_without_policy": CodeDoc(_GATES, STATES + "transitions:\n  - {from: open, to: done, approval_required: "
                                       "true}", "Add an `approval:` policy to the state or the transition."),
    "invalid_approval": CodeDoc(_GATES, STATES + "    approval: {type: majority, approvers: [lead]}",
                                "Write one of the approval shapes (docs/configuration.md, Approvals)."),
    "gate_in_metadata": CodeDoc(_GATES, STATES + "transitions:\n  - from: open\n    to: done\n    metadata: "
                                "{requires_fields: [assignee]}", "Nothing to do; `requires: {fields: [...]}` says "
                                "the same at the transition's top level."),
    "entry_guard": CodeDoc(_GATES, STATES + "    conditions: [{field: assignee, operator: is_present}]",
                           "Nothing to do: every transition into the state needs the conditions."),
    "ignored_gate": CodeDoc(_GATES, STATES + "transitions:\n  - from: open\n    to: done\n    requires_approvals: 2",
                            "Write a gate Kiket knows (the hint names the nearest): until then the element is not "
                            "guarded by it."),
    "unsatisfiable_gate": CodeDoc(_GATES, STATES + "  review:\n    approval: {approvers: [{role: legal}]}\n"
                                  "# legal is declared in no team", "Declare the role (team.roles in project.yaml, "
                                  "workspace.yaml or team.yaml) or the field (issue type `fields:`). Until then "
                                  "organization owners and admins decide or pass in its place, and a field is "
                                  "inferred."),
    "auto_item_without_condition": CodeDoc(_GATES, STATES + "    checklist:\n      items: [{id: ci, check_type: auto}]",
                                           "Add `condition:` or make it manual."),
    "duplicate_checklist_item": CodeDoc(_GATES, STATES + "    checklist:\n      items: [Tests pass, Tests pass]",
                                        "Give each item its own id."),
    # Conditions, expressions and templates
    "invalid_condition": CodeDoc(_CONDITIONS, STATES + "transitions:\n  - {from: open, to: done, conditions: 42}",
                                 "Write `{field, operator, value}`, a list, `{all|any|not}` or an expression."),
    "invalid_path": CodeDoc(_CONDITIONS, "conditions: [{field: _secret, operator: is_present}]",
                            "Use a field name such as `priority` or `custom_fields.severity`."),
    "invalid_checklist": CodeDoc(_CONDITIONS, "conditions: [{checklist: qa, complete: yes please}]",
                                 "Write `{checklist: qa, complete: true}`."),
    "missing_value": CodeDoc(_CONDITIONS, "conditions: [{field: priority, operator: eq}]", "Add `value:`."),
    "ignored_value": CodeDoc(_CONDITIONS, "conditions: [{field: assignee, operator: is_present, value: x}]",
                             "Remove `value:`."),
    "condition_too_complex": CodeDoc(_CONDITIONS, "conditions: {all: [{all: [{all: ...}]}]}   # 40 levels",
                                     "Split it into simpler conditions."),
    "expression_too_complex": CodeDoc(_CONDITIONS, "conditions: \"a == 1 && ... (5,000 characters)\"",
                                      "Split it into several conditions."),
    "unsupported_comparison": CodeDoc(_CONDITIONS, "conditions: \"priority == severity\"",
                                      "Compare a field with a literal."),
    "unknown_operator": CodeDoc(_CONDITIONS, "conditions: [{field: priority, operator: like, value: high}]",
                                "Use an operator of the list (eq, ne, gt, in, contains, is_present, ...)."),
    "expression_syntax": CodeDoc(_CONDITIONS, "conditions: \"priority == 'high' &&\"", "Complete the expression."),
    "expression_too_large": CodeDoc(_CONDITIONS, "conditions: \"a == 1 || a == 2 || ... (300 terms)\"",
                                    "Use `in: [...]` or split it."),
    "unsupported_function": CodeDoc(_CONDITIONS, "conditions: \"count(labels) > 2\"",
                                    "Compare fields with literals; functions are not supported."),
    "unknown_field": CodeDoc(_CONDITIONS, "conditions: [{field: issue.whatever.x, operator: is_present}]",
                             "Use a standard field, `custom_fields.x` or an event field."),
    "template_syntax": CodeDoc(_CONDITIONS, "message: \"Hello {{issue.title\"", "Close the placeholder, or escape "
                               "it as `\\{{`."),
    "unknown_template_root": CodeDoc(_CONDITIONS, "message: \"{{ticket.title}}\"",
                                     "Start with issue (or case), event, actor, project, transition, sla, approval, "
                                     "context, now or env."),
    "unknown_filter": CodeDoc(_CONDITIONS, "message: \"{{issue.title | shout}}\"", "Use a filter of the list."),
    "unsupported_template_block": CodeDoc(_CONDITIONS, "message: \"{{#if issue.assignee}}...{{/if}}\"",
                                          "Put the condition on the automation instead."),
    "invalid_filter_argument": CodeDoc(_CONDITIONS, "message: \"{{issue.title | truncate:many}}\"",
                                       "Give the filter the argument it needs (`truncate:20`)."),
    "private_name": CodeDoc(_CONDITIONS, "message: \"{{issue._secret}}\"", "Names starting with `_` are never readable."),
    "invalid_env_name": CodeDoc(_CONDITIONS, "url: \"${env.slack_hook}\"", "Secret names are upper case: "
                                "`${env.SLACK_HOOK}`."),
    "body_too_deep": CodeDoc(_CONDITIONS, "body: {a: {b: {c: ... 17 levels ...}}}", "Flatten the webhook body."),
    "env_outside_webhook": CodeDoc(_CONDITIONS, "- {action: notify, message: \"token ${env.TOKEN}\"}",
                                   "Use secrets only in a webhook's url, headers and body."),
    # Actions and automations
    "unknown_action": CodeDoc(_AUTOMATIONS, "- {action: notfy, message: Hi}",
                              "Use an action of the catalogue (the hint guesses first)."),
    "invalid_action": CodeDoc(_AUTOMATIONS, "- {action: webhook}   # no url", "Complete the action or remove it."),
    "action_stub": CodeDoc(_AUTOMATIONS, "- {action: ai_analyze, agent: ai.triage}",
                           "Nothing to do: the action is checked, then logged as skipped when it runs."),
    "unknown_agent": CodeDoc(_AUTOMATIONS, "- {action: ai_analyze, agent: ai.nobody}",
                             "Add the agent under .kiket/agents/ or fix the id."),
    "unknown_channel": CodeDoc(_AUTOMATIONS, "- {action: notify, channel: \"slack:#ops\", message: Hi}",
                               "Install the extension, or use channel in_app or email."),
    "duplicate_automation": CodeDoc(_AUTOMATIONS, "# two automations say id: triage", "Give each its own id."),
    "missing_trigger": CodeDoc(_AUTOMATIONS, "# .kiket/automations/a.yaml\nautomations:\n  - {id: a, actions: "
                               "[{type: add_label, label: x}]}", "Add `trigger: {event: issue.created}`."),
    "missing_actions": CodeDoc(_AUTOMATIONS, "# .kiket/automations/a.yaml\nautomations:\n  - {id: a, trigger: "
                               "issue.created}", "Add at least one action."),
    "unknown_event": CodeDoc(_AUTOMATIONS, "automations:\n  - {id: a, trigger: issue.creatd, actions: [...]}",
                             "Use an event of the catalogue (the hint guesses first)."),
    "event_alias": CodeDoc(_AUTOMATIONS, "automations:\n  - {id: a, trigger: {event: scheduled, schedule: "
                           "\"0 9 * * 1\"}, actions: [...]}", "Write the catalogue event the message names "
                           "(`schedule.cron`)."),
    "event_never_emitted": CodeDoc(_AUTOMATIONS, "automations:\n  - {id: a, trigger: ai.suggested, actions: [...]}",
                                   "Trigger on an event the server emits."),
    "invalid_cron": CodeDoc(_AUTOMATIONS, "automations:\n  - {id: a, trigger: schedule.cron, cron: daily, actions: "
                            "[...]}", "Write a 5-field cron expression: `cron: \"0 9 * * 1\"`."),
    "sweep_evaluated": CodeDoc(_AUTOMATIONS, "trigger: {event: issue.updated, conditions: \"hours_since_last_update "
                               "> 48\"}", "Nothing to do: the 5-minute sweep also evaluates it."),
    # Boards
    "duplicate_board": CodeDoc(_BOARDS, "# boards/a.yaml and boards/b.yaml both say id: main", "Give each its own id."),
    "missing_columns": CodeDoc(_BOARDS, "# .kiket/boards/main.yaml\nid: main\nworkflow: bug", "Add `columns:`."),
    "duplicate_column": CodeDoc(_BOARDS, "columns:\n  - {key: todo, states: [open]}\n  - {key: todo, states: [done]}",
                                "Give each column its own key."),
    "unknown_board_type": CodeDoc(_BOARDS, "type: timeline", "Use kanban, scrum or list."),
    "column_state_unknown": CodeDoc(_BOARDS, "columns:\n  - {key: todo, states: [opened]}",
                                    "Name a state of the board's workflows."),
    "state_in_two_columns": CodeDoc(_BOARDS, "columns:\n  - {key: a, states: [open]}\n  - {key: b, states: [open]}",
                                    "Map each state to one column."),
    "empty_column": CodeDoc(_BOARDS, "columns:\n  - {key: later, name: Later}", "Give it `states:` or remove it."),
    "unmapped_state": CodeDoc(_BOARDS, "# the workflow has wont_fix, no column shows it",
                              "Add it to a column if it should show; its issues appear under Unmapped."),
    "unknown_badge": CodeDoc(_BOARDS, "card: {badges: [stars]}", "Use a badge of the list."),
    "generated_board": CodeDoc(_BOARDS, "# workflows/ops.yaml exists, no board shows workflow ops",
                               "Add a board file to arrange it yourself."),
    # Layers and precedence
    "inherit_excluded": CodeDoc(_LAYERS, "# .kiket/project.yaml\nproject:\n  inherit: {workflows: none}",
                                "Nothing to do, or widen `inherit`."),
    "bundled_fallback": CodeDoc(_LAYERS, "# the repository has workflows but no issue_types.yaml",
                                "Add the file to use your own types instead of the template's."),
}

_SEVERITY_TEXT = {
    "fatal": "the revision is rejected; the previous one stays active",
    "error": "one element is dropped or replaced by the stated fallback; the revision still activates",
    "warning": "loaded; something was ignored, assumed or normalized",
    "info": "harmless; for your information",
}


def missing_entries() -> list[str]:
    """Registered codes without a reference entry (a test keeps this empty)."""
    return [code for code in CODES if code not in DOCS]


def diagnostics_markdown() -> str:
    """docs/diagnostics.md: every code with its severity, meaning, a minimal example and the fix."""
    lines = [
        "# Diagnostic codes",
        "",
        "<!-- Generated from app/kiket/codes.py and app/kiket/code_reference.py by",
        "     `python -m app.kiket.code_reference docs/diagnostics.md`; edit those, not this file. -->",
        "",
        "Kiket reports every problem of a `.kiket/` directory as",
        "`path:line:col: severity code: message (hint)`, in the sync page, `flask kiket validate` and the API.",
        "The file format is described in [configuration.md](configuration.md).",
        "",
        "| severity | effect |",
        "|---|---|",
        *(f"| `{severity}` | {text} |" for severity, text in _SEVERITY_TEXT.items()),
        "",
    ]
    for section in SECTIONS:
        codes = [code for code in CODES if code in DOCS and DOCS[code].section == section]
        if not codes:
            continue
        lines += [f"## {section}", ""]
        for code in codes:
            severity, meaning = CODES[code]
            entry = DOCS[code]
            lines += [f'<a id="{code}"></a>', f"### `{code}` · {severity}", "", meaning, "", "```yaml",
                      entry.example, "```", "", f"**Fix:** {entry.fix}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(diagnostics_markdown(), encoding="utf-8")
