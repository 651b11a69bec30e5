"""A scratch PostgreSQL database for one benchmark run, dropped afterwards."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from urllib.parse import urlsplit

from bench.transitions_bench import _server_url, _with_db


@contextmanager
def scratch_database():
    """Create `kiket_bench_<random>` on the server of DATABASE_URL; yield (its name, its URL); drop it."""
    import psycopg

    server = _server_url()
    name = f"kiket_bench_{uuid.uuid4().hex[:10]}"
    admin = _with_db(server, urlsplit(server).path.lstrip("/") or "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield name, _with_db(server, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def scratch_copies(template: str):
    """Yield `copy()`, which creates a fresh copy of the database `template` and returns its URL; all dropped."""
    import psycopg

    server = _server_url()
    admin = _with_db(server, urlsplit(server).path.lstrip("/") or "postgres")
    names: list[str] = []

    def copy() -> str:
        name = f"{template}_{len(names)}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        names.append(name)
        return _with_db(server, name)

    try:
        yield copy
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
