"""Oversized bodies against the real web process (gunicorn, gthread, as the Procfile runs it): a declared
1 GiB body and large streamed (chunked) bodies are refused, the process keeps its pid, its memory does not
grow, and nothing is written under the attachments storage."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, wait_for_port
from tests.support.live_servers import PASSWORD, server_log, signed_in, web_command

GIB = 1024 ** 3
MIB = 1024 * 1024


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def raw_request(port: int, head: str, send_body, timeout: float = 30.0) -> str:
    """Send `head`, then whatever `send_body(socket)` sends (in a thread, as a client that keeps sending);
    return the status line of the answer (empty when the connection dropped without one)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(head.encode("latin-1"))

    def pump():
        try:
            send_body(sock)
        except OSError:
            pass  # the server answered and closed: the rest of the body is refused, as it should be

    sender = threading.Thread(target=pump, daemon=True)
    sender.start()
    answer = b""
    try:
        while b"\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass
    finally:
        sock.close()
    sender.join(timeout)
    return answer.split(b"\r\n", 1)[0].decode("latin-1")


def declared(size: int, sent: int):
    def send(sock):
        block = b"a" * 65536
        for _ in range(sent // len(block)):
            sock.sendall(block)
    return send


def chunked(total: int):
    def send(sock):
        block = b"a" * 65536
        frame = f"{len(block):x}\r\n".encode() + block + b"\r\n"
        for _ in range(total // len(block)):
            sock.sendall(frame)
        sock.sendall(b"0\r\n\r\n")
    return send


@pytest.fixture
def web(app, make_user, process_env, settings):
    """The web process on a free port with one signed-in member; (port, master pid, cookie header)."""
    from app.services.projects import create_project
    from app.services.runtime import issues

    owner = make_user("owner@example.com", "owner", PASSWORD)
    project = create_project(owner, "LEG", "Legal", "", "kanban")
    issues.create_issue(project, owner, issue_type="task", title="Sign the NDA")
    port = free_port()
    process = subprocess.Popen(web_command(port, threads=4), cwd=ROOT, env=process_env, stdout=server_log(),
                               stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=30)
        session = signed_in(f"http://127.0.0.1:{port}", "owner@example.com")
        cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
        yield port, process.pid, cookie, session
    finally:
        process.terminate()
        process.wait(20)


def test_oversized_bodies_leave_the_web_process_as_it_was(app, web, settings):
    port, master, cookie, session = web
    base = f"http://127.0.0.1:{port}"
    attachments = Path(settings["STORAGE_DIR"]) / "attachments"
    stored = sorted(attachments.rglob("*")) if attachments.exists() else []
    # Warm up: every page and error page involved has been rendered once before memory is measured.
    for _ in range(3):
        assert session.get(f"{base}/projects/LEG/issues/1").status_code == 200
        status = raw_request(port, "POST /projects/LEG/issues/1/comments HTTP/1.1\r\nHost: x\r\n"
                             f"Cookie: {cookie}\r\nContent-Type: text/plain\r\nContent-Length: {2 * MIB}\r\n\r\n",
                             declared(2 * MIB, 2 * MIB))
        assert " 413 " in status, status
    [worker] = children(master)
    before = rss_kib(worker)

    attachment = "POST /projects/LEG/issues/1/attachments HTTP/1.1\r\nHost: x\r\n" \
                 "Content-Type: multipart/form-data; boundary=xyz\r\n"
    hook = "POST /hooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" \
           "X-GitHub-Event: push\r\nX-GitHub-Delivery: big\r\n"
    cases = [
        ("anonymous 1 GiB attachment", attachment + f"Content-Length: {GIB}\r\n\r\n", declared(GIB, 16 * MIB)),
        ("signed-in 1 GiB attachment", attachment + f"Cookie: {cookie}\r\nContent-Length: {GIB}\r\n\r\n",
         declared(GIB, 16 * MIB)),
        ("anonymous 1 GiB hook", hook + f"Content-Length: {GIB}\r\n\r\n", declared(GIB, 16 * MIB)),
        ("anonymous streamed attachment", attachment + "Transfer-Encoding: chunked\r\n\r\n", chunked(64 * MIB)),
        ("signed-in streamed attachment", attachment + f"Cookie: {cookie}\r\nTransfer-Encoding: chunked\r\n\r\n",
         chunked(64 * MIB)),
        ("streamed hook", hook + "Transfer-Encoding: chunked\r\n\r\n", chunked(64 * MIB)),
    ]
    for name, head, body in cases:
        for _ in range(3):  # the web process runs 4 threads: repeated, they reach more than one
            status = raw_request(port, head, body)
            assert " 413 " in status, (name, status)
    # Still the same processes, still answering, and no bigger than before.
    assert children(master) == [worker]
    assert session.get(f"{base}/projects/LEG/issues/1").status_code == 200
    time.sleep(0.5)
    grown = rss_kib(worker) - before
    assert grown < 8 * 1024, f"the web worker grew by {grown} KiB"
    assert (sorted(attachments.rglob("*")) if attachments.exists() else []) == stored
