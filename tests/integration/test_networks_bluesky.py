"""The real ``chatbot`` process and the Bluesky adapter against a real AT Protocol network.

PLC, PDS and AppView from @atproto/dev-env. Everything is checked on the
server: the records in the bot's repo, their reply refs, facets and images, and
the sessions the PDS handed out.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from atproto import Client

from chatbot.networks.base import PostRequest
from chatbot.networks.bluesky import BlueskyNetwork
from chatbot.networks.bluesky.keys import record_key
from chatbot.text import bluesky_facets
from tests.integration.botrun import (
    IMAGE_ALT,
    BotFolder,
    BotRunner,
    bot_folder,
    chat_script,
)
from tests.servers import AtprotoNetwork

PASSWORD = "correct-horse-battery"
APP_PASSWORD_NAME = "chatbot-tests"
SPEED = "30"
RESTARTS = 20


@pytest.fixture
def accounts(atproto_network: AtprotoNetwork) -> Iterator[Callable[[str], BotAccount]]:
    """Make bot accounts on the test PDS; their clients are closed at the end."""
    made: list[BotAccount] = []

    def make(prefix: str) -> BotAccount:
        made.append(BotAccount(atproto_network, prefix))
        return made[-1]

    yield make
    for account in made:
        account.owner.request.close()


def _tag() -> str:
    return f"ÉduChat{secrets.token_hex(2)}"


class BotAccount:
    """A bot account on the test PDS, with an app password as the config would hold."""

    def __init__(self, network: AtprotoNetwork, prefix: str) -> None:
        # A handle's first label may be at most 18 characters on this PDS.
        self.did, self.handle = network.create_account(
            f"{prefix}{secrets.token_hex(3)}.test", PASSWORD
        )
        self.network = network
        self.owner = Client(base_url=network.pds_url)
        self.owner.login(self.handle, PASSWORD)
        created = self.owner.com.atproto.server.create_app_password({"name": APP_PASSWORD_NAME})
        self.app_password: str = created.password

    def folder(self, root: Path) -> BotFolder:
        return bot_folder(root, bluesky=(self.network.pds_url, self.handle, self.app_password))

    def posts(self) -> list[Any]:
        """The post records in the bot's repo, in record-key (= planned time) order."""
        found: list[Any] = []
        cursor = None
        while True:
            page = self.owner.com.atproto.repo.list_records(
                {
                    "repo": self.did,
                    "collection": "app.bsky.feed.post",
                    "limit": 100,
                    "cursor": cursor,
                }
            )
            found += page.records
            cursor = page.cursor
            if not cursor or not page.records:
                break
        return sorted(found, key=lambda r: r.uri.rsplit("/", 1)[-1])

    def app_password_sessions(self) -> int:
        """Sessions the PDS created with the app password, read from its account database."""
        assert self.network.dir is not None
        for path in self.network.dir.glob("tmp/*/account.sqlite"):
            with contextlib.closing(
                sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
            ) as db:
                if db.execute("SELECT 1 FROM account WHERE did = ?", (self.did,)).fetchone():
                    row = db.execute(
                        "SELECT count(*) FROM refresh_token WHERE did = ? AND appPasswordName = ?",
                        (self.did, APP_PASSWORD_NAME),
                    ).fetchone()
                    return int(row[0])
        pytest.fail(f"no account database of the PDS holds {self.did}")


def _assert_one_thread(posts: list[Any], texts: list[str]) -> None:
    """These texts, once each, in order; root = first post, parent = the one before."""
    assert [p.value.text for p in posts] == texts
    root = posts[0]
    assert root.value.reply is None
    for previous, post in itertools.pairwise(posts):
        reply = post.value.reply
        assert (reply.root.uri, reply.root.cid) == (root.uri, root.cid)
        assert (reply.parent.uri, reply.parent.cid) == (previous.uri, previous.cid)


def _assert_tag_facets(post: Any, tag: str) -> None:
    """Every #tag of the text is a tag facet over exactly its UTF-8 bytes."""
    data = post.value.text.encode()
    tags = [f for f in post.value.facets or [] if f.features[0].py_type.endswith("#tag")]
    assert tags, post.value.text
    for facet in tags:
        assert data[facet.index.byte_start : facet.index.byte_end].decode() == f"#{tag}"
        assert facet.features[0].tag == tag
    assert len(tags) == post.value.text.count(f"#{tag}")


