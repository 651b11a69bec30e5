"""Global templates bundled with the app (spec §13 lowest layer): kanban, scrum, bug_tracking."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_ROOT = Path(__file__).with_name("bundled")
_TEMPLATES = {
    "kanban": ("Kanban", "Continuous flow: backlog, in progress, review, done, with WIP limits."),
    "scrum": ("Scrum", "Sprint-based delivery with a product backlog, sprint backlog and review."),
    "bug_tracking": ("Bug tracking", "Report, triage, fix, verify and close bugs with SLAs and a testing checklist."),
}


@dataclass(frozen=True)
class TemplateInfo:
    """A bundled template a project can be created from."""

    key: str
    name: str
    description: str


def list_templates() -> list[TemplateInfo]:
    """The bundled templates, in display order."""
    return [TemplateInfo(key, name, description) for key, (name, description) in _TEMPLATES.items()]


@lru_cache(maxsize=None)
def _files(key: str) -> tuple[tuple[str, bytes], ...]:
    base = _ROOT / key
    return tuple(sorted((path.relative_to(base).as_posix(), path.read_bytes())
                        for path in base.rglob("*") if path.is_file()))


def template_files(key: str) -> dict[str, bytes]:
    """Files of a bundled template as repo-relative paths (`.kiket/...`) to bytes; KeyError if unknown."""
    if key not in _TEMPLATES:
        raise KeyError(f"unknown template {key!r}; choose one of {', '.join(_TEMPLATES)}")
    return dict(_files(key))
