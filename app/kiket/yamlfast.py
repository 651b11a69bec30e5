"""A line-based reader for the plain subset of YAML most configuration files are written in.

Composing with libyaml builds a node and two marks per value and calls back into Python for every
scalar: most of what parsing a large tree costs. This reader handles block mappings and sequences,
one-line flow collections, plain and one-line quoted scalars, and comments, and builds the same data
and the same `pointer -> (line, column)` map as `yamlload._walk` does from composed nodes. Anything
outside that subset (anchors, tags, block or multi-line scalars, escapes, explicit keys, document
markers, tabs, line breaks other than \n and \r\n) and anything it would have to judge as an error
makes it answer None, and the caller composes the file with libyaml as before: it never decides what a
file means where libyaml might read it differently. tests/unit/kiket/test_yamlfast.py compares both readers on
every file of the fixtures, the corpus, the bundled templates and generated text.

Lines of block mappings repeat (`type: active`, `required: true`, a label in every copy of a workflow): what
a `key: scalar` line means is remembered by its text, bounded, and only where the line stands at the same
column; flow collections are built anew each time, so no two places share a mutable value.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import yaml

_TAG = "tag:yaml.org,2002:"
_STR = _TAG + "str"
# Plain scalars resolve by YAML 1.1's implicit rules, keyed by their first character (as in the loader).
_IMPLICIT = dict(yaml.resolver.Resolver.yaml_implicit_resolvers)
_TEXT_TAGS = frozenset({_STR, _TAG + "timestamp", _TAG + "binary", _TAG + "value"})
_CONSTRUCT = {
    _TAG + "int": yaml.constructor.SafeConstructor.construct_yaml_int,
    _TAG + "float": yaml.constructor.SafeConstructor.construct_yaml_float,
    _TAG + "bool": yaml.constructor.SafeConstructor.construct_yaml_bool,
    _TAG + "null": yaml.constructor.SafeConstructor.construct_yaml_null,
}
_constructor = yaml.constructor.SafeConstructor()
MAX_NUMBER_LENGTH = 100  # longer numbers are the loader's to refuse (yaml_number_too_long)
# Deeper trees are left to the loader, which enforces MAX_DEPTH with the error it owes.
MAX_FAST_DEPTH = 50
MAX_KEY_LENGTH = 1000  # libyaml refuses simple keys past 1024 characters
# Characters outside printable text, tabs, carriage returns and YAML 1.1's other line breaks.
_UNSAFE = re.compile("[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
_SAFE_ASCII = bytes(range(0x20, 0x7f)) + b"\n"
# First character of a plain scalar: never an indicator (`-` is checked apart).
_PLAIN_START = frozenset("?:,[]{}#&*!|>'\"%@`")
# A plain scalar inside a flow collection runs up to `, [ ] { } :` or `#` (a comment ends the line: declined).
_flow_plain_end = re.compile(r"[^,\[\]{}:#]+").match


class _Decline(Exception):
    """The text leaves the subset: the loader composes it with libyaml instead."""


def parse_simple(text: str) -> tuple[Any, dict[str, tuple[int, int]]] | None:
    """(data, marks) as the composing loader would build them, or None when the text is not plain enough."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")  # one line break, as libyaml reads it; a lone \r stays unsafe
    if text.isascii():
        if text.encode("ascii").translate(None, _SAFE_ASCII):
            return None
    elif _UNSAFE.search(text) is not None:
        return None
    try:
        return _Reader(text).document()
    except (_Decline, IndexError):
        return None


def _escape(key: str) -> str:
    if "~" in key or "/" in key:
        return key.replace("~", "~0").replace("/", "~1")
    return key


