"""What the chat bot needs from a real snac2 server, shown through Mastodon.py.

snac2 is a small C server with a Mastodon API. Each test pins one behaviour seen
on snac 2.75 (Debian's 2.75-2), so a change in snac shows up here; the
differences from Mastodon are listed in tests/servers/README.md.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import pytest
from mastodon import Mastodon, MastodonNotFoundError

from tests.servers import INSTALL_COMMAND, SNAC_VERSION, ServerNotInstalled, SnacServer

# Deliveries between snac's own accounts took 5 to 9 s here: its queue thread
# wakes every 3 s, and a delivery takes the author's queue, a POST to its own
# shared inbox, then the recipient's queue.
DELIVERY_DEADLINE = 30.0
STATUS_ID = re.compile(r"[0-9]{10}[0-9a-f]{32}")  # creation second, then md5 of the uri
ACCOUNT_ID = re.compile(r"[0-9a-f]{32}")  # md5 of the actor's uri
NOTIFICATION_ID = re.compile(r"[0-9]{16}")  # creation time in microseconds

T = TypeVar("T")


class Account(NamedTuple):
    id: str
    name: str
    api: Mastodon


@pytest.fixture
def closing() -> Iterator[contextlib.ExitStack]:
    """Closes the clients a test opens (an unclosed HTTP pool is a ResourceWarning)."""
    with contextlib.ExitStack() as stack:
        yield stack


def _account(server: SnacServer, closing: contextlib.ExitStack, prefix: str) -> Account:
    name = f"{prefix}{secrets.token_hex(3)}"
    account_id, token = server.create_account(name)
    api = Mastodon(
        access_token=token,
        api_base_url=server.api_base_url,
        # A new connection per request: snac closes each one after its answer.
        session=closing.enter_context(server.session()),
        # As the bot does. snac's /api/v1/instance says 4.0.0, so this passes.
        version_check_mode="created",
        ratelimit_method="throw",
    )
    return Account(account_id, name, api)


def _tag() -> str:
    return f"chat{secrets.token_hex(3)}"


def _ids(statuses: Any) -> list[str]:
    return [str(s.id) for s in statuses]


def _eventually(probe: Callable[[], T | None], what: str) -> T:
    """Poll `probe` until it returns something, for at most DELIVERY_DEADLINE seconds."""
    deadline = time.monotonic() + DELIVERY_DEADLINE
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not there after {DELIVERY_DEADLINE:.0f} s")
        time.sleep(0.25)


# --- the server ----------------------------------------------------------------------


def test_listens_on_loopback_only(snac_server: SnacServer) -> None:
    """snac listens on 127.0.0.1 and its port only, not on any other address."""
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == snac_server.port:
                listening.append((table, local))
    assert listening == [("/proc/net/tcp", f"0100007F:{snac_server.port:04X}")]


def test_not_installed_names_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without snac2 in the cache, starting fails with ServerNotInstalled naming the install."""
    monkeypatch.setenv("CHATBOT_TEST_CACHE", str(tmp_path))
    with pytest.raises(ServerNotInstalled, match=re.escape(INSTALL_COMMAND)):
        SnacServer().start()
    assert list(tmp_path.iterdir()) == []


def test_one_request_per_connection(snac_server: SnacServer) -> None:
    """snac closes the connection after one answer, without a Connection: close header."""
    with socket.create_connection((snac_server.host, snac_server.port), timeout=10) as sock:
        request = f"GET /api/v1/instance HTTP/1.1\r\nHost: {snac_server.domain}\r\n\r\n"
        sock.sendall(request.encode())
        answer = b""
        while chunk := sock.recv(65536):  # ends when snac closes the connection
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    headers = head.decode().lower().splitlines()
    assert headers[0] == "http/1.1 200 ok"
    assert not [h for h in headers if h.startswith("connection:")]
    assert f"content-length: {len(body)}" in headers


