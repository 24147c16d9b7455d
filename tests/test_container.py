"""What the image runs, run without Docker: the Dockerfile's own entrypoint, user and
environment, confined like the container (bubblewrap), and the deploy files around it.

There is no Docker engine on these machines. The confined tests read the final stage
of the Dockerfile (USER, ENV, WORKDIR, ENTRYPOINT, CMD, HEALTHCHECK) and run exactly
that command in a sandbox built like the container: a read-only root, a tmpfs /tmp,
/data bound to a host folder, the config and scripts mounted read-only, its own PID
namespace (the bot is PID 1, as under ``docker run``), no network (the replicas share
the host's, for PostgreSQL on loopback), and the uid of the Dockerfile's USER with no
capabilities. The test's virtualenv is mounted where the image installs its own (the
first folder on the Dockerfile's PATH).
"""

# "/tmp" here is the container's tmpfs mount point, not a temporary file of the tests.
# ruff: noqa: S108

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chatbot.store import BOT_AUTHOR, Store

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
WAIT = 60.0  # seconds: every wait on a real process is bounded
CHAT = "container-test"
# What the python base image sets before the Dockerfile's own ENV.
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}


# --- the Dockerfile ----------------------------------------------------------------------


@dataclass
class Stage:
    """What the final stage of a Dockerfile says the container runs."""

    base: str
    user: str = "0"
    env: dict[str, str] = field(default_factory=lambda: dict(BASE_ENV))
    workdir: str = "/"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    copies: list[str] = field(default_factory=list)  # COPY/ADD lines, as written


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))
    )
    result = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def _exec_form(value: str) -> list[str]:
    parsed = json.loads(value)
    assert isinstance(parsed, list), f"exec form expected: {value}"
    return [str(v) for v in parsed]