class _Reader:
    def __init__(self, text: str) -> None:
        lines = []
        append = lines.append
        for number, line in enumerate(text.split("\n"), 1):
            if line:
                first = line[0]
                if first == " ":
                    stripped = line.lstrip(" ")
                    if stripped and stripped[0] != "#":
                        append((number, len(line) - len(stripped), line))
                elif first != "#":
                    if first in "%-." and (first == "%" or line.startswith(("---", "..."))):
                        raise _Decline  # a directive or a document marker
                    append((number, 0, line))
        self.lines = lines
        self.marks: dict[str, tuple[int, int]] = {}
        self.scalars: dict[str, Any] = {}

    def document(self) -> tuple[Any, dict[str, tuple[int, int]]] | None:
        lines = self.lines
        if not lines:
            return None
        number, indent, line = lines[0]
        if line.startswith("-", indent):
            raise _Decline
        self.marks[""] = (number, indent + 1)
        data, index = self.mapping(0, indent, "", 0)
        if index != len(lines):
            raise _Decline
        return data, self.marks

    # Block collections -------------------------------------------------------------------------------------

    def mapping(self, index: int, column: int, pointer: str, depth: int) -> tuple[dict, int]:
        """The block mapping whose keys stand at `column`, from line `index`; (mapping, next line)."""
        if depth > MAX_FAST_DEPTH:
            raise _Decline
        lines, marks = self.lines, self.marks
        result: dict[str, Any] = {}
        count = len(lines)
        depth += 1
        known, plain, key_column = _LINES.get, self.plain, column + 1
        while index < count:
            number, indent, line = lines[index]
            if indent != column:
                if indent > column:
                    raise _Decline
                break
            found = known(line)
            if found is not None and found[0] == column:
                _, key, token, at, value = found
            else:
                # The line's key, where its value starts (-1: on the next lines) and a scalar value (or _INLINE).
                first = line[column]
                if first == "'" or first == '"':
                    key, at = _quoted(line, column)
                    while line.startswith(" ", at):
                        at += 1
                    if not line.startswith(":", at):
                        raise _Decline
                    at += 1
                else:
                    if first in _PLAIN_START or first == "-":
                        raise _Decline
                    at = line.find(": ", column)
                    if at == -1:
                        if line[-1] != ":":
                            raise _Decline
                        at = len(line) - 1
                    key = line[column:at]
                    if key[-1] == " " or key == "<<" or " #" in key or len(key) > MAX_KEY_LENGTH:
                        raise _Decline
                    at += 1
                token = f"/{key}" if "/" not in key and "~" not in key else f"/{_escape(key)}"
                length = len(line)
                if at < length:
                    if line[at] != " ":
                        raise _Decline
                    at += 1
                    while at < length and line[at] == " ":
                        at += 1
                if at == length or line[at] == "#":
                    at, value = -1, None
                else:
                    value = _inline_scalar(line, at, plain)
                if length <= _MAX_LINE_LENGTH:
                    if len(_LINES) >= _MAX_LINES:
                        _LINES.clear()
                    _LINES[line] = (column, key, token, at, value)
            if key in result:
                raise _Decline
            child = pointer + token
            marks[child] = (number, key_column)
            if at < 0:
                index += 1
                if index < count:
                    following = lines[index]
                    if following[1] > column:
                        result[key], index = self.block(index, child, depth)
                        continue
                    if following[1] == column and _is_entry(following[2], column):
                        result[key], index = self.sequence(index, column, child, depth)
                        continue
                result[key] = None
                continue
            result[key] = self.inline(line, at, child, depth, number) if value is _INLINE else value
            index += 1
        return result, index

    def block(self, index: int, pointer: str, depth: int) -> tuple[Any, int]:
        """The block node that starts on line `index` (more indented than its parent)."""
        _, indent, line = self.lines[index]
        if _is_entry(line, indent):
            return self.sequence(index, indent, pointer, depth)
        return self.mapping(index, indent, pointer, depth)

    def sequence(self, index: int, column: int, pointer: str, depth: int) -> tuple[list, int]:
        """The block sequence whose dashes stand at `column`; (list, next line)."""
        if depth > MAX_FAST_DEPTH:
            raise _Decline
        lines, marks = self.lines, self.marks
        items: list[Any] = []
        count = len(lines)
        depth += 1
        known = _ITEMS.get
        while index < count:
            number, indent, line = lines[index]
            if indent != column:
                if indent > column:
                    raise _Decline
                break
            found = known(line)
            if found is not None and found[0] == column:
                _, start, kind = found
            else:
                if not _is_entry(line, column):
                    break
                start = column + 1
                length = len(line)
                while start < length and line[start] == " ":
                    start += 1
                if start == length or line[start] in "#-":
                    raise _Decline  # an empty item, a comment where the item should be, or `- - x`
                kind = _ITEM_MAPPING if self.starts_mapping(line, start) else \
                    _ITEM_FLOW if line[start] == "[" or line[start] == "{" else _ITEM_VALUE
                if length <= _MAX_LINE_LENGTH:
                    if len(_ITEMS) >= _MAX_LINES:
                        _ITEMS.clear()
                    _ITEMS[line] = (column, start, kind)
            child = f"{pointer}/{len(items)}"
            marks[child] = (number, start + 1)
            if kind == _ITEM_MAPPING:
                # The item's mapping: its first key shares the dash's line, the others stand under it.
                lines[index] = (number, start, line)
                value, index = self.mapping(index, start, child, depth)
            else:
                value = self.flow_line(line, start, child, depth, number) if kind == _ITEM_FLOW else \
                    self.inline(line, start, child, depth, number)
                index += 1
                if index < count and lines[index][1] > column:
                    raise _Decline
            items.append(value)
        return items, index

    def starts_mapping(self, line: str, at: int) -> bool:
        """Whether the text at `at` is a `key:` (then `mapping` reads it), rather than a single value."""
        first = line[at]
        if first == "'" or first == '"':
            _, end = _quoted(line, at)
            while line.startswith(" ", end):
                end += 1
            return line.startswith(":", end)
        if first == "[" or first == "{":
            return False
        colon = line.find(":", at)
        while colon != -1:
            if colon + 1 == len(line) or line[colon + 1] == " ":
                comment = line.find(" #", at)
                return comment == -1 or comment > colon
            colon = line.find(":", colon + 1)
        return False

    # Values on one line ------------------------------------------------------------------------------------

    def inline(self, line: str, at: int, pointer: str, depth: int, number: int) -> Any:
        """A value that starts at `at` and ends on this line: a scalar or a flow collection."""
        first = line[at]
        if first == "[" or first == "{":
            return self.flow_line(line, at, pointer, depth, number)
        if first == "'" or first == '"':
            value, end = _quoted(line, at)
        else:
            if first in _PLAIN_START or (first == "-" and (at + 1 == len(line) or line[at + 1] == " ")):
                raise _Decline
            comment = line.find(" #", at)
            text = line[at:] if comment == -1 else line[at:comment]
            if text[-1] == " ":
                text = text.rstrip(" ")
            if ": " in text or text[-1] == ":":
                raise _Decline
            return self.plain(text)
        length = len(line)
        if end < length:
            if line[end] != " ":
                raise _Decline
            while end < length and line[end] == " ":
                end += 1
            if end < length and line[end] != "#":
                raise _Decline
        return value

    def flow_line(self, line: str, at: int, pointer: str, depth: int, number: int) -> Any:
        """A flow collection that ends the line. A line met a second time is remembered in `_FLOWS` (its shape
        and relative marks), and later copies are built from that, with new containers and their own marks."""
        found = _FLOWS.get(line, _MISSING)
        if found is not _MISSING and found is not None and found[0] == at and depth + found[1] <= MAX_FAST_DEPTH:
            _, _, shape, relative = found
            marks = self.marks
            for suffix, column in relative:
                marks[pointer + suffix] = (number, column)
            return _build(shape)
        if found is _MISSING:  # the first time: read as is, and note the line
            value, end = self.flow(line, at, pointer, depth, number)
            _flow_end(line, end)
            if len(line) <= _MAX_LINE_LENGTH:
                if len(_FLOWS) >= _MAX_FLOWS:
                    _FLOWS.clear()
                _FLOWS[line] = None
            return value
        marks = self.marks
        self.marks = scratch = {}
        try:
            value, end = self.flow(line, at, "", depth, number)
        finally:
            self.marks = marks
        _flow_end(line, end)
        relative = tuple((suffix, column) for suffix, (_, column) in scratch.items())
        for suffix, column in relative:
            marks[pointer + suffix] = (number, column)
        _FLOWS[line] = (at, _nesting(value), _shape(value), relative)
        return value

    def flow(self, line: str, at: int, pointer: str, depth: int, number: int) -> tuple[Any, int]:
        """A flow collection that closes on this line; (value, position after it)."""
        if depth > MAX_FAST_DEPTH:
            raise _Decline
        marks = self.marks
        depth += 1
        if line[at] == "[":
            items: list[Any] = []
            at = _skip(line, at + 1)
            if line[at] == "]":
                return items, at + 1
            while True:
                child = f"{pointer}/{len(items)}"
                marks[child] = (number, at + 1)
                value, at = self.flow_node(line, at, child, depth, number)
                if line[at] == ":":
                    raise _Decline  # a single-pair mapping inside a flow sequence
                items.append(value)
                at = _next_entry(line, at, "]")
                if at < 0:
                    return items, -at
        result: dict[str, Any] = {}
        at = _skip(line, at + 1)
        if line[at] == "}":
            return result, at + 1
        while True:
            start = at
            if line[at] == "'" or line[at] == '"':
                key, at = _quoted(line, at)
                at = _skip(line, at)
            else:
                key, at = self.flow_node(line, at, pointer, depth, number, key=True)
            if line[at] != ":" or line[at + 1] != " " or key in result:
                raise _Decline
            child = f"{pointer}/{key}" if "/" not in key and "~" not in key else f"{pointer}/{_escape(key)}"
            marks[child] = (number, start + 1)
            at += 2
            while line[at] == " ":
                at += 1
            result[key], at = self.flow_node(line, at, child, depth, number)
            at = _next_entry(line, at, "}")
            if at < 0:
                return result, -at

    def flow_node(self, line: str, at: int, pointer: str, depth: int, number: int,
                  key: bool = False) -> tuple[Any, int]:
        """A value inside a flow collection (a plain key's text with `key`); (value, position after it).

        A plain scalar runs up to `, [ ] { } :` or `#`; the caller judges what stops it.
        """
        first = line[at]
        if not key:
            if first == "[" or first == "{":
                return self.flow(line, at, pointer, depth, number)
            if first == "'" or first == '"':
                return _quoted(line, at)
        if first in _PLAIN_START or first == "-":
            raise _Decline
        end = _flow_plain_end(line, at).end()
        text = line[at:end]
        if text[-1] == " ":
            text = text.rstrip(" ")
        if key:
            if text == "<<":
                raise _Decline
            return text, end
        return self.plain(text), end

    def plain(self, text: str) -> Any:
        """A plain scalar's value by YAML 1.1's implicit rules, as `yamlload._scalar` builds it."""
        value: Any = self.scalars.get(text, _MISSING)
        if value is _MISSING:
            value = self.scalars[text] = _plain(text)
        return value


