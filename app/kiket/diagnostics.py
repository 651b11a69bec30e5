"""Provenance and diagnostics: where an element came from, and what is wrong with it (spec §1, §14)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal, Mapping, TypeVar

Layer = Literal["repository", "project_override", "organization_default", "bundled"]
Severity = Literal["fatal", "error", "warning", "info"]

SEVERITIES: tuple[Severity, ...] = ("fatal", "error", "warning", "info")
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}
# What a severity filter of the diagnostics pages shows: "error" includes the fatal ones.
SEVERITY_FILTERS: dict[str, tuple[Severity, ...]] = {"error": ("fatal", "error"), "warning": ("warning",),
                                                      "info": ("info",)}


_new = object.__new__
_setattr = object.__setattr__


@dataclass(frozen=True)
class Provenance:
    """Where an element or a problem was defined: layer, source and position in the file."""

    layer: Layer = "repository"
    repo: str | None = None
    branch: str | None = None
    commit_sha: str | None = None
    path: str | None = None
    line: int | None = None
    column: int | None = None
    pointer: str = ""
    generated: bool = False
    derived_from: str | None = None
    record: str | None = None

    def at(self, *, line: int | None = None, column: int | None = None, pointer: str | None = None) -> Provenance:
        """Return a copy pointing at another node of the same file."""
        # A copy of the fields without the frozen __init__ (one object.__setattr__ per field): a large repository
        # makes tens of thousands of these.
        fields = self.__dict__.copy()
        if line is not None:
            fields["line"] = line
        if column is not None:
            fields["column"] = column
        if pointer is not None:
            fields["pointer"] = pointer
        copy = _new(Provenance)
        _setattr(copy, "__dict__", fields)
        return copy

    def in_file(self, path: str) -> Provenance:
        """The same source and layer, at another file (no position)."""
        fields = self.__dict__.copy()
        fields.update(path=path, line=None, column=None, pointer="", generated=False, derived_from=None)
        copy = _new(Provenance)
        _setattr(copy, "__dict__", fields)
        return copy

    @property
    def template(self) -> str | None:
        """The bundled template this comes from (its own layer, or a project running on the template alone)."""
        for ref in (self.record, self.repo):
            if ref and ref.startswith("template:") and (self.layer == "bundled" or ref is self.repo):
                return ref.split(":", 1)[1]
        return None

    @property
    def label(self) -> str:
        """Where, as people say it: `bundled template kanban · issue_types.yaml:3`, `repository · bug.yaml:12`."""
        template = self.template
        where = f"bundled template {template}" if template else self.layer.replace("_", " ")
        if self.generated:
            where += f", generated from {self.derived_from}" if self.derived_from else ", generated"
        if self.path:
            where += f" · {self.path.rsplit('/', 1)[-1]}" + (f":{self.line}" if self.line else "")
        return where

    @property
    def location(self) -> str:
        """`path:line:col`, as much of it as is known."""
        parts = [self.path or "<unknown>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


@dataclass(frozen=True)
class Diagnostic:
    """One problem found while loading configuration, with a stable code and a hint for the fix."""

    code: str
    severity: Severity
    message: str
    hint: str = ""
    prov: Provenance = field(default_factory=Provenance)

    @property
    def file(self) -> str | None:
        return self.prov.path

    @property
    def line(self) -> int | None:
        return self.prov.line

    @property
    def column(self) -> int | None:
        return self.prov.column

    @property
    def pointer(self) -> str:
        return self.prov.pointer

    def to_dict(self) -> dict:
        """Plain JSON-ready form, as the API and `validate --json` print it."""
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "pointer": self.pointer,
            "layer": self.prov.layer,
            "where": self.prov.label,
            "doc": f"docs/diagnostics.md#{self.code}",
        }

    def format(self) -> str:
        """Compiler-style line: `path:line:col: severity code: message`."""
        text = f"{self.prov.location}: {self.severity} {self.code}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


MAX_DIAGNOSTICS = 200


def cap_diagnostics(diagnostics: tuple[Diagnostic, ...], where: Provenance,
                    limit: int = MAX_DIAGNOSTICS) -> tuple[Diagnostic, ...]:
    """The first `limit` diagnostics by severity, in their given order, then one count per omitted code at `where`.

    A 10,000-file push once produced 15,004 diagnostics, a 4.9 MB row and a 7.2 MB page: past the first
    few hundred nobody reads them, and the counts say what remains.
    """
    if len(diagnostics) <= limit:
        return diagnostics
    rank = {severity: index for index, severity in enumerate(SEVERITIES)}
    by_severity = sorted(range(len(diagnostics)), key=lambda index: rank[diagnostics[index].severity])
    kept = sorted(by_severity[:limit])
    omitted: dict[tuple[str, Severity], int] = {}
    for index in by_severity[limit:]:
        key = (diagnostics[index].code, diagnostics[index].severity)
        omitted[key] = omitted.get(key, 0) + 1
    summary = tuple(
        Diagnostic("diagnostics_truncated", severity, f"{count} more {code} {severity} diagnostic"
                   f"{'s are' if count > 1 else ' is'} not listed: only the first {limit} of this run are.",
                   "Fix the listed problems and validate again to see the rest.", where)
        for (code, severity), count in sorted(omitted.items(), key=lambda item: (rank[item[0][1]], item[0][0])))
    return tuple(diagnostics[index] for index in kept) + summary


T = TypeVar("T")


def by_severity(diagnostics: Iterable[T], severity: Callable[[T], str] = lambda d: d.severity) -> list[T]:
    """Fatal first, then errors, warnings and info; compiler order (file, line) kept within a severity."""
    return sorted(diagnostics, key=lambda d: SEVERITY_RANK.get(severity(d), len(SEVERITIES)))


# Quoted names, `.kiket/...` paths and numbers: what varies between repeats of one finding.
_VARYING = re.compile(r"'[^']*'|\"[^\"]*\"|\.?kiket/[\w./-]+|\b\d+(?:\.\d+)?\b")


def message_shape(message: str) -> str:
    """The message with its quoted names, paths and numbers blanked: repeats of one finding share it."""
    return _VARYING.sub("…", message)


@dataclass(frozen=True)
class DiagnosticGroup:
    """Stored diagnostics (dicts) of one severity and code whose messages share a shape, in compiler order."""

    severity: str
    code: str
    items: tuple[Mapping[str, Any], ...]

    @property
    def first(self) -> Mapping[str, Any]:
        return self.items[0]

    @property
    def shared_hint(self) -> str:
        """The hint when every item has the same one, else empty (each item then shows its own)."""
        hints = {item.get("hint") or "" for item in self.items}
        return hints.pop() if len(hints) == 1 else ""


def severity_counts(diagnostics: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for diagnostic in diagnostics:
        counts[diagnostic["severity"]] = counts.get(diagnostic["severity"], 0) + 1
    return counts


def group_diagnostics(diagnostics: Iterable[Mapping[str, Any]], only: str | None = None) -> list[DiagnosticGroup]:
    """Stored diagnostics by severity, repeats of one finding grouped; `only` is a key of SEVERITY_FILTERS (or None)."""
    shown = SEVERITY_FILTERS.get(only or "", SEVERITIES)
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for diagnostic in diagnostics:
        if diagnostic["severity"] in shown:
            key = (diagnostic["severity"], diagnostic["code"], message_shape(diagnostic["message"]))
            groups.setdefault(key, []).append(diagnostic)
    return by_severity((DiagnosticGroup(severity, code, tuple(items)) for (severity, code, _), items in groups.items()),
                       severity=lambda group: group.severity)


class KiketError(Exception):
    """Base for broken invariants inside the domain core (never for bad user input)."""
