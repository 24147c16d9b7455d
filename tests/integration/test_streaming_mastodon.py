"""Streaming on mastodon-mock: a real ``chatbot`` process is woken by the hashtag stream,
its streams are cut mid-chat (and refused for a while), and every answer is stored once.

The bot reaches mastodon-mock through a loopback proxy (tests/integration/proxy.py),
which closes the streaming connections on demand. Polling is slowed to a minute,
so an answer stored within seconds was read because a stream woke the bot.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from mastodon import Mastodon

from tests.integration.botrun import BotProcess, BotRunner, bot_folder, chat_script, wait_until
from tests.integration.collecting import chat_id_of, wait_for_posted, wait_for_table
from tests.integration.proxy import Proxy
from tests.servers import MastodonServer

# One polling round a minute: only a stream reads an answer sooner.
COLLECT_EVERY = "60s"
SEEN_WITHIN = 6.0  # seconds from posting to the store, with a stream live
# Long enough for the round a drop asks for, short of the return (refused 4 times: 1+2+4 s).
GAP_ROUND = 3.0


@pytest.fixture
def proxy(mastodon_server: MastodonServer) -> Iterator[Proxy]:
    address = urlsplit(mastodon_server.api_base_url)
    assert address.hostname is not None and address.port is not None
    with Proxy((address.hostname, address.port)) as proxy:
        yield proxy


@pytest.fixture
def person(mastodon_server: MastodonServer) -> Iterator[tuple[str, Mastodon]]:
    name = f"ana{secrets.token_hex(3)}"
    _account_id, token = mastodon_server.create_account(name)
    with requests.Session() as session:
        yield (
            name,
            Mastodon(
                access_token=token, api_base_url=mastodon_server.api_base_url, session=session
            ),
        )


def _live_records(process: BotProcess, tag: str) -> list[dict[str, Any]]:
    return [
        r
        for r in process.records()
        if r.get("event") == "stream live" and r.get("stream") == f"#{tag}"
    ]


def test_a_stream_dropped_mid_chat_loses_no_answer_and_doubles_none(
    mastodon_server: MastodonServer,
    proxy: Proxy,
    person: tuple[str, Mastodon],
    tmp_path: Path,
    bots: BotRunner,
) -> None:
    name, api = person
    _bot_id, token = mastodon_server.create_account(f"bot{secrets.token_hex(3)}")
    folder = bot_folder(tmp_path / "bot", mastodon=(proxy.url, token))
    with folder.config.open("a", encoding="utf-8") as config:
        config.write(f"collect_every: {COLLECT_EVERY}\nanswer_tail: 10s\n")
    tag = f"Strm{secrets.token_hex(3)}"
    folder.write_script(
        "chat.yaml",
        chat_script(
            chat_id="mstream",
            hashtag=tag,
            networks=["mastodon"],
            start=datetime.now(UTC) + timedelta(seconds=3),
            reminder=False,
            image_question=None,
            first_question_at="2s",
            spacing="2s",
            closing_at="5m",  # the test stops the bot long before
        ),
    )
    process = bots.start(folder, "run", "--config", str(folder.config))
    wait_for_posted(folder, "mastodon", {"q1", "q2", "q3"}, process, timeout=30)
    chat_id = chat_id_of(folder)
    wait_until(lambda: len(_live_records(process, tag)) == 1, 15, "the stream", process=process)

    expected = [(1, name, f"before the drop #{tag}")]
    api.status_post(f"A1: before the drop #{tag}")
    wait_for_table(folder, chat_id, expected, process, timeout=SEEN_WITHIN)

    try:
        # The next reconnections are refused (a streaming server restarting), then the cut.
        mastodon_server.inject_fault("/api/v1/streaming/*", status=503, count=4)
        assert proxy.drop_streams() >= 1
        time.sleep(GAP_ROUND)  # the round the drop asks for has run: only the return reads now
        for text in ("while down, first", "while down, second"):
            api.status_post(f"A2: {text} #{tag}")
            expected.append((2, name, f"{text} #{tag}"))
        assert len(_live_records(process, tag)) == 1  # still down when they were posted
        wait_until(
            lambda: len(_live_records(process, tag)) == 2, 30, "the stream back", process=process
        )
        assert mastodon_server.faults() == []  # the refusals were met
    finally:
        mastodon_server.clear_faults()
    wait_for_table(folder, chat_id, expected, process, timeout=SEEN_WITHIN)

    api.status_post(f"A3: after the return #{tag}")
    expected.append((3, name, f"after the return #{tag}"))
    wait_for_table(folder, chat_id, expected, process, timeout=SEEN_WITHIN)
    # The rounds that follow (the safety net's, woken ones) store none of them again.
    time.sleep(3)
    final = wait_for_table(folder, chat_id, expected, process, timeout=SEEN_WITHIN)
    assert len(final.answers) == 4
    assert process.terminate() < 10
