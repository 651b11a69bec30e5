"""Git access for workflow repositories: safe remotes, a bare mirror per repository, branches, tokens.

Git never sees user input it could read as an option or a transport: remote URLs and branch names are
checked before any git process starts, user values follow `--`, only https/ssh (and file when local
remotes are allowed) are enabled, hooks are off, and every call has a timeout. Access tokens travel in
`GIT_CONFIG_*` environment variables (an `http.extraHeader`), never in argv or logs.

A network remote's host is resolved here and checked by the outbound address guard (`app.services.outbound`):
loopback, private, link-local and metadata addresses are refused unless `KIKET_GIT_ALLOWED_HOSTS` lists the
host or its network. Git then connects to the checked address (`http.curloptResolve`, ssh `HostName`) and
follows no redirects. A refusal, a closed port, a timeout or a TLS/ssh handshake with something else all give
one error text (`UNREACHABLE`), so errors cannot be used to scan ports; the details go to the server log.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

from app.services import outbound
from app.services.errors import Invalid
from app.services.sync.config_sources import ConfigSourceError, resolve_commit

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 120
LS_REMOTE_TIMEOUT_S = 30
LOCAL_TIMEOUT_S = 30
MAX_BRANCH_LENGTH = 200

_SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*):(?P<path>[A-Za-z0-9._~/-]+)$")
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*(?::\d{1,5})?$")
_URL_PATH = re.compile(r"^/[A-Za-z0-9._~/%+-]*$")
_GITHUB_PATH = re.compile(r"^/?(?P<owner>[A-Za-z0-9-]+)/(?P<name>[A-Za-z0-9._-]+?)(?:\.git)?/?$")
_SHA = re.compile(r"^[0-9a-f]{40}$")
UNREACHABLE = ("Cannot reach the repository at {host}: its address is not allowed, nothing answered, or the connection "
               "was refused or timed out.")
# What a git server said, in words that are safe to show; anything else from a network remote is UNREACHABLE.
_ANSWERS = (
    (re.compile(r"couldn't find remote ref", re.I), "The remote has no such branch."),
    (re.compile(r"authentication failed|could not read (username|password)|returned error: 40[13]|permission denied "
                r"\(publickey|terminal prompts disabled", re.I),
     "The remote refused access: check the access token (or the server's deploy key)."),
    (re.compile(r"repository not found|returned error: 404|not found", re.I),
     "The remote has no such repository (or the access token cannot see it)."),
    (re.compile(r"host key verification failed", re.I),
     "The remote's ssh host key is not known to this server: add it to the worker's known_hosts."),
    (re.compile(r"certificate verification failed|certificate problem|SSL certificate", re.I),
     "The remote's TLS certificate is not trusted by this server."),
)


class GitError(Exception):
    """A git command failed (unreachable remote, unknown branch, timeout); the message is safe to show."""


@dataclass(frozen=True)
class CommitInfo:
    """Who made a commit and what it says."""

    sha: str
    author: str
    message: str


def allow_local_remotes() -> bool:
    """`file://` remotes are allowed: only when KIKET_ALLOW_LOCAL_REMOTES is set (tests, trusted installs)."""
    return bool(current_app.config.get("KIKET_ALLOW_LOCAL_REMOTES"))


@dataclass(frozen=True)
class _Pin:
    """A network remote's host, resolved and checked: git connects to `ip` and nowhere else."""

    scheme: str
    host: str
    port: int
    ip: str | None


def git_allow_list() -> outbound.AllowList:
    """Hosts and networks a git remote may resolve into although private (KIKET_GIT_ALLOWED_HOSTS)."""
    return outbound.AllowList.parse(current_app.config.get("KIKET_GIT_ALLOWED_HOSTS") or ())


