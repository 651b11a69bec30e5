"""Safe YAML reading: positions, refusals and encodings become diagnostics, never exceptions."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from app.kiket.codes import CODES
from app.kiket.diagnostics import Provenance
from app.kiket.yamlload import MAX_FILE_BYTES, parse_yaml

BOMB = (b'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
        b'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n'
        b'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n')


def parse(data: bytes, **kwargs):
    return parse_yaml(data, ".kiket/workflows/x.yaml", Provenance(), **kwargs)


def test_marks_map_json_pointers_to_one_based_positions():
    doc = parse(b"states:\n  triaging:\n    sla:\n      - {warning: 1h}\n      - default: true\n")
    assert doc.ok and doc.marks["/states/triaging"] == (2, 3)
    assert doc.marks["/states/triaging/sla/1"] == (5, 9)
    assert doc.position("/states/triaging/sla/1/default") == (5, 9)
    assert doc.position("/states/nowhere/deeper") == (1, 1)


def test_plain_data_matches_safe_load_but_keeps_timestamps_as_text():
    text = b"a: 1\nb: 1.5\nc: yes\nd: ~\ne: 2024-01-01\nf: [x, 'y']\ng: {h: null}\n<<: {i: 1}\n"
    doc = parse(text)
    expected = yaml.safe_load(text)
    expected["e"] = "2024-01-01"
    assert doc.data == expected


def test_keys_keep_their_source_text():
    assert parse(b"on: issue.created\nyes: 1\n").data == {"on": "issue.created", "yes": 1}


@pytest.mark.parametrize("data,code", [
    (b"a: 1\na: 2\n", "yaml_duplicate_key"),
    (b"a: !python/object x\n", "yaml_custom_tag"),
    (b"a: !!python/name:os.system x\n", "yaml_custom_tag"),
    (b"a:\n\t- b\n", "yaml_tab_indent"),
    (b"", "empty_file"),
    (b"# only a comment\n", "empty_file"),
    (b"\xff\xfe\x00a", "yaml_encoding"),
    (b"- a\n- b\n", "yaml_not_mapping"),
    (b"just text\n", "yaml_not_mapping"),
    (b"a: 1\n---\nb: 2\n", "yaml_multiple_documents"),
    (b"a: {b: 1\n", "yaml_syntax"),
    (b"a: *nope\n", "yaml_syntax"),
    (BOMB, "yaml_alias_limit"),
    (b"a: &a [*a]\n", "yaml_alias_limit"),
    (b"a: 1" + b":1" * 60 + b"\n", "yaml_number_too_long"),  # base 60: quadratic to compute when long
    (b"x" * (MAX_FILE_BYTES + 1), "file_too_large"),
])
def test_refusals_are_fatal_diagnostics_with_positions(data, code):
    doc = parse(data)
    assert not doc.ok and doc.data is None
    (diagnostic,) = [d for d in doc.diagnostics if d.severity == "fatal"]
    assert diagnostic.code == code and code in CODES
    assert diagnostic.file == ".kiket/workflows/x.yaml" and diagnostic.message


def test_preserved_files_only_warn():
    doc = parse(b"a: 1\na: 2\n", interpreted=False)
    assert [d.severity for d in doc.diagnostics] == ["warning"]


def test_byte_order_mark_is_ignored_with_a_note():
    doc = parse(b"\xef\xbb\xbfa: 1\n")
    assert doc.ok and doc.data == {"a": 1} and [d.code for d in doc.diagnostics] == ["yaml_bom"]


def test_crlf_line_endings_keep_line_numbers():
    doc = parse(b"a: 1\r\nb:\r\n  c: 2\r\n")
    assert doc.data == {"a": 1, "b": {"c": 2}} and doc.marks["/b/c"] == (3, 3)


def test_aliases_below_the_limit_expand():
    doc = parse(b"base: &b {x: 1}\none: *b\ntwo: *b\n")
    assert doc.ok and doc.data["two"] == {"x": 1}


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data):
    doc = parse(data)
    assert doc.ok or doc.diagnostics


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab: -[]{}&*!#'\"\n\t|>%@`,?")), max_size=120))
def test_yaml_punctuation_never_raises(text):
    doc = parse(text.encode())
    assert doc.ok or doc.diagnostics
