"""`make run` serves, prints where to log in once it is up, and Ctrl-C stops every process of it cleanly."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), fields[19])
    return table


def _descendants(root: int) -> set[tuple[int, str]]:
    table = _processes()
    found, frontier = set(), [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, started) in table.items():
            if ppid == parent and (pid, started) not in found:
                found.add((pid, started))
                frontier.append(pid)
    return found


def _alive(processes: set[tuple[int, str]]) -> set[tuple[int, str]]:
    table = _processes()
    return {(pid, started) for pid, started in processes if pid in table and table[pid][1] == started}


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "flask").exists() or shutil.which("make") is None,
                    reason="needs make and the project's .venv (what `make run` uses)")
def test_ctrl_c_stops_make_run_cleanly(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "PORT", "LIVE_PORT", "KIKET_LIVE_URL")}
    port = free_port()
    env.update(PORT=str(port), LIVE_PORT=str(free_port()), KIKET_EMBEDDED_REDIS_PORT=str(free_port()),
               KIKET_INSTANCE_PATH=str(tmp_path / "instance"), STORAGE_DIR=str(tmp_path / "storage"))
    # -o: the requirements are installed already; never reinstall them from a test.
    make = subprocess.Popen(["make", "-o", ".venv/.requirements-installed", "run"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    up = threading.Event()

    def read() -> None:
        for line in make.stdout:
            lines.append(line)
            if "Log in as admin@example.com with password" in line:
                up.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert up.wait(120), "".join(lines[-40:])
        credentials = (tmp_path / "instance" / "demo-credentials").read_text()
        printed = next(line for line in lines if "with password" in line)
        assert credentials.split("password: ")[1].split()[0] in printed
        assert (tmp_path / "instance" / "demo-credentials").stat().st_mode & 0o077 == 0
        started = _descendants(make.pid)

        os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        make.wait(10)
        reader.join(5)
        deadline = time.monotonic() + 1
        while _alive(started) and time.monotonic() < deadline:
            time.sleep(0.05)  # reaped, but /proc may still show it for an instant
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
    output = "".join(lines)
    # GNU make ends on the SIGINT it got itself ("make: *** [run] Interrupt"), after its recipe has exited.
    assert make.returncode in (0, -signal.SIGINT), output[-3000:]
    assert not _alive(started), output[-3000:]
    assert "Traceback" not in output, output
    names = [line.split(":", 1)[0] for line in (ROOT / "Procfile.embedded").read_text().splitlines() if ":" in line]
    for name in names:
        assert f"{name}.1 stopped (rc=0)" in output, output[-3000:]
