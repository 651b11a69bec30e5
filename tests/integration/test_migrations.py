"""The migrations build the schema from empty on SQLite and PostgreSQL, match the models, and have one head."""

import os
import subprocess
import sys
import uuid

import pytest

from tests.conftest import ROOT


def flask(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def upgrade_and_check(env: dict) -> None:
    upgrade = flask(env, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    check = flask(env, "db", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    heads = flask(env, "db", "heads")
    assert len(heads.stdout.strip().splitlines()) == 1, heads.stdout


def test_upgrade_from_empty_on_sqlite(process_env, tmp_path):
    upgrade_and_check({**process_env, "DATABASE_URL": f"sqlite:///{tmp_path}/migrated.sqlite3"})


@pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="DATABASE_URL is not PostgreSQL")
def test_upgrade_from_empty_on_postgresql(process_env):
    import psycopg

    base = os.environ["DATABASE_URL"]
    name = "kiket_migrations_" + uuid.uuid4().hex[:8]
    admin = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        upgrade_and_check({**process_env, "DATABASE_URL": admin.rsplit("/", 1)[0] + "/" + name})
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
