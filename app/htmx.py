"""HTMX helpers: one template serves both the full page and the swapped fragment."""

from __future__ import annotations

from flask import Flask, make_response, render_template, request


def is_htmx() -> bool:
    """A swap request: HTMX, and neither a boosted navigation nor a history restore."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-Boosted") != "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render_view(page: str, fragment: str, status: int = 200, **context):
    """Render the fragment for HTMX swaps, the page otherwise; always `Vary: HX-Request`."""
    response = make_response(render_template(fragment if is_htmx() else page, **context), status)
    response.headers.add("Vary", "HX-Request")
    return response


def register_template_helpers(app: Flask) -> None:
    @app.context_processor
    def htmx_context():
        return {"is_htmx": is_htmx}
