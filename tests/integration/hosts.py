"""Co-moderators on the real servers: hosts named in a script by their real handles, the
commands they send the bot, the lookalikes who try to, and what the server then holds.

Written once for the three venues of :mod:`tests.integration.venues`. What a server cannot
make (an account of another server with the same user name, a direct message, a quote) is
a :class:`HostDifferences` entry with its reason, and the test takes the form the server
can deliver.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy.exc
from atproto import Client, client_utils, models
from mastodon import Mastodon

from chatbot.markup import html_to_text
from chatbot.networks.reading import as_utc
from chatbot.store import Store
from tests.integration.botrun import BotFolder
from tests.integration.collecting import user_name
from tests.integration.venues import (
    PASSWORD,
    BlueskyPerson,
    BlueskyVenue,
    MastodonPerson,
    MastodonVenue,
    Person,
    Ref,
    Venue,
)
from tests.servers import SnacServer


@dataclass(frozen=True)
class HostDifferences:
    """What a server does not let the co-moderation scenario do as on Mastodon, and why."""

    no_twin: str = ""  # why no account of another server has the co-moderator's user name
    no_direct: str = ""  # why a command cannot come as a direct message
    ascii_names: str = ""  # why a confusable handle takes an ASCII lookalike (0 for o)
    no_quotes: str = ""  # why a quote of a command is a reply repeating it instead
    likes_delivered_only: str = ""  # why only posts delivered to the bot can be liked


HOST_DIFFERENCES = {
    "snac2": HostDifferences(
        no_twin="every account on a snac server is its own (snac adduser); the test servers "
        "do not federate, so no account of another server can be made here",
        ascii_names="snac user names are ASCII letters, digits and _ (snac adduser)",
        no_quotes="snac 2.75's Mastodon API has no quote posts (venues.DIFFERENCES)",
        likes_delivered_only="snac favourites only statuses in the bot's own timeline "
        "(mastoapi.c: timeline_get_by_md5): replies to its posts and mentions, not the "
        "hashtag posts of people it does not follow",
    ),
    "mastodon-mock": HostDifferences(),
    "atproto": HostDifferences(
        no_twin="a Bluesky handle is a domain name, one account per handle on the whole "
        "network: there is no same user name on another server",
        no_direct="the dev-env network has no chat service (chat.bsky.* through the PDS "
        "answers 500: did:web:api.bsky.chat cannot be resolved offline), so commands come "
        "by mention; direct messages are tested against a faked chat service in "
        "tests/test_bluesky_interacting.py",
        ascii_names="handles are ASCII (atproto.com/specs/handle)",
    ),
}


# --- accounts ------------------------------------------------------------------------------


def domain_of(venue: MastodonVenue) -> str:
    """The domain in the server's local handles, as the bot reads it (v2, else v1)."""
    assert venue.bot_api is not None
    if isinstance(venue.server, SnacServer):
        return venue.server.domain
    return str(venue.bot_api.instance_v2()["domain"])


def handle(venue: Venue, person: Person) -> str:
    """How a chat script names ``person`` on this venue."""
    if isinstance(venue, MastodonVenue):
        return f"@{person.name}@{domain_of(venue)}"
    assert isinstance(person, BlueskyPerson)
    return f"{person.name}.test"


def named(venue: Venue, role: str, display_name: str) -> Person:
    """A new participant whose display name is ``display_name``."""
    person = venue.person(role)
    if isinstance(person, MastodonPerson):
        person.api.account_update_credentials(display_name=display_name)
    else:
        assert isinstance(person, BlueskyPerson) and isinstance(venue, BlueskyVenue)
        _bluesky_profile(person, display_name)
        venue.settle()
    return person


def opt_out_of_bots(venue: Venue, person: Person) -> str:
    """``person`` writes #nobot in their profile; returns the reason the bot gives for it.

    On Mastodon-API servers that is the venue's own opt-out (the bio); on Bluesky the
    venue's opt-out is the !no-unauthenticated label, which keeps a person off the web
    but not away from the bot, so the description carries #nobot here.
    """
    if isinstance(venue, MastodonVenue):
        return venue.opt_out(person)
    assert isinstance(person, BlueskyPerson) and isinstance(venue, BlueskyVenue)
    _bluesky_profile(person, person.name, description="Librarian. Please, #NoBot")
    venue.settle()
    return "#nobot in the profile"


