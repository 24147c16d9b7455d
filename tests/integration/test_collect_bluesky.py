"""Collection on Bluesky: a real ``chatbot`` process reads a chat back from the AT Protocol
network of @atproto/dev-env (PDS and AppView, real server code).

Five participant accounts answer while the bot runs; the store must end with
exactly the answers a person would read there, whatever the form of the
answer (deletions, quotes, mentions, the !no-unauthenticated label). The chat every
server shares, a restart included, is test_chat_scenario.py.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from atproto import Client, client_utils, models

from tests.integration.botrun import BotFolder, BotProcess, BotRunner, bot_folder, chat_script
from tests.integration.collecting import Row, chat_id_of, wait_for_posted, wait_for_table
from tests.servers import AtprotoNetwork

PASSWORD = "correct-horse-battery"
SPEED = "30"  # one minute of the script is two seconds
QUESTIONS = ("What worked this month?", "How do you group students?", "What will you try next?")


@dataclass
class Person:
    """A participant account on the test PDS, signed in."""

    name: str
    did: str
    handle: str
    client: Client

    def post(self, text: str, tag: str | None = None, **kwargs: Any) -> Any:
        """Post ``text``; with ``tag``, a clickable #tag (a facet) is appended."""
        content: Any = text
        if tag is not None:
            content = client_utils.TextBuilder().text(f"{text} ").tag(f"#{tag}", tag)
        return self.client.send_post(content, profile_identify=self.did, **kwargs)

    def reply(self, text: str, root: Any, parent: Any) -> Any:
        return self.post(text, reply_to=models.AppBskyFeedPost.ReplyRef(root=root, parent=parent))

    def delete(self, post: Any) -> None:
        self.client.delete_post(post.uri)


def _account(network: AtprotoNetwork, role: str) -> tuple[str, str, Client]:
    did, handle = network.create_account(f"{role}{secrets.token_hex(3)}.test", PASSWORD)
    client = Client(base_url=network.pds_url)
    client.login(handle, PASSWORD)
    return did, handle, client


@pytest.fixture
def people(atproto_network: AtprotoNetwork) -> Iterator[dict[str, Person]]:
    """Five participants: ana, ben, cleo, dev, and eli whose profile carries the
    ``!no-unauthenticated`` self-label."""
    with contextlib.ExitStack() as stack:
        found = {}
        for role in ("ana", "ben", "cleo", "dev", "eli"):
            did, handle, client = _account(atproto_network, role)
            stack.callback(client.request.close)
            found[role] = Person(handle.split(".")[0], did, handle, client)
        eli = found["eli"]
        profile = models.AppBskyActorProfile.Record(
            display_name="Eli",
            labels=models.ComAtprotoLabelDefs.SelfLabels(
                values=[models.ComAtprotoLabelDefs.SelfLabel(val="!no-unauthenticated")]
            ),
        )
        eli.client.com.atproto.repo.put_record(
            {
                "repo": eli.did,
                "collection": "app.bsky.actor.profile",
                "rkey": "self",
                "record": profile,
            }
        )
        atproto_network.process_all()
        yield found


def _bot(
    network: AtprotoNetwork, root: Path, closing: contextlib.ExitStack
) -> tuple[BotFolder, str]:
    """The bot's folder; its handle."""
    _did, handle, client = _account(network, "bot")
    closing.callback(client.request.close)
    return bot_folder(root, bluesky=(network.pds_url, handle, PASSWORD)), handle


@pytest.fixture
def closing() -> Iterator[contextlib.ExitStack]:
    """Closes the clients a test opens (an unclosed HTTP pool is a ResourceWarning)."""
    with contextlib.ExitStack() as stack:
        yield stack


def _tag() -> str:
    # Accents: the test AppView's search is a case-sensitive LIKE on the text.
    return f"ÉduCol{secrets.token_hex(2)}"


def _ref(unit: dict[str, Any]) -> models.ComAtprotoRepoStrongRef.Main:
    return models.ComAtprotoRepoStrongRef.Main(uri=unit["remote_id"], cid=unit["remote_cid"])


def _start(bots: BotRunner, folder: BotFolder, *extra: str) -> BotProcess:
    return bots.start(folder, "run", *extra, "--config", str(folder.config))


