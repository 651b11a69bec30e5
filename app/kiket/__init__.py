"""Kiket's pure configuration core: parse, validate, normalize and merge `.kiket/` trees.

Importing this package loads nothing but the standard library and pyyaml; names are re-exported lazily.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "load_revision": "app.kiket.loader",
    "LayerInput": "app.kiket.loader",
    "LoadResult": "app.kiket.loader",
    "Source": "app.kiket.model",
    "ConfigRevision": "app.kiket.model",
    "Diagnostic": "app.kiket.diagnostics",
    "Provenance": "app.kiket.diagnostics",
    "KiketError": "app.kiket.diagnostics",
    "CODES": "app.kiket.codes",
    "list_templates": "app.kiket.bundled",
    "template_files": "app.kiket.bundled",
    "TemplateInfo": "app.kiket.bundled",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'app.kiket' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