def _expand(value: str, env: dict[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` replaced as Docker does in ENV."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m[1], ""), value)


def final_stage(text: str) -> Stage:
    stage: Stage | None = None
    for word, rest in instructions(text):
        if word == "FROM":
            stage = Stage(base=rest.split()[0])
            continue
        assert stage is not None, "an instruction before FROM"
        if word == "USER":
            stage.user = rest
        elif word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                stage.env[key] = _expand(value, stage.env)
        elif word == "WORKDIR":
            stage.workdir = rest
        elif word == "ENTRYPOINT":
            stage.entrypoint = _exec_form(rest)
        elif word == "CMD":
            stage.cmd = _exec_form(rest)
        elif word == "VOLUME":
            stage.volumes += _exec_form(rest)
        elif word == "HEALTHCHECK":
            stage.healthcheck = _exec_form(rest[rest.index("CMD") + 3 :].strip())
        elif word in ("COPY", "ADD"):
            stage.copies.append(rest)
    assert stage is not None, "no FROM in the Dockerfile"
    return stage


IMAGE = final_stage(DOCKERFILE.read_text(encoding="utf-8"))


# --- the sandbox -------------------------------------------------------------------------

# Loaded into every confined Python process (PYTHONPATH=/probe): every attempt to write
# outside /data and /tmp is reported on stderr, even one the code would catch.
AUDIT_PROBE = """\
import os
import sys

_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {
    "os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.chmod", "os.chown",
    "os.symlink", "os.link", "os.truncate", "os.utime", "shutil.rmtree", "shutil.move",
}
_ALLOWED = ("/data", "/tmp", "/dev/null")


def _outside(path):
    path = os.fsdecode(path)
    if path in ("", ":memory:"):
        return False
    path = os.path.abspath(path)
    return not any(path == a or path.startswith(a + "/") for a in _ALLOWED)


def _hook(event, args):
    if event == "open":
        paths = args[:1] if (args[2] or 0) & _WRITE else ()
    elif event in ("os.rename", "os.link", "os.symlink"):
        paths = args[:2]
    elif event in _PATH_EVENTS or event == "sqlite3.connect":
        paths = args[:1]
    else:
        return
    for path in paths:
        if isinstance(path, (str, bytes, os.PathLike)) and _outside(path):
            os.write(2, f"WRITE-OUTSIDE {event} {os.fsdecode(path)}\\n".encode())


sys.addaudithook(_hook)
"""


def _missing(tool: str, package: str) -> str:
    return f"{tool} is not installed: scripts/test installs it (apt-get install {package})"


class Sandbox:
    """A data folder, config and scripts, and the bwrap command line of the container."""

    def __init__(
        self,
        tmp_path: Path,
        config: str,
        *,
        hostname: str = "chatbot",
        network: bool = False,
        archives: Path | None = None,
    ) -> None:
        """``network``: share the host's (for a database on loopback); ``archives``: a host
        folder mounted at /data/archives, as a volume shared by replicas."""
        for tool, package in (("bwrap", "bubblewrap"), ("setpriv", "util-linux")):
            if shutil.which(tool) is None:
                pytest.fail(_missing(tool, package))
        self.root = tmp_path
        self.data = tmp_path / "data"
        self.schedules = tmp_path / "schedules"
        self.probe = tmp_path / "probe"
        for folder in (self.data, self.schedules, self.probe):
            folder.mkdir()
        (self.probe / "sitecustomize.py").write_text(AUDIT_PROBE, encoding="utf-8")
        self.config = tmp_path / "config.yaml"
        self.config.write_text(config, encoding="utf-8")
        self.uid, _, gid = IMAGE.user.partition(":")
        self.gid = gid or self.uid
        assert self.uid.isdigit() and self.gid.isdigit(), "USER should be numeric"
        self.hostname, self.network, self.archives = hostname, network, archives
        self.as_root = os.geteuid() == 0
        if self.as_root:
            for folder in (self.data, archives):
                if folder is not None:
                    os.chown(folder, int(self.uid), int(self.gid))
        self.log = tmp_path / "run.log"
        self.process: subprocess.Popen[bytes] | None = None

    def argv(self, command: list[str]) -> list[str]:
        """``command`` as the container would run it."""
        venv = Path(IMAGE.env["PATH"].split(":")[0]).parent  # where the image installs
        args = ["bwrap", "--tmpfs", "/"]

        def bind(source: Path | str, dest: Path | str, option: str = "--ro-bind") -> None:
            # Made here, the parents are 0755; bwrap would make them 0700, closed to the bot.
            for parent in reversed(Path(dest).parents[:-1]):
                args.extend(["--dir", str(parent)])
            args.extend([option, str(source), str(dest)])

        bind("/usr", "/usr")
        bind("/etc", "/etc")
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            path = Path("/") / name
            if path.is_symlink():
                args += ["--symlink", str(path.readlink()), str(path)]
            elif path.is_dir():
                bind(path, path)
        for path in {Path(sys.base_prefix), ROOT}:
            if not path.is_relative_to("/usr"):
                bind(path, path)
        bind(sys.prefix, venv)
        args += ["--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--tmpfs", "/dev/shm"]
        args += ["--perms", "1777", "--size", str(64 << 20), "--tmpfs", "/tmp"]
        bind(self.data, "/data", "--bind")
        if self.archives is not None:
            bind(self.archives, "/data/archives", "--bind")
        bind(self.config, "/config/config.yaml")
        bind(self.schedules, "/schedules")
        bind(self.probe, "/probe")
        args += ["--remount-ro", "/"]
        args += ["--unshare-pid", "--as-pid-1", "--unshare-ipc"]
        args += ["--unshare-uts", "--hostname", self.hostname, "--die-with-parent"]
        if not self.network:
            args += ["--unshare-net"]
        args += ["--chdir", IMAGE.workdir, "--clearenv"]
        for key, value in {**IMAGE.env, "PYTHONPATH": "/probe"}.items():
            args += ["--setenv", key, value]
        if self.as_root:
            # bwrap sets the mounts up as root; the bot runs as the image's USER with no
            # capability and no way to gain one, like `docker run --cap-drop ALL
            # --security-opt no-new-privileges`.
            args += ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups"]
            args += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
        else:
            args[1:1] = ["--unshare-user", "--uid", self.uid, "--gid", self.gid]
        return [*args, *command]

    def start(self, *extra: str) -> subprocess.Popen[bytes]:
        """The container's main process: ENTRYPOINT + CMD (+ extra arguments)."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv([*IMAGE.entrypoint, *IMAGE.cmd, *extra]),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self.process

    def exec(self, command: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
        """Another process in the same container (``docker exec``): exit code and output."""
        if env:  # for the command only, not for the sandbox's own setup (setpriv)
            command = ["env", *(f"{k}={v}" for k, v in env.items()), *command]
        result = subprocess.run(
            self.argv(command),
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
        )
        return result.returncode, result.stdout + result.stderr

    def health(self, env: dict[str, str] | None = None) -> tuple[int, str]:
        return self.exec(IMAGE.healthcheck, env)

    def bot_pid(self) -> int:
        """The host's pid of the container's PID 1 (bwrap's only child)."""
        assert self.process is not None
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the bot exited ({self.process.returncode}):\n{self.log_text()}")
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.process.pid:
                    return int(stat.parent.name)
            time.sleep(0.05)
        pytest.fail("the confined process never started")

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def store(self) -> Store:
        return Store.open(f"sqlite:///{self.data / 'chatbot.db'}", now=datetime.now(UTC))

    def wait_for(self, what: str, condition: object) -> None:
        assert callable(condition)
        deadline = time.monotonic() + WAIT
        while not condition():
            if self.process is not None and self.process.poll() is not None:
                pytest.fail(
                    f"the bot exited ({self.process.returncode}) before {what}:\n" + self.log_text()
                )
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{self.log_text()}"
            time.sleep(0.1)

    def stop(self) -> None:
        """Kill the container: bwrap and everything under it (setpriv's change of user clears
        the parent-death signal bwrap set, so the bot would outlive bwrap otherwise)."""
        if self.process is not None and self.process.poll() is None:
            for pid in _descendants(self.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.kill()
            self.process.wait(timeout=10)


CONFIG = """\
data_dir: /data
schedules: /schedules
log_format: json
late: {step_grace: 2m}
answer_tail: 1s
accounts:
  local: {participants: false}
"""


def _script(start: datetime, spacing: str) -> str:
    return textwrap.dedent(
        f"""\
        id: {CHAT}
        title: Container test
        hashtag: ContainerTest
        timezone: UTC
        start: {start:%Y-%m-%d %H:%M:%S}
        networks: [local]
        moderators: [{{name: Host}}]
        welcome: {{text: "Welcome to {{hashtag}}"}}
        question_spacing: {spacing}
        questions:
          - {{at: {spacing}, text: "First question?"}}
          - {{text: "Second question?"}}
        closing: {{text: "Thanks for joining {{hashtag}}"}}
        recap: {{enabled: false}}
        """
    )


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path, CONFIG)
    yield box
    box.stop()


def _soon(seconds: float = 2) -> datetime:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)


def _bot_posts(box: Sandbox) -> list[str]:
    if not (box.data / "chatbot.db").exists():
        return []
    store = box.store()
    try:
        return [p.text for p in store.local_posts.visible(until=None) if p.author == BOT_AUTHOR]
    finally:
        store.close()


def _host_uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE)
    assert match is not None
    return int(match[1])


def _written_outside(box: Sandbox, output: str = "") -> list[str]:
    return [ln for ln in (box.log_text() + output).splitlines() if "WRITE-OUTSIDE" in ln]


@pytest.mark.slow
def test_the_image_entrypoint_runs_a_chat_as_non_root_with_only_data_and_tmp_writable(
    sandbox: Sandbox,
) -> None:
    """ENTRYPOINT + CMD, as the Dockerfile's USER in a read-only root, posts a whole chat,
    writes its transcript to /data, passes the health check while it runs, exits 0 when
    done, and tries to write nowhere but /data and /tmp."""
    (sandbox.schedules / f"{CHAT}.yaml").write_text(_script(_soon(), "1s"), encoding="utf-8")
    places = ["/", "/etc", "/usr/local/bin", "/opt/chatbot", str(ROOT), "/data", "/tmp"]
    probe = 'id -u; for d in "$@"; do touch "$d/x" 2>/dev/null && rm "$d/x" && echo "$d"; done'
    code, output = sandbox.exec(["sh", "-c", probe, "sh", *places])
    assert code == 0 and output.split() == [sandbox.uid, "/data", "/tmp"], output
    caught = "try: open('/etc/probe', 'w')\nexcept OSError: pass"
    code, output = sandbox.exec(["python", "-c", caught])
    assert code == 0 and "WRITE-OUTSIDE open /etc/probe" in output, "the probe sees attempts"

    process = sandbox.start("--exit-when-done")
    pid = sandbox.bot_pid()
    sandbox.wait_for("the welcome", lambda: any("Welcome" in t for t in _bot_posts(sandbox)))
    assert _host_uid(pid) == (int(sandbox.uid) if sandbox.as_root else os.getuid()) != 0
    code, output = sandbox.health()
    assert code == 0, f"health while it runs:\n{output}\n{sandbox.log_text()}"
    assert "FAIL" not in output

    assert process.wait(timeout=WAIT) == 0, sandbox.log_text()
    posts = _bot_posts(sandbox)
    assert len(posts) == 4, posts  # welcome, Q1, Q2, closing
    assert posts[1].startswith("Q1: First question?")
    archives = sorted(p.name for p in (sandbox.data / "archives").iterdir())
    assert [Path(a).suffix for a in archives] == [".csv", ".html", ".json", ".md"], archives
    assert _written_outside(sandbox) == []
    assert "Read-only file system" not in sandbox.log_text()
    assert "Permission denied" not in sandbox.log_text()
    if sandbox.as_root:
        owners = {p.stat().st_uid for p in sandbox.data.rglob("*")}
        assert owners == {int(sandbox.uid)}, "everything in /data is the bot's"


@pytest.mark.slow
def test_sigterm_stops_the_containers_pid_1_within_10_seconds_and_health_says_so(
    sandbox: Sandbox,
) -> None:
    """docker stop: SIGTERM to PID 1 mid-chat exits 0 within 10 s; the health check then
    fails and names the cause."""
    (sandbox.schedules / f"{CHAT}.yaml").write_text(_script(_soon(), "5m"), encoding="utf-8")
    process = sandbox.start()
    pid = sandbox.bot_pid()
    sandbox.wait_for("the welcome", lambda: any("Welcome" in t for t in _bot_posts(sandbox)))
    code, output = sandbox.health()
    assert code == 0, output

    sent = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    assert process.wait(timeout=10) == 0, sandbox.log_text()
    assert time.monotonic() - sent < 10

    code, output = sandbox.health()
    assert code == 1, output
    assert re.search(r"FAIL: the bot chatbot:\d+:[\w:]+ stopped at", output), output
    assert _written_outside(sandbox, output) == []


@pytest.mark.slow
def test_after_sigkill_the_health_check_fails_once_the_heartbeat_is_late(
    sandbox: Sandbox,
) -> None:
    """A bot killed outright (or hung) leaves no record: the health check fails as soon as
    its heartbeat is older than 30 s, naming the cause (checked 45 s later on the clock
    with libfaketime)."""
    libfaketime = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
    if not libfaketime:
        pytest.fail(_missing("libfaketime", "faketime"))
    (sandbox.schedules / f"{CHAT}.yaml").write_text(_script(_soon(), "5m"), encoding="utf-8")
    process = sandbox.start()
    pid = sandbox.bot_pid()
    sandbox.wait_for("the welcome", lambda: any("Welcome" in t for t in _bot_posts(sandbox)))
    code, output = sandbox.health()
    assert code == 0, output

    os.kill(pid, signal.SIGKILL)
    process.wait(timeout=10)
    later = {"LD_PRELOAD": str(libfaketime[0]), "FAKETIME": "+45s", "DONT_FAKE_MONOTONIC": "1"}
    code, output = sandbox.health(later)
    assert code == 1, output
    assert "FAIL: the scheduler has not run a job since" in output, output


# --- the Dockerfile and the build context ------------------------------------------------


def test_the_dockerfile_builds_wheels_apart_and_runs_the_bot_as_non_root() -> None:
    """Wheels are built in a stage of their own; the runtime stage copies nothing from the
    build context, runs `chatbot run` as a numeric non-root user, keeps its state in the
    /data volume and checks its health with `chatbot health`."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    froms = [rest for word, rest in instructions(text) if word == "FROM"]
    assert len(froms) >= 2 and " AS " in froms[0].upper(), "a build stage, then the runtime"
    assert "pip wheel" in text
    assert IMAGE.copies == [], "the runtime stage takes nothing from the build context"
    uid, _, gid = IMAGE.user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0
    assert IMAGE.entrypoint == ["chatbot"] and IMAGE.cmd == ["run"]
    assert IMAGE.healthcheck == ["chatbot", "health"]
    assert IMAGE.volumes == ["/data"] and IMAGE.workdir == "/data"
    assert IMAGE.env["CHATBOT_CONFIG"] == "/config/config.yaml"
    assert ("STOPSIGNAL", "SIGTERM") in instructions(text)
    secretive = re.compile(r"TOKEN|PASSWORD|SECRET|API_KEY", re.IGNORECASE)
    for word, rest in instructions(text):
        if word in ("ARG", "ENV", "LABEL"):
            assert not secretive.search(rest), f"a secret in the image's layers: {word} {rest}"


def _dockerignored(patterns: list[str], path: str) -> bool:
    """Whether Docker leaves ``path`` out of the build context (.dockerignore rules: the
    last pattern matching the path or one of its parents decides)."""

    def regex(pattern: str) -> re.Pattern[str]:
        parts = re.split(r"(\*\*/?|\*|\?)", pattern.strip("/"))
        table = {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
        return re.compile("".join(table.get(p, re.escape(p)) for p in parts))

    ignored = False
    candidates = [path, *(str(p) for p in Path(path).parents if str(p) != ".")]
    for pattern in patterns:
        negate = pattern.startswith("!")
        if any(regex(pattern.lstrip("!")).fullmatch(c) for c in candidates):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build_context() -> None:
    """Only what the build copies is sent to Docker: never a config, a secret, .env, the
    data folder, the virtualenv or .git, whatever a developer has lying around."""
    patterns = [
        ln.strip()
        for ln in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    copied = ["pyproject.toml", "README.md", "chatbot/cli.py", "chatbot/schema/config.schema.json"]
    for path in copied:
        assert not _dockerignored(patterns, path), f"the build needs {path}"
    kept_out = [
        "config.yaml",
        ".env",
        "deploy/.env",
        "deploy/secrets/mastodon_token",
        "secrets/token",
        "data/chatbot.db",
        "demo-data/chatbot.db",
        ".venv/bin/python",
        ".git/config",
        "tests/test_container.py",
        "chatbot/__pycache__/cli.cpython-311.pyc",
    ]
    for path in kept_out:
        assert _dockerignored(patterns, path), f"{path} would be sent to the Docker build"


# --- the compose files -------------------------------------------------------------------

DEPLOY = ROOT / "deploy"
COMPOSE_FILES = sorted(DEPLOY.glob("compose.*.yaml"))
# The Compose Specification's schema, as Docker Compose validates with it: from
# compose-spec/compose-go (Apache-2.0, tests/data/compose-spec.LICENSE), commit e70e961.
COMPOSE_SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"


def _compose(path: Path) -> dict[str, object]:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _bots(compose: dict[str, object]) -> dict[str, dict[str, object]]:
    services = compose["services"]
    assert isinstance(services, dict)
    return {n: s for n, s in services.items() if s.get("image", "").startswith("chatbot")}


def _mounts(service: dict[str, object]) -> dict[str, str]:
    """target -> source of a service's short-syntax volumes."""
    result = {}
    for volume in service.get("volumes", []):  # type: ignore[attr-defined]
        source, target, *_ = str(volume).split(":")
        result[target] = source
    return result


def test_compose_files_follow_the_compose_specification() -> None:
    """Both compose files validate against the schema Docker Compose itself uses."""
    import jsonschema

    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    assert [p.name for p in COMPOSE_FILES] == ["compose.replicas.yaml", "compose.sqlite.yaml"]
    for path in COMPOSE_FILES:
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(_compose(path)))
        assert not errors, f"{path.name}: " + "; ".join(e.message for e in errors)


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_every_bot_service_runs_confined_with_its_config_secrets_and_state(path: Path) -> None:
    """A read-only root with a tmpfs /tmp, no capabilities, /data on a volume, the config
    and scripts read-only, and every secret the config reads mounted from a file."""
    from chatbot.config import check_config, load_config

    compose = _compose(path)
    declared = compose.get("secrets", {})
    assert isinstance(declared, dict)
    for name, bot in _bots(compose).items():
        assert bot["read_only"] is True, name
        assert any(str(t).split(":")[0] == "/tmp" for t in bot["tmpfs"]), name  # type: ignore[attr-defined]
        assert bot["cap_drop"] == ["ALL"] and bot["security_opt"] == ["no-new-privileges:true"]
        assert bot.get("command", IMAGE.cmd) == ["run"]
        mounts = _mounts(bot)
        assert not mounts["/data"].startswith((".", "/")), "state on a named volume"
        config_path = (path.parent / mounts["/config/config.yaml"]).resolve()
        assert any(v.endswith("/config/config.yaml:ro") for v in bot["volumes"])  # type: ignore[attr-defined]
        assert any(v.endswith(":/schedules:ro") for v in bot["volumes"])  # type: ignore[attr-defined]
        assert check_config(config_path) == []
        config = load_config(config_path).config
        assert (config.data_dir, config.schedules) == ("/data", "/schedules")
        mastodon, bluesky = config.accounts.mastodon, config.accounts.bluesky
        assert mastodon is not None and bluesky is not None
        for secret in (mastodon.access_token, bluesky.app_password):
            assert secret.file is not None and secret.file.startswith("/run/secrets/")
            name_ = secret.file.removeprefix("/run/secrets/")
            assert name_ in bot["secrets"] and name_ in declared, f"{name}: {name_}"  # type: ignore[operator]
        assert config.metrics.port == 9464 and config.metrics.address == "0.0.0.0"  # noqa: S104


