"""Pooled connections: one that died while idle is replaced before anyone uses it."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text

POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")


@pytest.mark.skipif(not POSTGRES, reason="a server-side connection kill needs PostgreSQL")
def test_a_pooled_connection_killed_while_idle_is_replaced_before_use(app, monkeypatch):
    import psycopg

    from app import database
    from app.extensions import db

    pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    db.session.commit()  # back to the pool
    dsn = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    # Every pooled connection counts as idle long enough to be checked.
    monkeypatch.setattr(database, "IDLE_PING_S", 0.0)
    assert db.session.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid


