"""Git remotes at private addresses are refused unless allow-listed, git connects to the checked address only, and
every way of not reaching a host reads the same (no port scanning through error texts)."""

from __future__ import annotations

import socket
import subprocess
import threading

import pytest

from tests.conftest import free_port


class Listener:
    """A TCP port on 127.0.0.1 that accepts and then says nothing (or closes at once): an open non-git port."""

    def __init__(self, *, close: bool):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.close = close
        self.held = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.close:
                conn.close()
            else:
                self.held.append(conn)

    def stop(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def listeners():
    made = []

    def make(close: bool) -> Listener:
        made.append(Listener(close=close))
        return made[-1]

    yield make
    for listener in made:
        listener.stop()


@pytest.fixture
def git_runs(monkeypatch):
    calls = []
    real = subprocess.run

    def spy(args, *a, **kw):
        calls.append(list(args))
        return real(args, *a, **kw)

    monkeypatch.setattr(subprocess, "run", spy)
    return calls


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/acme/config.git", "https://localhost:8443/acme/config.git", "https://10.1.2.3/acme/config.git",
    "https://192.168.0.10/acme/config.git", "https://169.254.169.254/latest/meta-data", "ssh://git@127.0.0.1:22/acme/x",
    "git@10.0.0.5:acme/config.git", "https://2130706433/acme/config.git", "https://0x7f000001/acme/config.git",
    "https://100.64.0.1/acme/config.git",
])
def test_private_remotes_are_refused_before_git_connects(app, git_runs, url):
    from app.services.sync import git

    host = git.remote_host(url)[1]
    with pytest.raises(git.GitError) as refused:
        git.list_branches(url)
    assert str(refused.value) == git.UNREACHABLE.format(host=host)
    assert not [c for c in git_runs if "ls-remote" in c]


def test_one_error_text_for_refused_closed_silent_and_open_ports(app, git_runs, listeners, monkeypatch):
    from app.services.sync import git

    monkeypatch.setattr(git, "LS_REMOTE_TIMEOUT_S", 1.5)
    closed, silent, hangs_up = free_port(), listeners(close=False), listeners(close=True)
    urls = [f"https://127.0.0.1:{port}/acme/config.git" for port in (closed, silent.port, hangs_up.port)]
    urls += [f"ssh://git@127.0.0.1:{port}/acme/config.git" for port in (closed, silent.port, hangs_up.port)]

    refused = {str(_failure(git, url)) for url in urls}
    assert refused == {git.UNREACHABLE.format(host="127.0.0.1")}
    assert silent.accepted == hangs_up.accepted == 0

    app.config["KIKET_GIT_ALLOWED_HOSTS"] = ("127.0.0.0/8",)
    reached = {str(_failure(git, url)) for url in urls}
    assert reached == refused
    assert silent.accepted == 2 and hangs_up.accepted == 2


def _failure(git, url):
    with pytest.raises(git.GitError) as failed:
        git.list_branches(url)
    return failed.value


def test_git_connects_to_the_checked_address_and_follows_no_redirect(app, git_runs, listeners, monkeypatch):
    from app.services import outbound
    from app.services.sync import git

    # A name that resolves now to the listener's address (DNS could answer differently for git itself).
    listener = listeners(close=True)
    real = outbound.resolve
    monkeypatch.setattr(outbound, "resolve", lambda host, port: ["127.0.0.1"] if host == "git.internal.test"
                        else real(host, port))
    url = f"https://git.internal.test:{listener.port}/acme/config.git"
    with pytest.raises(git.GitError):
        git.list_branches(url)
    assert listener.accepted == 0

    app.config["KIKET_GIT_ALLOWED_HOSTS"] = ("127.0.0.0/8",)
    assert str(_failure(git, url)) == git.UNREACHABLE.format(host="git.internal.test")
    assert listener.accepted == 1
    command = next(c for c in git_runs if "ls-remote" in c)
    assert f"http.curloptResolve=git.internal.test:{listener.port}:127.0.0.1" in command
    assert "http.followRedirects=false" in command
    assert command.index("--") < command.index(url) and not any(part.startswith("-") and url in part for part in command)

    # Listed by name, a host is trusted as git resolves it (internal DNS, ssh aliases): nothing is pinned.
    git_runs.clear()
    app.config["KIKET_GIT_ALLOWED_HOSTS"] = ("git.internal.test",)
    _failure(git, url)
    command = next(c for c in git_runs if "ls-remote" in c)
    assert not any("curloptResolve" in part for part in command)


def test_allow_list_setting_is_parsed_strictly(tmp_path):
    from app.config import SettingsError, load_settings
    from app.services.outbound import AllowList

    settings = load_settings({"KIKET_GIT_ALLOWED_HOSTS": "git.corp.example, 10.0.0.0/8 fd00::/8"}, str(tmp_path))
    allow = AllowList.parse(settings["KIKET_GIT_ALLOWED_HOSTS"])
    assert allow.allows("GIT.corp.example", "192.168.1.1") and allow.allows("x", "10.9.8.7")
    assert allow.allows("x", "fd00::1") and not allow.allows("x", "192.168.1.1")
    assert load_settings({}, str(tmp_path))["KIKET_GIT_ALLOWED_HOSTS"] == ()
    with pytest.raises(SettingsError, match="KIKET_GIT_ALLOWED_HOSTS"):
        load_settings({"KIKET_GIT_ALLOWED_HOSTS": "git.corp;rm"}, str(tmp_path))
