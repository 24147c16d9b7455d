"""Start and stop the real servers the integration tests talk to, on loopback.

- `PostgresServer`: a private PostgreSQL cluster (for the Bluesky AppView).
- `AtprotoNetwork`: a real AT Protocol network from `@atproto/dev-env` (PLC
  directory, PDS, bsky AppView, bsync, ozone), run by `atproto-network.mjs`.
- `MastodonServer`: the `mastodon-mock` Mastodon API server.
- `SnacServer`: snac2, a small real server with a Mastodon API (Debian's binary).

Each one is a context manager; `stop()` is idempotent and also runs at exit.
A watchdog process ends whatever is left if the test process dies without
stopping its servers (SIGKILL, `os._exit`). What is not installed raises
`ServerNotInstalled`, whose message names the command that installs it.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import requests
from requests.adapters import HTTPAdapter

__all__ = [
    "INSTALL_COMMAND",
    "SNAC_VERSION",
    "AtprotoNetwork",
    "MastodonServer",
    "PostgresServer",
    "ServerError",
    "ServerNotInstalled",
    "SnacServer",
    "atproto_tree",
    "cache_root",
    "postgres_bindir",
    "snac_tree",
]

HERE = Path(__file__).resolve().parent
INSTALL_COMMAND = "tests/servers/install"
_INSTALL_HINT = f"run `{INSTALL_COMMAND}` (scripts/test runs it for you)"
_PYTHON_HINT = "run `scripts/test`, or `pip install -e '.[dev]'` in the project's venv"
_LOOPBACK = "127.0.0.1"
# The Debian package version of snac2 that tests/servers/install downloads.
SNAC_VERSION = (HERE / "snac2.version").read_text().strip()


class ServerError(RuntimeError):
    """A test server failed to start, answered with an error, or died."""


class ServerNotInstalled(ServerError):
    """Something a test server needs is missing; the message says what to run."""


# --- locating what tests/servers/install installed ---------------------------


def cache_root() -> Path:
    """The folder tests/servers/install caches Node and the dev-env tree in."""
    if root := os.environ.get("CHATBOT_TEST_CACHE"):
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "chatbot-tests"


def atproto_tree() -> Path:
    """The installed dev-env tree for this checkout's package-lock.json.

    Keyed like tests/servers/install: sha256 of package.json + package-lock.json.
    """
    digest = hashlib.sha256(
        (HERE / "package.json").read_bytes() + (HERE / "package-lock.json").read_bytes()
    ).hexdigest()[:16]
    tree = cache_root() / f"atproto-{digest}"
    if not (tree / ".complete").is_file() or not os.access(tree / "bin" / "node", os.X_OK):
        raise ServerNotInstalled(
            f"the AT Protocol test servers (Node 22 + @atproto/dev-env) are not installed at "
            f"{tree}: {_INSTALL_HINT}"
        )
    return tree


def snac_tree() -> Path:
    """The folder snac2's Debian package is unpacked in (`usr/bin/snac`), for SNAC_VERSION."""
    tree = cache_root() / f"snac2-{SNAC_VERSION}"
    if not (tree / ".complete").is_file() or not os.access(tree / "usr" / "bin" / "snac", os.X_OK):
        raise ServerNotInstalled(
            f"snac2 {SNAC_VERSION} is not installed at {tree}: {_INSTALL_HINT}"
        )
    return tree


def postgres_bindir() -> Path:
    """The newest PostgreSQL server bin folder (Debian layout), or CHATBOT_PG_BINDIR."""
    if env := os.environ.get("CHATBOT_PG_BINDIR"):
        candidates = [Path(env)]
    else:
        candidates = sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0],
            reverse=True,
        )
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "postgres", "pg_isready", "psql")):
            return bindir
    where = env or "/usr/lib/postgresql/*/bin"
    raise ServerNotInstalled(
        f"PostgreSQL server binaries (initdb, postgres, pg_isready, psql) not found in {where}: "
        f"{_INSTALL_HINT}"
    )


