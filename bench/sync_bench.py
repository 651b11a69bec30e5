"""Sync of the engineering fixture, from the Sync click to an active revision, against git fetch + parse.

Real PostgreSQL and Redis (DATABASE_URL / REDIS_URL, else the local defaults below) and a real
worker process. Each round pushes a new commit to a bare copy of the fixture, presses Sync through
the web app and waits until that commit's revision is active. The floor, measured in the same run,
is the least any sync must do: `git fetch` of the same commit into a mirror plus parsing the same
files with libyaml. Goal: total within 1.5x the floor plus 150 ms.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / ".." / "shared" / "fixtures" / "kiket-definitions-engineering.bundle"
ROUNDS = int(os.environ.get("KIKET_BENCH_ROUNDS", "7"))
PG_ADMIN = os.environ.get("KIKET_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("KIKET_BENCH_REDIS", "redis://127.0.0.1:6379/7")
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com", "GIT_CONFIG_GLOBAL": os.devnull}


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True).stdout.strip()


def push_commit(work: Path, n: int) -> str:
    (work / "BENCH.md").write_text(f"round {n}\n")
    git("add", "BENCH.md", cwd=work)
    git("commit", "-q", "-m", f"bench round {n}", cwd=work)
    git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def floor_ms(remote: Path, mirror: Path, sha: str) -> float:
    """git fetch of the commit into a mirror, then CSafeLoader over the same .kiket files."""
    started = time.perf_counter()
    git("--git-dir", str(mirror), "fetch", "-q", "--no-tags", "--", f"file://{remote}", "+refs/heads/main:refs/heads/main")
    names = git("--git-dir", str(mirror), "ls-tree", "-r", "--name-only", sha, "--", ".kiket").splitlines()
    for name in names:
        if name.endswith((".yaml", ".yml")):
            data = subprocess.run(["git", "--git-dir", str(mirror), "cat-file", "blob", f"{sha}:{name}"],
                                  check=True, capture_output=True).stdout
            yaml.load(data, Loader=yaml.CSafeLoader)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    if not FIXTURE.exists():
        print(f"skipped: {FIXTURE} not found (needs ../shared/fixtures)")
        return
    import psycopg

    db_name = f"kiket_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db_name}")
    database_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + db_name
    scratch = Path(tempfile.mkdtemp(prefix="kiket-sync-bench-"))
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "STORAGE_DIR": str(scratch / "storage"),
           "SECRET_KEY": uuid.uuid4().hex, "FLASK_APP": "wsgi:app", "PYTHONPATH": str(ROOT), "KIKET_LOG_LEVEL": "WARNING"}
    os.environ.update(env)
    worker = None
    try:
        from app.extensions import db
        from app.factory import create_app
        from app.models import ConfigRevision, SyncRun
        from app.services import accounts, projects
        from app.services.sync import repositories

        app = create_app({"TESTING": True})
        with app.app_context():
            db.create_all()
            app.extensions["redis"].flushdb()
            owner = accounts.create_user("bench@example.com", "bench password 1", "owner")
            project = projects.create_project(owner, "ENG", "Engineering", "", "bug_tracking")
            remote = scratch / "eng.git"
            git("clone", "-q", "--bare", "--", str(FIXTURE), str(remote))
            work = scratch / "work"
            git("clone", "-q", "--", str(remote), str(work))
            repository, _ = repositories.add_repository(project, f"file://{remote}", branch="main")
            repository_id = repository.id
            floor_mirror = scratch / "floor.git"
            git("init", "-q", "--bare", str(floor_mirror))

        worker = subprocess.Popen([sys.executable, "-m", "flask", "worker", "configuration"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        app.config["WTF_CSRF_ENABLED"] = False  # the bench drives the views directly, without a browser's token
        client = app.test_client()
        client.post("/login", data={"email": "bench@example.com", "password": "bench password 1"})
        totals, floors, phases = [], [], {}
        for n in range(ROUNDS + 1):  # round 0 warms the mirror, the worker and the caches
            sha = push_commit(work, n)
            started = time.perf_counter()
            response = client.post(f"/repositories/{repository_id}/sync", data={"branch": "main"})
            assert response.status_code in (200, 303), response.status_code
            with app.app_context():
                while True:
                    db.session.expire_all()
                    revision = db.session.query(ConfigRevision).filter_by(commit_sha=sha, status="active").first()
                    if revision is not None:
                        break
                    failed = db.session.query(SyncRun).filter_by(commit_sha=sha, status="failed").first()
                    if failed is not None:
                        raise SystemExit(f"sync failed: {failed.error}")
                    if time.perf_counter() - started > 60:
                        raise SystemExit("sync did not finish in 60 s")
                    time.sleep(0.005)
                total = (time.perf_counter() - started) * 1000
                run = db.session.query(SyncRun).filter_by(commit_sha=sha).order_by(SyncRun.id.desc()).first()
                queued = (run.started_at - run.enqueued_at).total_seconds() * 1000
                timings = {"queue wait": queued, **run.timings}
            floor = floor_ms(remote, floor_mirror, sha)
            if n == 0:
                continue
            totals.append(total)
            floors.append(floor)
            for phase, value in timings.items():
                phases.setdefault(phase, []).append(value)
        total, floor = statistics.median(totals), statistics.median(floors)
        budget = 1.5 * floor + 150
        print(f"rounds: {ROUNDS} (median; PostgreSQL + Redis, a real worker process)")
        for phase, values in phases.items():
            print(f"  {phase:<12} {statistics.median(values):8.1f} ms")
        print(f"click -> active revision: {total:8.1f} ms")
        print(f"floor (git fetch + parse): {floor:7.1f} ms")
        print(f"ratio: {total / floor:.2f}x floor; budget 1.5x floor + 150 ms = {budget:.1f} ms -> "
              f"{'PASS' if total <= budget else 'MISS'}")
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(20)
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
        subprocess.run(["rm", "-rf", str(scratch)], check=False)


if __name__ == "__main__":
    main()
