"""Collection under faults: a real ``chatbot`` process reads a chat back from mastodon-mock
while it answers 429s and 5xx; no answer is lost.

mastodon-mock injects the faults. The chat every server shares (answers in every
form, the recap, a restart) is test_chat_scenario.py.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from mastodon import Mastodon

from tests.integration.botrun import BotFolder, BotProcess, BotRunner, bot_folder, chat_script
from tests.integration.collecting import chat_id_of, wait_for_posted, wait_for_table
from tests.servers import MastodonServer

SPEED = "30"  # one minute of the script is two seconds
QUESTIONS = ("What worked this month?", "How do you group students?", "What will you try next?")


@dataclass
class Person:
    """A participant account and a Mastodon.py client for it."""

    name: str
    id: str
    api: Mastodon

    def post(self, text: str, **kwargs: Any) -> str:
        return str(self.api.status_post(text, **kwargs)["id"])


@pytest.fixture
def people(mastodon_server: MastodonServer) -> Iterator[dict[str, Person]]:
    """Five participants: ana, ben, cleo, dev, and eli whose bio says #nobot."""
    with contextlib.ExitStack() as stack:
        found = {}
        for role in ("ana", "ben", "cleo", "dev", "eli"):
            name = f"{role}{secrets.token_hex(3)}"
            account_id, token = mastodon_server.create_account(name)
            session = stack.enter_context(requests.Session())
            api = Mastodon(
                access_token=token, api_base_url=mastodon_server.api_base_url, session=session
            )
            found[role] = Person(name, account_id, api)
        found["eli"].api.account_update_credentials(note="Librarian. Please, #NoBot")
        yield found


@pytest.fixture
def closing() -> Iterator[contextlib.ExitStack]:
    """Closes the HTTP sessions a test opens (an unclosed pool is a ResourceWarning)."""
    with contextlib.ExitStack() as stack:
        yield stack


def _bot(
    server: MastodonServer, root: Path, closing: contextlib.ExitStack, *, indexable_opt_out: bool
) -> tuple[BotFolder, Mastodon]:
    """The bot's folder (config and schedules) and a client on the bot's own account."""
    _account_id, token = server.create_account(f"bot{secrets.token_hex(3)}")
    folder = bot_folder(root, mastodon=(server.api_base_url, token))
    with folder.config.open("a", encoding="utf-8") as config:
        config.write(f"    indexable_opt_out: {str(indexable_opt_out).lower()}\n")
    session = closing.enter_context(requests.Session())
    return folder, Mastodon(access_token=token, api_base_url=server.api_base_url, session=session)


def _tag() -> str:
    return f"MCol{secrets.token_hex(3)}"


def _accelerated_chat(folder: BotFolder, tag: str) -> None:
    folder.write_script(
        "chat.yaml",
        chat_script(
            chat_id="mcollect",
            hashtag=tag,
            networks=["mastodon"],
            reminder=False,
            questions=QUESTIONS,
            image_question=None,
            first_question_at="1m",
            spacing="1m",
            closing_at="90m",  # three minutes at SPEED: the test stops the bot long before
        ),
    )


def _start(bots: BotRunner, folder: BotFolder, *extra: str) -> BotProcess:
    return bots.start(folder, "run", *extra, "--config", str(folder.config))


def _questions(folder: BotFolder, process: BotProcess, timeout: float = 30) -> dict[int, str]:
    units = wait_for_posted(folder, "mastodon", {"q1", "q2", "q3"}, process, timeout)
    return {n: str(units[f"q{n}"]["remote_id"]) for n in (1, 2, 3)}


def test_under_429s_and_5xx_no_answer_is_lost(
    mastodon_server: MastodonServer,
    people: dict[str, Person],
    tmp_path: Path,
    bots: BotRunner,
    closing: contextlib.ExitStack,
    run_chatbot: Any,
) -> None:
    """Faults on the hashtag timeline, the contexts and the notifications: collection waits,
    catches up, and loses nothing. With indexable: false respected (mastodon-mock gives every
    account indexable: false), everyone is counted and nobody is shown."""
    folder, bot_api = _bot(mastodon_server, tmp_path / "bot", closing, indexable_opt_out=True)
    tag = _tag()
    _accelerated_chat(folder, tag)
    process = _start(bots, folder, "--speed", SPEED)
    q = _questions(folder, process)
    chat_id = chat_id_of(folder)
    bot_acct = bot_api.account_verify_credentials()["acct"]
    ana, ben, cleo, dev, eli = (people[k] for k in ("ana", "ben", "cleo", "dev", "eli"))
    try:
        # The injected 429 carries a fixed reset time; served after it, a 429 has no
        # usable reset and the bot waits a minute: one 429, reset well ahead.
        mastodon_server.inject_fault(
            f"/api/v1/timelines/tag/{tag}", status=429, count=1, reset=timedelta(seconds=15)
        )
        mastodon_server.inject_fault("/api/v1/statuses/*/context", status=500, count=3)
        mastodon_server.inject_fault("/api/v1/notifications", status=503, count=2)
        ana.post(f"A1: Station rotation #{tag}")
        ben.post("Peer tutors", in_reply_to_id=q[2])
        cleo.post(f"A3: a reading corner #{tag}", in_reply_to_id=q[3])
        dev.post(f"@{bot_acct} A1: morning meetings")
        eli.post(f"A2: choice boards #{tag}")
        expected = [
            (1, ana.name, f"Station rotation #{tag}"),
            (1, dev.name, f"@{bot_acct} morning meetings"),
            (2, ben.name, "Peer tutors"),
            (2, eli.name, f"choice boards #{tag}"),
            (3, cleo.name, f"a reading corner #{tag}"),
        ]
        store = wait_for_table(folder, chat_id, expected, process, timeout=45)
        assert mastodon_server.faults() == []  # every injected fault was served
    finally:
        mastodon_server.clear_faults()
    assert process.terminate() < 10
    waits = [r for r in process.records() if r.get("event") == "collection waits"]
    retries = [r for r in process.records() if r.get("event") == "collection will retry"]
    assert waits and retries  # the 429 was waited for, the 5xx retried

    assert {store.participants[p.name] for p in people.values()} <= {
        "indexable: false",
        "#nobot in the profile; indexable: false",
    }
    assert all(x.opt_out for x in store.answers)
    result = run_chatbot(
        "archive", chat_id, "--format", "md", "--config", str(folder.config), cwd=folder.root
    )
    assert result.returncode == 0, result.stderr
    for person in people.values():
        assert person.name not in result.stdout
    assert "Station rotation" not in result.stdout
