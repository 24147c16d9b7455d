"""Collection on Mastodon: a real ``chatbot`` process reads a chat back from mastodon-mock.

Five participant accounts answer while the bot runs; the store must end with
exactly the answers a person would read on the server, whatever the form of the
answer (edits, deletions, quotes, mentions, opt-outs), and under injected 429s and
5xx. The chat every server shares, a restart included, is test_chat_scenario.py.
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
from tests.integration.collecting import Row, chat_id_of, wait_for_posted, wait_for_table
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


def test_answers_in_every_form_end_as_exactly_the_expected_table(
    mastodon_server: MastodonServer,
    people: dict[str, Person],
    tmp_path: Path,
    bots: BotRunner,
    closing: contextlib.ExitStack,
    run_chatbot: Any,
) -> None:
    """Hashtag or not, under a question or top-level, two in one post, edited, deleted, quoted,
    by mention: the store holds exactly the answers; the #nobot person counts, never shows."""
    folder, bot_api = _bot(mastodon_server, tmp_path / "bot", closing, indexable_opt_out=False)
    tag = _tag()
    _accelerated_chat(folder, tag)
    process = _start(bots, folder, "--speed", SPEED)
    q = _questions(folder, process)
    chat_id = chat_id_of(folder)
    bot_acct = bot_api.account_verify_credentials()["acct"]
    ana, ben, cleo, dev, eli = (people[k] for k in ("ana", "ben", "cleo", "dev", "eli"))

    ana.post(f"A1: Station rotation finally clicked #{tag}")  # hashtag, top-level
    under_q2 = ana.post("Exit tickets decide my groups", in_reply_to_id=q[2])  # no tag, no label
    ben.post(f"A1: choice boards A2: peer feedback pairs #{tag}")  # two answers in one post
    ben.post(f"A3: a reading corner #{tag}", in_reply_to_id=q[3])  # both hashtag and reply
    draft = cleo.post(f"A2: first draft #{tag}")  # edited below
    take_back = cleo.post("A1: this one I take back", in_reply_to_id=q[1])  # deleted below
    dev.post(f"Reading logs every day #{tag}", quoted_status_id=q[3])  # a quote, no label
    dev.post("Same for me, exit tickets and a quick check-in", in_reply_to_id=under_q2)  # nested
    eli.post(f"A3: podcasts for read-alouds #{tag}")  # #nobot in the bio
    eli.post(f"@{bot_acct} A1: morning meetings")  # a mention: no tag, no reply
    typo = ana.post(f"A3: this was a typo #{tag}")  # deleted below
    ben.post(f"Great question! #{tag}")  # conversation, not an answer

    a, b, c, d, e = ana.name, ben.name, cleo.name, dev.name, eli.name
    settled: list[Row] = [
        (1, a, f"Station rotation finally clicked #{tag}"),
        (1, b, "choice boards"),
        (1, e, f"@{bot_acct} morning meetings"),
        (2, a, "Exit tickets decide my groups"),
        (2, b, f"peer feedback pairs #{tag}"),
        (2, d, "Same for me, exit tickets and a quick check-in"),
        (3, b, f"a reading corner #{tag}"),
        (3, d, f"Reading logs every day #{tag}"),
        (3, e, f"podcasts for read-alouds #{tag}"),
    ]
    first = [
        *settled,
        (1, c, "this one I take back"),
        (2, c, f"first draft #{tag}"),
        (3, a, f"this was a typo #{tag}"),
    ]
    wait_for_table(folder, chat_id, first, process, timeout=30)

    cleo.api.status_update(draft, f"A2: small groups by reading level #{tag}")
    cleo.api.status_delete(take_back)
    ana.api.status_delete(typo)
    final = [*settled, (2, c, f"small groups by reading level #{tag}")]
    store = wait_for_table(
        folder,
        chat_id,
        final,
        process,
        timeout=30,
        also=lambda s: len(s.deleted_texts()) == 2,
    )
    assert process.terminate() < 10

    assert store.deleted_texts() == {"A1: this one I take back", f"A3: this was a typo #{tag}"}
    assert store.participants[e] == "#nobot in the profile"
    assert {store.participants[n] for n in (a, b, c, d)} == {""}
    assert [x.question for x in store.answers if x.opt_out] == [1, 3]  # eli's: counted
    edited = [p for p in store.posts if p.text.startswith("A2: small groups")]
    assert len(edited) == 1 and edited[0].edited_at is not None

    result = run_chatbot(
        "archive", chat_id, "--format", "md", "--config", str(folder.config), cwd=folder.root
    )
    assert result.returncode == 0, result.stderr
    transcript = result.stdout
    for name, text in [(a, "Station rotation"), (b, "a reading corner"), (d, "Reading logs")]:
        assert name in transcript and text in transcript
    assert e not in transcript
    assert "podcasts" not in transcript and "morning meetings" not in transcript
    assert "take back" not in transcript and "typo" not in transcript


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
            f"/api/v1/timelines/tag/{tag}", status=429, count=1, reset=timedelta(seconds=6)
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