# --- processes -----------------------------------------------------------------

_REAPER_CODE = r"""
import os, shutil, signal, sys, time
groups, dirs = {}, []
for line in sys.stdin:
    op, _, arg = line.rstrip("\n").partition(" ")
    if op == "add":
        pgid, sig = arg.split()
        groups[int(pgid)] = int(sig)
    elif op == "del":
        groups.pop(int(arg), None)
    elif op == "dir":
        dirs.append(arg)
    elif op == "undir" and arg in dirs:
        dirs.remove(arg)
# stdin closed: the test process has gone. End what it left running.
def alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except OSError:
        return False
for pgid, sig in groups.items():
    if alive(pgid):
        os.killpg(pgid, sig)
deadline = time.monotonic() + 10
while time.monotonic() < deadline and any(alive(p) for p in groups):
    time.sleep(0.1)
for pgid in groups:
    if alive(pgid):
        os.killpg(pgid, signal.SIGKILL)
time.sleep(0.2)
for d in dirs:
    if os.path.isdir(d) and not os.path.islink(d):
        shutil.rmtree(d, ignore_errors=True)
    else:
        try:
            os.remove(d)
        except OSError:
            pass
"""


class _Reaper:
    """A watchdog that ends our process groups if this process dies first.

    It reads commands on a pipe whose only writer is this process; EOF means
    we are gone (however we died), and it then stops what is still registered.
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def _send(self, line: str) -> None:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = subprocess.Popen(
                    [sys.executable, "-c", _REAPER_CODE],
                    stdin=subprocess.PIPE,
                    text=True,
                    start_new_session=True,  # outlive a Ctrl-C sent to our group
                )
            assert self._proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.write(line + "\n")
                self._proc.stdin.flush()

    def watch(self, pgid: int, sig: signal.Signals) -> None:
        self._send(f"add {pgid} {int(sig)}")

    def unwatch(self, pgid: int) -> None:
        self._send(f"del {pgid}")

    def watch_dir(self, path: Path) -> None:
        """Remove `path` (a folder or a file) if we die."""
        self._send(f"dir {path}")

    def unwatch_dir(self, path: Path) -> None:
        self._send(f"undir {path}")

    def close(self) -> None:
        with self._lock:
            if self._proc is not None:
                assert self._proc.stdin is not None
                with contextlib.suppress(BrokenPipeError):
                    self._proc.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=15)
                self._proc = None


_reaper = _Reaper()
_running: list[_Managed] = []


@atexit.register
def _stop_all() -> None:
    for server in reversed(list(_running)):
        with contextlib.suppress(Exception):
            server.stop()
    _reaper.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((_LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def _private_dir(prefix: str, *, world_traversable: bool = False) -> Path:
    parent = Path(tempfile.gettempdir())
    if world_traversable and not all(p.stat().st_mode & 0o001 for p in (parent, *parent.parents)):
        # Another user (postgres) must reach the folder; $TMPDIR is closed to it.
        parent = Path("/tmp")  # noqa: S108 - a private mkdtemp folder inside it
    path = Path(tempfile.mkdtemp(prefix=f"chatbot-{prefix}-", dir=parent))
    _reaper.watch_dir(path)
    return path


def _remove_dir(path: Path | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
        _reaper.unwatch_dir(path)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class _Process:
    """A child in its own process group, with its output in a log file."""

    def __init__(
        self,
        args: list[str],
        *,
        log: Path,
        cwd: Path,
        env: dict[str, str] | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        user: str | None = None,
    ) -> None:
        self.log = log
        self.stop_signal = stop_signal
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                args,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=user,
                group=user,
                extra_groups=[] if user else None,
            )
        _reaper.watch(self.popen.pid, stop_signal)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15) -> None:
        """Signal the whole group, wait, then kill what is left."""
        pgid = self.popen.pid
        for sig, wait in ((self.stop_signal, timeout), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
            try:
                self.popen.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # The leader may be gone while others in its group linger.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        _reaper.unwatch(pgid)

    def failure(self, what: str) -> ServerError:
        state = "is running" if self.alive() else f"exited with code {self.popen.returncode}"
        return ServerError(f"{what} ({state}); last lines of {self.log}:\n{_tail(self.log)}")


def _wait_until(ready: Callable[[], bool], proc: _Process, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        if ready():
            return
        if not proc.alive():
            raise proc.failure(f"{what} exited during start-up")
        if time.monotonic() > deadline:
            raise proc.failure(f"{what} not ready after {timeout:.0f} s")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def _http_json(
    method: str,
    url: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - our loopback URL
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            text = response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            detail = exc.read().decode(errors="replace")
        raise ServerError(f"{method} {url} answered {exc.code}: {detail}") from exc
    return json.loads(text) if text else None


class _Managed:
    """Shared start/stop plumbing: context manager, at-exit stop."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def _started(self) -> None:
        _running.append(self)

    def _stopped(self) -> None:
        with contextlib.suppress(ValueError):
            _running.remove(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- PostgreSQL ------------------------------------------------------------------


class PostgresServer(_Managed):
    """A throwaway PostgreSQL cluster on 127.0.0.1, fsync off, in a private folder.

    Every `start()` runs initdb in a new folder, so all data is new. As root the
    server runs as the `postgres` user, because initdb and postgres refuse root.
    """

    user = "postgres"  # the superuser role initdb creates; trust auth on loopback

    def __init__(self, *, bindir: Path | None = None, startup_timeout: float = 30) -> None:
        self._bindir = bindir
        self.startup_timeout = startup_timeout
        self.host = _LOOPBACK
        self.port = 0
        self.dir: Path | None = None
        self._proc: _Process | None = None

    def url(self, database: str = "postgres") -> str:
        """A `postgresql://` URL for a database on this server."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def start(self) -> Self:
        if self._proc is not None:
            return self
        bindir = self._bindir or postgres_bindir()
        run_as = None
        if os.geteuid() == 0:
            run_as = "postgres"
            try:
                owner = pwd.getpwnam(run_as)
            except KeyError:
                raise ServerNotInstalled(
                    f"running as root but there is no 'postgres' user to run initdb as: "
                    f"{_INSTALL_HINT}"
                ) from None
        self.dir = _private_dir("postgres", world_traversable=run_as is not None)
        try:
            if run_as:
                os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            data = self.dir / "data"
            initdb = subprocess.run(
                [
                    str(bindir / "initdb"), "-D", str(data), "-U", self.user,
                    "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync",
                    "--no-instructions",
                ],
                cwd=self.dir, capture_output=True, text=True, check=False,
                user=run_as, group=run_as, extra_groups=[] if run_as else None,
            )  # fmt: skip
            if initdb.returncode != 0:
                raise ServerError(f"initdb failed:\n{initdb.stdout}{initdb.stderr}")
            # A free port can be taken between our probe and postgres' bind: retry.
            for _attempt in range(3):
                self.port = _free_port()
                proc = _Process(
                    [
                        str(bindir / "postgres"), "-D", str(data), "-p", str(self.port),
                        "-c", f"listen_addresses={_LOOPBACK}",
                        "-c", "unix_socket_directories=",  # TCP on loopback only
                        "-c", "fsync=off", "-c", "synchronous_commit=off",
                        "-c", "full_page_writes=off", "-c", "max_connections=200",
                    ],
                    log=self.dir / "postgres.log", cwd=self.dir, user=run_as,
                    # SIGINT is postgres' "fast" shutdown; SIGTERM waits for clients.
                    stop_signal=signal.SIGINT,
                )  # fmt: skip
                try:
                    _wait_until(self._ready, proc, self.startup_timeout, "postgres")
                except ServerError:
                    proc.stop()
                    if "could not bind" in _tail(proc.log) or "in use" in _tail(proc.log):
                        continue
                    raise
                self._proc = proc
                break
            else:
                log = _tail(self.dir / "postgres.log")
                raise ServerError(f"postgres could not bind a port:\n{log}")
        except BaseException:
            _remove_dir(self.dir)
            self.dir = None
            raise
        self._started()
        return self

    def _ready(self) -> bool:
        bindir = self._bindir or postgres_bindir()
        args = ["-q", "-h", self.host, "-p", str(self.port), "-U", self.user]
        check = subprocess.run([str(bindir / "pg_isready"), *args], check=False)
        return check.returncode == 0

    def recreate_database(self, name: str) -> str:
        """Drop `name` if it exists, create it empty, and return its URL."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"database name must match [a-z_][a-z0-9_]*: {name!r}")
        if self._proc is None:
            raise ServerError("PostgresServer is not started")
        bindir = self._bindir or postgres_bindir()
        result = subprocess.run(
            [
                str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", "postgres",
                "-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
                "-c", f'CREATE DATABASE "{name}"',
            ],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise ServerError(f"could not recreate database {name}: {result.stderr}")
        return self.url(name)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.stop()
        _remove_dir(self.dir)
        self.dir = None
        self._stopped()


# --- AT Protocol -------------------------------------------------------------------


class AtprotoNetwork(_Managed):
    """A real AT Protocol network (PLC, PDS, AppView) on loopback, from @atproto/dev-env.

    Point the atproto client at `pds_url`: the PDS serves accounts and writes and
    forwards `app.bsky.*` reads to the AppView. Call `process_all()` after
    writing and before reading through the AppView (search, threads,
    notifications) instead of sleeping.

    It starts its own PostgreSQL unless given one; the AppView's database is
    created new on every start, because the PLC directory lives in memory.
    """

    def __init__(
        self,
        *,
        postgres: PostgresServer | None = None,
        startup_timeout: float = 120,
        database: str = "atproto",
    ) -> None:
        self._postgres = postgres
        self._own_postgres = postgres is None
        self.startup_timeout = startup_timeout
        self.database = database
        self.pds_url = ""
        self.bsky_url = ""
        self.plc_url = ""
        self.control_url = ""
        self.dir: Path | None = None
        self._proc: _Process | None = None
        self.start_seconds = 0.0

    @property
    def postgres(self) -> PostgresServer:
        if self._postgres is None:
            raise ServerError("AtprotoNetwork is not started")
        return self._postgres

    def start(self) -> Self:
        if self._proc is not None:
            return self
        began = time.monotonic()
        tree = atproto_tree()  # before anything starts: fail fast if not installed
        if self._postgres is None:
            self._postgres = PostgresServer()
        self._postgres.start()
        try:
            db_url = self._postgres.recreate_database(self.database)
            self.dir = _private_dir("atproto")
            ready_file = self.dir / "ready.json"
            tmp = self.dir / "tmp"  # the PDS keeps its repos and blobs under TMPDIR
            tmp.mkdir()
            env = {k: v for k, v in os.environ.items() if not k.startswith(("NODE_", "npm_"))}
            # CHATBOT_TEST_SERVER_LOGS=true puts the services' own logs in network.log.
            logs = os.environ.get("CHATBOT_TEST_SERVER_LOGS", "false")
            env.update(TMPDIR=str(tmp), LOG_ENABLED=logs)
            self._proc = _Process(
                [
                    str(tree / "bin" / "node"), str(HERE / "atproto-network.mjs"),
                    "--modules", str(tree), "--db-url", db_url, "--db-schema", "chatbot",
                    "--ready-file", str(ready_file), "--parent-pid", str(os.getpid()),
                ],
                log=self.dir / "network.log", cwd=self.dir, env=env,
            )  # fmt: skip
            _wait_until(ready_file.exists, self._proc, self.startup_timeout, "atproto network")
            info = json.loads(ready_file.read_text())
        except BaseException:
            self.stop()
            raise
        self.pds_url = info["pds_url"]
        self.bsky_url = info["bsky_url"]
        self.plc_url = info["plc_url"]
        self.control_url = info["control_url"]
        self.start_seconds = time.monotonic() - began
        self._started()
        return self

    def _control(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        if self._proc is None:
            raise ServerError("AtprotoNetwork is not started")
        try:
            return _http_json(method, self.control_url + path, body, timeout=timeout)
        except (OSError, ServerError) as exc:
            if not self._proc.alive():
                raise self._proc.failure("atproto network died") from exc
            raise

    def health(self) -> bool:
        """Whether the control endpoint answers."""
        try:
            return bool(self._control("GET", "/health", timeout=5).get("ok"))
        except (OSError, ServerError):
            return False

    def process_all(self) -> None:
        """Wait until the AppView has indexed every write made so far."""
        self._control("POST", "/process-all")

    def create_account(
        self, handle: str, password: str, email: str | None = None
    ) -> tuple[str, str]:
        """Create an account on the PDS; returns (did, handle).

        Handles end in `.test`; some names are reserved (e.g. `bot.test`).
        """
        body = {"handle": handle, "password": password}
        if email is not None:
            body["email"] = email
        result = self._control("POST", "/create-account", body)
        return result["did"], result["handle"]

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.stop()
        if self._own_postgres and self._postgres is not None:
            self._postgres.stop()
            self._postgres = None
        _remove_dir(self.dir)
        self.dir = None
        self._stopped()


# --- Mastodon ----------------------------------------------------------------------


# Accounts of other servers that mastodon-mock is seeded with (user name -> domain): the
# mock makes local accounts at run time, remote ones only from its seed at start.
REMOTE_ACCOUNTS = {"twin": "elsewhere.example"}


def _remote_token(username: str) -> str:
    return f"remote-{username}-token"  # a throwaway token of a loopback mock server


def _mastodon_seed() -> str:
    """mastodon-mock's seed as TOML: its default account, and ``REMOTE_ACCOUNTS``."""
    lines = [
        "[[seed.accounts]]",
        'username = "testuser"',
        'display_name = "Test User"',
        'access_token = "mock_token"',
    ]
    for username, domain in REMOTE_ACCOUNTS.items():
        lines += [
            "[[seed.accounts]]",
            f'username = "{username}"',
            f'domain = "{domain}"',
            f'access_token = "{_remote_token(username)}"',
        ]
    return "\n".join(lines) + "\n"


class MastodonServer(_Managed):
    """The mastodon-mock Mastodon API server, in its own process on loopback.

    `api_base_url` is what `Mastodon(api_base_url=...)` takes. State lives in
    memory and is gone at `stop()`; `reset()` empties it while running.
    """

    def __init__(self, *, startup_timeout: float = 60) -> None:
        self.startup_timeout = startup_timeout
        self.host = _LOOPBACK
        self.port = 0
        self.api_base_url = ""
        self.dir: Path | None = None
        self._proc: _Process | None = None
        self.start_seconds = 0.0

    def start(self) -> Self:
        if self._proc is not None:
            return self
        if importlib.util.find_spec("mastodon_mock") is None:
            raise ServerNotInstalled(
                f"the mastodon-mock package is not installed in {sys.executable}: {_PYTHON_HINT}"
            )
        began = time.monotonic()
        self.dir = _private_dir("mastodon")
        try:
            # Its own config file, so a [tool.mastodon_mock] table in some
            # pyproject.toml in the working folder cannot change it.
            config = self.dir / "mastodon_mock.toml"
            config.write_text('[database]\npath = ":memory:"\n' + _mastodon_seed())
            for _attempt in range(3):
                self.port = _free_port()
                self.api_base_url = f"http://{self.host}:{self.port}"
                proc = _Process(
                    [
                        sys.executable, "-m", "mastodon_mock", "serve", "--config", str(config),
                        "--host", self.host, "--port", str(self.port), "--in-memory",
                        "--log-level", "warning",
                    ],
                    log=self.dir / "mastodon.log", cwd=self.dir,
                )  # fmt: skip
                try:
                    _wait_until(self._ready, proc, self.startup_timeout, "mastodon-mock")
                except ServerError:
                    proc.stop()
                    if "address already in use" in _tail(proc.log).lower():
                        continue
                    raise
                self._proc = proc
                break
            else:
                log = _tail(self.dir / "mastodon.log")
                raise ServerError(f"mastodon-mock could not bind a port:\n{log}")
        except BaseException:
            _remove_dir(self.dir)
            self.dir = None
            raise
        self.start_seconds = time.monotonic() - began
        self._started()
        return self

    def _ready(self) -> bool:
        try:
            _http_json("GET", f"{self.api_base_url}/api/v1/instance", timeout=2)
        except (OSError, ServerError):
            return False
        return True

    def _mock(self, method: str, path: str, body: Any = None) -> Any:
        if self._proc is None:
            raise ServerError("MastodonServer is not started")
        return _http_json(method, f"{self.api_base_url}/api/v1/_mock/{path}", body)

    def remote_account(self, username: str) -> tuple[str, str, str]:
        """A seeded account of another server (``REMOTE_ACCOUNTS``), with a token so that it
        can post here as if it had federated in: (account_id, access_token, domain)."""
        domain = REMOTE_ACCOUNTS[username]
        me = _http_json(
            "GET",
            f"{self.api_base_url}/api/v1/accounts/verify_credentials",
            headers={"Authorization": f"Bearer {_remote_token(username)}"},
        )
        return str(me["id"]), _remote_token(username), domain

    def create_account(
        self, username: str | None = None, *, display_name: str | None = None
    ) -> tuple[str, str]:
        """Create a local account with a user token; returns (account_id, access_token).

        Without a username a unique one is made up.
        """
        username = username or f"user{secrets.token_hex(4)}"
        body: dict[str, Any] = {"username": username}
        if display_name is not None:
            body["display_name"] = display_name
        result = self._mock("POST", "dev_user", body)
        return str(result["id"]), str(result["access_token"])

    def inject_fault(
        self,
        path: str,
        *,
        status: int = 429,
        count: int | None = 1,
        reset: datetime | timedelta | None = None,
        methods: list[str] | None = None,
        delay_ms: int = 0,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Make the next `count` matching requests fail with `status`; returns the rule id.

        `path` is an exact API path or a glob (`/api/v1/statuses*`); `count=None`
        fails every request until `clear_faults()`. A 429 carries Mastodon's
        rate-limit headers; `reset` (a time, or a delay from now) sets
        `X-RateLimit-Reset` (ISO 8601, as Mastodon sends it) and `Retry-After`.
        Requests under /api/v1/_mock are never affected.
        """
        effect: dict[str, Any] = {
            "type": "ratelimit" if status == 429 else "status",
            "status": status,
            "delay_ms": delay_ms,
            "headers": dict(headers or {}),
        }
        if reset is not None:
            now = datetime.now(UTC)
            at = now + reset if isinstance(reset, timedelta) else reset.astimezone(UTC)
            wait = max(0, round((at - now).total_seconds()))
            effect["headers"].setdefault("X-RateLimit-Reset", at.isoformat(timespec="milliseconds"))
            effect["headers"].setdefault("Retry-After", str(wait))
        match: dict[str, Any] = {"path": path}
        if methods is not None:
            match["methods"] = [m.upper() for m in methods]
        rule = self._mock("POST", "faults", {"match": match, "effect": effect, "count": count})
        return str(rule["id"])

    def faults(self) -> list[dict[str, Any]]:
        """The fault rules still active, with their remaining counts."""
        rules: list[dict[str, Any]] = self._mock("GET", "faults")
        return rules

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self._mock("DELETE", "faults")

    def reset(self) -> None:
        """Drop all accounts, statuses and faults."""
        self._mock("POST", "reset")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.stop()
        _remove_dir(self.dir)
        self.dir = None
        self._stopped()


# --- snac2 -------------------------------------------------------------------------

# What `snac init` asks, in order: network address, port, host name, URL prefix,
# admin email.
_SNAC_INIT_ANSWERS = "{address}\n{port}\n{host}\n\n\n"
_SNAC_USERNAME = re.compile(r"[A-Za-z0-9_]+")


class _OneRequestPerConnection(HTTPAdapter):
    """Closes each connection after its answer, instead of pooling it."""

    def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().send(request, *args, **kwargs)
        _ = response.content  # read it all: the connection goes back to the pool...
        self.poolmanager.clear()  # ...and is closed there
        return response


class SnacServer(_Managed):
    """snac2, a small real server with a Mastodon API, on loopback (Debian's binary).

    Every `start()` makes a new data folder (`snac init`), so all data is new.
    `api_base_url` is what `Mastodon(api_base_url=...)` takes; give it
    `session=server.session()` too, because snac serves one request per
    connection. Accounts come from `create_account(name)`. Deliveries between
    its own accounts (mentions, replies into timelines) go through snac's queue
    and take seconds: poll with a deadline.
    """

    # Worker threads. snac delivers to its own accounts over HTTP too, and each
    # delivery holds a worker while another one answers it: with snac's default
    # (the CPU count, at least 4) three posts at once deadlock until the 6 s
    # queue timeout, and the retry comes 2 minutes later.
    threads = 16

    def __init__(self, *, startup_timeout: float = 30) -> None:
        self.startup_timeout = startup_timeout
        self.host = _LOOPBACK
        self.port = 0
        self.api_base_url = ""
        self.dir: Path | None = None
        self._proc: _Process | None = None
        self._binary: Path | None = None
        self._version = ""
        self._leftovers: list[Path] = []  # snac's shared-memory files, gone after a clean stop
        self.start_seconds = 0.0

    @property
    def data(self) -> Path:
        """snac's data folder (server.json, user/, object/, ...)."""
        if self.dir is None:
            raise ServerError("SnacServer is not started")
        return self.dir / "data"

    @property
    def domain(self) -> str:
        """snac's host name, the part after the `@` of its handles: `127.0.0.1:<port>`."""
        return f"{self.host}:{self.port}"

    @property
    def version(self) -> str:
        """The snac version the running server reports (`2.75`), not its Mastodon pretence."""
        if not self._version:
            raise ServerError("SnacServer is not started")
        return self._version

    def start(self) -> Self:
        if self._proc is not None:
            return self
        began = time.monotonic()
        self._binary = snac_tree() / "usr" / "bin" / "snac"
        self.dir = _private_dir("snac")
        try:
            self.port = _free_port()
            self._snac("init", str(self.data), stdin=self._init_answers())
            env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SNAC_BASEDIR")}
            if os.environ.get("CHATBOT_TEST_SERVER_LOGS", "false").lower() == "true":
                env["DEBUG"] = "1"  # a line per request in snac.log
            # A free port can be taken between our probe and snac's bind: retry.
            for attempt in range(3):
                if attempt:
                    self.port = _free_port()
                self._configure()
                proc = _Process(
                    [str(self._binary), "httpd", str(self.data)],
                    log=self.dir / "snac.log",
                    cwd=self.dir,
                    env=env,
                )
                self._watch_leftovers(proc.popen.pid)
                try:
                    _wait_until(self._ready, proc, self.startup_timeout, "snac")
                except ServerError:
                    proc.stop()
                    self._remove_leftovers()
                    if "cannot bind" in _tail(proc.log):
                        continue
                    raise
                self._proc = proc
                break
            else:
                raise ServerError(f"snac could not bind a port:\n{_tail(self.dir / 'snac.log')}")
        except BaseException:
            self._remove_leftovers()
            _remove_dir(self.dir)
            self.dir = None
            raise
        self.start_seconds = time.monotonic() - began
        self._started()
        return self

    def _init_answers(self) -> str:
        return _SNAC_INIT_ANSWERS.format(address=self.host, port=self.port, host=self.domain)

    def _snac(self, *args: str, stdin: str | None = None) -> str:
        """Run a snac command (not the server); its output, or ServerError."""
        assert self._binary is not None
        result = subprocess.run(
            [str(self._binary), *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        output = result.stdout + result.stderr
        if result.returncode != 0 or "ERROR" in output:
            raise ServerError(f"snac {' '.join(args)} failed (exit {result.returncode}):\n{output}")
        return output

    def _configure(self) -> None:
        """server.json for loopback: plain HTTP, our address and port, enough workers."""
        path = self.data / "server.json"
        config = json.loads(path.read_text())
        config.update(
            address=self.host,
            port=self.port,
            host=self.domain,  # its URLs, and where it delivers to its own accounts
            protocol="http",
            num_threads=self.threads,
        )
        path.write_text(json.dumps(config, indent=4))

    def _watch_leftovers(self, pid: int) -> None:
        # Named after the host and the pid; a killed snac leaves them in /dev/shm.
        shm = Path("/dev/shm")  # noqa: S108 - snac's own names, removed only if left over
        self._leftovers = [shm / f"{self.domain}_snac_state", shm / f"sem.job_{pid}"]
        for path in self._leftovers:
            _reaper.watch_dir(path)

    def _remove_leftovers(self) -> None:
        for path in self._leftovers:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            _reaper.unwatch_dir(path)
        self._leftovers = []

    def _ready(self) -> bool:
        try:
            info = _http_json("GET", f"http://{self.domain}/api/v1/instance", timeout=2)
        except (OSError, ServerError, ValueError):
            return False
        if not isinstance(info, dict) or info.get("uri") != self.domain:
            return False
        # "4.0.0 (not true; really snac/2.75)"
        match = re.search(r"snac/([0-9][^ )]*)", str(info.get("version", "")))
        self._version = match.group(1) if match else ""
        self.api_base_url = f"http://{self.domain}"
        return True

    def create_account(self, username: str | None = None) -> tuple[str, str]:
        """Create a local account and a bearer token; returns (account_id, access_token).

        Usernames are letters, digits and `_`; without one a unique one is made up.
        """
        if self._proc is None:
            raise ServerError("SnacServer is not started")
        username = username or f"user{secrets.token_hex(4)}"
        if not _SNAC_USERNAME.fullmatch(username):
            raise ValueError(f"snac usernames are letters, digits and _: {username!r}")
        output = self._snac("adduser", str(self.data), username)
        found = re.search(r"User password is (\S+)", output)
        if found is None:
            raise ServerError(f"snac adduser printed no password:\n{output}")
        token = self.token(username, found.group(1))
        me = _http_json(
            "GET",
            f"{self.api_base_url}/api/v1/accounts/verify_credentials",
            headers={"Authorization": f"Bearer {token}"},
        )
        return str(me["id"]), token

    def token(self, username: str, password: str) -> str:
        """A new bearer token from snac's own `POST /oauth/x-snac-get-token`.

        It answers 200 either way: the token as text/plain, or a login page (HTML).
        """
        body = urllib.parse.urlencode({"login": username, "passwd": password}).encode()
        url = f"{self.api_base_url}/oauth/x-snac-get-token"
        request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 - loopback
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            ctype = response.headers.get("Content-Type", "")
            text = response.read().decode().strip()
        if not ctype.startswith("text/plain") or not re.fullmatch(r"[0-9a-f]{32}", text):
            raise ServerError(f"snac gave no token for {username!r} (answered {ctype})")
        return text

    def session(self) -> requests.Session:
        """A `requests.Session` for Mastodon.py that opens a new connection per request.

        snac closes the connection after each answer without saying so (no
        `Connection: close`): a pooled connection is often reused after that,
        and the request fails with "connection reset by peer".
        """
        session = requests.Session()
        session.mount("http://", _OneRequestPerConnection())
        session.mount("https://", _OneRequestPerConnection())
        return session

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.stop()
        self._remove_leftovers()
        _remove_dir(self.dir)
        self.dir = None
        self._stopped()
