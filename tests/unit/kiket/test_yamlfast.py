"""The line-based reader agrees with composing through libyaml wherever it answers, and declines the rest.

Agreement is exact: the same data with the same types (1 is not True, '1' is not 1), the same keys in the
same order, and the same pointer -> (line, column) map.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from app.kiket.diagnostics import Provenance
from app.kiket import yamlfast
from app.kiket.yamlfast import clear_memo, parse_simple
from app.kiket.yamlload import _parse_yaml
from bench.generate_repo import generate
from tests.support.fixture_repos import NAMES

ROOT = Path(__file__).resolve().parents[3]
CORPUS = Path(__file__).resolve().parent / "corpus"


def _same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[key], b[key]) for key in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def agrees(text: str) -> bool | None:
    """None when the fast reader declines; else whether it built what composing builds."""
    fast = parse_simple(text)
    if fast is None:
        return None
    composed = _parse_yaml(text.encode(), "x.yaml", Provenance(), True, False, fast=False)
    assert composed.ok, f"the fast reader accepted what libyaml refuses: {text!r} ({composed.diagnostics})"
    assert _same(fast[0], composed.data), text
    assert fast[1] == composed.marks, text
    return True


def _texts(files: dict[str, bytes]) -> list[str]:
    return [data.decode("utf-8") for path, data in sorted(files.items()) if path.endswith((".yaml", ".yml"))]


def test_every_fixture_file(fixture_repos):
    results = [agrees(text) for name in NAMES for text in _texts(fixture_repos.files(name))]
    # Most real files are plain enough for the fast path (agents and intakes write prompts as block scalars).
    assert results.count(True) * 2 > len(results)


def test_every_corpus_and_bundled_file():
    paths = [*CORPUS.glob("**/*.y*ml"), *(ROOT / "app" / "kiket" / "bundled").glob("**/*.y*ml")]
    results = [agrees(path.read_text("utf-8")) for path in paths]
    assert results.count(True) > 300


def test_the_benchmark_repository_takes_the_fast_path_whole():
    texts = _texts(generate())
    assert all(parse_simple(text) is not None for text in texts)
    assert all(agrees(text) for text in texts[::20])  # its files differ in numbers only


@pytest.mark.parametrize("text", [
    "a: &x 1\nb: *x\n", "a: !!str 1\n", "a: |\n  text\n", "a: >-\n  text\n", "a: b\n  continued\n",
    "a:\tb\n", "a: b\rc: d\n", "a: b\x85c: d\n", "a: 1\na: 2\n", "<<: {b: 1}\n", "a: 1" + ":1" * 60 + "\n",
    "- a\n- b\n", "a: [b,\n  c]\n", "a: 'b\n  c'\n", 'a: "b\\n"\n', "? a\n: b\n", "---\na: 1\n", "a: 1\n...\n",
    "%YAML 1.1\n---\na: 1\n", "a:\n- - b\n", "a:\n  -\n  - b\n", "a: b: c\n", "a: {b}\n", "a: [b, ]\n", "a: [b: c]\n",
    "", "# only\n", "a: <<\n", "{a: 1}\n", "a: [1]x\n", "a: 'b' c\n", "a: 'b'#c\n", "a:b\n", "a: -\n", "a: - b\n",
])
def test_declines_what_it_does_not_read(text):
    assert parse_simple(text) is None


@pytest.mark.parametrize("text", [
    "a: 1\nb: 1.5\nc: yes\nd: ~\ne: 2024-01-01\nf: [x, 'y']\ng: {h: null}\non: x\n",
    "a:\n- b\n- c: 1\n  d: [2, {e: f}]\ng: 'it''s'\n", "x:\n  -   a: 1\n      b: 2\n  - c\n",
    "'quoted key': \"v\"\n\"k\" :  v   # comment\nu: http://x.y/z#frag\nv: a#b\n", "  a: 1\n  b:\n    c: 0x1F\n",
    "a: -1\nb: +.inf\nc: 0o17\nd: 1_000\ne: 190:20:30\nf: =\ng: 'a #b'\nh: [ a , 'b' ]\ni: {}\nj: []\n",
    "a/b: 1\nc~d: 2\né: ü\nk: \u00a0x\n", "a: # nothing\nb:\n\n# between\nc: 3\n",
])
def test_reads_plain_yaml_as_libyaml_does(text):
    assert agrees(text) is True


_KEYS = ["a", "id", "on", "yes", "No", "1", "0x10", "1:20", "~", "null", "a:b", "a b", "a#b", "'q'", '"dq"',
         "a/b", "a~b", "é", "x-y", "=", "2001-12-14", ".5", "[a]x", "k,v", "''", "<<", "-x", "a ", "?x", "*a"]
_VALUES = ["v", "hello world", "1", "-1", "+1", "0o7", "0b1", "1_000", "1.5", "1e3", "1.0e+3", ".inf", "-.Inf",
           ".NaN", "true", "Yes", "off", "y", "n", "~", "null", "NULL", "", "# c", "2001-12-14", "12:30:45", "1:20",
           "'q'", "'it''s'", '"dq"', "'a #b'", "a #b", "a#b", "http://x.y/z", "[]", "{}", "[a, b]", "[a,b]",
           "[ a , 'b' ]", "{a: 1, b: [x, y]}", "{a: {b: c}}", "[{a: 1}, {b: 2}]", "{'k': v}", "{a: 1} # c", "=",
           "a]", "a, b", "é", "0x1F", "-0", "0.", "190:20:30", "TRUE", "On", '"a\\nb"', "a: b", "a:", "[a, ]",
           "{a}", "[a: b]", "|", "&x v", "*x", "!!str v", "-", "- x", "<<", "{a: b", "1" * 120]


def _document(rng: random.Random) -> str:
    """A block-style document from pieces that are mostly valid and sometimes not."""

    def value() -> str:
        return rng.choice(_VALUES[:52] if rng.random() < 0.93 else _VALUES)

    def key() -> str:
        return rng.choice(_KEYS[:25] if rng.random() < 0.95 else _KEYS)

    def mapping(indent: int, depth: int) -> list[str]:
        lines = []
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.3 and depth < 4:
                lines.append(" " * indent + key() + ":" + rng.choice(["", " ", " # c"]))
                inner = indent + rng.choice([0, 2, 2, 2, 4, 1])
                lines += sequence(inner, depth + 1) if inner == indent or rng.random() < 0.3 \
                    else mapping(inner, depth + 1)
            else:
                lines.append(" " * indent + key() + ":" + rng.choice([" ", "  ", ""]) + value()
                             + rng.choice(["", " ", " # z"]))
            if rng.random() < 0.1:
                lines.append(rng.choice(["", "# c", "   # c", "  "]))
        return lines

    def sequence(indent: int, depth: int) -> list[str]:
        lines = []
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.4 and depth < 4:
                inner = mapping(indent + rng.choice([2, 2, 3]), depth + 1)
                lines.append(" " * indent + rng.choice(["- ", "-  ", "- ", "-"]) + inner[0].lstrip(" "))
                lines += inner[1:]
            else:
                lines.append(" " * indent + rng.choice(["- ", "-  ", "- ", "- - "]) + value()
                             + rng.choice(["", " # c", " "]))
        return lines

    lines = mapping(rng.choice([0, 0, 0, 2]), 0)
    if rng.random() < 0.03:
        lines.insert(rng.randrange(len(lines) + 1), " " * rng.randint(0, 6) + value())
    return rng.choice(["\n", "\n", "\r\n"]).join(lines) + rng.choice(["", "\n", "\n\n", "\r\n"])


@settings(max_examples=500, deadline=None)
@given(st.integers(min_value=0))
def test_generated_documents(seed):
    agrees(_document(random.Random(seed)))


_SEEDS = [text for text in (path.read_text("utf-8") for path in sorted(CORPUS.glob("**/.kiket/**/*.yaml")))
          if len(text) < 4000]
_PIECES = list(" -:#'\"[]{},\n?&*!|>%@`~.0123456789aeyonTF<=_/\\") + [
    ": ", "- ", " #", "''", "{}", "[]", "\n  ", "\n- ", "yes", "null", "1:20", "0x1f", "<<", ".inf", "é"]


@settings(max_examples=500, deadline=None)
@given(st.integers(min_value=0))
def test_mutated_corpus_files(seed):
    rng = random.Random(seed)
    lines = rng.choice(_SEEDS).split("\n")
    start = rng.randrange(len(lines))
    text = "\n".join(lines[start:start + rng.randint(1, 25)])
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(text) + 1)
        if rng.random() < 0.5:
            text = text[:at] + rng.choice(_PIECES) + text[at:]
        else:
            text = text[:at] + text[at + rng.randint(1, 3):]
    agrees(text)


@pytest.mark.parametrize("first,second", [
    ("l:\n- a: b\n", "k: v\n- a: b\n"),  # `- a: b` read as an item's mapping, then met where a key should be
    ("l:\n-   a: b\n", "l:\n  -   a: b\n  c: d\n"),
    ("a: 1\n", "a: 1\na: 1\n"),  # a remembered line is still a duplicate key
    ("a: [x]\n", "a: [x]\nb: [x]\n"),  # flow collections are built anew each time
    ("a: {b: [c, {d: e}]}\nf:\n- {g: 1}\n", "x:\n  a: {b: [c, {d: e}]}\n  f:\n  - {g: 1}\n"),
    ("- [x, y]\n", "k: v\n- [x, y]\n"),
])
def test_remembered_lines_are_judged_in_their_new_place(first, second):
    for order in ((first, second), (second, first)):
        clear_memo()
        results = [agrees(text) for text in order]
        clear_memo()
        assert results == [agrees(text) for text in order]
    clear_memo()
    first_data = parse_simple("a: [x]\n")
    assert first_data is not None and parse_simple("a: [x]\n")[0]["a"] is not first_data[0]["a"]


def test_a_warm_memo_changes_nothing(monkeypatch):
    texts = [_document(random.Random(seed)) for seed in range(300)] + _texts(generate())[:30]
    cold = []
    for text in texts:
        clear_memo()
        cold.append(parse_simple(text))
    for lines, flows in ((50, 5), (10**6, 10**6)):  # memos that keep overflowing, and memos that keep all
        monkeypatch.setattr(yamlfast, "_MAX_LINES", lines)
        monkeypatch.setattr(yamlfast, "_MAX_FLOWS", flows)
        clear_memo()
        warm = [parse_simple(text) for text in texts + texts][len(texts):]
        assert all(a == b and (a is None or _same(a[0], b[0])) for a, b in zip(cold, warm))


@pytest.mark.parametrize("levels", [46, 47, 48, 49, 50, 51])
def test_a_remembered_flow_collection_still_counts_its_depth(levels):
    nested = "".join(" " * level + f"k{level}:\n" for level in range(levels))
    line = " " * levels + "a: [[[x]], {b: [y]}]\n"
    deep, shallow = nested + line, "k:\n" + line
    clear_memo()
    cold = parse_simple(deep)
    clear_memo()
    assert parse_simple(shallow) is not None
    warm = parse_simple(deep)
    assert warm == cold and (cold is None or agrees(deep))


def test_copies_of_a_remembered_flow_collection_share_no_container():
    clear_memo()
    data, marks = parse_simple("a:\n- {b: [c, {d: e}], f: []}\n- {b: [c, {d: e}], f: []}\n")
    first, second = data["a"]
    assert first == second
    assert first is not second and first["b"] is not second["b"]
    assert first["b"][1] is not second["b"][1] and first["f"] is not second["f"]
    assert marks["/a/1/b/1/d"] == (3, 12) and marks["/a/0/b/1/d"] == (2, 12)
    assert agrees("a:\n- {b: [c, {d: e}], f: []}\n- {b: [c, {d: e}], f: []}\n")