def _plain(text: str) -> Any:
    """A plain scalar's value by YAML 1.1's implicit rules (text, number, boolean or null)."""
    resolvers = _IMPLICIT.get(text[:1])
    if resolvers:
        for tag, regexp in resolvers:
            if regexp.match(text):
                if tag not in _TEXT_TAGS:
                    construct = _CONSTRUCT.get(tag)
                    if construct is None or len(text) > MAX_NUMBER_LENGTH:
                        raise _Decline
                    return construct(_constructor, yaml.ScalarNode(tag, text))
                break
    return text


def _inline_scalar(line: str, at: int, plain: Callable[[str], Any]) -> Any:
    """The scalar that starts at `at` and ends the line (as `_Reader.inline` reads it), or _INLINE for a flow
    collection."""
    first = line[at]
    if first == "[" or first == "{":
        return _INLINE
    if first == "'" or first == '"':
        value, end = _quoted(line, at)
        length = len(line)
        if end < length:
            if line[end] != " ":
                raise _Decline
            while end < length and line[end] == " ":
                end += 1
            if end < length and line[end] != "#":
                raise _Decline
        return value
    if first in _PLAIN_START or (first == "-" and (at + 1 == len(line) or line[at + 1] == " ")):
        raise _Decline
    comment = line.find(" #", at)
    text = line[at:] if comment == -1 else line[at:comment]
    if text[-1] == " ":
        text = text.rstrip(" ")
    if ": " in text or text[-1] == ":":
        raise _Decline
    return plain(text)