def remote_host(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a checked https/ssh remote URL; None for a local (file://) one."""
    match = _SCP_LIKE.match(url)
    if match:
        return "ssh", match.group("host"), 22
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        return None
    return scheme, parts.hostname or "", parts.port or (443 if scheme == "https" else 22)


def _pin(url: str) -> _Pin | None:
    target = remote_host(url)
    if target is None:
        return None
    scheme, host, port = target
    allow = git_allow_list()
    if host.lower().rstrip(".") in allow.hosts:
        # Listed by name: trusted as git resolves it (internal DNS, an ssh config alias); not pinned.
        return _Pin(scheme, host, port, None)
    try:
        addresses = outbound.resolve(host, port)
    except (OSError, UnicodeError) as exc:
        log.info("git remote %s: cannot resolve: %s", host, exc)
        raise GitError(UNREACHABLE.format(host=host)) from None
    refused = outbound.refusal(host, addresses, allow)
    if refused:
        log.warning("git remote refused: %s (KIKET_GIT_ALLOWED_HOSTS does not list it)", refused)
        raise GitError(UNREACHABLE.format(host=host))
    return _Pin(scheme, host, port, addresses[0])


def is_local_remote(url: str) -> bool:
    """True for a `file://` remote (a path on the server)."""
    return urlsplit(url).scheme.lower() == "file"


def validate_remote_url(url: str, *, allow_local: bool) -> str:
    """The remote URL, stripped, if it is https, ssh (`ssh://` or `git@host:path`) or an allowed `file://`.

    Raises `Invalid({"url": ...})` for anything else: options (`-o…`), transport helpers (`ext::`),
    credentials in the URL, or local paths when local remotes are off.
    """
    url = (url or "").strip()

    def refuse(why: str) -> Invalid:
        return Invalid({"url": why})

    if not url:
        raise refuse("Give the repository's URL.")
    if len(url) > 500:
        raise refuse("The URL is too long.")
    if url.startswith("-"):
        raise refuse("A URL cannot start with '-'.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise refuse("A URL cannot contain spaces or control characters.")
    if "::" in url:
        raise refuse("Transport helpers (like ext::) are not allowed; use https://, ssh:// or git@host:path.")
    match = _SCP_LIKE.match(url)
    if match:
        if ".." in match.group("path").split("/"):
            raise refuse("The repository path cannot contain '..'.")
        return url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "https" or scheme == "ssh":
        if not parts.hostname or not _HOST.match(parts.netloc.rsplit("@", 1)[-1]):
            raise refuse("The URL needs a host name.")
        if parts.password is not None:
            raise refuse("Do not put credentials in the URL; use the access token field.")
        try:
            parts.port
        except ValueError:
            raise refuse("The URL's port is not a port number.") from None
        if scheme == "https" and parts.username is not None:
            raise refuse("Do not put a user name in an https URL; use the access token field.")
        if parts.query or parts.fragment or not _URL_PATH.match(parts.path or "/"):
            raise refuse("The URL path may only contain letters, digits and . _ ~ / - characters.")
        if parts.path in ("", "/"):
            raise refuse("The URL needs the repository's path.")
        return url
    if scheme == "file":
        if not allow_local:
            raise refuse("Local (file://) remotes are disabled on this server (KIKET_ALLOW_LOCAL_REMOTES).")
        if parts.netloc or not parts.path.startswith("/") or not _URL_PATH.match(parts.path):
            raise refuse("Write local remotes as file:///absolute/path.")
        return url
    raise refuse("Use an https://, ssh:// or git@host:path URL.")


def validate_branch(branch: str) -> str:
    """The branch name if git accepts it as a branch (`git check-ref-format --branch`); else `Invalid`."""
    branch = (branch or "").strip()
    if not branch:
        raise Invalid({"branch": "Give a branch name."})
    if branch.startswith("-") or len(branch) > MAX_BRANCH_LENGTH or any(ch.isspace() or ord(ch) < 32 for ch in branch):
        raise Invalid({"branch": f"{branch[:60]!r} is not a valid branch name."})
    if branch.startswith("refs/") or "@{" in branch or ".." in branch:
        raise Invalid({"branch": f"{branch!r} is not a valid branch name; give the plain name (like main)."})
    done = subprocess.run(["git", "check-ref-format", "--branch", branch], capture_output=True,
                          timeout=LOCAL_TIMEOUT_S, env=_env(allow_file=False), check=False)
    if done.returncode != 0 or done.stdout.decode().strip() != branch:
        raise Invalid({"branch": f"{branch!r} is not a valid branch name."})
    return branch


def parse_github(url: str) -> tuple[str, str] | None:
    """(owner, name) when the remote is on github.com (https or ssh); None otherwise."""
    match = _SCP_LIKE.match(url)
    if match:
        host, path = match.group("host"), match.group("path")
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "ssh"):
            return None
        host, path = parts.hostname or "", parts.path
    if host.lower() != "github.com":
        return None
    found = _GITHUB_PATH.match(path)
    return (found.group("owner"), found.group("name")) if found else None


def _fernet() -> Fernet:
    # A key of its own derived from SECRET_KEY: rotating SECRET_KEY means re-entering tokens.
    secret = current_app.config["SECRET_KEY"].encode()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"kiket repository access tokens").derive(secret)
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_token(token: str) -> str:
    """Encrypt an access token for storage."""
    return _fernet().encrypt(token.encode()).decode()


def decrypt_token(ciphertext: str | None) -> str | None:
    """The plain access token, for git and GitHub calls only; None when absent or undecryptable."""
    if not ciphertext:
        return None
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        log.warning("a stored access token cannot be decrypted (SECRET_KEY changed?); ignoring it")
        return None


def _env(*, allow_file: bool, token: str | None = None, pin: _Pin | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({
        "GIT_ALLOW_PROTOCOL": "https:ssh:file" if allow_file else "https:ssh",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes" + (_ssh_pin(pin) if pin and pin.ip and pin.scheme == "ssh" else ""),
        "LC_ALL": "C",
    })
    if token:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env.update({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                    "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"})
    return env


def _ssh_pin(pin: _Pin) -> str:
    # Connect to the checked address; known_hosts is still looked up under the name the URL gave.
    alias = pin.host if pin.port == 22 else f"[{pin.host}]:{pin.port}"
    return f" -o HostName={shlex.quote(pin.ip)} -o HostKeyAlias={shlex.quote(alias)}"


def _git(args: list[str], *, timeout: float, allow_file: bool, token: str | None = None,
         git_dir: Path | None = None, remote: str | None = None) -> bytes:
    """Run git. With `remote` (a checked URL), a network remote's host is resolved and guarded first."""
    command = ["git", "-c", "core.hooksPath=/dev/null", "-c", "protocol.ext.allow=never",
               "-c", f"protocol.file.allow={'always' if allow_file else 'never'}", "-c", "http.followRedirects=false"]
    pin = _pin(remote) if remote is not None else None
    if pin is not None and pin.ip is not None and pin.scheme == "https":
        address = f"[{pin.ip}]" if ":" in pin.ip else pin.ip
        command += ["-c", f"http.curloptResolve={pin.host}:{pin.port}:{address}"]
    if git_dir is not None:
        command += ["--git-dir", str(git_dir)]
    try:
        done = subprocess.run(command + args, capture_output=True, timeout=timeout,
                              env=_env(allow_file=allow_file, token=token, pin=pin), check=False)
    except subprocess.TimeoutExpired:
        if pin is not None:
            log.info("git %s of %s: no answer within %.0f s", args[0], pin.host, timeout)
            raise GitError(UNREACHABLE.format(host=pin.host)) from None
        raise GitError(f"git {args[0]} did not finish within {timeout:.0f} s") from None
    except OSError as exc:
        raise GitError(f"git {args[0]} could not start: {exc}") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        if pin is not None:
            raise GitError(_network_failure(args[0], pin, lines))
        raise GitError(f"git {args[0]} failed: {lines[-1] if lines else f'exit code {done.returncode}'}")
    return done.stdout


def _network_failure(command: str, pin: _Pin, lines: list[str]) -> str:
    """What to show for a failed fetch/ls-remote of a network remote: a git server's answer, or UNREACHABLE."""
    log.info("git %s of %s (%s) failed: %s", command, pin.host, pin.ip, " | ".join(lines[-3:]))
    text = "\n".join(lines)
    for pattern, message in _ANSWERS:
        if pattern.search(text):
            return f"git {command} failed: {message}"
    return UNREACHABLE.format(host=pin.host)


def mirror_path(repository_id: int) -> Path:
    """The bare mirror of a repository: STORAGE_DIR/git/<id>.git."""
    return Path(current_app.config["STORAGE_DIR"]) / "git" / f"{int(repository_id)}.git"


def _tracking_ref(branch: str) -> str:
    return f"refs/remotes/origin/{branch}"


def fetch(repo, branch: str | None = None) -> Path:
    """Fetch `branch` (default: the tracked one) of a repository into its bare mirror; returns the mirror path."""
    allow_file = allow_local_remotes()
    url = validate_remote_url(repo.remote_url, allow_local=allow_file)
    branch = validate_branch(branch or repo.branch)
    path = mirror_path(repo.id)
    if not (path / "HEAD").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _git(["init", "--bare", "--quiet", "--", str(path)], timeout=LOCAL_TIMEOUT_S, allow_file=False)
    refspec = f"+refs/heads/{branch}:{_tracking_ref(branch)}"
    _git(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--depth=1", "--", url, refspec],
         timeout=FETCH_TIMEOUT_S, allow_file=allow_file, token=decrypt_token(repo.token_encrypted), git_dir=path,
         remote=url)
    return path


def resolve(repo, branch: str | None = None) -> str:
    """Full commit SHA of a fetched branch in the repository's mirror."""
    branch = validate_branch(branch or repo.branch)
    try:
        return resolve_commit(mirror_path(repo.id), _tracking_ref(branch))
    except ConfigSourceError:
        raise GitError(f"branch {branch!r} was not fetched or does not exist") from None


def commit_info(repo, sha: str) -> CommitInfo:
    """Author (`Name <email>`) and full message of a commit in the repository's mirror."""
    if not _SHA.match(sha):
        raise GitError(f"{sha!r} is not a full commit id")
    out = _git(["show", "--no-patch", "--format=%an <%ae>%x00%B", sha, "--"], timeout=LOCAL_TIMEOUT_S,
               allow_file=False, git_dir=mirror_path(repo.id))
    author, _, message = out.decode("utf-8", "replace").partition("\0")
    return CommitInfo(sha=sha, author=author.strip()[:255], message=message.strip())


def list_branches(url: str, token: str | None = None) -> list[str]:
    """Branch names of a remote: via GitHub's API for GitHub remotes with a token, else `git ls-remote --heads`."""
    allow_file = allow_local_remotes()
    url = validate_remote_url(url, allow_local=allow_file)
    github = parse_github(url)
    if github is not None and token:
        return _github_branches(*github, token)
    out = _git(["ls-remote", "--heads", "--", url], timeout=LS_REMOTE_TIMEOUT_S, allow_file=allow_file, token=token,
               remote=url)
    names = []
    for line in out.decode("utf-8", "replace").splitlines():
        _, _, ref = line.partition("\t")
        if ref.startswith("refs/heads/"):
            names.append(ref[len("refs/heads/"):])
    return sorted(names)


def list_repository_branches(repo) -> list[str]:
    """Branch names of a stored repository's remote (its token is used when it has one)."""
    return list_branches(repo.remote_url, decrypt_token(repo.token_encrypted))


def _github_branches(owner: str, name: str, token: str) -> list[str]:
    import github3
    import requests
    from github3.exceptions import GitHubError, NotFoundError

    api_url = current_app.config["KIKET_GITHUB_API_URL"]
    try:
        gh = github3.GitHubEnterprise(api_url, token=token) if api_url else github3.login(token=token)
        repository = gh.repository(owner, name)
        if repository is None:
            raise GitError(f"GitHub has no repository {owner}/{name} that this token can see")
        return sorted(branch.name for branch in repository.branches())
    except NotFoundError:
        raise GitError(f"GitHub has no repository {owner}/{name} that this token can see") from None
    except GitHubError as exc:
        raise GitError(f"GitHub refused to list branches of {owner}/{name}: {exc.msg or exc.code}") from None
    except requests.RequestException as exc:
        raise GitError(f"GitHub could not be reached: {exc.__class__.__name__}") from None
