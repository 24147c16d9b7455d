"""The real ``chatbot run`` process: SIGKILL at the worst moments, SIGTERM, live script edits.

Every check is made against what the network holds (the local network's posts),
not only against the store's own records.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chatbot.store import BOT_AUTHOR, ChatState, Store, UnitState

pytestmark = pytest.mark.slow

CHAT = "kill-test"
STEPS = ["welcome", "q1", "q2", "q3", "closing"]
WAIT = 60.0  # seconds: every wait on the real process is bounded


def _script(start: datetime, spacing: str = "2s") -> str:
    return textwrap.dedent(
        f"""\
        id: {CHAT}
        title: Kill test
        hashtag: KillTest
        timezone: UTC
        start: {start:%Y-%m-%d %H:%M:%S}
        networks: [local]
        moderators: [{{name: Host}}]
        welcome: {{text: "Welcome to {{hashtag}} 👋 café"}}
        question_spacing: {spacing}
        questions:
          - {{at: 2s, text: "First question?"}}
          - {{text: "Second question?"}}
          - {{text: "Third question?"}}
        closing: {{text: "Thanks for joining {{hashtag}}"}}
        recap: {{enabled: false}}
        """
    )


class Bot:
    """A data folder, a schedules folder and a config for real ``chatbot run`` processes."""

    def __init__(
        self, tmp_path: Path, *, delay_before: str = "0s", delay_after: str = "0s"
    ) -> None:
        self.root = tmp_path
        self.schedules = tmp_path / "schedules"
        self.schedules.mkdir(parents=True)
        self.config = tmp_path / "config.yaml"
        self.config.write_text(
            textwrap.dedent(
                f"""\
                data_dir: data
                schedules: schedules
                log_format: json
                late: {{step_grace: 2m}}
                accounts:
                  local:
                    participants: false
                    delay_before_post: {delay_before}
                    delay_after_post: {delay_after}
                """
            ),
            encoding="utf-8",
        )
        self.process: subprocess.Popen[str] | None = None
        self.log = tmp_path / "run.log"
        self._store: Store | None = None

    def write_script(self, start: datetime, spacing: str = "2s") -> None:
        (self.schedules / f"{CHAT}.yaml").write_text(_script(start, spacing), encoding="utf-8")

    def start(self) -> subprocess.Popen[str]:
        with self.log.open("a", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "chatbot.cli", "run", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=self.root,
            )
        return self.process

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    @property
    def store(self) -> Store:
        if self._store is None:
            deadline = time.monotonic() + WAIT
            while not (self.root / "data" / "chatbot.db").exists():
                assert time.monotonic() < deadline, "the bot never created its database"
                time.sleep(0.05)
            self._store = Store.open(
                f"sqlite:///{self.root / 'data' / 'chatbot.db'}", now=datetime.now(UTC)
            )
        return self._store

    def wait_for(self, what: str, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT
        while not condition():
            if self.process is not None and self.process.poll() is not None and not condition():
                code = self.process.returncode
                pytest.fail(f"chatbot run exited ({code}) before {what}:\n{self.log.read_text()}")
            assert time.monotonic() < deadline, (
                f"timed out waiting for {what}:\n{self.log.read_text()}"
            )
            time.sleep(0.05)

    def unit_state(self, step: str) -> UnitState | None:
        for unit in self.store.units.of_chat(CHAT):
            if unit.step_key == step:
                return unit.state
        return None

    def bot_posts(self) -> list[tuple[str, str, int | None]]:
        """(idempotency key, text, reply_to) of every post on the network, in order."""
        posts = sorted(self.store.local_posts.visible(until=None), key=lambda p: p.id)
        return [(p.idempotency_key, p.text, p.reply_to) for p in posts if p.author == BOT_AUTHOR]

    def post_exists(self, step: str) -> bool:
        key = next(u.idempotency_key for u in self.store.units.of_chat(CHAT) if u.step_key == step)
        return any(k == key for k, _t, _r in self.bot_posts())

    def chat_done(self) -> bool:
        chat = self.store.chats.get(CHAT)
        return chat is not None and chat.state is ChatState.DONE

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        if self._store is not None:
            self._store.close()


@pytest.fixture
def make_bot(tmp_path: Path) -> Iterator[Callable[..., Bot]]:
    bots: list[Bot] = []

    def make(**kwargs: str) -> Bot:
        bot = Bot(tmp_path / f"bot{len(bots)}", **kwargs)
        bots.append(bot)
        return bot

    yield make
    for bot in bots:
        bot.stop()


def _assert_posted_once_in_order(bot: Bot) -> None:
    units = {u.step_key: u for u in bot.store.units.of_chat(CHAT)}
    posts = bot.bot_posts()
    keys = [k for k, _t, _r in posts]
    assert keys == [units[s].idempotency_key for s in STEPS], "each step once, in order"
    assert [r for _k, _t, r in posts][1:] == [
        int(units[s].remote.id)
        for s in STEPS[:-1]
        if units[s].remote  # type: ignore[union-attr]
    ], "one thread: each post replies to the previous one"
    assert all(u.state is UnitState.POSTED for u in units.values())


def _soon(seconds: float = 3) -> datetime:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)


def test_sigkill_after_the_post_before_its_result_is_recorded_posts_once(
    make_bot: Callable[..., Bot],
) -> None:
    """Killed after Q2 reached the network but before the result was recorded: after the
    restart Q2 exists once and the chat finishes in order."""
    bot = make_bot(delay_after="1.5s")
    bot.write_script(_soon(), spacing="3s")
    bot.start()
    bot.wait_for(
        "Q2 on the network with its intent open",
        lambda: bot.unit_state("q2") is UnitState.INTENT and bot.post_exists("q2"),
    )
    bot.kill()
    bot.start()
    bot.wait_for("the chat to finish", bot.chat_done)
    _assert_posted_once_in_order(bot)


def test_sigkill_after_the_intent_before_the_network_call_posts_once(
    make_bot: Callable[..., Bot],
) -> None:
    """Killed after Q2's intent was recorded but before the post was made: after the
    restart Q2 is posted, once."""
    bot = make_bot(delay_before="1.5s")
    bot.write_script(_soon(), spacing="4s")
    bot.start()
    bot.wait_for("Q2's intent", lambda: bot.unit_state("q2") is UnitState.INTENT)
    assert not bot.post_exists("q2")
    bot.kill()
    bot.start()
    bot.wait_for("the chat to finish", bot.chat_done)
    _assert_posted_once_in_order(bot)


def test_sigkill_after_every_step_posts_each_remaining_step_once(
    make_bot: Callable[..., Bot],
) -> None:
    """Killed right after each step is posted and restarted: every step exists once, in order."""
    bot = make_bot()
    bot.write_script(_soon(4), spacing="3s")
    for step in STEPS:
        bot.start()
        bot.wait_for(
            f"{step} to be posted", lambda step=step: bot.unit_state(step) is UnitState.POSTED
        )  # type: ignore[misc]
        bot.kill()
    bot.start()
    bot.wait_for("the chat to finish", bot.chat_done)
    _assert_posted_once_in_order(bot)


def test_sigterm_finishes_the_post_in_flight_and_exits_0_within_10_seconds(
    make_bot: Callable[..., Bot],
) -> None:
    """SIGTERM while a post is in flight: the post completes, is recorded, the process exits 0."""
    bot = make_bot(delay_before="2s")
    bot.write_script(_soon(), spacing="30s")
    process = bot.start()
    bot.wait_for("the welcome in flight", lambda: bot.unit_state("welcome") is UnitState.INTENT)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert time.monotonic() - sent < 10
    assert bot.unit_state("welcome") is UnitState.POSTED
    assert bot.post_exists("welcome")
    assert not [u for u in bot.store.units.of_chat(CHAT) if u.state is UnitState.INTENT], (
        "nothing half-recorded"
    )


def test_editing_breaking_and_deleting_a_script_during_a_run(make_bot: Callable[..., Bot]) -> None:
    """A running bot picks up an edit, keeps the last good version of a broken file and
    reports it, and cancels the future steps of a deleted file."""
    bot = make_bot()
    start = _soon(2)
    bot.write_script(start, spacing="20s")
    bot.start()
    bot.wait_for("the welcome", lambda: bot.unit_state("welcome") is UnitState.POSTED)
    path = bot.schedules / f"{CHAT}.yaml"
    path.write_text(
        _script(start, "20s").replace("Second question?", "Edited second question?"),
        encoding="utf-8",
    )
    bot.wait_for("the edit", lambda: any("Edited" in u.text for u in bot.store.units.of_chat(CHAT)))
    path.write_text(path.read_text().replace("questions:", "questons:"), encoding="utf-8")
    bot.wait_for(
        "the error report",
        lambda: any("questons" in e.message for e in bot.store.events.recent(levels=["error"])),
    )
    assert bot.unit_state("q2") is UnitState.PENDING, "the last good version keeps its schedule"
    path.unlink()
    bot.wait_for("the cancellation", lambda: bot.unit_state("closing") is UnitState.CANCELLED)
    assert bot.process is not None and bot.process.poll() is None


def test_the_demo_runs_a_whole_chat_and_exits_0(tmp_path: Path) -> None:
    """`chatbot demo` posts the welcome, every question and the closing, with answers; exits 0."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatbot.cli",
            "demo",
            "--speed",
            "300",
            "--data-dir",
            str(tmp_path / "demo"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for expected in ("Welcome to #DemoChat", "Q1:", "Q5:", "Thank you for joining", "Recap of"):
        assert expected in result.stdout
    assert "Traceback" not in result.stderr
    chat_id = re.search(r"chatbot answers (\S+)", result.stdout)
    assert chat_id is not None, "the demo points at its answers"
    data = ["--data-dir", str(tmp_path / "demo")]
    answers = subprocess.run(
        [sys.executable, "-m", "chatbot.cli", "answers", chat_id.group(1), *data],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert answers.returncode == 0, answers.stderr
    assert "Q1" in answers.stdout and "A1:" in answers.stdout
    assert "opted out" in answers.stdout, "the demo's #nobot participant is marked"
    status = subprocess.run(
        [sys.executable, "-m", "chatbot.cli", "status", *data],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    assert "Recent posts:" in status.stdout and chat_id.group(1) in status.stdout