def test_the_replicas_share_one_database_and_the_transcripts_but_not_their_data() -> None:
    """Two `chatbot run` services on one PostgreSQL URL, started once PostgreSQL is healthy;
    each with its own /data (replica.json for its health check, its Bluesky session) and
    host name (a replica is host:pid, and pid is 1 in every container); one archives
    volume for the transcripts whichever replica writes them."""
    from chatbot.config import load_config

    compose = _compose(DEPLOY / "compose.replicas.yaml")
    services = compose["services"]
    assert isinstance(services, dict)
    postgres = services["postgres"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    bots = _bots(compose)
    assert len(bots) == 2
    urls, hostnames, data_volumes, archives = set(), set(), set(), set()
    for name, bot in bots.items():
        assert bot["depends_on"]["postgres"]["condition"] == "service_healthy", name  # type: ignore[index]
        mounts = _mounts(bot)
        config = load_config((DEPLOY / mounts["/config/config.yaml"]).resolve()).config
        urls.add(config.database_url)
        hostnames.add(bot["hostname"])
        data_volumes.add(mounts["/data"])
        archives.add(mounts["/data/archives"])
        assert "PGPASSWORD" in bot["environment"]  # type: ignore[operator]
    assert len(urls) == 1 and len(hostnames) == 2 and len(data_volumes) == 2
    assert len(archives) == 1
    (url,) = urls
    assert url is not None and url.startswith("postgresql://chatbot@postgres:")
    assert ":" not in url.split("@")[0].removeprefix("postgresql://"), "no password in it"


@pytest.mark.integration
@pytest.mark.slow
def test_two_confined_replicas_on_one_postgresql_database_as_in_compose_replicas(
    tmp_path: Path, postgres_server: Any
) -> None:
    """compose.replicas.yaml without Docker: two confined bots, each with its own /data
    and host name, one archives folder, one database. One of them runs the chat, each
    step is posted once, both health checks pass, and stopping the other one mid-chat
    (`docker compose stop chatbot-b`) does not disturb the chat."""
    url = str(postgres_server.recreate_database("container_replicas"))
    config = CONFIG.replace("late:", f"database_url: {url}\nlate:")
    archives = tmp_path / "archives"
    archives.mkdir()
    replicas = {}
    for name in ("chatbot-a", "chatbot-b"):
        (tmp_path / name).mkdir()
        replicas[name] = Sandbox(
            tmp_path / name, config, hostname=name, network=True, archives=archives
        )
    try:
        for box in replicas.values():
            (box.schedules / f"{CHAT}.yaml").write_text(_script(_soon(3), "2s"), encoding="utf-8")
            box.start()
        store = Store.open(url, now=datetime.now(UTC))
        try:

            def posts() -> list[str]:
                return [
                    p.text for p in store.local_posts.visible(until=None) if p.author == BOT_AUTHOR
                ]

            first = next(iter(replicas.values()))
            first.wait_for("the welcome", lambda: any("Welcome" in t for t in posts()))
            for name, box in replicas.items():
                code, output = box.health()
                assert code == 0, f"{name}:\n{output}"
            (lease,) = store.leases.of_chats()
            holder = replicas[lease.holder.split(":")[0]]
            standby = next(box for box in replicas.values() if box is not holder)
            assert standby.process is not None
            os.kill(standby.bot_pid(), signal.SIGTERM)
            assert standby.process.wait(timeout=10) == 0, standby.log_text()
            holder.wait_for("the closing", lambda: any("Thanks" in t for t in posts()))
            assert len(posts()) == 4, posts()  # welcome, Q1, Q2, closing: once each
            assert '"event": "posted"' not in standby.log_text(), "only the holder posts"
            (lease,) = store.leases.of_chats()
            assert lease.holder.startswith(f"{holder.hostname}:1:")
        finally:
            store.close()
    finally:
        for box in replicas.values():
            box.stop()
    for box in replicas.values():
        assert _written_outside(box) == [], box.log_text()


# --- metrics and alerts ------------------------------------------------------------------


def _promtool() -> str:
    cache = os.environ.get("CHATBOT_TEST_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "chatbot-tests"
    )
    found = shutil.which("promtool") or str(Path(cache) / "promtool" / "usr/bin/promtool")
    if not Path(found).is_file():
        pytest.fail("promtool is not installed: scripts/test unpacks it into " + cache)
    return found


def test_the_alert_rules_are_valid_and_pass_their_unit_tests() -> None:
    """promtool checks deploy/alerts.yaml and runs deploy/alerts.test.yaml: each alert
    fires on the series that should fire it, and not on healthy ones."""
    promtool = _promtool()
    for args in (["check", "rules", "alerts.yaml"], ["test", "rules", "alerts.test.yaml"]):
        result = subprocess.run(
            [promtool, *args], cwd=DEPLOY, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


def _exported_families() -> set[str]:
    """Every metric family name the bot's /metrics serves, with its samples' suffixes."""
    from prometheus_client import generate_latest

    from chatbot.metrics import Metrics

    store = Store.open("sqlite://", now=datetime.now(UTC))
    try:
        metrics = Metrics(store, lambda: datetime.now(UTC))
        metrics.posted("mastodon", 0.5)
        metrics.closed("mastodon", "failed")
        metrics.collected("mastodon", 1, 0.1, ok=True)
        metrics.request("mastodon", "post", "ok")
        text = generate_latest(metrics.registry).decode()
    finally:
        store.close()
    names = set(re.findall(r"^# TYPE (\w+)", text, re.MULTILINE))
    return names | set(re.findall(r"^(\w+)[{ ]", text, re.MULTILINE))


def test_the_alert_rules_and_the_readme_name_only_metrics_the_bot_exports() -> None:
    """Every chatbot_* name in the alert rules is served by /metrics, and the README lists
    every metric family the bot serves."""
    exported = _exported_families()
    in_rules = set(re.findall(r"\bchatbot_\w+", (DEPLOY / "alerts.yaml").read_text()))
    assert in_rules and in_rules <= exported, in_rules - exported
    families = {n for n in exported if not n.endswith(("_created", "_bucket", "_count", "_sum"))}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = {n for n in families if n.removesuffix("_total") not in readme}
    assert not missing, f"the README does not list {sorted(missing)}"


def _descendants(pid: int) -> list[int]:
    """Every process under ``pid``, children first found, from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    queue = [pid]
    while queue:
        children = parents.get(queue.pop(), [])
        found += children
        queue += children
    return found
