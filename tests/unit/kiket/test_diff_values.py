"""A revision diff lists, for each changed element, every changed key with its old and new value."""

from app.kiket.bundled import template_files
from app.kiket.diff import diff_configs, show_value
from app.kiket.loader import load_revision
from app.kiket.model import Source


def _revision(edit=lambda text: text):
    files = dict(template_files("bug_tracking"))
    path = next(p for p in files if p.endswith("workflows/bug.yaml"))
    files[path] = edit(files[path].decode()).encode()
    return load_revision(files, source=Source(repo="template:bug_tracking")).revision


def test_changed_keys_carry_old_and_new_values_down_to_nested_ones():
    older = _revision()
    newer = _revision(lambda t: t.replace("wip_limit: 6", "wip_limit: 4").replace("label: Fixing", "label: In fix")
                      .replace("breach: 24h", "breach: 12h"))
    diff = diff_configs(older, newer)
    fixing = diff.find("state", "fixing", "bug")
    assert set(fixing.fields) == {"label", "wip_limit"}
    assert {(v.path, v.old, v.new) for v in fixing.values} == {("label", "Fixing", "In fix"), ("wip_limit", "6", "4")}
    triaging = diff.find("state", "triaging", "bug")
    assert triaging.fields == ("sla",)
    [breach] = triaging.values
    assert breach.path.startswith("sla.") and breach.path.endswith(".breach") and "12" in breach.new
    assert diff.find("state", "closed", "bug") is None


def test_values_show_as_short_text():
    assert show_value(None) == "—" and show_value([]) == "—"
    assert show_value(["a", "b"]) == "a, b" and show_value(True) == "true"
    assert show_value({"__type__": "X", "b": 1, "a": 2}) == '{"a": 2, "b": 1}'
    assert len(show_value("x" * 500)) == 160 and show_value("x" * 500).endswith("…")
