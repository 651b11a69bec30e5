"""Record the calls issue services make into `app.services.runtime.events` (the effects engine has its own tests)."""

from __future__ import annotations

import pytest

EVENTS = ("issue_created", "issue_transitioned", "issue_updated", "issue_commented", "checklist_completed",
          "approval_decided")


@pytest.fixture
def event_calls(monkeypatch):
    """A list of (event name, args) in call order; the real functions are not run."""
    from app.services.runtime import events

    calls: list[tuple[str, tuple]] = []
    for name in EVENTS:
        monkeypatch.setattr(events, name, lambda *args, _name=name, **kwargs: calls.append((_name, args)))
    return calls
