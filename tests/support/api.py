"""What the API tests share: a kanban project ENG, an owner's personal token with every scope, the
Authorization header, and the dispatch of the outbox through the `webhooks` queue."""

from __future__ import annotations

import pytest


@pytest.fixture
def project(owner):
    from app.services import projects

    return projects.create_project(owner, "ENG", "Engineering", "", "kanban")


@pytest.fixture
def token(owner, project):
    from app.services.gateway import credentials

    return credentials.create_personal_token(owner, "tests", ["*"])[1]


def auth(value: str) -> dict:
    return {"Authorization": f"Bearer {value}"}


def run_webhooks(app) -> None:
    """Dispatch the outbox, then work off the `webhooks` queue in this process, as the worker would."""
    from rq import Queue, SimpleWorker

    from app.extensions import db
    from app.services.runtime import events

    events.drain()
    SimpleWorker([Queue("webhooks", connection=app.extensions["redis"])],
                 connection=app.extensions["redis"]).work(burst=True)
    db.session.expire_all()