def _bluesky_profile(person: BlueskyPerson, display_name: str, description: str = "") -> None:
    profile = models.AppBskyActorProfile.Record(
        display_name=display_name, description=description or None
    )
    person.client.com.atproto.repo.put_record(
        {"repo": person.did, "collection": "app.bsky.actor.profile", "rkey": "self",
         "record": profile}
    )  # fmt: skip


def lookalikes(venue: Venue, coach: Person, display_name: str) -> dict[str, Person]:
    """Accounts that look like ``coach`` and are not: the same display name, a confusable
    user name, and (where the server has other servers' accounts) the same user name on
    another server."""
    differences = HOST_DIFFERENCES[venue.name]
    found = {"same display name": named(venue, "namesake", display_name)}
    found["confusable user name"] = _account_named(
        venue, confusable(coach.name, ascii_only=bool(differences.ascii_names))
    )
    if not differences.no_twin:
        assert isinstance(venue, MastodonVenue)
        found["same user name on another server"] = _twin(venue)
    return found


# Letters and their lookalikes (Unicode's confusables): Cyrillic where a server takes any
# letter, digits where it takes ASCII only.
_CYRILLIC = {"o": "\u043e", "a": "\u0430", "e": "\u0435", "i": "\u0456", "c": "\u0441"}
_DIGITS = {"o": "0", "i": "1", "l": "1", "e": "3"}


def confusable(name: str, *, ascii_only: bool) -> str:
    """``name`` with its first letter that has a lookalike replaced by it."""
    table = _DIGITS if ascii_only else _CYRILLIC
    at = next(i for i, char in enumerate(name) if char in table)
    return name[:at] + table[name[at]] + name[at + 1 :]


def _account_named(venue: Venue, name: str) -> Person:
    if isinstance(venue, MastodonVenue):
        account_id, token = venue.server.create_account(name)
        return MastodonPerson(name, account_id, venue._client(token))
    assert isinstance(venue, BlueskyVenue)
    did, _handle = venue.network_.create_account(f"{name}.test", PASSWORD)
    client = Client(base_url=venue.network_.pds_url)
    client.login(f"{name}.test", PASSWORD)
    venue.closing.callback(client.request.close)
    return BlueskyPerson(name, did, client)


def _twin(venue: MastodonVenue) -> Person:
    """mastodon-mock's seeded account twin@elsewhere.example (its local twin is made here)."""
    from tests.servers import MastodonServer

    assert isinstance(venue.server, MastodonServer)
    account_id, token, _domain = venue.server.remote_account("twin")
    return MastodonPerson("twin", account_id, venue._client(token))


def local_twin(venue: MastodonVenue, display_name: str) -> Person:
    """The co-moderator whose user name the seeded remote account shares: local "twin"."""
    from tests.servers import MastodonServer

    assert isinstance(venue.server, MastodonServer)
    account_id, token = venue.server.create_account("twin", display_name=display_name)
    return MastodonPerson("twin", account_id, venue._client(token))


# --- commands ------------------------------------------------------------------------------


def command(
    venue: Venue,
    person: Person,
    text: str,
    *,
    direct: bool = False,
    reply_to: Ref | None = None,
    quote: Ref | None = None,
) -> Ref:
    """``person`` sends the bot ``text``: a mention (as a reply, a quote), or a direct
    message where the venue has them (else a mention)."""
    if isinstance(venue, MastodonVenue):
        assert isinstance(person, MastodonPerson) and venue.bot_api is not None
        bot = str(venue.bot_api.account_verify_credentials()["acct"])
        status = person.api.status_post(
            f"@{bot} {text}",
            in_reply_to_id=reply_to.id if reply_to else None,
            quoted_status_id=quote.id if quote else None,
            visibility="direct" if direct else "public",
        )
        return Ref(str(status.id), str(status.url or status.uri))
    assert isinstance(venue, BlueskyVenue) and isinstance(person, BlueskyPerson)
    content = client_utils.TextBuilder().mention(f"@{venue.bot_handle}", venue.bot_did)
    content.text(f" {text}")
    reply = None
    if reply_to is not None:
        root = reply_to.root or reply_to
        reply = models.AppBskyFeedPost.ReplyRef(
            root=models.ComAtprotoRepoStrongRef.Main(uri=root.id, cid=root.cid),
            parent=models.ComAtprotoRepoStrongRef.Main(uri=reply_to.id, cid=reply_to.cid),
        )
    embed = None
    if quote is not None:
        quoted = models.ComAtprotoRepoStrongRef.Main(uri=quote.id, cid=quote.cid)
        embed = models.AppBskyEmbedRecord.Main(record=quoted)
    made = person.client.send_post(
        content, profile_identify=person.did, reply_to=reply, embed=embed
    )
    root_ref = (reply_to.root or reply_to) if reply_to is not None else None
    return Ref(made.uri, "", made.cid, root_ref)


