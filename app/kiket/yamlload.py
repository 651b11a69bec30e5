"""Safe YAML reading with node positions: plain data plus a JSON-pointer -> (line, column) map."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

import yaml

from app.kiket.diagnostics import Diagnostic, Provenance, Severity
from app.kiket.filecache import active_cache
from app.kiket.yamlfast import parse_simple
from app.kiket.yamlscan import MAX_DEPTH, MAX_NODES, check_structure

try:  # libyaml's parser when available: composing in C is what keeps large trees fast
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how pyyaml was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_FILE_BYTES = 512 * 1024
MAX_ALIAS_EXPANSIONS = 100
MAX_NUMBER_LENGTH = 100

_TAG = "tag:yaml.org,2002:"
_STR = _TAG + "str"
_MAP = _TAG + "map"
_SEQ = _TAG + "seq"
_MERGE = _TAG + "merge"
# Scalars are built through pyyaml's own safe constructor so int/float/bool/null follow YAML 1.1.
_SCALAR_TAGS = {
    _TAG + "int": "construct_yaml_int",
    _TAG + "float": "construct_yaml_float",
    _TAG + "bool": "construct_yaml_bool",
    _TAG + "null": "construct_yaml_null",
}
# Timestamps and binary stay text: configuration data must stay JSON-ready.
_TEXT_TAGS = {_STR, _TAG + "timestamp", _TAG + "binary", _TAG + "value"}

_KEY_TAGS = _TEXT_TAGS | set(_SCALAR_TAGS)
_SCALAR_NODE = yaml.ScalarNode

_constructor = yaml.constructor.SafeConstructor()


_IMPLICIT = dict(yaml.resolver.Resolver.yaml_implicit_resolvers)


class _FastLoader(_Loader):  # type: ignore[misc, valid-type]
    """The safe loader without path resolvers: tag resolution of plain scalars dominates Python time."""

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool], _get: Any = _IMPLICIT.get,
                _scalar: type = yaml.ScalarNode, _seq: type = yaml.SequenceNode) -> str:
        if kind is _scalar:
            if implicit[0]:
                resolvers = _get(value[:1])
                if resolvers:
                    for tag, regexp in resolvers:
                        if regexp.match(value):
                            return tag
            return _STR
        return _SEQ if kind is _seq else _MAP


@dataclass(frozen=True)
class YamlDocument:
    """A parsed file: plain data (dicts, lists, scalars), node positions and problems."""

    path: str
    data: Any
    marks: dict[str, tuple[int, int]]
    diagnostics: tuple[Diagnostic, ...] = ()
    text: str = ""
    ok: bool = True
    cache_key: tuple | None = None  # set when read through an active FileCache (see filecache.per_file)

    def position(self, pointer: str) -> tuple[int, int] | None:
        """Line and column of the node at `pointer`, or of its nearest known ancestor."""
        marks = self.marks
        while True:
            found = marks.get(pointer)
            if found is not None or not pointer:
                return found
            pointer = pointer.rsplit("/", 1)[0]


@dataclass
class _Walk:
    marks: dict[str, tuple[int, int]] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)
    aliases: int = 0
    nodes: int = 0


class YamlProblem(Exception):
    """Raised inside the walk only; always turned into a Diagnostic by `parse_yaml`."""

    def __init__(self, code: str, message: str, hint: str, line: int | None, column: int | None) -> None:
        super().__init__(message)
        self.code, self.message, self.hint, self.line, self.column = code, message, hint, line, column


def escape_pointer_token(token: str) -> str:
    """Escape one JSON-pointer reference token (RFC 6901)."""
    if "~" in token or "/" in token:
        return token.replace("~", "~0").replace("/", "~1")
    return token


def _mark(node: yaml.Node) -> tuple[int, int]:
    mark = node.start_mark
    return mark.line + 1, mark.column + 1


def _problem(code: str, message: str, hint: str, node: yaml.Node | None) -> YamlProblem:
    line, column = _mark(node) if node is not None else (None, None)
    return YamlProblem(code, message, hint, line, column)


def _scalar(node: yaml.ScalarNode) -> Any:
    tag = node.tag
    if tag in _TEXT_TAGS:
        return node.value
    method = _SCALAR_TAGS.get(tag)
    if method is not None:
        if len(node.value) > MAX_NUMBER_LENGTH:
            # YAML 1.1 reads `1:2:3:...` as a base-60 integer, in time quadratic in its length.
            raise _problem("yaml_number_too_long", f"This number is {len(node.value):,} characters long; Kiket reads"
                           f" numbers of at most {MAX_NUMBER_LENGTH}.",
                           "Write a short number, or quote the value if it is text.", node)
        return getattr(_constructor, method)(node)
    raise _problem(
        "yaml_custom_tag",
        f"The value uses the YAML tag {tag!r}, which Kiket refuses.",
        "Remove the tag; configuration files may only use plain YAML values.",
        node,
    )


def _walk(node: yaml.Node, pointer: str, state: _Walk, depth: int) -> Any:
    state.nodes += 1
    too_many = state.nodes > MAX_NODES
    if too_many or (depth >= MAX_DEPTH and type(node) is not yaml.ScalarNode):
        if state.aliases:  # expanded aliases: the text itself was within the limits (checked before composing)
            raise _problem("yaml_alias_limit", "The file's aliases expand too deep or to too many values to read"
                           " safely.", "Write the repeated values out instead of nesting anchors and aliases.", node)
        line, column = _mark(node)
        raise _too_many_nodes(line, column) if too_many else _too_deep(line, column)
    if type(node) is yaml.ScalarNode:
        return _scalar(node)
    ident = id(node)
    if ident in state.seen:
        state.aliases += 1
        if state.aliases > MAX_ALIAS_EXPANSIONS:
            raise _problem(
                "yaml_alias_limit",
                f"The file expands YAML aliases more than {MAX_ALIAS_EXPANSIONS} times.",
                "Write the repeated values out instead of nesting anchors and aliases.",
                node,
            )
    else:
        state.seen.add(ident)
    marks = state.marks
    if type(node) is yaml.SequenceNode:
        if node.tag != _SEQ:
            raise _scalar_tag_problem(node)
        items = []
        append = items.append
        for index, child in enumerate(node.value):
            child_pointer = f"{pointer}/{index}"
            start = child.start_mark
            marks[child_pointer] = (start.line + 1, start.column + 1)
            if type(child) is _SCALAR_NODE:
                state.nodes += 1
                append(child.value if child.tag == _STR else _scalar(child))
            else:
                append(_walk(child, child_pointer, state, depth + 1))
        return items
    if node.tag != _MAP:
        raise _scalar_tag_problem(node)
    result: dict[Any, Any] = {}
    merged: list[tuple[yaml.Node, yaml.Node]] = []
    for key_node, value_node in node.value:
        if type(key_node) is not _SCALAR_NODE:
            raise _problem(
                "yaml_syntax",
                "A mapping key is a list or a mapping; keys must be plain words.",
                "Use a plain text key.",
                key_node,
            )
        tag = key_node.tag
        if tag not in _KEY_TAGS:
            if tag == _MERGE:
                merged.append((key_node, value_node))
                continue
            raise _scalar_tag_problem(key_node)
        # Keys keep their source text: YAML 1.1 would turn the docs' `on:` into True.
        key = key_node.value
        if key in result:
            raise _problem(
                "yaml_duplicate_key",
                f"The key {key!r} appears twice in the same mapping.",
                "Remove or rename one of them; YAML would silently keep only the last.",
                key_node,
            )
        child_pointer = f"{pointer}/{key}" if "/" not in key and "~" not in key \
            else f"{pointer}/{escape_pointer_token(key)}"
        start = key_node.start_mark
        marks[child_pointer] = (start.line + 1, start.column + 1)
        if type(value_node) is _SCALAR_NODE:
            state.nodes += 1
            result[key] = value_node.value if value_node.tag == _STR else _scalar(value_node)
        else:
            result[key] = _walk(value_node, child_pointer, state, depth + 1)
    for key_node, value_node in merged:
        _merge_into(result, key_node, value_node, pointer, state, depth)
    return result


def _merge_into(result: dict, key_node: yaml.Node, value_node: yaml.Node, pointer: str, state: _Walk, depth: int) -> None:
    sources = value_node.value if type(value_node) is yaml.SequenceNode else [value_node]
    for source in sources:
        if type(source) is not yaml.MappingNode:
            raise _problem("yaml_syntax", "A merge key (<<) must name a mapping.", "Merge only mappings.", key_node)
        data = _walk(source, pointer, state, depth + 1)
        for key, value in data.items():
            result.setdefault(key, value)


def _too_deep(line: int, column: int) -> YamlProblem:
    return YamlProblem("yaml_too_deep", f"The YAML nests more than {MAX_DEPTH} levels deep here; the file is not read.",
                       "Flatten the structure: configuration never needs this many levels.", line, column)


def _too_many_nodes(line: int, column: int) -> YamlProblem:
    return YamlProblem("yaml_too_many_nodes", f"The file holds more than {MAX_NODES:,} values; it is not read past"
                       " this point.", "Split the file or remove repeated content.", line, column)


def _scalar_tag_problem(node: yaml.Node) -> YamlProblem:
    return _problem(
        "yaml_custom_tag",
        f"The value uses the YAML tag {node.tag!r}, which Kiket refuses.",
        "Remove the tag; configuration files may only use plain YAML values.",
        node,
    )


def _syntax_problem(exc: yaml.YAMLError, text: str) -> YamlProblem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    at_tab = mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t"
    if at_tab or "'\\t'" in problem:
        return YamlProblem(
            "yaml_tab_indent",
            "A tab character is used where YAML needs spaces.",
            "Indent with spaces only.",
            line,
            column,
        )
    if "expected a single document" in f"{context} {problem}":
        return YamlProblem(
            "yaml_multiple_documents",
            "The file holds more than one YAML document (a second '---').",
            "Keep one document per file.",
            line,
            column,
        )
    if "could not determine a constructor" in problem or "unknown tag" in problem:
        return YamlProblem("yaml_custom_tag", f"Unsupported YAML tag: {problem}.", "Remove the tag.", line, column)
    if "found undefined alias" in problem or "found undefined anchor" in (context or ""):
        text = f"{problem}"
    else:
        text = f"{context + ', ' if context else ''}{problem}"
    return YamlProblem("yaml_syntax", f"The YAML does not parse: {text}.", "Fix the syntax at this position.", line, column)


def parse_yaml(
    data: bytes,
    path: str,
    prov: Provenance,
    *,
    interpreted: bool = True,
    require_mapping: bool = True,
) -> YamlDocument:
    """Read one file safely; problems become diagnostics (fatal for interpreted files), never exceptions.

    While a FileCache is active, the same bytes at the same path and source are parsed once.
    """
    cache = active_cache()
    if cache is None:
        return _parse_yaml(data, path, prov, interpreted, require_mapping)
    key = ("yaml", cache.blob_id(data), path, prov.layer, prov.repo, prov.branch, prov.record, interpreted,
           require_mapping)
    doc = cache.get(key)
    if doc is None:
        doc = replace(_parse_yaml(data, path, prov, interpreted, require_mapping), cache_key=key)
        cache.put(key, doc, len(data))
    return doc


def _parse_yaml(data: bytes, path: str, prov: Provenance, interpreted: bool, require_mapping: bool,
                fast: bool = True) -> YamlDocument:
    """`parse_yaml` without the cache; `fast=False` always composes with libyaml (to compare both readers)."""
    failure: Severity = "fatal" if interpreted else "warning"
    base = prov if prov.path == path else Provenance(
        layer=prov.layer, repo=prov.repo, branch=prov.branch, commit_sha=prov.commit_sha, path=path
    )

    def fail(code: str, message: str, hint: str, line: int | None = None, column: int | None = None,
             severity: Severity = failure, extra: tuple[Diagnostic, ...] = (), text: str = "") -> YamlDocument:
        diag = Diagnostic(code, severity, message, hint, base.at(line=line, column=column, pointer=""))
        return YamlDocument(path, None, {}, extra + (diag,), text, ok=False)

    if len(data) > MAX_FILE_BYTES:
        return fail(
            "file_too_large",
            f"The file is {len(data) // 1024} KiB; the limit is 512 KiB per file.",
            "Split it or remove large content.",
            severity="fatal",
        )
    notes: tuple[Diagnostic, ...] = ()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        notes = (Diagnostic("yaml_bom", "info", "The file starts with a UTF-8 byte-order mark, which was ignored.",
                            "Save the file as UTF-8 without BOM.", base.at(line=1, column=1, pointer="")),)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return fail("yaml_encoding", "The file is not valid UTF-8 text.", "Save the file as UTF-8.",
                    line, column, extra=notes)
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        return fail("yaml_encoding", "The file contains NUL bytes; it looks binary.", "Save it as UTF-8 text.",
                    line, 1, extra=notes)
    limit = check_structure(text, data)
    if limit is not None:
        problem = (_too_deep if limit.code == "yaml_too_deep" else _too_many_nodes)(limit.line, limit.column)
        return fail(problem.code, problem.message, problem.hint, problem.line, problem.column, extra=notes, text=text)
    simple = parse_simple(text) if fast else None
    if simple is not None:
        return YamlDocument(path, simple[0], simple[1], notes, text, ok=True)
    loader = _FastLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        problem = _syntax_problem(exc, text)
        return fail(problem.code, problem.message, problem.hint, problem.line, problem.column, extra=notes, text=text)
    except (RecursionError, MemoryError, ValueError) as exc:
        return fail("yaml_syntax", f"The YAML cannot be read: {exc.__class__.__name__}.",
                    "Simplify the file.", extra=notes, text=text)
    finally:
        loader.dispose()
    if root is None:
        if require_mapping:
            return fail("empty_file", "The file is empty.", "Add content or delete the file.", 1, 1,
                        extra=notes, text=text)
        return YamlDocument(path, None, {}, notes, text, ok=True)
    state = _Walk()
    state.marks[""] = _mark(root)
    try:
        value = _walk(root, "", state, 0)
    except YamlProblem as problem:
        return fail(problem.code, problem.message, problem.hint, problem.line, problem.column, extra=notes, text=text)
    except (RecursionError, ValueError, TypeError) as exc:
        line, column = _mark(root)
        return fail("yaml_syntax", f"The YAML cannot be read: {exc}.", "Fix or simplify the file.",
                    line, column, extra=notes, text=text)
    if require_mapping and not isinstance(value, dict):
        line, column = _mark(root)
        kind = "a list" if isinstance(value, list) else "a single value"
        return fail("yaml_not_mapping", f"The top level of the file is {kind}, not a mapping of keys.",
                    "Start the file with keys such as `workflow:` or `states:`.", line, column,
                    extra=notes, text=text)
    return YamlDocument(path, value, state.marks, notes, text, ok=True)


def locator(doc: YamlDocument, prov: Provenance) -> Callable[[str], Provenance]:
    """A `locate(pointer) -> Provenance` function for one document."""
    cache: dict[str, Provenance] = {}
    marks = doc.marks

    def locate(pointer: str) -> Provenance:
        found = cache.get(pointer)
        if found is None:
            position = marks.get(pointer) or doc.position(pointer)
            line, column = position if position else (None, None)
            found = prov.at(line=line, column=column, pointer=pointer)
            cache[pointer] = found
        return found

    return locate
