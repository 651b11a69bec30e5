"""A deterministic, valid `.kiket/` repository of exactly 1 000 files for the validate benchmark.

200 workflows of 20 states (transitions, SLAs, checklists, hooks), 200 boards, one issue_types.yaml,
one project.yaml and 598 automation files (project automations and workflow recipes). Same input,
same bytes: no randomness, no clock.
"""

from __future__ import annotations

WORKFLOWS = 200
STATES = 20
BOARDS = 200
TOTAL_FILES = 1000
EVENTS = ("issue.created", "issue.updated", "issue.transitioned", "issue.assigned", "sla.breach")


def _workflow(index: int) -> str:
    wf = f"flow{index:03}"
    lines = [f"workflow:\n  id: {wf}\n  name: Flow {index}\n  version: '1.0'\n  description: Generated workflow {index}.",
             "states:"]
    for number in range(STATES):
        kind = "initial" if number == 0 else "final" if number == STATES - 1 else "active"
        lines.append(f"  s{number:02}:\n    type: {kind}\n    metadata:\n      label: Step {number}\n      color: '#33669{number % 10}'")
        if kind == "active":
            lines.append(f"    wip_limit: {number + 2}")
            lines.append(
                "    sla:\n"
                "      - condition: {field: priority, operator: eq, value: critical}\n"
                f"        warning: {number + 1}h\n        breach: {2 * number + 4}h\n"
                f"      - default: true\n        warning: {number + 1}d\n        breach: {number + 2}d"
            )
            lines.append(
                f"    checklist:\n      id: s{number:02}_checks\n      title: Checks {number}\n      items:\n"
                f"        - {{id: s{number:02}_review, label: Reviewed, required: true}}\n"
                f"        - {{id: s{number:02}_auto, label: Has owner, check_type: auto,"
                " condition: {field: assignee, operator: is_present}}"
            )
            lines.append(
                "    on_enter:\n      - action: notify\n        recipients: {roles: [member], fields: [assignee]}\n"
                f"        message: 'Issue ${{issue.key}} entered step {number}'"
            )
    lines.append("transitions:")
    for number in range(STATES - 1):
        source, target = f"s{number:02}", f"s{number + 1:02}"
        lines.append(f"  - from: {source}\n    to: {target}\n    name: Advance {number}")
        if 0 < number < STATES - 1:
            lines.append(f"    conditions:\n      - {{checklist: {source}_checks, complete: true}}")
        if number % 4 == 1:
            lines.append("    requires:\n      fields: [assignee]\n    actions:\n      - {action: add_label, label: moved}")
        if number > 1:
            lines.append(f"  - from: {target}\n    to: s{number - 1:02}\n    name: Back {number}\n    comment_required: true")
    return "\n".join(lines) + "\n"


def _board(index: int) -> str:
    wf = f"flow{index:03}"
    lines = [f"id: board{index:03}\nname: Board {index}\ntype: kanban\nworkflow: {wf}\nfilters:\n  workflows: [{wf}]",
             "columns:"]
    for column in range(5):
        states = ", ".join(f"s{n:02}" for n in range(column * 4, column * 4 + 4))
        lines.append(f"  - key: c{column}\n    name: Column {column}\n    states: [{states}]\n    wip_limit: {column + 5}")
    lines.append("swimlanes:\n  field: priority\n  values:\n    - {value: critical, label: Critical}\n    - {value: high, label: High}")
    lines.append("card_template:\n  size: standard\n  fields: {primary: [title, assignee], secondary: [priority]}\n"
                 "  badges: [{type: sla_status}, {type: priority}]")
    return "\n".join(lines) + "\n"


def _automation(index: int, recipe: bool) -> str:
    event = EVENTS[index % len(EVENTS)]
    if recipe:
        return (
            f"recipe:\n  key: recipe{index:03}\n  name: Recipe {index}\n  trigger: {event}\n"
            "  conditions:\n    all:\n      - {field: priority, operator: in, value: [high, critical]}\n"
            "  actions:\n    - {type: add_label, label: triaged}\n"
            "    - type: add_comment\n      body: 'Automated note for {{ issue.key }}'\n"
        )
    return (
        f"automations:\n  - id: auto{index:03}\n    name: Automation {index}\n    trigger:\n      event: {event}\n"
        "      conditions:\n        - {field: status, operator: ne, value: s19}\n"
        "    actions:\n      - {type: set_field, field: priority, value: high}\n"
        "      - type: notify\n        recipients: {fields: [reporter]}\n        message: 'Updated {{ issue.title }}'\n"
    )


def generate() -> dict[str, bytes]:
    """The repository as `{path: bytes}`, exactly TOTAL_FILES files."""
    files: dict[str, str] = {
        ".kiket/project.yaml": "project:\n  key: BENCH\n  name: Bench\n  default_workflow: flow000\n",
        ".kiket/issue_types.yaml": "issue_types:\n" + "".join(
            f"  - {{key: type{n:02}, label: Type {n}, workflow: flow{n:03}}}\n" for n in range(40)),
    }
    for index in range(WORKFLOWS):
        files[f".kiket/workflows/flow{index:03}.yaml"] = _workflow(index)
    for index in range(BOARDS):
        files[f".kiket/boards/board{index:03}.yaml"] = _board(index)
    remaining = TOTAL_FILES - len(files)
    for index in range(remaining):
        if index % 2:
            path = f".kiket/workflows/flow{index % WORKFLOWS:03}/automation_recipes/recipe{index:03}.yaml"
        else:
            path = f".kiket/automations/auto{index:03}.yaml"
        files[path] = _automation(index, recipe=bool(index % 2))
    assert len(files) == TOTAL_FILES
    return {path: text.encode() for path, text in files.items()}
