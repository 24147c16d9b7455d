"""The recap thread on the real servers: once, within limits, every link to the right post.

A real accelerated ``chatbot run``; participants answer with the networks' own
clients while it runs; the bot collects, then posts the recap as a thread of its
own. Everything is checked on the server.
"""

from __future__ import annotations

import itertools
import re
import secrets
from pathlib import Path

from atproto import Client, client_utils
from mastodon import Mastodon

from chatbot.markup import html_to_text
from chatbot.text import bluesky_graphemes, mastodon_length
from tests.integration.botrun import (
    BotRunner,
    account_statuses,
    bot_folder,
    chat_script,
    wait_until,
)
from tests.integration.test_networks_bluesky import BotAccount
from tests.servers import AtprotoNetwork, MastodonServer

SPEED = "20"  # one minute of the script is three seconds
QUESTIONS = ("What worked this month?", "What will you change?")
URL = re.compile(r"https?://\S+")


def _script(tag: str, network: str) -> str:
    return chat_script(
        chat_id="recapchat",
        hashtag=tag,
        networks=[network],
        reminder=False,
        questions=QUESTIONS,
        image_question=None,
        first_question_at="1m",
        spacing="2m",
        closing_at="6m",
        recap=True,
        recap_after="2m",
    )


def test_recap_thread_on_mastodon(
    mastodon_server: MastodonServer, tmp_path: Path, bots: BotRunner
) -> None:
    """After a chat on Mastodon the recap thread exists once, within the limit, and its
    links point at the answers people liked most."""
    tag = f"Recap{secrets.token_hex(3)}"
    bot_id, token = mastodon_server.create_account(f"bot{secrets.token_hex(3)}")
    folder = bot_folder(tmp_path / "bot", mastodon=(mastodon_server.api_base_url, token))
    # mastodon-mock gives every account indexable: false; here people may be quoted.
    with folder.config.open("a", encoding="utf-8") as config:
        config.write("    indexable_opt_out: false\n")
    folder.write_script("chat.yaml", _script(tag, "mastodon"))
    bot = Mastodon(access_token=token, api_base_url=mastodon_server.api_base_url)
    people = []
    for name in ("ana", "ben"):
        _id, person_token = mastodon_server.create_account(f"{name}{secrets.token_hex(3)}")
        people.append(
            Mastodon(access_token=person_token, api_base_url=mastodon_server.api_base_url)
        )
    try:
        process = bots.start(folder, "run", "--speed", SPEED, "--config", str(folder.config))
        wait_until(
            lambda: any(u["step_key"] == "q1" and u["state"] == "posted" for u in folder.units()),
            timeout=30,
            what="Q1 on the server",
            process=process,
        )
        a1 = people[0].status_post(f"A1: Station rotation with timers #{tag}")
        b1 = people[1].status_post(f"A1: Exit tickets every day #{tag}")
        people[1].status_favourite(a1.id)
        assert process.wait(90) == 0, process.tail()

        statuses = account_statuses(bot, bot_id)
        recap = [s for s in statuses if html_to_text(s.content).startswith("Recap of")]
        assert len(recap) == 1, "one recap thread"
        start = statuses.index(recap[0])
        thread = statuses[start:]
        assert thread[0].in_reply_to_id is None, "the recap starts a thread of its own"
        for previous, status in itertools.pairwise(thread):
            assert str(status.in_reply_to_id) == str(previous.id)
        texts = [html_to_text(s.content) for s in thread]
        assert len(texts) == len(set(texts)), "each recap post once"
        assert all(mastodon_length(t) <= 500 for t in texts)
        assert "2 participants shared 2 answers" in texts[0]
        links = [u for t in texts for u in URL.findall(t)]
        assert links[0] == a1.url, "the most liked answer comes first"
        assert set(links) == {a1.url, b1.url}, "every link is an answer of the chat"
    finally:
        for api in (bot, *people):
            api.session.close()


def test_recap_thread_on_bluesky(
    atproto_network: AtprotoNetwork, tmp_path: Path, bots: BotRunner
) -> None:
    """After a chat on Bluesky the recap thread exists once, within 300 graphemes a post,
    with reply refs of its own and link facets pointing at the answers."""
    tag = f"Recap{secrets.token_hex(3)}"
    bot = BotAccount(atproto_network, "rbot")
    folder = bot.folder(tmp_path / "bot")
    folder.write_script("chat.yaml", _script(tag, "bluesky"))
    people: list[Client] = []
    for name in ("ana", "ben"):
        _did, handle = atproto_network.create_account(
            f"{name}{secrets.token_hex(3)}.test", "pw-recap-1"
        )
        client = Client(base_url=atproto_network.pds_url)
        client.login(handle, "pw-recap-1")
        people.append(client)
    try:
        process = bots.start(folder, "run", "--speed", SPEED, "--config", str(folder.config))
        wait_until(
            lambda: any(u["step_key"] == "q1" and u["state"] == "posted" for u in folder.units()),
            timeout=30,
            what="Q1 on the server",
            process=process,
        )
        answers = []
        for client, text in zip(
            people,
            ("A1: Station rotation with timers ", "A1: Exit tickets every day "),
            strict=True,
        ):
            builder = client_utils.TextBuilder().text(text).tag(f"#{tag}", tag)
            answers.append(client.send_post(builder))
        atproto_network.process_all()
        assert process.wait(90) == 0, process.tail()
        atproto_network.process_all()

        records = bot.posts()
        recap = [r for r in records if r.value.text.startswith("Recap of")]
        assert len(recap) == 1, "one recap thread"
        thread = records[records.index(recap[0]) :]
        assert thread[0].value.reply is None, "the recap starts a thread of its own"
        for previous, record in itertools.pairwise(thread):
            assert record.value.reply.root.uri == thread[0].uri
            assert record.value.reply.parent.uri == previous.uri
        texts = [r.value.text for r in thread]
        assert len(texts) == len(set(texts))
        assert all(bluesky_graphemes(t) <= 300 for t in texts)
        links = [
            feature.uri
            for r in thread
            for facet in r.value.facets or []
            for feature in facet.features
            if feature.py_type == "app.bsky.richtext.facet#link"
        ]
        expected = {
            _web_url(post.uri, client.me.handle)
            for post, client in zip(answers, people, strict=True)
        }
        assert set(links) == expected, "every link is an answer of the chat"
    finally:
        for client in people:
            client.request.close()
        bot.owner.request.close()


def _web_url(at_uri: str, handle: str) -> str:
    return f"https://bsky.app/profile/{handle}/post/{at_uri.rsplit('/', 1)[-1]}"
