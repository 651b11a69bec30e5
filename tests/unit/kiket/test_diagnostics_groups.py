"""Diagnostics as the pages show them: most severe first, repeats of one finding grouped, filtered by severity."""

from app.kiket.diagnostics import by_severity, group_diagnostics, message_shape, severity_counts


def _d(severity, code, message, file=".kiket/a.yaml", line=1, hint=""):
    return {"severity": severity, "code": code, "message": message, "file": file, "line": line, "hint": hint}


DIAGNOSTICS = [
    _d("warning", "unsupported_section", ".kiket/agents/a.yaml: the 'agents' section is not supported yet.",
       ".kiket/agents/a.yaml"),
    _d("warning", "unsupported_section", ".kiket/agents/b.yaml: the 'agents' section is not supported yet.",
       ".kiket/agents/b.yaml"),
    _d("info", "action_stub", "The ai_analyze action is validated but not executed.", ".kiket/workflows/bug.yaml", 9),
    _d("warning", "unsupported_section", ".kiket/dashboards/d.yaml: the 'dashboards' section is not supported yet.",
       ".kiket/dashboards/d.yaml"),
    _d("fatal", "yaml_syntax", "Could not parse the file at line 4.", ".kiket/workflows/bug.yaml", 4),
    _d("warning", "unknown_role", "Role 'oncall' (notify recipients) is neither declared nor built in.",
       ".kiket/workflows/bug.yaml", 20, "Declare it."),
    _d("error", "unknown_state", "No state 'done' in workflow 'bug'.", ".kiket/boards/b.yaml", 3),
]


def test_the_most_severe_come_first_in_compiler_order():
    ordered = by_severity(DIAGNOSTICS, severity=lambda d: d["severity"])
    assert [d["severity"] for d in ordered] == ["fatal", "error", "warning", "warning", "warning", "warning", "info"]
    assert [d["file"] for d in ordered[2:5]] == [".kiket/agents/a.yaml", ".kiket/agents/b.yaml",
                                                 ".kiket/dashboards/d.yaml"]


def test_repeats_of_one_finding_share_a_shape_and_group_together():
    assert message_shape("Role 'oncall' (notify recipients) is unknown.") == \
        message_shape("Role 'qa' (notify recipients) is unknown.")
    assert message_shape("Role 'oncall' (notify recipients)") != message_shape("Role 'oncall' (assign)")
    groups = group_diagnostics(DIAGNOSTICS)
    assert [(g.severity, g.code, len(g.items)) for g in groups] == [
        ("fatal", "yaml_syntax", 1), ("error", "unknown_state", 1), ("warning", "unsupported_section", 3),
        ("warning", "unknown_role", 1), ("info", "action_stub", 1)]
    assert groups[2].first["file"] == ".kiket/agents/a.yaml"


def test_a_filter_shows_one_severity_and_errors_include_the_fatal():
    assert [g.code for g in group_diagnostics(DIAGNOSTICS, "error")] == ["yaml_syntax", "unknown_state"]
    assert [g.code for g in group_diagnostics(DIAGNOSTICS, "info")] == ["action_stub"]
    assert len(group_diagnostics(DIAGNOSTICS, "nonsense")) == 5
    assert severity_counts(DIAGNOSTICS) == {"fatal": 1, "error": 1, "warning": 4, "info": 1}


def test_a_hint_shared_by_every_item_shows_once():
    groups = group_diagnostics([_d("warning", "c", "x 'a'", hint="h"), _d("warning", "c", "x 'b'", hint="h"),
                                _d("info", "d", "y 'a'", hint="h1"), _d("info", "d", "y 'b'", hint="h2")])
    assert [g.shared_hint for g in groups] == ["h", ""]