_MISSING = object()
_INLINE = object()  # a value `mapping` leaves to `inline` (a flow collection: new objects and marks each time)
# Lines of block mappings already read: many repeat (`type: active`, `required: true`) within and across files.
_LINES: dict[str, tuple[int, str, str, int, Any]] = {}
# Bounds of the memos (about 6 MB and 5 MB at most); the 1,000-file benchmark repository has 2,938 distinct
# key lines and 312 distinct flow lines.
_MAX_LINES = 20_000
# Lines of block sequences already read: (column of the dash, where the item starts, what it holds).
_ITEMS: dict[str, tuple[int, int, int]] = {}
_ITEM_MAPPING, _ITEM_FLOW, _ITEM_VALUE = 0, 1, 2
_MAX_FLOWS = 5_000
_MAX_LINE_LENGTH = 200


def clear_memo() -> None:
    """Forget the lines read so far (to measure a cold load; the memos are bounded without it)."""
    _LINES.clear()
    _FLOWS.clear()
    _ITEMS.clear()


# Flow collections already read, by line: None once met, then (where it starts, nesting below it, shape,
# relative marks).
_FLOWS: dict[str, tuple[int, int, tuple, tuple[tuple[str, int], ...]] | None] = {}


def _flow_end(line: str, end: int) -> None:
    """After a flow collection: nothing but spaces and a comment may follow on its line."""
    length = len(line)
    if end < length:
        if line[end] != " ":
            raise _Decline
        while end < length and line[end] == " ":
            end += 1
        if end < length and line[end] != "#":
            raise _Decline


