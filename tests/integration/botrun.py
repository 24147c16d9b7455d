"""Run the real ``chatbot`` command against the test servers and read what it left behind.

Helpers for tests/integration/test_networks_*.py: a chat script and a config in
a temporary folder, the bot as a real process (logs in a file), bounded waits,
and the bot's state database read-only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]  # the repository, for python -m tests...

IMAGE_ALT = "A blue rectangle standing in for a chart of answers"
# Emoji and accented letters before the hashtags: facets count UTF-8 bytes.
WELCOME = "Bienvenue ☕️ à {hashtag}! Café, thé et idées 🎉"
QUESTIONS = (
    "Qu'avez-vous essayé ce mois-ci? 🙂",
    "What does this chart tell you?",
    "What will you try next week?",
)
CLOSING = "Merci! Thanks for joining {hashtag}."
REMINDER = "In a minute: {title} at {hashtag}!"


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    interval: float = 0.05,
    process: BotProcess | None = None,
    detail: Callable[[], str] | None = None,
) -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds (or if the bot died)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if process is not None and process.exited():
            pytest.fail(f"the bot exited while waiting for {what}:\n{process.tail()}")
        if time.monotonic() > deadline:
            extra = f"\n{detail()}" if detail is not None else ""
            tail = f"\n{process.tail()}" if process is not None else ""
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}{extra}{tail}")
        time.sleep(interval)


def write_image(path: Path, size: tuple[int, int] = (64, 48)) -> None:
    Image.new("RGB", size, (20, 120, 200)).save(path)


def chat_script(
    *,
    chat_id: str,
    hashtag: str,
    networks: list[str],
    start: datetime | None = None,
    reminder: bool = True,
    questions: tuple[str, ...] = QUESTIONS,
    image_question: int | None = 2,
    first_question_at: str = "1m",
    spacing: str = "1m",
    closing_at: str = "4m",
    recap: bool = False,
    recap_after: str = "1m",
) -> str:
    """A chat script's YAML: optional reminder, welcome, questions (one with an image), closing.

    Without ``start`` the chat is for an accelerated run (``--speed``), which
    starts it at once; with ``start`` (aware UTC) it runs in real time.
    """
    when = start.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if start else "2030-01-03 20:00"
    lines = [
        f"id: {chat_id}",
        'title: "Integration chat"',
        f'hashtag: "#{hashtag}"',
        "timezone: UTC",
        f"start: {when}",
        f"networks: [{', '.join(networks)}]",
        "moderators:",
        "  - name: Host",
    ]
    if reminder:
        lines += ["reminders:", "  - before: 1m", f'    text: "{REMINDER}"']
    lines += ["welcome:", f'  text: "{WELCOME}"', f"question_spacing: {spacing}", "questions:"]
    for number, text in enumerate(questions, start=1):
        lines.append(f'  - text: "{text}"')
        if number == 1:
            lines.append(f"    at: {first_question_at}")
        if number == image_question:
            lines += ["    image:", "      path: chart.png", f'      alt: "{IMAGE_ALT}"']
    lines += ["closing:", f"  at: {closing_at}", f'  text: "{CLOSING}"']
    if recap:
        lines += ["recap:", f"  after: {recap_after}"]
    else:
        lines += ["recap:", "  enabled: false"]
    return "\n".join(lines) + "\n"


@dataclass
class BotFolder:
    """A folder with config.yaml, schedules/ and data/ for one bot."""

    root: Path
    env: dict[str, str]

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def schedules(self) -> Path:
        return self.root / "schedules"

    @property
    def database(self) -> Path:
        return self.root / "data" / "chatbot.db"

    @property
    def sessions(self) -> Path:
        return self.root / "data" / "sessions"

    def config_text(self) -> str:
        return self.config.read_text(encoding="utf-8")

    def write_script(self, name: str, text: str) -> Path:
        self.schedules.mkdir(exist_ok=True)
        if not (self.schedules / "chart.png").exists():
            write_image(self.schedules / "chart.png")
        path = self.schedules / name
        path.write_text(text, encoding="utf-8")
        return path

    def units(self, network: str | None = None) -> list[dict[str, Any]]:
        """The bot's units (steps per network), in chat order, read-only."""
        if not self.database.exists():
            return []
        uri = f"file:{self.database}?mode=ro"
        try:
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
                db.row_factory = sqlite3.Row
                rows = db.execute("SELECT * FROM units ORDER BY chat_id, seq, network").fetchall()
        except sqlite3.OperationalError:
            return []  # not created yet
        units = [dict(row) for row in rows]
        return [u for u in units if network is None or u["network"] == network]

    def events(self) -> list[str]:
        uri = f"file:{self.database}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
            return [r[0] for r in db.execute("SELECT message FROM events ORDER BY id")]


