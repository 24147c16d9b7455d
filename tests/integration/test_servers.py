"""The integration servers work from Python through the real client libraries."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from atproto import Client, client_utils, models
from mastodon import Mastodon, MastodonRatelimitError

from tests.servers import AtprotoNetwork, MastodonServer

PASSWORD = "correct-horse-battery"


def _handle(prefix: str) -> str:
    # A handle's first label may be at most 18 characters on this PDS.
    return f"{prefix}{secrets.token_hex(4)}.test"


def _tag() -> str:
    return f"chat{secrets.token_hex(3)}"


@pytest.fixture
def closing() -> Iterator[contextlib.ExitStack]:
    """Closes the clients a test opens (an unclosed HTTP pool is a ResourceWarning)."""
    with contextlib.ExitStack() as stack:
        yield stack


def _client(network: AtprotoNetwork, closing: contextlib.ExitStack) -> Client:
    client = Client(base_url=network.pds_url)
    closing.callback(client.request.close)
    return client


def _login(
    network: AtprotoNetwork, closing: contextlib.ExitStack, prefix: str
) -> tuple[Client, str]:
    did, handle = network.create_account(_handle(prefix), PASSWORD)
    client = _client(network, closing)
    client.login(handle, PASSWORD)
    return client, did


def test_atproto_thread_notifications_and_search(
    atproto_network: AtprotoNetwork, closing: contextlib.ExitStack
) -> None:
    """A hashtag post and a reply are indexed: thread, notification and search see them."""
    host, host_did = _login(atproto_network, closing, "host")
    guest, _ = _login(atproto_network, closing, "guest")
    tag = _tag()

    text = client_utils.TextBuilder().text("Q1: what are you reading? ").tag(f"#{tag}", tag)
    question = host.send_post(text)
    # The AppView indexes each account's repo in parallel: a reply indexed before
    # its parent gets no notification. Let the question land first, as in life.
    atproto_network.process_all()
    ref = models.create_strong_ref(question)
    answer = guest.send_post(
        client_utils.TextBuilder().text("A1: a novel ").tag(f"#{tag}", tag),
        reply_to=models.AppBskyFeedPost.ReplyRef(root=ref, parent=ref),
    )
    atproto_network.process_all()

    record = host.get_post(question.uri.split("/")[-1], host_did)
    assert record.value.facets is not None
    assert [f.features[0].tag for f in record.value.facets] == [tag]

    thread = host.get_post_thread(question.uri).thread
    assert isinstance(thread, models.AppBskyFeedDefs.ThreadViewPost)
    assert [reply.post.uri for reply in thread.replies or []] == [answer.uri]

    notes = host.app.bsky.notification.list_notifications().notifications
    assert [(n.reason, n.uri) for n in notes] == [("reply", answer.uri)]

    # With no search service the AppView searches the text (case-sensitive LIKE).
    found = host.app.bsky.feed.search_posts({"q": f"#{tag}"}).posts
    assert {p.uri for p in found} == {question.uri, answer.uri}


def test_atproto_session_export_import(
    atproto_network: AtprotoNetwork, closing: contextlib.ExitStack
) -> None:
    """An exported session logs a new client in without createSession."""
    client, did = _login(atproto_network, closing, "sess")
    session = client.export_session_string()

    again = _client(atproto_network, closing)
    again.login(session_string=session)
    assert again.me is not None and again.me.did == did
    post = again.send_post("posted with an imported session")
    assert post.uri.startswith(f"at://{did}/")


def _mastodon(server: MastodonServer, closing: contextlib.ExitStack, token: str) -> Mastodon:
    session = closing.enter_context(requests.Session())
    return Mastodon(
        access_token=token,
        api_base_url=server.api_base_url,
        ratelimit_method="throw",
        session=session,
    )


def test_mastodon_idempotency_and_hashtag_timeline(
    mastodon_server: MastodonServer, closing: contextlib.ExitStack
) -> None:
    """A repeated idempotency key returns the first status; the tag timeline lists it."""
    _, token = mastodon_server.create_account()
    api = _mastodon(mastodon_server, closing, token)
    tag = _tag()

    first = api.status_post(f"Q1 #{tag}", visibility="public", idempotency_key="chat-q1")
    again = api.status_post(f"Q1 #{tag}", visibility="public", idempotency_key="chat-q1")
    assert again.id == first.id

    assert [s.id for s in api.timeline_hashtag(tag)] == [first.id]


def test_mastodon_rate_limit_fault(
    mastodon_server: MastodonServer, closing: contextlib.ExitStack
) -> None:
    """An injected 429 with a reset time raises MastodonRatelimitError, once."""
    _, token = mastodon_server.create_account()
    api = _mastodon(mastodon_server, closing, token)
    reset = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    mastodon_server.inject_fault("/api/v1/statuses", status=429, count=1, reset=reset)
    try:
        with pytest.raises(MastodonRatelimitError):
            api.status_post("over the limit")
        assert api.ratelimit_reset == pytest.approx(reset.timestamp(), abs=2)
        assert mastodon_server.faults() == []
        assert api.status_post("after the limit").content
    finally:
        mastodon_server.clear_faults()