def test_answers_in_every_form_end_as_exactly_the_expected_table(
    atproto_network: AtprotoNetwork,
    people: dict[str, Person],
    tmp_path: Path,
    bots: BotRunner,
    closing: contextlib.ExitStack,
    run_chatbot: Any,
) -> None:
    """Hashtag or not, under a question or top-level, nested, two in one post, deleted,
    quoted, by mention: the store holds exactly the answers; the person with the
    !no-unauthenticated label counts and never shows in the transcript."""
    folder, bot_handle = _bot(atproto_network, tmp_path / "bot", closing)
    tag = _tag()
    folder.write_script(
        "chat.yaml",
        chat_script(
            chat_id="bcollect",
            hashtag=tag,
            networks=["bluesky"],
            reminder=False,
            questions=QUESTIONS,
            image_question=None,
            first_question_at="1m",
            spacing="1m",
            closing_at="90m",  # three minutes at SPEED: the test stops the bot long before
        ),
    )
    process = _start(bots, folder, "--speed", SPEED)
    units = wait_for_posted(folder, "bluesky", {"welcome", "q1", "q2", "q3"}, process, 45)
    chat_id = chat_id_of(folder)
    root = _ref(units["welcome"])
    q = {n: _ref(units[f"q{n}"]) for n in (1, 2, 3)}
    ana, ben, cleo, dev, eli = (people[k] for k in ("ana", "ben", "cleo", "dev", "eli"))
    atproto_network.process_all()

    ana.post("A1: Station rotation finally clicked", tag)  # hashtag, top-level
    under_q2 = ana.reply("Exit tickets decide my groups", root, q[2])  # no tag, no label
    ben.post("A1: choice boards A2: peer feedback pairs", tag)  # two answers in one post
    ben.reply(f"A3: a reading corner #{tag}", root, q[3])  # both hashtag and reply
    take_back = cleo.reply("A1: this one I take back", root, q[1])  # deleted below
    cleo.post("A2: small groups by reading level", tag)
    dev.post("Reading logs every day", embed=models.AppBskyEmbedRecord.Main(record=q[3]))  # quote
    eli.post("A3: podcasts for read-alouds", tag)  # the !no-unauthenticated label
    eli.post(
        client_utils.TextBuilder()  # a mention: no tag, no reply
        .mention(f"@{bot_handle}", _bot_did(atproto_network, bot_handle))
        .text(" A1: morning meetings")
    )
    typo = ana.post("A3: this was a typo", tag)  # deleted below
    ben.post("Great question!", tag)  # conversation, not an answer
    atproto_network.process_all()  # the nested reply needs its parent indexed first
    nested = "Same for me, exit tickets and a quick check-in"
    dev.reply(nested, root, models.create_strong_ref(under_q2))
    atproto_network.process_all()

    a, b, c, d, e = ana.name, ben.name, cleo.name, dev.name, eli.name
    settled: list[Row] = [
        (1, a, f"Station rotation finally clicked #{tag}"),
        (1, b, "choice boards"),
        (1, e, f"@{bot_handle} morning meetings"),
        (2, a, "Exit tickets decide my groups"),
        (2, b, f"peer feedback pairs #{tag}"),
        (2, c, f"small groups by reading level #{tag}"),
        (2, d, "Same for me, exit tickets and a quick check-in"),
        (3, b, f"a reading corner #{tag}"),
        (3, d, "Reading logs every day"),
        (3, e, f"podcasts for read-alouds #{tag}"),
    ]
    first = [*settled, (1, c, "this one I take back"), (3, a, f"this was a typo #{tag}")]
    wait_for_table(folder, chat_id, first, process, timeout=30)

    cleo.delete(take_back)
    ana.delete(typo)
    atproto_network.process_all()
    store = wait_for_table(
        folder, chat_id, settled, process, timeout=30, also=lambda s: len(s.deleted_texts()) == 2
    )
    assert process.terminate() < 10

    assert store.deleted_texts() == {"A1: this one I take back", f"A3: this was a typo #{tag}"}
    assert store.participants[e] == "!no-unauthenticated label"
    assert {store.participants[n] for n in (a, b, c, d)} == {""}
    assert [x.question for x in store.answers if x.web_opt_out] == [1, 3]  # eli's: counted

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


def _bot_did(network: AtprotoNetwork, handle: str) -> str:
    client = Client(base_url=network.pds_url)
    try:
        return str(client.com.atproto.identity.resolve_handle({"handle": handle}).did)
    finally:
        client.request.close()