def test_instance_v1_limits(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """/api/v1/instance answers with its limits: configuration.statuses.max_characters 100000."""
    bot = _account(snac_server, closing, "bot")
    info = bot.api.instance_v1()
    assert info.uri == info.domain == snac_server.domain
    assert info.configuration.statuses.max_characters == 100_000
    assert info.configuration.statuses.max_media_attachments == 4
    assert info.configuration.statuses.characters_reserved_per_url == 32
    assert "max_toot_chars" not in info


def test_instance_v2_missing(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """/api/v2/instance does not exist: instance_v2() raises MastodonNotFoundError (404)."""
    bot = _account(snac_server, closing, "bot")
    with pytest.raises(MastodonNotFoundError) as caught:
        bot.api.instance_v2()
    assert caught.value.args[1] == 404


def test_version_claims_mastodon_4(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """/api/v1/instance claims Mastodon 4.0.0, which Mastodon.py's version check takes."""
    bot = _account(snac_server, closing, "bot")
    assert bot.api.instance_v1().version == f"4.0.0 (not true; really snac/{snac_server.version})"
    assert bot.api.retrieve_mastodon_version() == "4.0.0"
    assert SNAC_VERSION.startswith(f"{snac_server.version}-")


# --- accounts and posting ----------------------------------------------------------


def test_verify_credentials(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """verify_credentials names the account: a 32-hex id, the bare username as acct."""
    bot = _account(snac_server, closing, "bot")
    me = bot.api.account_verify_credentials()
    assert str(me.id) == bot.id
    assert ACCOUNT_ID.fullmatch(bot.id)
    assert me.username == bot.name
    assert me.acct == bot.name
    assert me.url == f"{snac_server.api_base_url}/{bot.name}"


def test_status_post_public_hashtag(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """A public hashtag status comes back public and tagged; its author's acct has the host."""
    bot = _account(snac_server, closing, "bot")
    tag = _tag()
    status = bot.api.status_post(f"Q1: what are you reading? #{tag}", visibility="public")
    assert status.visibility == "public"
    assert str(status.account.id) == bot.id
    assert status.account.acct == f"{bot.name}@{snac_server.domain}"  # even for a local account
    assert [(t.name, t.url) for t in status.tags] == [(tag, f"{snac_server.api_base_url}?t={tag}")]
    assert f'rel="tag">#{tag}</a>' in status.content


def test_reply_forms_thread(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """A reply names its parent and the parent's author: in_reply_to_id, in_reply_to_account_id."""
    bot = _account(snac_server, closing, "bot")
    guest = _account(snac_server, closing, "guest")
    tag = _tag()
    question = bot.api.status_post(f"Q1 #{tag}", visibility="public")
    answer = guest.api.status_post(f"A1 #{tag}", in_reply_to_id=question.id, visibility="public")
    assert str(answer.in_reply_to_id) == str(question.id)
    assert str(answer.in_reply_to_account_id) == bot.id
    assert str(guest.api.status(answer.id).in_reply_to_id) == str(question.id)


def test_reply_mentions_parent_author(
    snac_server: SnacServer, closing: contextlib.ExitStack
) -> None:
    """A reply mentions its parent's author by itself, and twice if the text names them."""
    bot = _account(snac_server, closing, "bot")
    guest = _account(snac_server, closing, "guest")
    question = bot.api.status_post("Q1", visibility="public")
    plain = guest.api.status_post("A1", in_reply_to_id=question.id, visibility="public")
    named = guest.api.status_post(f"@{bot.name} A2", in_reply_to_id=question.id)
    bot_acct = f"{bot.name}@{snac_server.domain}"
    assert [(str(m.id), m.acct) for m in plain.mentions] == [("0", bot_acct)]
    assert [(str(m.id), m.acct) for m in named.mentions] == [("0", bot_acct), ("1", bot_acct)]


def test_idempotency_key_ignored(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """A repeated Idempotency-Key makes a second status: snac ignores the header."""
    bot = _account(snac_server, closing, "bot")
    tag = _tag()
    first = bot.api.status_post(f"Q1 #{tag}", visibility="public", idempotency_key="chat-q1")
    again = bot.api.status_post(f"Q1 #{tag}", visibility="public", idempotency_key="chat-q1")
    assert str(again.id) != str(first.id)
    assert _ids(bot.api.timeline_hashtag(tag)) == [str(again.id), str(first.id)]


def test_unlisted_comes_back_public(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """visibility="unlisted" comes back "public", and the post is in the hashtag timeline."""
    bot = _account(snac_server, closing, "bot")
    tag = _tag()
    status = bot.api.status_post(f"quiet #{tag}", visibility="unlisted")
    assert status.visibility == "public"
    assert bot.api.status(status.id).visibility == "public"
    assert _ids(bot.api.timeline_hashtag(tag)) == [str(status.id)]


def test_delete_status_missing(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """DELETE /api/v1/statuses/:id does not exist (404); the status stays."""
    bot = _account(snac_server, closing, "bot")
    status = bot.api.status_post("to be deleted", visibility="public")
    with pytest.raises(MastodonNotFoundError):
        bot.api.status_delete(status.id)
    assert bot.api.status(status.id).content.startswith("to be deleted")


def test_follow_needs_known_account(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """Following an account snac has not seen is a 404 until GET /api/v1/accounts/:id."""
    bot = _account(snac_server, closing, "bot")
    other = _account(snac_server, closing, "other")  # never posted, never looked up
    with pytest.raises(MastodonNotFoundError):
        bot.api.account_follow(other.id)
    bot.api.account(other.id)
    assert bot.api.account_follow(other.id).following is True


# --- ids -----------------------------------------------------------------------------


def test_ids_are_hex_strings(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """Status ids: 42 characters, the creation second then 32 hex; account ids: 32 hex."""
    bot = _account(snac_server, closing, "bot")
    before = int(time.time())
    status = bot.api.status_post("an id", visibility="public")
    after = int(time.time())
    sid = str(status.id)
    assert STATUS_ID.fullmatch(sid)
    assert before <= int(sid[:10]) <= after
    assert ACCOUNT_ID.fullmatch(str(status.account.id))


def test_ids_not_ordered_by_mastodon_py(
    snac_server: SnacServer, closing: contextlib.ExitStack
) -> None:
    """Mastodon.py cannot order snac's ids (TypeError): they are neither numbers nor ULIDs."""
    bot = _account(snac_server, closing, "bot")
    first = bot.api.status_post("one", visibility="public")
    second = bot.api.status_post("two", visibility="public")
    with pytest.raises(TypeError, match="not comparable"):
        _ = first.id < second.id


# --- reading the chat ------------------------------------------------------------------


def test_hashtag_timeline_no_follow(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """Another account's hashtag post is in the bot's hashtag timeline at once, with no follow."""
    bot = _account(snac_server, closing, "bot")
    guest = _account(snac_server, closing, "guest")
    tag = _tag()
    question = bot.api.status_post(f"Q1 #{tag}", visibility="public")
    answer = guest.api.status_post(f"A1, not a reply #{tag}", visibility="public")
    # No wait: the hashtag index is the instance's, written when the status is posted.
    assert _ids(bot.api.timeline_hashtag(tag)) == [str(answer.id), str(question.id)]


def test_mention_notification(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """A mention reaches the bot's notifications after the delivery lag, as type "mention"."""
    bot = _account(snac_server, closing, "bot")
    guest = _account(snac_server, closing, "guest")
    post = guest.api.status_post(f"@{bot.name} A1 #{_tag()}", visibility="public")

    def arrived() -> Any:
        notes = bot.api.notifications()
        return next((n for n in notes if n.status and str(n.status.id) == str(post.id)), None)

    note = _eventually(arrived, "the mention notification")
    assert note.type == "mention"
    assert str(note.account.id) == guest.id
    assert NOTIFICATION_ID.fullmatch(str(note.id))


def test_notifications_ignore_types(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """notifications(types=["mention"]) returns other types too; exclude_types works."""
    bot = _account(snac_server, closing, "bot")
    guest = _account(snac_server, closing, "guest")
    guest.api.account(bot.id)  # snac must know the account before a follow
    guest.api.account_follow(bot.id)

    def followed() -> Any:
        return [n for n in bot.api.notifications(types=["mention"]) if n.type == "follow"] or None

    assert [str(n.account.id) for n in _eventually(followed, "the follow notification")] == [
        guest.id
    ]
    assert bot.api.notifications(exclude_types=["follow"]) == []


def test_mentions_leave_out_viewer(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """A status's mentions leave out the account viewing it; mention ids count 0, 1, ..."""
    bot = _account(snac_server, closing, "bot")
    guest = _account(snac_server, closing, "guest")
    post = guest.api.status_post(f"@{bot.name} hello", visibility="public")
    assert [(str(m.id), m.acct) for m in post.mentions] == [
        ("0", f"{bot.name}@{snac_server.domain}")
    ]
    assert bot.api.status(post.id).mentions == []


def test_context_direct_replies(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """status_context lists a post's direct replies once delivered, not replies to those."""
    bot = _account(snac_server, closing, "bot")
    guest = _account(snac_server, closing, "guest")
    third = _account(snac_server, closing, "third")
    tag = _tag()
    question = bot.api.status_post(f"Q1 #{tag}", visibility="public")
    answer = guest.api.status_post(f"A1 #{tag}", in_reply_to_id=question.id, visibility="public")
    deeper = third.api.status_post("agreed", in_reply_to_id=answer.id, visibility="public")

    def delivered() -> Any:
        # The reply to the answer reaches the answer's author; the answer reaches the bot.
        to_guest = _ids(guest.api.status_context(answer.id).descendants)
        to_bot = _ids(bot.api.status_context(question.id).descendants)
        return to_bot if to_guest == [str(deeper.id)] and to_bot else None

    assert _eventually(delivered, "the replies in their contexts") == [str(answer.id)]
    # The bot follows nobody, so the reply to the answer never reached its timeline.
    assert _ids(bot.api.status_context(answer.id).descendants) == []
    assert _ids(bot.api.status_context(answer.id).ancestors) == [str(question.id)]
    assert str(bot.api.status(deeper.id).in_reply_to_id) == str(answer.id)  # still readable


def test_context_after_follow(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """After the bot follows an answer's author, replies to that answer reach its context."""
    bot = _account(snac_server, closing, "bot")
    guest = _account(snac_server, closing, "guest")
    third = _account(snac_server, closing, "third")
    bot.api.account(guest.id)  # snac must know the account before a follow
    assert bot.api.account_follow(guest.id).following is True
    tag = _tag()
    question = bot.api.status_post(f"Q1 #{tag}", visibility="public")
    answer = guest.api.status_post(f"A1 #{tag}", in_reply_to_id=question.id, visibility="public")
    deeper = third.api.status_post("agreed", in_reply_to_id=answer.id, visibility="public")

    def delivered() -> Any:
        return _ids(bot.api.status_context(answer.id).descendants) or None

    assert _eventually(delivered, "the reply to the answer") == [str(deeper.id)]
    # Direct replies only: the question's context still lists the answer alone.
    assert _ids(bot.api.status_context(question.id).descendants) == [str(answer.id)]


def _five_posts(account: Account, tag: str) -> list[str]:
    return [str(account.api.status_post(f"P{i} #{tag}", visibility="public").id) for i in range(5)]


def test_hashtag_no_link_header(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """The hashtag timeline sends no Link header, so Mastodon.py's fetch_next gives None."""
    bot = _account(snac_server, closing, "bot")
    tag = _tag()
    _five_posts(bot, tag)
    page = bot.api.timeline_hashtag(tag, limit=2)
    assert len(page) == 2
    assert bot.api.fetch_next(page) is None
    raw = bot.api.session.get(
        f"{snac_server.api_base_url}/api/v1/timelines/tag/{tag}?limit=2",
        headers={"Authorization": f"Bearer {bot.api.access_token}"},
        timeout=30,
    )
    assert raw.status_code == 200
    assert "Link" not in raw.headers


def test_hashtag_paging_max_id(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """max_id pages the hashtag timeline back, newest first, to an empty page."""
    bot = _account(snac_server, closing, "bot")
    tag = _tag()
    posted = _five_posts(bot, tag)
    pages = [_ids(bot.api.timeline_hashtag(tag, limit=2))]
    while pages[-1]:
        pages.append(_ids(bot.api.timeline_hashtag(tag, limit=2, max_id=pages[-1][-1])))
    assert pages == [posted[4:2:-1], posted[2:0:-1], posted[:1], []]


def test_hashtag_paging_min_id(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """min_id gives the page just above it, newest first: forward reading misses nothing."""
    bot = _account(snac_server, closing, "bot")
    tag = _tag()
    posted = _five_posts(bot, tag)
    pages = [_ids(bot.api.timeline_hashtag(tag, limit=2, min_id=posted[0]))]
    while pages[-1]:
        pages.append(_ids(bot.api.timeline_hashtag(tag, limit=2, min_id=pages[-1][0])))
    assert pages == [posted[2:0:-1], posted[4:2:-1], []]


def test_min_id_outside_hashtag(snac_server: SnacServer, closing: contextlib.ExitStack) -> None:
    """A min_id or max_id that is not under the hashtag gives an empty page."""
    bot = _account(snac_server, closing, "bot")
    tag = _tag()
    before = bot.api.status_post("no hashtag, before", visibility="public")
    tagged = _five_posts(bot, tag)
    after = bot.api.status_post("no hashtag, after", visibility="public")
    # On Mastodon both would list the five tagged posts.
    assert _ids(bot.api.timeline_hashtag(tag, min_id=before.id)) == []
    assert _ids(bot.api.timeline_hashtag(tag, max_id=after.id)) == []
    assert _ids(bot.api.timeline_hashtag(tag, since_id=before.id)) == tagged[::-1]
