"""Registry of stable diagnostic codes: code -> (default severity, one-line description).

Codes are part of the public contract (CLI output, API, the malformed-repository corpus):
add new ones freely, never rename or remove one.
"""

from __future__ import annotations

from app.kiket.diagnostics import Severity

CODES: dict[str, tuple[Severity, str]] = {
    # Files and trees (spec §2)
    "missing_config_dir": ("fatal", "The revision has no .kiket/ directory."),
    "file_too_large": ("fatal", "A file is larger than 512 KiB."),
    "tree_too_large": ("fatal", "The configuration tree is larger than 8 MiB."),
    "too_many_files": ("fatal", "The configuration tree holds more than 1000 files."),
    "duplicate_file": ("fatal", "Both name.yaml and name.yml define the same element."),
    "unknown_file": ("warning", "A YAML file in .kiket/ that no rule interprets; preserved as is."),
    "non_yaml_file": ("info", "A file that is not YAML; neither read nor kept in the canonical copy."),
    "symlink_skipped": ("warning", "A symbolic link in the tree was skipped."),
    "submodule_skipped": ("warning", "A git submodule in the tree was skipped."),
    "unsupported_section": ("warning", "An unsupported section (agents, dashboards, ...) preserved verbatim."),
    # YAML reading (spec §1, §2)
    "yaml_syntax": ("fatal", "The file is not valid YAML."),
    "yaml_encoding": ("fatal", "The file is not UTF-8 text."),
    "yaml_tab_indent": ("fatal", "The file indents with tab characters, which YAML forbids."),
    "yaml_duplicate_key": ("fatal", "A mapping defines the same key twice."),
    "yaml_custom_tag": ("fatal", "The file uses a custom YAML tag (!tag), which is refused."),
    "yaml_alias_limit": ("fatal", "Too many YAML alias expansions (alias bomb)."),
    "yaml_too_deep": ("fatal", "The file nests more than 100 levels deep."),
    "yaml_too_many_nodes": ("fatal", "The file holds more than 250,000 values."),
    "yaml_number_too_long": ("fatal", "A number is longer than 100 characters."),
    "yaml_not_mapping": ("fatal", "The top level of the file is not a mapping."),
    "yaml_multiple_documents": ("fatal", "The file holds more than one YAML document."),
    "empty_file": ("fatal", "The file is empty."),
    "yaml_bom": ("info", "The file starts with a byte-order mark, which was ignored."),
    # Versions, keys, values (spec §2)
    "unsupported_model_version": ("fatal", "model_version has a major version this loader does not know."),
    "newer_model_version": ("warning", "model_version 2.x: parsed by the 1.x rules, new blocks kept in extra."),
    "invalid_model_version": ("warning", "model_version is not a version number; 1.0 assumed."),
    "invalid_identifier": ("error", "A key or id does not match ^[A-Za-z][A-Za-z0-9_.-]{0,63}$."),
    "missing_key": ("error", "An element has no key/id, so it cannot be referenced."),
    "unknown_key": ("warning", "A key the format does not define; kept in extra."),
    "alias_conflict": ("warning", "Both a key and its alias are given; the canonical key wins."),
    "invalid_value": ("warning", "A value has the wrong type or is out of range; the default is used."),
    "fuzzy_reference": ("warning", "A reference matched only case-insensitively, by label or by file stem."),
    "diagnostics_truncated": ("info", "More diagnostics of one code than a run lists; their number is given."),
    "internal_error": ("fatal", "The loader hit an unexpected internal problem with this file."),
    # Project and team (spec §5, §6)
    "project_missing": ("info", "No project.yaml: project settings come from the database project."),
    "project_flat": ("warning", "project.yaml has no project: root; the file is read as the project."),
    "project_legacy_id": ("warning", "project.yaml uses the older id: key; it was uppercased into key."),
    "project_key_mismatch": ("info", "project.key differs from the project's key; the app's key stays."),
    "project_name_mismatch": ("info", "project.name differs from the project's name; the app's name stays."),
    "duplicate_project_file": ("warning", "Both project.yaml and workspace.yaml exist; project.yaml wins key by key."),
    "case_vocabulary": ("info", "The file uses the workspace/case words; they are read as project/issue."),
    "extension_not_installed": ("warning", "An extension is required or used but not installed; its actions are stubs."),
    "invalid_seed_issue": ("warning", "A seed issue is invalid or references something unknown; skipped."),
    "unknown_priority": ("warning", "A priority that the project does not declare."),
    "invalid_business_hours": ("warning", "business_hours is invalid; the default calendar is used."),
    "builtin_role_redefined": ("error", "owner, admin, member and viewer are built in and cannot be redefined."),
    "privileged_grant": ("error", "The repository grants owner/admin/project.admin/*, which is refused."),
    "unknown_permission": ("warning", "A permission name that does not exist."),
    "unknown_role": ("warning", "A role that is neither declared nor built in; it has no members."),
    "unknown_member": ("warning", "A team member that matches no existing account."),
    # Issue types (spec §7)
    "unknown_field_type": ("warning", "A field type that does not exist; string used."),
    "generated_issue_type": ("info", "No issue types defined: a generated type task is used."),
    "default_workflow_inferred": ("info", "The default workflow was inferred (only workflow or first by path)."),
    "unknown_workflow": ("error", "A reference to a workflow that does not exist."),
    "unknown_issue_type": ("warning", "A reference to an issue type that does not exist; dropped."),
    "inactive_issue_type": ("info", "An issue type is inactive and cannot be used for new issues."),
    "inferred_field": ("info", "A gate reads a custom field no bound issue type declares; it is added as an editable field."),
    # Workflows, states, transitions (spec §8)
    "duplicate_workflow": ("fatal", "Two workflows have the same id (or ids differing only by case)."),
    "duplicate_issue_type": ("fatal", "Two issue types have the same key (or keys differing only by case)."),
    "duplicate_state": ("fatal", "Two states of one workflow have the same key (or differ only by case)."),
    "duplicate_checklist": ("fatal", "Two checklists of one workflow have the same id (or differ only by case)."),
    "no_states": ("fatal", "A workflow declares no states."),
    "no_initial_state": ("fatal", "A workflow has no initial state."),
    "multiple_initial_states": ("fatal", "A workflow has more than one initial state."),
    "unknown_state": ("fatal", "A transition from/to names a state the workflow does not declare."),
    "unknown_checklist": ("fatal", "A {checklist: id} guard names no checklist of the workflow."),
    "workflow_id_mismatch": ("info", "The workflow id differs from its file name."),
    "kind_inferred": ("warning", "No state declares a kind: initial/final inferred from order and transitions."),
    "unknown_state_kind": ("warning", "An unknown state type; treated as active."),
    "unknown_category": ("warning", "A status category outside pending/active/review/completed/blocked/cancelled."),
    "no_final_state": ("warning", "A workflow has no final state, so issues are never resolved."),
    "unreachable_state": ("warning", "A state that no transition leads to."),
    "dead_end_state": ("warning", "A non-final state with no outgoing transition."),
    "final_state_exit": ("info", "A declared transition leaves a final state (e.g. a regression path)."),
    "duplicate_transition": ("error", "The same from/to/name transition is declared twice; the second is dropped."),
    "invalid_transition": ("error", "A transition lacks from or to, or is not a mapping; dropped."),
    "unknown_state_reference": ("error", "An action or filter names a state that does not exist; dropped."),
    # SLA, documents, approval, checklists (spec §8.3-8.6)
    "invalid_duration": ("error", "A duration is not like 15m, 4h, 1d12h or PT4H; the threshold is dropped."),
    "invalid_sla_rule": ("error", "An SLA rule has no threshold or is a second default; dropped."),
    "sla_warning_after_breach": ("warning", "An SLA warning threshold is not before its breach threshold."),
    "sla_default_not_last": ("warning", "The default SLA rule is not the last one; later rules never apply."),
    "unknown_required_document": ("warning", "A required document no bound issue type declares; used as an attachment tag."),
    "approval_gates_all": ("info", "No outgoing transition sets approval_required: all of them are gated."),
    "approval_without_policy": ("warning", "approval_required without an approval policy: one approval by any approver."),
    "invalid_approval": ("error", "The approval policy cannot be understood; dropped."),
    "gate_in_metadata": ("info", "A gate written under a transition's metadata (requires_fields, ...) is enforced."),
    "entry_guard": ("info", "State-level conditions guard every transition into that state."),
    "ignored_gate": ("error", "An unknown key that looks like a gate; it is not enforced, so the element is unguarded."),
    "unsatisfiable_gate": ("error", "A gate nobody can pass (undeclared role, undeclared field); the stated fallback applies."),
    "auto_item_without_condition": ("error", "An auto checklist item has no condition; it becomes manual."),
    "duplicate_checklist_item": ("error", "A checklist item id is used twice in one workflow; the later one is dropped."),
    # Conditions, expressions, templates (spec §9, §12) - emitted by conditions.py/templating.py
    "invalid_condition": ("error", "A condition cannot be understood; it never holds (fails closed)."),
    "invalid_path": ("error", "A field path is empty, malformed or uses a _-prefixed segment; never holds."),
    "invalid_checklist": ("error", "{checklist: id, complete: bool} with a bad id or flag; never holds."),
    "missing_value": ("warning", "A comparison without value; compared with null."),
    "ignored_value": ("info", "is_present/is_blank take no value; it is ignored."),
    "condition_too_complex": ("error", "A condition nests too deeply or has too many nodes; never holds."),
    "expression_too_complex": ("error", "An expression is longer, deeper or larger than allowed; never holds."),
    "unsupported_comparison": ("warning", "A comparison needs a field on one side and a literal on the other."),
    "unknown_operator": ("warning", "An unknown comparison operator; the condition never holds."),
    "expression_syntax": ("error", "An expression string does not parse; it never holds."),
    "expression_too_large": ("warning", "An expression has more than 256 nodes; it never holds."),
    "unsupported_function": ("warning", "Function calls are not supported in expressions or templates."),
    "unknown_field": ("warning", "A field path with an unknown root."),
    "template_syntax": ("warning", "A template placeholder does not parse; it renders literally or empty."),
    "unknown_template_root": ("warning", "A template names an unknown root; it renders empty."),
    "unknown_filter": ("warning", "A template uses an unknown filter; it renders empty."),
    "unsupported_template_block": ("warning", "{{#if}}/{{#each}} blocks are unsupported; rendered literally."),
    "invalid_filter_argument": ("warning", "A template filter argument is missing or of the wrong kind; renders empty."),
    "private_name": ("warning", "_-prefixed names are refused by the template sandbox; renders empty."),
    "invalid_env_name": ("warning", "env.NAME must match ^[A-Z][A-Z0-9_]{0,63}$; renders empty."),
    "body_too_deep": ("error", "A webhook body is nested deeper than 16 levels; deeper parts dropped."),
    "env_outside_webhook": ("warning", "${env.X} is only available in webhook url, headers and body; renders empty."),
    # Actions and automations (spec §10)
    "unknown_action": ("warning", "An unknown action type; kept as a stub that is skipped at runtime."),
    "invalid_action": ("error", "An action lacks what it needs or targets something unknown; dropped."),
    "action_stub": ("info", "A recognised but unsupported action; validated, then skipped at runtime."),
    "unknown_agent": ("warning", "An AI action names an agent that no preserved agent file defines."),
    "unknown_channel": ("warning", "A notification channel that is not available; the notification is a stub."),
    "duplicate_automation": ("error", "Two automations have the same id; the later path is dropped."),
    "missing_trigger": ("error", "An automation has no trigger; dropped."),
    "missing_actions": ("error", "An automation has no actions; dropped."),
    "unknown_event": ("error", "An automation triggers on an unknown event; dropped."),
    "event_alias": ("warning", "An event alias (schedule, workflow.after_transition, ...) read as its catalogue event."),
    "event_never_emitted": ("warning", "The event is accepted but never emitted, so the automation never runs."),
    "invalid_cron": ("error", "schedule.cron needs a valid 5-field cron expression; dropped."),
    "sweep_evaluated": ("info", "Time-based conditions: also evaluated by the 5-minute sweep."),
    # Boards (spec §11)
    "duplicate_board": ("error", "Two boards have the same id; the later one is dropped."),
    "missing_columns": ("error", "A board has no columns; dropped."),
    "duplicate_column": ("error", "Two columns of a board have the same key; the later one is dropped."),
    "unknown_board_type": ("warning", "A board type other than kanban, scrum or list; kept."),
    "column_state_unknown": ("warning", "A column names a state of none of the board's workflows; dropped."),
    "state_in_two_columns": ("warning", "A state is mapped by two columns; the first wins."),
    "empty_column": ("warning", "A column maps no state."),
    "unmapped_state": ("info", "A state of the board's workflows is in no column and is not shown."),
    "unknown_badge": ("warning", "An unknown card badge type; dropped."),
    "generated_board": ("info", "A workflow in no board got a generated board."),
    # Precedence (spec §13)
    "inherit_excluded": ("info", "A lower-layer element was excluded by project.inherit."),
    "bundled_fallback": ("info", "No layer defines this kind: the bundled template supplies it."),
}


def severity_of(code: str) -> Severity:
    """Default severity of a registered code (unknown codes count as errors)."""
    entry = CODES.get(code)
    return entry[0] if entry else "error"


def describe(code: str) -> str:
    """One-line description of a registered code."""
    entry = CODES.get(code)
    return entry[1] if entry else ""