# --- what the server holds -----------------------------------------------------------------


def told(venue: Venue, person: Person) -> list[str]:
    """The texts of the bot's posts that notified ``person`` (replies, mentions), newest
    first: what reached them."""
    if isinstance(venue, MastodonVenue):
        assert isinstance(person, MastodonPerson)
        notes = person.api.notifications(types=["mention"], limit=40)
        return [
            html_to_text(n.status.content)
            for n in notes
            if n.type == "mention" and str(n.status.account.id) == venue.bot_id
        ]
    assert isinstance(venue, BlueskyVenue) and isinstance(person, BlueskyPerson)
    venue.settle()
    notes = person.client.app.bsky.notification.list_notifications({"limit": 100})
    return [
        n.record.text
        for n in notes.notifications
        if n.author.did == venue.bot_did and n.reason in ("reply", "mention")
    ]


def liked_by_bot(venue: Venue, post: Ref) -> bool:
    """Whether the bot's like (favourite) is on ``post``, as the server shows it."""
    if isinstance(venue, MastodonVenue):
        api = _api(venue)
        return venue.bot_id in {str(a.id) for a in api.status_favourited_by(post.id)}
    assert isinstance(venue, BlueskyVenue) and venue.owner is not None
    venue.settle()
    likes = venue.owner.app.bsky.feed.get_likes({"uri": post.id, "limit": 100})
    return venue.bot_did in {like.actor.did for like in likes.likes}


def _api(venue: MastodonVenue) -> Mastodon:
    assert venue.bot_api is not None
    return venue.bot_api


# --- what the bot's store holds ------------------------------------------------------------


@dataclass(frozen=True)
class CommandSeen:
    """One command as the bot's store holds it."""

    author: str  # the handle as the network gave it
    text: str
    state: str  # applied, refused, ignored, received
    post_id: str | None


def commands(folder: BotFolder) -> list[CommandSeen]:
    """The commands the bot received, in order, read-only."""
    rows = _query(folder, "SELECT author, text, state, post_id FROM commands ORDER BY id")
    return [CommandSeen(*row) for row in rows]


def chat_shift(folder: BotFolder, chat_id: str) -> float:
    """The chat's shift (pauses, extensions, next), in seconds."""
    [(shift,)] = _query(folder, "SELECT shift_seconds FROM chats WHERE chat_id = ?", chat_id)
    return float(shift)


def planned(folder: BotFolder) -> dict[str, datetime]:
    """Each unit's planned time (before the shift), by step key."""
    return {u["step_key"]: _when(u["planned_at"]) for u in folder.units()}


def posted_at(unit: dict[str, Any]) -> datetime:
    return _when(unit["posted_at"])


def _when(value: Any) -> datetime:
    moment = as_utc(value)
    assert moment is not None, value
    return moment


def posts_by(folder: BotFolder, chat_id: str) -> Counter[str]:
    """How many of the chat's posts the store holds from each person (by user name)."""
    counts: Counter[str] = Counter()
    try:
        store = Store.open(f"sqlite:///{folder.database}", now=datetime.now(UTC))
    except sqlalchemy.exc.OperationalError:
        return counts  # busy, or not created yet: the caller looks again
    try:
        for post in store.conversation.posts(chat_id, include_deleted=True):
            author = store.conversation.participant(post.network, post.author_id)
            counts[user_name(author.handle) if author else post.author_id] += 1
    except sqlalchemy.exc.OperationalError:
        return Counter()
    finally:
        store.close()
    return counts


def _query(folder: BotFolder, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    uri = f"file:{folder.database}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
            return list(db.execute(sql, args))
    except sqlite3.OperationalError:
        return []  # not created yet, or busy: the caller looks again
