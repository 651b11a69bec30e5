"""`issue_types.yaml` (spec §7): list or map dialect, fields and documents."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from app.kiket.filecache import per_file
from app.kiket.model import DocumentDef, FieldDef, IssueType
from app.kiket.reader import FileContext, humanize, join, type_name

FIELD_TYPES = frozenset({"string", "text", "markdown", "number", "integer", "boolean", "date", "datetime", "enum",
                         "multi_enum", "email", "url", "user", "file"})
FIELD_TYPE_ALIASES = {"textarea": "text", "select": "enum", "multiselect": "multi_enum", "checkbox": "boolean"}
TYPE_KEYS = frozenset({"key", "label", "name", "description", "icon", "color", "position", "active", "allow_children",
                       "child_types", "parent_types", "workflow", "fields", "documents"})
FIELD_KEYS = frozenset({"key", "label", "name", "type", "required", "options", "default", "min", "max", "description",
                        "placeholder", "help"})


@per_file
def normalize_issue_types(ctx: FileContext) -> list[IssueType]:
    """Normalize an issue_types file; duplicates are reported by the caller (they are fatal)."""
    data = ctx.doc.data
    ctx.extra(data, "", {"model_version", "issue_types", "case_types", "types"}, ctx.stem + ".yaml")
    node, pointer = ctx.pick(data, "", "issue_types", "case_types", "types")
    if pointer == "/case_types":
        ctx.vocabulary(pointer, "case_types")
    entries: list[tuple[Any, Any, str]] = []
    if isinstance(node, list):
        for index, item in enumerate(node):
            ptr = join(pointer, index)
            if not isinstance(item, dict):
                ctx.diag("invalid_value", f"An issue type should be a mapping, not {type_name(item)}; ignored.",
                         "Write `- {key: bug, label: Bug}`.", ptr)
                continue
            if item.get("key") is None:
                ctx.diag("missing_key", "An issue type in the list has no key; it is dropped.",
                         "Add `key:` (e.g. `key: bug`).", ptr)
                continue
            entries.append((item["key"], item, ptr))
    elif isinstance(node, dict):
        for key, item in node.items():
            ptr = join(pointer, key)
            if item is None:
                item = {}
            if not isinstance(item, dict):
                ctx.diag("invalid_value", f"Issue type '{key}' should be a mapping, not {type_name(item)}; defaults used.",
                         "Write its settings as keys under it.", ptr)
                item = {}
            entries.append((key, item, ptr))
    elif node is not None:
        ctx.diag("invalid_value", f"issue_types should be a list or a mapping, not {type_name(node)}.",
                 "Write `issue_types:` followed by a list of types.", pointer)
    result = []
    for position, (raw_key, item, ptr) in enumerate(entries):
        key = ctx.identifier(raw_key, join(ptr, "key") if "key" in item else ptr, "The issue type key")
        if key is None:
            continue
        result.append(_issue_type(ctx, key, item, ptr, position))
    return result


def _issue_type(ctx: FileContext, key: str, item: dict, ptr: str, position: int) -> IssueType:
    extra = ctx.extra(item, ptr, TYPE_KEYS, f"issue type '{key}'")
    label_value, label_ptr = ctx.pick(item, ptr, "label", "name")
    child_types = parent_types = None
    if item.get("child_types") is not None:
        child_types = ctx.strings(item["child_types"], join(ptr, "child_types"), "child_types")
        for index, name in enumerate(child_types):
            ctx.ref("issue_type", name, join(ptr, "child_types", index), f"child_types of '{key}'")
    if item.get("parent_types") is not None:
        parent_types = ctx.strings(item["parent_types"], join(ptr, "parent_types"), "parent_types")
        for index, name in enumerate(parent_types):
            ctx.ref("issue_type", name, join(ptr, "parent_types", index), f"parent_types of '{key}'")
    workflow = ctx.text(item.get("workflow"), join(ptr, "workflow"), "The workflow")
    pos = ctx.integer(item.get("position"), join(ptr, "position"), "position", 0)
    fields = tuple(f for f in (_field(ctx, f, join(ptr, "fields", i))
                               for i, f in enumerate(_entries(ctx, item.get("fields"), join(ptr, "fields"))))
                   if f is not None)
    documents = tuple(d for d in (_document(ctx, d, join(ptr, "documents", i))
                                  for i, d in enumerate(_entries(ctx, item.get("documents"), join(ptr, "documents"))))
                      if d is not None)
    return IssueType(
        key=key, label=ctx.text(label_value, label_ptr, "The label") or humanize(key), workflow=workflow,
        description=ctx.text(item.get("description"), join(ptr, "description"), "The description"),
        icon=ctx.text(item.get("icon"), join(ptr, "icon"), "The icon"),
        color=ctx.text(item.get("color"), join(ptr, "color"), "The color"),
        position=position if pos is None else pos,
        active=ctx.boolean(item.get("active"), join(ptr, "active"), "active", True),
        allow_children=ctx.boolean(item.get("allow_children"), join(ptr, "allow_children"), "allow_children",
                                   child_types is not None),
        child_types=child_types, parent_types=parent_types, fields=fields, documents=documents,
        workflow_declared=workflow is not None, prov=ctx.locate(ptr), extra=extra,
        workflow_prov=ctx.locate(join(ptr, "workflow")) if workflow is not None else None,
    )


def _entries(ctx: FileContext, node: Any, pointer: str) -> list[Any]:
    """Fields/documents as a list; a `{key: body}` map becomes a list with keys filled in."""
    if isinstance(node, dict):
        return [dict(body or {}, key=key) if isinstance(body, dict) or body is None else {"key": key, "type": body}
                for key, body in node.items()]
    return ctx.listing(node, pointer, "the list")


def _options(ctx: FileContext, node: Any, ptr: str) -> tuple[tuple[Any, str], ...]:
    if isinstance(node, dict):
        node = node.get("values", [])
    result = []
    for index, item in enumerate(ctx.listing(node, ptr, "options")):
        if isinstance(item, dict) and "value" in item:
            result.append((item["value"], str(item.get("label", item["value"]))))
        elif isinstance(item, (str, int, float, bool)):
            result.append((item, str(item)))
        else:
            ctx.diag("invalid_value", "An option should be a value or `{value, label}`; ignored.",
                     "Write `- {value: high, label: High}`.", join(ptr, index))
    return tuple(result)


def _field(ctx: FileContext, node: Any, ptr: str) -> FieldDef | None:
    if not isinstance(node, dict) or node.get("key") is None:
        ctx.diag("missing_key", "A field has no key; it is dropped.", "Add `key:`.", ptr)
        return None
    key = ctx.identifier(node["key"], join(ptr, "key"), "The field key")
    if key is None:
        return None
    extra = ctx.extra(node, ptr, FIELD_KEYS, f"field '{key}'")
    raw_type = node.get("type", "string")
    ftype = FIELD_TYPE_ALIASES.get(raw_type, raw_type) if isinstance(raw_type, str) else None
    if ftype not in FIELD_TYPES:
        ctx.diag("unknown_field_type", f"Field '{key}' has type {raw_type!r}, which does not exist; string is used.",
                 "Use one of: " + ", ".join(sorted(FIELD_TYPES)) + ".", join(ptr, "type"))
        ftype = "string"
    label_value, label_ptr = ctx.pick(node, ptr, "label", "name")
    default = node.get("default")
    if ftype == "url" and default is not None and not web_url(default):
        ctx.diag("invalid_value", f"Field '{key}' has the default {str(default)[:80]!r}, which is not an http(s) URL; "
                 "no default is used.", "Write an address like https://example.com/, or leave the default out.",
                 join(ptr, "default"))
        default = None
    return FieldDef(
        key=key, label=ctx.text(label_value, label_ptr, "The label") or humanize(key), type=ftype,
        required=ctx.boolean(node.get("required"), join(ptr, "required"), "required", False),
        options=_options(ctx, node.get("options"), join(ptr, "options")), default=default,
        min=node.get("min"), max=node.get("max"), prov=ctx.locate(ptr), extra=extra,
    )


def web_url(value: Any) -> bool:
    """An absolute http(s) URL with a host and no whitespace or control characters (what a url field holds)."""
    if not isinstance(value, str) or any(ch.isspace() or ord(ch) < 32 for ch in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _document(ctx: FileContext, node: Any, ptr: str) -> DocumentDef | None:
    if isinstance(node, str):
        node = {"key": node}
    if not isinstance(node, dict) or node.get("key") is None:
        ctx.diag("missing_key", "A document has no key; it is dropped.", "Add `key:`.", ptr)
        return None
    key = ctx.identifier(node["key"], join(ptr, "key"), "The document key")
    if key is None:
        return None
    ctx.extra(node, ptr, {"key", "label", "name", "required", "accept", "description"}, f"document '{key}'")
    label_value, label_ptr = ctx.pick(node, ptr, "label", "name")
    return DocumentDef(key=key, label=ctx.text(label_value, label_ptr, "The label") or humanize(key),
                       required=ctx.boolean(node.get("required"), join(ptr, "required"), "required", False),
                       accept=ctx.strings(node.get("accept"), join(ptr, "accept"), "accept"), prov=ctx.locate(ptr))