def bot_folder(
    root: Path,
    *,
    mastodon: tuple[str, str] | None = None,
    bluesky: tuple[str, str, str] | None = None,
    env_prefix: str = "CHATBOT_IT",
) -> BotFolder:
    """A config for the given accounts; secrets go to environment variables, never the file.

    ``mastodon`` is (api_base_url, token); ``bluesky`` is (service, handle, app password).
    """
    root.mkdir(parents=True, exist_ok=True)
    env: dict[str, str] = {}
    lines = ["data_dir: data", "schedules: schedules", "log_format: json", "accounts:"]
    if mastodon is not None:
        env[f"{env_prefix}_MASTODON_TOKEN"] = mastodon[1]
        lines += [
            "  mastodon:",
            f"    instance: {mastodon[0]}",
            f"    access_token: {{env: {env_prefix}_MASTODON_TOKEN}}",
        ]
    if bluesky is not None:
        env[f"{env_prefix}_BLUESKY_PASSWORD"] = bluesky[2]
        lines += [
            "  bluesky:",
            f"    service: {bluesky[0]}",
            f"    handle: {bluesky[1]}",
            f"    app_password: {{env: {env_prefix}_BLUESKY_PASSWORD}}",
        ]
    (root / "config.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "schedules").mkdir(exist_ok=True)
    return BotFolder(root, env)


def real_time(folder: BotFolder, args: Sequence[str]) -> tuple[str, ...]:
    """``run --speed N`` with a real account is refused (it would post a chat in public in
    a minute): the tests' accelerated chats become real-time chats instead, starting now,
    each duration of their scripts divided by N, read every second, and the bot exits
    when they are over."""
    if "--speed" not in args or not ({"mastodon:", "bluesky:"} & set(folder.config_text().split())):
        return tuple(args)
    at = list(args).index("--speed")
    speed = float(args[at + 1])
    rest = [*args[:at], *args[at + 2 :]]
    for path in folder.schedules.glob("*.yaml"):
        path.write_text(_sped_up(path.read_text(encoding="utf-8"), speed), encoding="utf-8")
    text = folder.config_text()
    extra = [] if "collect_every:" in text else ["collect_every: 1s"]
    if "answer_tail:" not in text:  # long enough for the last answers, short enough to exit
        extra.append(f"answer_tail: {min(30 * 60 / speed, 15):g}s")
    folder.config.write_text(text.rstrip("\n") + "\n" + "\n".join(extra) + "\n", encoding="utf-8")
    return (*rest, "--exit-when-done")


_DURATIONS = ("at", "before", "after", "question_spacing")


def _sped_up(script: str, speed: float) -> str:
    """A chat script with every duration divided by ``speed``, starting a moment from now."""
    from chatbot.scriptvalues import parse_duration

    data = yaml.safe_load(script)

    def scaled(value: object) -> str:
        return f"{parse_duration(value).total_seconds() / speed:g}s"

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _DURATIONS and isinstance(value, str | int):
                    node[key] = scaled(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    lead = max(
        (parse_duration(r["before"]).total_seconds() for r in data.get("reminders") or []),
        default=0.0,
    )
    start = datetime.now(UTC) + timedelta(seconds=lead + 3)
    data["start"] = start.strftime("%Y-%m-%d %H:%M:%S")
    data.pop("recurrence", None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


class BotProcess:
    """A running ``chatbot`` process with its output in a log file."""

    def __init__(self, args: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.started = time.monotonic()
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                args,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def records(self) -> list[dict[str, Any]]:
        """The JSON log lines (other lines, e.g. tracebacks, are left out)."""
        found = []
        for line in self.text().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    found.append(record)
        return found

    def events(self) -> list[str]:
        return [str(r.get("event")) for r in self.records()]

    def wait_for_event(self, event: str, timeout: float) -> None:
        wait_until(lambda: event in self.events(), timeout, f"log event {event!r}", process=self)

    def wait(self, timeout: float) -> int:
        """Wait for the process to end by itself; returns its exit code."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the bot did not finish within {timeout:.0f} s:\n{self.tail()}")

    def terminate(self, timeout: float = 10) -> float:
        """SIGTERM, as a service manager would; returns how long the bot took to stop."""
        began = time.monotonic()
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the bot did not stop within {timeout:.0f} s of SIGTERM:\n{self.tail()}")
        return time.monotonic() - began

    def kill(self) -> None:
        """SIGKILL: no cleanup, no last words (a crash or an OOM kill)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)


class BotRunner:
    """Starts ``chatbot`` processes for a test and kills any left running at its end."""

    def __init__(self, command: list[str], base_env: dict[str, str]) -> None:
        self.command = command
        self.base_env = base_env
        self.processes: list[BotProcess] = []

    def start(
        self,
        folder: BotFolder,
        *args: str,
        extra_env: dict[str, str] | None = None,
        hold_after_post: str | None = None,
    ) -> BotProcess:
        """Start ``chatbot args...``; ``hold_after_post="mastodon:2"`` holds the process after
        its second Mastodon post (see tests/holding.py) until the test kills it."""
        env = {**self.base_env, **folder.env, **(extra_env or {})}
        log = folder.root / f"bot-{len(self.processes) + 1}.log"
        args = real_time(folder, args)
        command = [*self.command, *args]
        if hold_after_post is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
            command = [sys.executable, "-m", "tests.holding", hold_after_post, *args]
        process = BotProcess(command, cwd=folder.root, env=env, log=log)
        self.processes.append(process)
        return process

    def run(self, folder: BotFolder, *args: str, timeout: float = 60) -> BotProcess:
        """Run to the end (an accelerated run exits when its chats are over)."""
        process = self.start(folder, *args)
        code = process.wait(timeout)
        assert code == 0, f"chatbot {' '.join(args)} exited {code}:\n{process.tail()}"
        return process

    def call(self, folder: BotFolder, *args: str, timeout: float = 60) -> tuple[int, str]:
        """Run a command to its end; (exit code, output)."""
        process = self.start(folder, *args)
        return process.wait(timeout), process.text()

    def close(self) -> None:
        for process in self.processes:
            if not process.exited():
                process.kill()


def account_statuses(api: Any, account_id: str) -> list[Any]:
    """A Mastodon account's statuses on the server, oldest first (every page)."""
    page = api.account_statuses(account_id, limit=40)
    found = list(page)
    while page:
        page = api.fetch_next(page)
        found += list(page or [])
    return sorted(found, key=lambda s: int(s.id))
