"""Structural limits of a YAML text, checked before any tree is built.

pyyaml's C composer (`_yaml.pyx`) builds node trees by recursion on the C stack: some ten thousand
nested `[` (100 KB of text) overflow it and the process dies of SIGSEGV, which no `except` can catch.
libyaml's event parser keeps its own stacks on the heap and never recurses. So before composing, a
byte count bounds the nesting depth and node count from above; only when a bound is over the limit
does the exact check run, on libyaml's events, which stops at the first event past the limit. The
bounds count brackets inside quotes and comments too, so they only ever overestimate: a legitimate
file is never refused by them, only checked exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

try:
    from yaml import CSafeLoader as _EventLoader
except ImportError:  # pragma: no cover - depends on how pyyaml was built
    from yaml import SafeLoader as _EventLoader  # type: ignore[assignment]

MAX_DEPTH = 100
MAX_NODES = 250_000
# Deepest tree handed to the composer without an exact check: far below the ~10^4 levels that overflow
# an 8 MiB C stack, and high enough that ordinary files (lines up to ~500 characters) never need one.
COMPOSE_DEPTH_BOUND = 1000

_COLLECTION_START = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_COLLECTION_END = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
_NODE = (yaml.ScalarEvent, yaml.AliasEvent) + _COLLECTION_START


@dataclass(frozen=True)
class StructureProblem:
    """The first node past a limit: which limit, and where (1-based)."""

    code: str
    line: int
    column: int


def structure_bounds(data: bytes) -> tuple[int, int]:
    """Upper bounds of (nesting depth, node count) from byte counts alone.

    Depth: each flow collection opens with `[` or `{`; each block collection rolls libyaml's indent to a
    strictly greater column (at most one column per byte of the longest line), plus at most one
    indentless sequence per indent. Nodes: every node but the root follows one of `- : ? , [ {`, and
    each of these brings at most three (an entry `{a, b}` is a key, a null value and maybe the mapping).
    """
    flow = data.count(b"[") + data.count(b"{")
    longest = max(map(len, data.split(b"\n")))
    depth = flow + 2 * (longest + 1) + 1
    markers = flow + data.count(b"-") + data.count(b":") + data.count(b"?") + data.count(b",")
    return depth, 1 + 3 * markers


def check_structure(text: str, data: bytes) -> StructureProblem | None:
    """The first node nested deeper than MAX_DEPTH or past MAX_NODES, or None; never composes a tree.

    A syntax error met before any limit returns None: composing stops at the same event, so the
    composer then reports it without having gone deeper than the limits.
    """
    depth_bound, node_bound = structure_bounds(data)
    if depth_bound <= COMPOSE_DEPTH_BOUND and node_bound <= MAX_NODES:
        return None
    return _scan_events(text)


def _scan_events(text: str) -> StructureProblem | None:
    loader = _EventLoader(text)
    depth = nodes = 0
    try:
        while True:
            event = loader.get_event()
            if event is None or type(event) is yaml.StreamEndEvent:
                return None
            if isinstance(event, _NODE):
                nodes += 1
                if nodes > MAX_NODES:
                    return _at("yaml_too_many_nodes", event)
                if isinstance(event, _COLLECTION_START):
                    depth += 1
                    if depth > MAX_DEPTH:
                        return _at("yaml_too_deep", event)
            elif isinstance(event, _COLLECTION_END):
                depth -= 1
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()


def _at(code: str, event: yaml.Event) -> StructureProblem:
    mark = event.start_mark
    return StructureProblem(code, mark.line + 1, mark.column + 1)
