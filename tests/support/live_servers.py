"""Real server processes for live-update tests: the web process (gunicorn, gthread) and the live process
(gunicorn, gevent) as the Procfile runs them, a signed-in HTTP session, and a socket client."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from contextlib import contextmanager

from tests.conftest import ROOT, free_port, wait_for_port

PASSWORD = "correct horse battery"


def server_log():
    """Where server processes write: KIKET_TEST_SERVER_LOG (a file, for debugging a run), else nowhere."""
    path = os.environ.get("KIKET_TEST_SERVER_LOG")
    return open(path, "ab") if path else subprocess.DEVNULL


def web_command(port: int, threads: int = 8) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", str(threads), "--no-control-socket",
            "--bind", f"127.0.0.1:{port}", "wsgi:app"]


def live_command(port: int) -> list[str]:
    """The Procfile's `live` line: gevent worker, many connections."""
    return [sys.executable, "-m", "gunicorn", "-k", "gevent", "--worker-connections", "2000", "--graceful-timeout", "3",
            "--no-control-socket", "--bind", f"127.0.0.1:{port}", "wsgi:app"]


@contextmanager
def server(command_for, env: dict, **extra_env):
    """A server process on a free port; yields its base URL."""
    port = free_port()
    output = server_log()
    process = subprocess.Popen(command_for(port), cwd=ROOT, env={**env, **extra_env}, stdout=output,
                               stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(20)


def signed_in(base_url: str, email: str, password: str = PASSWORD):
    """A requests session logged in through the login form; its session cookie works on every port of the host."""
    import requests

    session = requests.Session()
    page = session.get(f"{base_url}/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = session.post(f"{base_url}/login", data={"email": email, "password": password, "csrf_token": token},
                            allow_redirects=False)
    assert response.status_code == 303, response.text[:300]
    session.headers["X-CSRFToken"] = token
    return session


def connect(live_base: str, session, query: str, origin: str):
    """A WebSocket to `/live?query` carrying the session's cookie, as a page of `origin` opens it."""
    from simple_websocket import Client

    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    url = live_base.replace("http://", "ws://") + "/live?" + query
    return Client.connect(url, headers={"Cookie": cookie, "Origin": origin})


def receive_until(ws, predicate, timeout: float = 10.0) -> str:
    """Messages until one satisfies `predicate` (returned); fails after `timeout` seconds without one."""
    import time

    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        message = ws.receive(timeout=max(0.05, deadline - time.monotonic()))
        if message is None:
            continue
        if predicate(message):
            return message
        seen.append(message[:120])
    raise AssertionError(f"no matching message within {timeout}s; saw {seen}")


class CuttableProxy:
    """A TCP relay in front of the live process that a test can cut (every socket drops, new ones are refused)
    and restore, as a flaky network would."""

    def __init__(self, target_port: int) -> None:
        import socket
        import threading

        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.pairs: list = []
        self.cut_off = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_off:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source, sink) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.close()
                except OSError:
                    pass

    def cut(self) -> None:
        """Drop every relayed socket and refuse new ones until `restore`."""
        import socket

        self.cut_off = True
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for sock in pair:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
                except OSError:
                    pass

    def restore(self) -> None:
        self.cut_off = False

    def close(self) -> None:
        self.cut()
        self.listener.close()
