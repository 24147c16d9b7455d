"""``chatbot rehearse`` plays a script on the local network and never posts anywhere;
``chatbot run --speed`` refuses to rehearse in public on real accounts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "schedules").glob("*.yaml"))

pytestmark = pytest.mark.slow


class Recorder(BaseHTTPRequestHandler):
    """Answers every request with 503 and remembers it: the stand-in for both networks."""

    seen: ClassVar[list[str]] = []

    def _any(self) -> None:
        Recorder.seen.append(f"{self.command} {self.path}")
        self.send_response(503)
        self.end_headers()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def accounts(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """A config with a Mastodon and a Bluesky account, both on a recording server."""
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    config = tmp_path / "config.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            data_dir: {tmp_path / "data"}
            schedules: {ROOT / "schedules"}
            accounts:
              mastodon:
                instance: {url}
                access_token: {{env: REHEARSAL_TOKEN}}
              bluesky:
                service: {url}
                handle: district.example
                app_password: {{env: REHEARSAL_PASSWORD}}
            """
        ),
        encoding="utf-8",
    )
    yield config, Recorder.seen
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _chatbot(
    *args: str, config: Path | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "COLUMNS": "200",
        "REHEARSAL_TOKEN": "token-that-must-not-be-used",
        "REHEARSAL_PASSWORD": "password-that-must-not-be-used",
    }
    env.pop("CHATBOT_CONFIG", None)
    if config is not None:
        env["CHATBOT_CONFIG"] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "chatbot.cli", *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=cwd,
        check=False,
    )


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_each_example_is_rehearsed_to_the_end_without_a_request_to_any_network(
    script: Path, tmp_path: Path, accounts: tuple[Path, list[str]]
) -> None:
    """Rehearsing an example, with both accounts configured, answers every question in the
    transcript and sends nothing to the accounts' servers."""
    config, seen = accounts
    data = tmp_path / "rehearsal"
    result = _chatbot(
        "rehearse", str(script), "--speed", "300", "--data-dir", str(data), config=config
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert seen == []
    (transcript,) = (data / "archives").glob("*.json")
    questions = json.loads(transcript.read_text(encoding="utf-8"))["questions"]
    assert questions and all(q["answers"] for q in questions), [
        q["number"] for q in questions if not q["answers"]
    ]
    assert "The transcript:" in result.stdout and str(transcript) in result.stdout


def test_a_rehearsal_shows_each_networks_own_text(tmp_path: Path) -> None:
    """A two-network script is played with each network's text, each in its own thread."""
    script = ROOT / "schedules" / "blended-learning.yaml"
    result = _chatbot("rehearse", str(script), "--speed", "300", "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[mastodon] @chatbot: Q1:" in result.stdout
    assert "[bluesky] @chatbot: Q1:" in result.stdout
    assert "@lpark@scholar.social" in result.stdout  # the guest, as Mastodon names her
    assert "@lenapark.bsky.social" in result.stdout  # and as Bluesky does


def test_a_broken_script_is_not_rehearsed(tmp_path: Path) -> None:
    """A script with problems is reported with its location, and nothing is played."""
    broken = tmp_path / "broken.yaml"
    broken.write_text("title: Broken\nquestons: []\n", encoding="utf-8")
    result = _chatbot("rehearse", str(broken), "--data-dir", str(tmp_path / "r"))
    assert result.returncode == 1
    assert "broken.yaml:2" in result.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("speed", ["60", "2"])
def test_run_at_speed_on_real_accounts_is_refused_before_any_request(
    accounts: tuple[Path, list[str]], speed: str
) -> None:
    """`run --speed` with a Mastodon or Bluesky account exits non-zero, naming rehearse, and
    sends nothing."""
    config, seen = accounts
    result = _chatbot("run", "--speed", speed, config=config)
    assert result.returncode == 2
    assert "chatbot rehearse" in result.stderr
    assert seen == []


def test_run_at_speed_on_bluesky_needs_the_second_confirmation(
    accounts: tuple[Path, list[str]],
) -> None:
    """--on-real-accounts alone is not enough with a Bluesky account: every post is public."""
    config, seen = accounts
    result = _chatbot("run", "--speed", "60", "--on-real-accounts", config=config)
    assert result.returncode == 2
    assert "--bluesky-posts-are-public" in result.stderr
    assert seen == []
