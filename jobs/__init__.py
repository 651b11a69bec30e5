"""RQ entry points: thin functions that open an app context and call one service."""

from __future__ import annotations

from contextlib import contextmanager

from flask import current_app, has_app_context

_app = None


@contextmanager
def job_app_context():
    """The caller's app context when there is one (the worker gives each job its own), else a new app's."""
    global _app
    if has_app_context():
        yield current_app
        return
    if _app is None:
        from app.factory import create_app

        _app = create_app()
    with _app.app_context():
        yield _app
