"""Boards (spec §11): parse per file, then resolve against the merged workflows and issue types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from app.kiket.diagnostics import Diagnostic, Provenance
from app.kiket.filecache import per_file
from app.kiket.model import (
    Board, BoardFilter, CardTemplate, Column, IssueType, QuickFilter, Swimlane, Swimlanes, Workflow,
)
from app.kiket.reader import FileContext, humanize, join, resolve_key, slugify, type_name
from app.kiket.templating import parse_template

BOARD_TYPES = frozenset({"kanban", "scrum", "list"})
BADGES = frozenset({"comments_count", "priority", "sla_status", "issue_type", "attachments_count", "due_date",
                    "labels", "checklist_progress"})
BOARD_KEYS = frozenset({"model_version", "board", "id", "key", "name", "type", "description", "workflow", "filters",
                        "columns", "swimlanes", "card_template", "card", "card_fields", "quick_filters"})
COLUMN_KEYS = frozenset({"key", "id", "name", "label", "states", "statuses", "state", "status", "wip_limit", "limit",
                         "wip_policy", "color", "description"})
FIELD_ALIASES = {"assigneeId": "assignee", "issueType": "issue_type", "reporterId": "reporter", "type": "issue_type",
                 "case_type": "issue_type", "caseType": "issue_type"}
CASE_FIELDS = frozenset({"case_type", "caseType"})
PERSON_FIELDS = frozenset({"assignee", "reporter"})


@dataclass
class RawColumn:
    key: str
    name: str
    states: list[tuple[str, str]]
    wip_limit: int | None
    wip_policy: str
    color: str | None
    ptr: str
    extra: dict


@dataclass(frozen=True)
class RawBoard:
    """A board as its file declares it; references are resolved after merging."""

    ctx: FileContext
    id: str
    name: str
    type: str
    description: str | None
    workflow: tuple[str, str] | None
    filter_workflows: list[tuple[str, str]]
    filter_issue_types: list[tuple[str, str]]
    filters: dict[str, Any]
    columns: list[RawColumn]
    swimlanes: Swimlanes | None
    card: CardTemplate
    quick_filters: tuple[QuickFilter, ...]
    prov: Provenance
    extra: dict = field(default_factory=dict)


@per_file
def parse_board(ctx: FileContext) -> RawBoard | None:
    """Read one board file; None (error reported) if it cannot be a board."""
    data = ctx.doc.data
    block = ctx.mapping(data.get("board"), "/board", "The board block") or {}
    merged: dict[str, Any] = {}
    ptrs: dict[str, str] = {}
    for key, value in block.items():
        merged[key], ptrs[key] = value, join("/board", key)
    for key, value in data.items():
        if key != "board":
            merged[key], ptrs[key] = value, join("", key)
    extra = {}
    for key in merged:
        if key not in BOARD_KEYS:
            extra[key] = merged[key]
            ctx.diag("unknown_key", f"Unknown key '{key}' in the board; it is kept but has no effect.",
                     "Check the spelling against the documentation.", ptrs[key])
    ptr = lambda key: ptrs.get(key, join("", key))  # noqa: E731
    raw_id, id_key = (merged.get("id"), "id") if merged.get("id") is not None else (merged.get("key"), "key")
    board_id = ctx.identifier(raw_id if raw_id is not None else ctx.stem, ptr(id_key) if raw_id is not None else "",
                              "The board id")
    if board_id is None:
        return None
    btype = merged.get("type", "kanban")
    if not isinstance(btype, str) or btype not in BOARD_TYPES:
        ctx.diag("unknown_board_type", f"Board type {btype!r} is not kanban, scrum or list; it is kept.",
                 "Use kanban, scrum or list.", ptr("type"))
        btype = str(btype)
    filters = ctx.mapping(merged.get("filters"), ptr("filters"), "filters") or {}
    fptr = ptr("filters")
    if filters:
        ctx.extra(filters, fptr, {"issue_types", "issueTypes", "case_types", "caseTypes", "workflows", "labels",
                                  "priorities", "assignee", "states"}, "the board filters")
    it_value, it_ptr = ctx.pick(filters, fptr, "issue_types", "issueTypes", "case_types", "caseTypes")
    if it_ptr.rsplit("/", 1)[-1] in ("case_types", "caseTypes"):
        ctx.vocabulary(it_ptr, "case_types")
    columns_node = merged.get("columns")
    if not isinstance(columns_node, list) or not columns_node:
        ctx.diag("missing_columns", f"Board '{board_id}' has no columns; it is dropped.",
                 "Add `columns:` with at least one `{key, name, states}`.", ptr("columns") if columns_node else "")
        return None
    columns = _columns(ctx, columns_node, ptr("columns"), board_id)
    workflow = merged.get("workflow")
    return RawBoard(
        ctx=ctx, id=board_id, name=ctx.text(merged.get("name"), ptr("name"), "The name") or humanize(board_id),
        type=btype, description=ctx.text(merged.get("description"), ptr("description"), "The description"),
        workflow=(workflow, ptr("workflow")) if isinstance(workflow, str) else None,
        filter_workflows=_refs(ctx, filters.get("workflows"), join(fptr, "workflows")),
        filter_issue_types=_refs(ctx, it_value, it_ptr),
        filters={k: filters.get(k) for k in ("labels", "priorities", "assignee", "states")},
        columns=columns, swimlanes=_swimlanes(ctx, merged.get("swimlanes"), ptr("swimlanes")),
        card=_card(ctx, merged, ptr), quick_filters=_quick_filters(ctx, merged.get("quick_filters"),
                                                                   ptr("quick_filters")),
        prov=ctx.locate(ptr(id_key) if raw_id is not None else "").at(pointer=""), extra=extra,
    )


def _refs(ctx: FileContext, value: Any, ptr: str) -> list[tuple[str, str]]:
    items = ctx.listing(value, ptr, "the list")
    return [(str(item), join(ptr, i) if isinstance(value, list) else ptr) for i, item in enumerate(items)
            if isinstance(item, (str, int))]


def _columns(ctx: FileContext, nodes: list, ptr: str, board_id: str) -> list[RawColumn]:
    result: list[RawColumn] = []
    seen: set[str] = set()
    for index, node in enumerate(nodes):
        cptr = join(ptr, index)
        if not isinstance(node, dict):
            ctx.diag("invalid_value", f"A column should be a mapping, not {type_name(node)}; ignored.",
                     "Write `- {key, name, states}`.", cptr)
            continue
        extra = ctx.extra(node, cptr, COLUMN_KEYS, "the column")
        raw_key, key_ptr = ctx.pick(node, cptr, "key", "id")
        name_value, name_ptr = ctx.pick(node, cptr, "name", "label")
        name = ctx.text(name_value, name_ptr, "The column name")
        if raw_key is None:
            raw_key = slugify(name) if name else f"column_{index + 1}"
        key = ctx.identifier(raw_key, key_ptr, "The column key")
        if key is None:
            continue
        if key in seen:
            ctx.diag("duplicate_column", f"Board '{board_id}' has two columns '{key}'; the later one is dropped.",
                     "Give each column its own key.", cptr)
            continue
        seen.add(key)
        states_value, states_ptr = ctx.pick(node, cptr, "states", "statuses", "state", "status")
        states = [(str(s), join(states_ptr, i) if isinstance(states_value, list) else states_ptr)
                  for i, s in enumerate(ctx.listing(states_value, states_ptr, "states")) if isinstance(s, (str, int))]
        limit_value, limit_ptr = ctx.pick(node, cptr, "wip_limit", "limit")
        policy = node.get("wip_policy", "warn")
        if policy not in ("warn", "block"):
            ctx.diag("invalid_value", f"wip_policy {policy!r} is not warn or block; warn is used.",
                     "Use warn or block.", join(cptr, "wip_policy"))
            policy = "warn"
        result.append(RawColumn(key=key, name=name or humanize(key), states=states,
                                wip_limit=ctx.integer(limit_value, limit_ptr, "wip_limit", 1), wip_policy=policy,
                                color=ctx.text(node.get("color"), join(cptr, "color"), "The color"), ptr=cptr,
                                extra=extra))
    return result


def _field_name(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return FIELD_ALIASES.get(value, value)


def _swimlanes(ctx: FileContext, node: Any, ptr: str) -> Swimlanes | None:
    node = ctx.mapping(node, ptr, "swimlanes")
    if not node:
        return None
    extra = ctx.extra(node, ptr, {"enabled", "field", "by", "values", "labels", "other_label"}, "swimlanes")
    if node.get("labels") is not None:
        extra["labels"] = node["labels"]
    if not ctx.boolean(node.get("enabled"), join(ptr, "enabled"), "enabled", True):
        return None
    field_value, field_ptr = ctx.pick(node, ptr, "field", "by")
    if field_value in CASE_FIELDS:
        ctx.vocabulary(field_ptr, field_value)
    field_name = _field_name(field_value)
    if field_name is None:
        ctx.diag("invalid_value", "swimlanes need a `field` (e.g. assignee or custom_fields.severity); none shown.",
                 "Add `field:`.", ptr)
        return None
    values = []
    for index, item in enumerate(ctx.listing(node.get("values"), join(ptr, "values"), "values")):
        item_ptr = join(ptr, "values", index)
        if isinstance(item, dict) and "value" in item:
            values.append(Swimlane(item["value"], str(item.get("label", item["value"])), ctx.locate(item_ptr)))
        elif isinstance(item, (str, int, float)):
            values.append(Swimlane(item, str(item), ctx.locate(item_ptr)))
        else:
            ctx.diag("invalid_value", "A lane should be a value or `{value, label}`; ignored.", "", item_ptr)
            continue
        if field_name == "issue_type" and isinstance(values[-1].value, str):
            ctx.ref("issue_type", values[-1].value, item_ptr, "swimlane")
    other = node.get("other_label") or ("Unassigned" if field_name in PERSON_FIELDS else "Other")
    return Swimlanes(field=field_name, values=tuple(values), other_label=str(other), prov=ctx.locate(ptr), extra=extra)


def _badges(ctx: FileContext, value: Any, ptr: str) -> tuple[str, ...]:
    result = []
    for index, item in enumerate(ctx.listing(value, ptr, "badges")):
        name = item.get("type") if isinstance(item, dict) else item
        if not isinstance(name, str) or name not in BADGES:
            ctx.diag("unknown_badge", f"Card badge {name!r} does not exist; it is dropped.",
                     "Use " + ", ".join(sorted(BADGES)) + ".", join(ptr, index))
            continue
        result.append(name)
    return tuple(result)


def _card(ctx: FileContext, merged: dict, ptr) -> CardTemplate:
    default = CardTemplate()
    if isinstance(merged.get("card_template"), dict) or isinstance(merged.get("card"), dict):
        key = "card_template" if isinstance(merged.get("card_template"), dict) else "card"
        node, cptr = merged[key], ptr(key)
        ctx.extra(node, cptr, {"size", "fields", "badges", "template", "primary", "secondary"}, "the card template")
        fields = ctx.mapping(node.get("fields"), join(cptr, "fields"), "fields") or {}
        primary = fields.get("primary", node.get("primary"))
        secondary = fields.get("secondary", node.get("secondary"))
        size = node.get("size", default.size)
        if size not in ("compact", "standard"):
            ctx.diag("invalid_value", f"Card size {size!r} is not compact or standard; standard is used.",
                     "Use compact or standard.", join(cptr, "size"))
            size = "standard"
        text = None
        if isinstance(node.get("template"), str):
            text, diags = parse_template(node["template"], join(cptr, "template"), ctx.locate)
            ctx.extend(diags)
        return CardTemplate(
            size=size,
            primary=ctx.strings(primary, join(cptr, "fields", "primary"), "primary") if primary is not None
            else default.primary,
            secondary=ctx.strings(secondary, join(cptr, "fields", "secondary"), "secondary") if secondary is not None
            else default.secondary,
            badges=_badges(ctx, node["badges"], join(cptr, "badges")) if "badges" in node else default.badges,
            text=text, prov=ctx.locate(cptr),
        )
    if merged.get("card_fields") is not None:
        names = ctx.strings(merged["card_fields"], ptr("card_fields"), "card_fields")
        return CardTemplate(primary=tuple(n for n in names if n in ("title", "assignee")),
                            secondary=tuple(n for n in names if n not in ("title", "assignee")),
                            prov=ctx.locate(ptr("card_fields")))
    return default


def _quick_filters(ctx: FileContext, value: Any, ptr: str) -> tuple[QuickFilter, ...]:
    result = []
    for index, item in enumerate(ctx.listing(value, ptr, "quick_filters")):
        item_ptr = join(ptr, index)
        if not isinstance(item, dict) or not isinstance(item.get("field"), str):
            ctx.diag("invalid_value", "A quick filter needs `field` and `value` or `values`; ignored.",
                     "Write `- {label: Mine, field: assignee, value: \"@me\"}`.", item_ptr)
            continue
        ctx.extra(item, item_ptr, {"label", "field", "value", "values"}, "the quick filter")
        values = item.get("values", item.get("value"))
        values = tuple(values) if isinstance(values, list) else (values,)
        if item["field"] in CASE_FIELDS:
            ctx.vocabulary(join(item_ptr, "field"), item["field"])
        field_name = _field_name(item["field"]) or item["field"]
        if field_name == "issue_type":
            for v_index, name in enumerate(values):
                if isinstance(name, str):
                    ctx.ref("issue_type", name, join(item_ptr, "values", v_index) if "values" in item
                            else join(item_ptr, "value"), "quick filter")
        result.append(QuickFilter(label=str(item.get("label") or humanize(field_name)), field=field_name,
                                  values=values, prov=ctx.locate(item_ptr)))
    return tuple(result)


def _diag(out: list[Diagnostic], code: str, severity: str, message: str, hint: str, prov: Provenance) -> None:
    out.append(Diagnostic(code, severity, message, hint, prov))


def resolve_workflow_ref(name: str, workflows: Mapping[str, Workflow]) -> tuple[str | None, str]:
    """Resolve a workflow reference: exact, case-insensitive, then file stem."""
    if name in workflows:
        return name, "exact"
    stems = {key: (wf.prov.path or "").rsplit("/", 1)[-1].rsplit(".", 1)[0] for key, wf in workflows.items()}
    return resolve_key(name, workflows.keys(), stems=stems)


def resolve_issue_type_ref(name: str, issue_types: Mapping[str, IssueType]) -> tuple[str | None, str]:
    """Resolve an issue type reference: exact, case-insensitive key, then label."""
    return resolve_key(name, issue_types.keys(), labels={k: t.label for k, t in issue_types.items()})


def resolve_board(raw: RawBoard, workflows: Mapping[str, Workflow], issue_types: Mapping[str, IssueType],
                  default_workflow: str | None, out: list[Diagnostic]) -> Board | None:
    """Resolve a board's references; None (error reported) when its primary workflow is unknown."""
    locate = raw.ctx.locate

    def workflow_ref(name: str, pointer: str) -> str | None:
        found, how = resolve_workflow_ref(name, workflows)
        if found is None:
            _diag(out, "unknown_workflow", "error", f"Board '{raw.id}' names workflow '{name}', which does not exist.",
                  "Use one of: " + ", ".join(workflows) + ".", locate(pointer))
        elif how != "exact":
            _diag(out, "fuzzy_reference", "warning", f"Workflow '{name}' matched '{found}' by {how}.",
                  f"Write '{found}'.", locate(pointer))
        return found

    filter_workflows = []
    for name, pointer in raw.filter_workflows:
        found = workflow_ref(name, pointer)
        if found and found not in filter_workflows:
            filter_workflows.append(found)
    if raw.workflow is not None:
        primary = workflow_ref(*raw.workflow)
        if primary is None:
            _diag(out, "unknown_workflow", "error", f"Board '{raw.id}' is dropped: its workflow does not exist.",
                  "Fix `workflow:`.", locate(raw.workflow[1]))
            return None
    elif filter_workflows:
        primary = filter_workflows[0]
    else:
        names = {name for column in raw.columns for name, _ in column.states}
        owners = [key for key, wf in workflows.items() if names and names <= set(wf.states)]
        primary = owners[0] if len(owners) == 1 else default_workflow
        if primary is None:
            _diag(out, "unknown_workflow", "error", f"Board '{raw.id}' has no workflow and none can be inferred; dropped.",
                  "Add `workflow:`.", raw.prov)
            return None
    board_workflows = [primary] + [w for w in filter_workflows if w != primary]
    issue_type_filter = []
    for name, pointer in raw.filter_issue_types:
        found, how = resolve_issue_type_ref(name, issue_types)
        if found is None:
            _diag(out, "unknown_issue_type", "warning", f"Board '{raw.id}' filters on issue type '{name}', which does "
                  "not exist; the entry is dropped.", "Use a key of issue_types.yaml.", locate(pointer))
            continue
        if how != "exact":
            _diag(out, "fuzzy_reference", "warning", f"Issue type '{name}' matched '{found}' by {how}.",
                  f"Write '{found}'.", locate(pointer))
        issue_type_filter.append(found)
    available: dict[str, str] = {}
    for wf_key in board_workflows:
        for state in workflows[wf_key].states:
            available.setdefault(state, state)
    mapped: dict[str, str] = {}
    columns = []
    for column in raw.columns:
        states = []
        for name, pointer in column.states:
            found, how = resolve_key(name, available)
            if found is None:
                _diag(out, "column_state_unknown", "warning", f"Column '{column.key}' of board '{raw.id}' names state "
                      f"'{name}', which none of its workflows ({', '.join(board_workflows)}) declares; it is dropped.",
                      "Use a state key of the board's workflows.", locate(pointer))
                continue
            if how != "exact":
                _diag(out, "fuzzy_reference", "warning", f"State '{name}' matched '{found}' by {how}.",
                      f"Write '{found}'.", locate(pointer))
            if found in mapped:
                _diag(out, "state_in_two_columns", "warning", f"State '{found}' is already shown in column "
                      f"'{mapped[found]}'; column '{column.key}' does not show it.",
                      "Map each state to one column.", locate(pointer))
                continue
            mapped[found] = column.key
            states.append(found)
        if not states:
            _diag(out, "empty_column", "warning", f"Column '{column.key}' of board '{raw.id}' shows no state.",
                  "Add `states:` to it or remove it.", locate(column.ptr))
        limit = column.wip_limit
        if limit is None and states:
            limits = [workflows[w].states[s].wip_limit for s in states for w in board_workflows
                      if s in workflows[w].states]
            if limits and all(lim is not None for lim in limits):
                limit = sum(limits)
        columns.append(Column(key=column.key, name=column.name, states=tuple(states), wip_limit=limit,
                              wip_policy=column.wip_policy, color=column.color, prov=locate(column.ptr),
                              extra=column.extra))
    unmapped = []
    for wf_key in board_workflows:
        for state in workflows[wf_key].states:
            if state not in mapped:
                unmapped.append((wf_key, state))
                _diag(out, "unmapped_state", "info", f"State '{state}' of workflow '{wf_key}' is in no column of board "
                      f"'{raw.id}'; its issues show in an Unmapped column.", "", raw.prov)
    filters = raw.filters
    ctx = raw.ctx
    board_filter = BoardFilter(
        issue_types=tuple(issue_type_filter), workflows=tuple(filter_workflows),
        labels=ctx.strings(filters.get("labels"), "/filters/labels", "labels"),
        priorities=ctx.strings(filters.get("priorities"), "/filters/priorities", "priorities"),
        assignee=filters.get("assignee") if isinstance(filters.get("assignee"), str) else None,
        states=ctx.strings(filters.get("states"), "/filters/states", "states"),
    )
    return Board(id=raw.id, name=raw.name, type=raw.type, workflow=primary, workflows=tuple(board_workflows),
                 columns=tuple(columns), description=raw.description, swimlanes=raw.swimlanes, filters=board_filter,
                 card=raw.card, quick_filters=raw.quick_filters, unmapped_states=tuple(unmapped), prov=raw.prov,
                 extra=raw.extra)


def fallback_board(workflow: Workflow) -> Board:
    """The generated board of a workflow that no valid board shows (§11.6)."""
    prov = Provenance(layer=workflow.prov.layer, repo=workflow.prov.repo, branch=workflow.prov.branch,
                      commit_sha=workflow.prov.commit_sha, path=workflow.prov.path, line=workflow.prov.line,
                      column=workflow.prov.column, pointer="", generated=True,
                      derived_from=f"workflow:{workflow.id}")
    columns = tuple(Column(key=state.key, name=state.label, states=(state.key,), wip_limit=state.wip_limit,
                           wip_policy="warn", color=state.color, prov=state.prov.at(pointer=state.prov.pointer))
                    for state in workflow.states.values())
    return Board(id=f"{workflow.id}-board", name=f"{workflow.name} board", type="kanban", workflow=workflow.id,
                 workflows=(workflow.id,), columns=columns, filters=BoardFilter(workflows=(workflow.id,)),
                 generated=True, prov=prov)
