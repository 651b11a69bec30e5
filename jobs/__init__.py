"""RQ entry points: thin functions that open an app context and call one service."""

from __future__ import annotations

from contextlib import contextmanager

from flask import current_app, has_app_context

_app = None


@contextmanager
def job_app_context():
    """A fresh app context per job: its own database session, removed when the job ends.

    Uses the worker's app when the worker runs inside one (`flask worker`), else builds one.
    """
    global _app
    if has_app_context():
        app = current_app._get_current_object()
    else:
        if _app is None:
            from app.factory import create_app

            _app = create_app()
        app = _app
    with app.app_context():
        yield app