def test_accelerated_chat_is_one_thread_with_facets_and_alt_text(
    accounts: Callable[[str], BotAccount],
    atproto_network: AtprotoNetwork,
    tmp_path: Path,
    bots: BotRunner,
) -> None:
    """A whole chat: one thread (root/parent refs), tag facets at the right bytes, image alt."""
    bot = accounts("chat")
    folder = bot.folder(tmp_path / "bot")
    tag = _tag()
    folder.write_script(
        "chat.yaml", chat_script(chat_id="bchat", hashtag=tag, networks=["bluesky"])
    )

    bots.run(folder, "run", "--speed", SPEED, "--config", str(folder.config))

    units = folder.units("bluesky")
    assert [u["step_key"] for u in units] == [
        "reminder-1", "welcome", "q1", "q2", "q3", "closing",
    ]  # fmt: skip
    assert {u["state"] for u in units} == {"posted"}
    posts = bot.posts()
    _assert_one_thread(posts, [u["text"] for u in units])
    assert [p.uri for p in posts] == [u["remote_id"] for u in units]
    assert [p.cid for p in posts] == [u["remote_cid"] for u in units]
    for post in posts:
        _assert_tag_facets(post, tag)
    welcome = posts[1].value.text
    assert "☕️" in welcome and "é" in welcome  # bytes before the tag are multi-byte
    images = [p for p in posts if p.value.embed is not None]
    assert images == [posts[3]]  # Q2
    image = posts[3].value.embed.images[0]
    assert image.alt == IMAGE_ALT
    assert (image.aspect_ratio.width, image.aspect_ratio.height) == (64, 48)

    atproto_network.process_all()
    thread = bot.owner.get_post_thread(posts[0].uri, depth=20).thread
    chain = []
    while thread is not None:
        chain.append(thread.post.uri)
        thread = (thread.replies or [None])[0]
    assert chain == [p.uri for p in posts]


def test_create_only_put_record_on_the_real_pds(accounts: Callable[[str], BotAccount]) -> None:
    """putRecord with swapRecord null never overwrites: a repeat is InvalidSwap (or a no-op)."""
    bot = accounts("swap")
    rkey = record_key(datetime.now(UTC), "swap-test")

    def put(text: str) -> Any:
        body = {
            "repo": bot.did,
            "collection": "app.bsky.feed.post",
            "rkey": rkey,
            "record": {
                "$type": "app.bsky.feed.post",
                "text": text,
                "createdAt": "2027-01-01T00:00:00Z",
            },
            "swapRecord": None,
        }
        return bot.owner.invoke_procedure(
            "com.atproto.repo.putRecord",
            content=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )

    first = put("first")
    same = put("first")  # byte-identical: 200, same cid, no new commit
    assert same.content["cid"] == first.content["cid"]
    assert "commit" not in same.content
    from atproto_client.exceptions import BadRequestError

    with pytest.raises(BadRequestError) as raised:
        put("different")
    assert raised.value.response.content.error == "InvalidSwap"
    assert [p.value.text for p in bot.posts()] == ["first"]


def test_adapter_post_twice_and_find_on_the_real_pds(
    accounts: Callable[[str], BotAccount], atproto_network: AtprotoNetwork, tmp_path: Path
) -> None:
    """The adapter's repeat returns the first post; find() sees it; nothing is posted twice."""
    bot = accounts("repeat")
    network = BlueskyNetwork(
        service=atproto_network.pds_url,
        handle=bot.handle,
        app_password=_secret(bot.app_password),
        session_dir=tmp_path / "sessions",
    )
    tag = _tag()
    text = f"Q1: café ☕️ or tea? #{tag} cc @{bot.handle}"
    request = PostRequest(
        idempotency_key="repeat-q1",
        text=text,
        facets=tuple(bluesky_facets(text)),
        created_at=datetime.now(UTC),
    )
    assert network.find(request) is None
    first = network.post(request)
    assert network.post(request) == first
    assert network.find(request) == first
    later = PostRequest(**{**request.__dict__, "first_attempt_at": datetime.now(UTC)})
    assert network.post(later) == first
    posts = bot.posts()
    assert [p.uri for p in posts] == [first.id]
    mention = [f for f in posts[0].value.facets if f.features[0].py_type.endswith("#mention")]
    assert [m.features[0].did for m in mention] == [bot.did]
    _assert_tag_facets(posts[0], tag)
    network.close()


def test_twenty_restarts_create_one_session(
    accounts: Callable[[str], BotAccount],
    atproto_network: AtprotoNetwork,
    tmp_path: Path,
    bots: BotRunner,
) -> None:
    """20 runs of `chatbot run` in a row: one login, then the stored session every time.
    Each run is a chat of its own (a real-time one, as an account is configured), read for
    a second after its closing."""
    bot = accounts("restart")
    folder = bot.folder(tmp_path / "bot")
    folder.config.write_text(folder.config_text() + "answer_tail: 1s\n", encoding="utf-8")
    assert bot.app_password_sessions() == 0
    logins = resumed = 0
    tag = _tag()
    for run in range(RESTARTS):
        folder.write_script(
            "chat.yaml",
            chat_script(
                chat_id=f"brestart{run}",
                hashtag=tag,
                networks=["bluesky"],
                reminder=False,
                questions=("Only question?",),
                image_question=None,
                first_question_at="1s",
                closing_at="2s",
            ),
        )
        process = bots.run(folder, "run", "--speed", "60", "--config", str(folder.config))
        events = process.events()
        assert events.count("posted") == 3
        logins += events.count("bluesky login (new session)")
        resumed += events.count("bluesky session resumed")
        assert PASSWORD not in process.text() and bot.app_password not in process.text()
    assert (logins, resumed) == (1, RESTARTS - 1)
    assert bot.app_password_sessions() == 1  # the PDS's own count
    assert len(bot.posts()) == 3 * RESTARTS


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)