def _nesting(value: Any) -> int:
    """How many flow collections stand inside the outer one, at most, on one path."""
    children = value.values() if type(value) is dict else value
    return max((1 + _nesting(item) for item in children if type(item) is dict or type(item) is list), default=0)


def _shape(value: Any) -> tuple:
    """A collection as (kind, items) to build copies from: 0 and 1 for a flat mapping and list (copied at
    once), 2 and 3 for ones holding collections (their shapes in place of the collections)."""
    if type(value) is dict:
        if any(type(item) is dict or type(item) is list for item in value.values()):
            return 2, tuple((key, _shape(item) if type(item) is dict or type(item) is list else item)
                            for key, item in value.items())
        return 0, dict(value)
    if any(type(item) is dict or type(item) is list for item in value):
        return 3, tuple(_shape(item) if type(item) is dict or type(item) is list else item for item in value)
    return 1, tuple(value)


def _build(shape: tuple) -> Any:
    """A new collection of this shape (scalars are immutable, so they are shared)."""
    kind, items = shape
    if kind == 0:
        return items.copy()
    if kind == 1:
        return list(items)
    if kind == 2:
        return {key: _build(item) if type(item) is tuple else item for key, item in items}
    return [_build(item) if type(item) is tuple else item for item in items]


def _skip(line: str, at: int) -> int:
    """The first position from `at` that is not a space (an IndexError past the end: the caller declines)."""
    while line[at] == " ":
        at += 1
    return at


def _next_entry(line: str, at: int, closer: str) -> int:
    """After a value in a flow collection: the next entry's position, or minus the position after `closer`."""
    while line[at] == " ":
        at += 1
    if line[at] == closer:
        return -(at + 1)
    if line[at] != ",":
        raise _Decline
    at += 1
    while line[at] == " ":
        at += 1
    if line[at] == closer:
        raise _Decline  # a trailing comma
    return at


def _is_entry(line: str, column: int) -> bool:
    """Whether the line holds a block sequence entry (`- `) at `column`."""
    return line.startswith("-", column) and (len(line) == column + 1 or line[column + 1] == " ")


def _quoted(line: str, at: int) -> tuple[str, int]:
    """A quoted scalar closed on this line, without escapes; (text, position after the closing quote)."""
    quote = line[at]
    end = line.find(quote, at + 1)
    if end == -1:
        raise _Decline
    if quote == "'":
        if line.startswith("'", end + 1):
            parts = []
            start = at + 1
            while True:
                end = line.find("'", start)
                if end == -1:
                    raise _Decline
                if line.startswith("'", end + 1):
                    parts.append(line[start:end + 1])
                    start = end + 2
                    continue
                parts.append(line[start:end])
                return "".join(parts), end + 1
        return line[at + 1:end], end + 1
    text = line[at + 1:end]
    if "\\" in text:
        raise _Decline
    return text, end + 1
