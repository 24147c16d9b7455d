"""The real ``chatbot`` process against a real Mastodon API server (mastodon-mock).

Everything is checked on the server: what exists, once, in which thread.
"""

from __future__ import annotations

import itertools
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mastodon import Mastodon

from tests.integration.botrun import (
    IMAGE_ALT,
    BotFolder,
    BotRunner,
    account_statuses,
    bot_folder,
    chat_script,
)
from tests.servers import MastodonServer

SPEED = "30"  # the 4-minute script below takes 8 s


def _tag() -> str:
    return f"MChat{secrets.token_hex(3)}"


def _bot(server: MastodonServer, tmp_path: Path) -> tuple[BotFolder, Mastodon, str]:
    account_id, token = server.create_account(f"bot{secrets.token_hex(3)}")
    folder = bot_folder(tmp_path / "bot", mastodon=(server.api_base_url, token))
    api = Mastodon(access_token=token, api_base_url=server.api_base_url)
    return folder, api, account_id


def _assert_one_thread(statuses: list[Any], texts: list[str]) -> None:
    """Exactly these texts, each once, in order, each replying to the one before."""
    from chatbot.markup import html_to_text

    assert [html_to_text(s.content) for s in statuses] == texts
    assert statuses[0].in_reply_to_id is None
    for previous, status in itertools.pairwise(statuses):
        assert str(status.in_reply_to_id) == str(previous.id)


def test_accelerated_chat_is_one_thread_with_alt_text(
    mastodon_server: MastodonServer, tmp_path: Path, bots: BotRunner
) -> None:
    """A whole chat (reminder, welcome, three questions, closing): one thread, each post once."""
    folder, api, account_id = _bot(mastodon_server, tmp_path)
    tag = _tag()
    folder.write_script(
        "chat.yaml", chat_script(chat_id="mchat", hashtag=tag, networks=["mastodon"])
    )

    process = bots.run(folder, "run", "--speed", SPEED, "--config", str(folder.config))

    units = folder.units("mastodon")
    assert [u["step_key"] for u in units] == [
        "reminder-1", "welcome", "q1", "q2", "q3", "closing",
    ]  # fmt: skip
    assert {u["state"] for u in units} == {"posted"}
    statuses = account_statuses(api, account_id)
    _assert_one_thread(statuses, [u["text"] for u in units])
    assert [str(s.id) for s in statuses] == [u["remote_id"] for u in units]
    assert {s.visibility for s in statuses} == {"public"}
    assert all(f"#{tag}" in u["text"] for u in units)
    with_media = [s for s in statuses if s.media_attachments]
    assert [s.content for s in with_media] == [statuses[3].content]  # Q2
    assert [m.description for m in with_media[0].media_attachments] == [IMAGE_ALT]
    assert [str(s.id) for s in api.timeline_hashtag(tag, limit=40)] == [
        str(s.id) for s in reversed(statuses)
    ]
    assert process.events().count("posted") == 6


def test_rate_limit_waits_for_the_reset_then_posts_once(
    mastodon_server: MastodonServer, tmp_path: Path, bots: BotRunner
) -> None:
    """A 429 with X-RateLimit-Reset: the welcome goes out once, at the reset, not before."""
    folder, api, account_id = _bot(mastodon_server, tmp_path)
    folder.write_script(
        "chat.yaml",
        chat_script(
            chat_id="mlimit",
            hashtag=_tag(),
            networks=["mastodon"],
            reminder=False,
            questions=("Only question?",),
            image_question=None,
        ),
    )
    # Far enough ahead that a slow start still meets the 429 before the reset.
    reset = datetime.now(UTC) + timedelta(seconds=9)
    mastodon_server.inject_fault("/api/v1/statuses", status=429, count=1, reset=reset)
    try:
        process = bots.run(folder, "run", "--speed", SPEED, "--config", str(folder.config))
        assert mastodon_server.faults() == []  # the 429 was served
    finally:
        mastodon_server.clear_faults()

    statuses = account_statuses(api, account_id)
    units = folder.units("mastodon")
    _assert_one_thread(statuses, [u["text"] for u in units])
    welcome = statuses[0]
    # Mastodon.py corrects the reset by the server's Date header (1 s resolution).
    assert welcome.created_at >= reset - timedelta(seconds=1.5)
    retries = [r for r in process.records() if r.get("event") == "will retry"]
    assert len(retries) == 1
    assert retries[0]["step"] == "welcome"
    assert "rate limited until" in retries[0]["reason"]
    # Mastodon.py moves the reset by (its clock - the answer's Date); mastodon-mock's
    # server (uvicorn) writes Date in whole seconds and renews it once a second, so the
    # retry may come up to 2 s after the reset, and a little more on a busy machine.
    late = datetime.fromisoformat(retries[0]["at"]) - reset
    assert timedelta(seconds=-0.5) < late < timedelta(seconds=2.5)
