"""The three real servers a chat runs on in the integration tests, behind one face.

A :class:`Venue` makes the bot's account (its config folder) and participants'
accounts, lets a participant post (with the hashtag, or as a reply), and reads
back what the server holds: the bot's posts with their parents, and each
participant's posts. The scenario in ``test_chat_scenario.py`` is written once
against it and runs on each:

- ``snac2``: snac 2.75, a real Mastodon-API server (C, Debian's binary);
- ``mastodon-mock``: the mastodon-mock server, Mastodon's API as Mastodon answers it;
- ``atproto``: a real AT Protocol network (PDS and AppView from @atproto/dev-env).

What a server cannot deliver is a :class:`Differences` entry with its reason.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import requests
from atproto import Client, client_utils, models
from mastodon import Mastodon

from chatbot.markup import html_to_text
from tests.integration.botrun import BotFolder, bot_folder
from tests.servers import AtprotoNetwork, MastodonServer, SnacServer

PASSWORD = "correct-horse-battery"


@dataclass(frozen=True)
class Differences:
    """What a server does not deliver as Mastodon does, each with the reason."""

    # A reply to another participant's answer reaches the bot only if it carries the
    # hashtag: the reason, or "" where the thread under the bot's post shows it.
    comment_needs_hashtag: str = ""
    no_edits: str = ""  # why a post cannot be edited there ("": it can)
    no_deletes: str = ""  # why a post cannot be deleted there through the API
    no_quotes: str = ""  # why a post cannot quote another there


# Each server the scenario runs on, and what it does not deliver as Mastodon does.
DIFFERENCES = {
    "snac2": Differences(
        comment_needs_hashtag=(
            "snac's context lists only direct replies, and only those in the viewer's own "
            "timeline: a reply to another person's answer reaches the bot through the "
            "hashtag or a mention, never through the question's thread "
            "(tests/servers/README.md, test_snac_server.py::test_context_direct_replies)"
        ),
        no_deletes="snac 2.75 serves no DELETE /api/v1/statuses/:id (a 404; "
        "test_snac_server.py::test_delete_status_missing)",
        no_quotes="snac 2.75's Mastodon API has no quote posts: it ignores quoted_status_id "
        "and makes a plain post (seen by hand)",
    ),
    "mastodon-mock": Differences(),
    "atproto": Differences(no_edits="a Bluesky post cannot be edited (app.bsky.feed.post)"),
}


@dataclass(frozen=True)
class Ref:
    """A post on a server: its id (a status id, an at:// uri), and what a reply needs."""

    id: str
    url: str = ""
    cid: str = ""  # Bluesky: the record's cid, for strong refs
    root: Ref | None = None  # Bluesky: the thread's first post


@dataclass(frozen=True)
class ServerPost:
    """One of the bot's posts as the server holds it."""

    id: str
    text: str
    parent: str | None


class Person(Protocol):
    """A participant with an account on the venue."""

    name: str  # the user name, as tests.integration.collecting.user_name gives it

    def post(
        self, text: str, *, tag: str | None = None, reply_to: Ref | None = None,
        quote: Ref | None = None,
    ) -> Ref:  # fmt: skip
        """Post ``text``, with the clickable ``#tag`` at its end, as a reply to ``reply_to``,
        quoting ``quote``."""
        ...

    def edit(self, ref: Ref, text: str) -> None: ...

    def delete(self, ref: Ref) -> None: ...

    def held(self) -> set[str]:
        """The uris of every post this person has on the server."""
        ...


class Venue(Protocol):
    """A server a chat runs on, as the scenario needs it."""

    name: str
    network: str  # the chat script's network: "mastodon" or "bluesky"
    differences: Differences

    def tag(self) -> str: ...

    def bot(self, root: Path) -> BotFolder:
        """A new bot account and its folder (config and schedules)."""
        ...

    def person(self, role: str) -> Person: ...

    def mention(self, person: Person, text: str) -> str:
        """``person`` posts ``@bot text`` (a real mention, no tag, no reply); returns how the
        mention reads in the post's text on this server."""
        ...

    def opt_out(self, person: Person) -> str:
        """``person`` opts out the way this network's people do; returns the reason it gives."""
        ...

    def bot_post(self, text: str, tag: str) -> Ref:
        """A post of the bot's own, made outside the bot (as a person at the keyboard would)."""
        ...

    def mark_bot(self, on: bool) -> None:
        """Set (or clear) the bot's own mark: Mastodon's bot flag, Bluesky's "bot" self-label."""
        ...

    def refused(self, root: Path) -> BotFolder:
        """A folder whose config names the bot with credentials the server refuses."""
        ...

    def settle(self) -> None:
        """Wait until what was posted is readable by others (the AppView indexes it)."""
        ...

    def ref(self, unit: dict[str, Any], root: dict[str, Any]) -> Ref:
        """The post of one of the bot's units; ``root``: the unit its thread starts with."""
        ...

    def bot_posts(self) -> list[ServerPost]:
        """Every post of the bot's account on the server."""
        ...


# --- Mastodon-API servers (snac2, mastodon-mock) -------------------------------------------


@dataclass
class MastodonPerson:
    name: str
    id: str
    api: Mastodon

    def post(
        self, text: str, *, tag: str | None = None, reply_to: Ref | None = None,
        quote: Ref | None = None,
    ) -> Ref:  # fmt: skip
        status = self.api.status_post(
            f"{text} #{tag}" if tag else text,
            in_reply_to_id=reply_to.id if reply_to else None,
            quoted_status_id=quote.id if quote else None,
            visibility="public",
        )
        return Ref(str(status.id), str(status.url or status.uri))

    def edit(self, ref: Ref, text: str) -> None:
        self.api.status_update(ref.id, text)

    def delete(self, ref: Ref) -> None:
        self.api.status_delete(ref.id)

    def held(self) -> set[str]:
        return {str(s.uri) for s in _every_status(self.api, self.id)}


def _every_status(api: Mastodon, account_id: str) -> list[Any]:
    """An account's statuses, every page (snac sends no Link header: one page)."""
    page = api.account_statuses(account_id, limit=40)
    found = {str(s.id): s for s in page}
    while page:
        page = api.fetch_next(page)
        new = [s for s in page or [] if str(s.id) not in found]
        found.update((str(s.id), s) for s in new)
        page = new
    return list(found.values())


@dataclass
class MastodonVenue:
    """A Mastodon-API server: snac2 or mastodon-mock."""

    name: str
    server: SnacServer | MastodonServer
    closing: contextlib.ExitStack
    differences: Differences = field(default_factory=Differences)
    network: str = "mastodon"
    bot_api: Mastodon | None = None
    bot_id: str = ""

    def tag(self) -> str:
        return f"Chat{secrets.token_hex(3)}"

    def bot(self, root: Path) -> BotFolder:
        self.bot_id, token = self.server.create_account(f"bot{secrets.token_hex(3)}")
        self.bot_api = self._client(token)
        return bot_folder(root, mastodon=(self.server.api_base_url, token))

    def person(self, role: str) -> Person:
        name = f"{role}{secrets.token_hex(3)}"
        account_id, token = self.server.create_account(name)
        return MastodonPerson(name, account_id, self._client(token))

    def mention(self, person: Person, text: str) -> str:
        assert self.bot_api is not None
        name = str(self.bot_api.account_verify_credentials()["acct"])
        person.post(f"@{name} {text}")
        # snac links a local mention as @name@host in the text; Mastodon shows it as written.
        return (
            f"@{name}@{self.server.domain}" if isinstance(self.server, SnacServer) else f"@{name}"
        )

    def opt_out(self, person: Person) -> str:
        assert isinstance(person, MastodonPerson)
        person.api.account_update_credentials(note="Librarian. Please, #NoBot")
        return "#nobot in the profile"

    def bot_post(self, text: str, tag: str) -> Ref:
        assert self.bot_api is not None
        return MastodonPerson("bot", self.bot_id, self.bot_api).post(text, tag=tag)

    def mark_bot(self, on: bool) -> None:
        assert self.bot_api is not None
        self.bot_api.account_update_credentials(bot=on)

    def refused(self, root: Path) -> BotFolder:
        return bot_folder(root, mastodon=(self.server.api_base_url, "not-a-token"))

    def settle(self) -> None:
        pass  # snac's deliveries lag by seconds; the waits for the store allow for it

    def ref(self, unit: dict[str, Any], root: dict[str, Any]) -> Ref:
        return Ref(str(unit["remote_id"]), str(unit["remote_url"] or ""))

    def bot_posts(self) -> list[ServerPost]:
        assert self.bot_api is not None
        return [
            ServerPost(
                str(s.id),
                html_to_text(s.content),
                str(s.in_reply_to_id) if s.in_reply_to_id is not None else None,
            )
            for s in _every_status(self.bot_api, self.bot_id)
        ]

    def _client(self, token: str) -> Mastodon:
        if isinstance(self.server, SnacServer):
            session = self.closing.enter_context(self.server.session())  # one request a connection
        else:
            session = self.closing.enter_context(requests.Session())
        return Mastodon(
            access_token=token,
            api_base_url=self.server.api_base_url,
            session=session,
            version_check_mode="created",
        )


# --- the AT Protocol network ----------------------------------------------------------------


@dataclass
class BlueskyPerson:
    name: str
    did: str
    client: Client

    def post(
        self, text: str, *, tag: str | None = None, reply_to: Ref | None = None,
        quote: Ref | None = None,
    ) -> Ref:  # fmt: skip
        content: Any = text
        if tag is not None:
            content = client_utils.TextBuilder().text(f"{text} ").tag(f"#{tag}", tag)
        reply = None
        if reply_to is not None:
            parent = models.ComAtprotoRepoStrongRef.Main(uri=reply_to.id, cid=reply_to.cid)
            root = reply_to.root or reply_to
            reply = models.AppBskyFeedPost.ReplyRef(
                root=models.ComAtprotoRepoStrongRef.Main(uri=root.id, cid=root.cid), parent=parent
            )
        embed = None
        if quote is not None:
            quoted = models.ComAtprotoRepoStrongRef.Main(uri=quote.id, cid=quote.cid)
            embed = models.AppBskyEmbedRecord.Main(record=quoted)
        made = self.client.send_post(
            content, profile_identify=self.did, reply_to=reply, embed=embed
        )
        root_ref = (reply_to.root or reply_to) if reply_to is not None else None
        return Ref(made.uri, "", made.cid, root_ref)

    def edit(self, ref: Ref, text: str) -> None:
        raise NotImplementedError(DIFFERENCES["atproto"].no_edits)

    def delete(self, ref: Ref) -> None:
        self.client.delete_post(ref.id)

    def held(self) -> set[str]:
        return {r.uri for r in _records(self.client, self.did)}


def _records(client: Client, did: str) -> list[Any]:
    """Every post record in an account's repo."""
    found: list[Any] = []
    cursor = None
    while True:
        page = client.com.atproto.repo.list_records(
            {"repo": did, "collection": "app.bsky.feed.post", "limit": 100, "cursor": cursor}
        )
        found += page.records
        cursor = page.cursor
        if not cursor or not page.records:
            return found


@dataclass
class BlueskyVenue:
    """The AT Protocol network of @atproto/dev-env."""

    network_: AtprotoNetwork
    closing: contextlib.ExitStack
    name: str = "atproto"
    network: str = "bluesky"
    differences: Differences = field(default_factory=Differences)
    owner: Client | None = None
    bot_did: str = ""
    bot_handle: str = ""

    def tag(self) -> str:
        # Accents: the test AppView's search is a case-sensitive LIKE on the text.
        return f"ÉduChat{secrets.token_hex(2)}"

    def bot(self, root: Path) -> BotFolder:
        self.bot_did, self.bot_handle, self.owner = self._account("bot")
        app_password = self.owner.com.atproto.server.create_app_password({"name": "chatbot"})
        return bot_folder(
            root, bluesky=(self.network_.pds_url, self.bot_handle, app_password.password)
        )

    def person(self, role: str) -> Person:
        did, handle, client = self._account(role)
        return BlueskyPerson(handle.split(".")[0], did, client)

    def mention(self, person: Person, text: str) -> str:
        assert isinstance(person, BlueskyPerson)
        content = client_utils.TextBuilder().mention(f"@{self.bot_handle}", self.bot_did)
        person.client.send_post(content.text(f" {text}"), profile_identify=person.did)
        return f"@{self.bot_handle}"

    def opt_out(self, person: Person) -> str:
        assert isinstance(person, BlueskyPerson)
        self._profile(person.client, person.did, "!no-unauthenticated")
        return "!no-unauthenticated label"

    def bot_post(self, text: str, tag: str) -> Ref:
        assert self.owner is not None
        return BlueskyPerson("bot", self.bot_did, self.owner).post(text, tag=tag)

    def mark_bot(self, on: bool) -> None:
        assert self.owner is not None
        self._profile(self.owner, self.bot_did, *(["bot"] if on else []))

    def _profile(self, client: Client, did: str, *labels: str) -> None:
        """Write the account's profile record with these self-labels."""
        values = [models.ComAtprotoLabelDefs.SelfLabel(val=label) for label in labels]
        profile = models.AppBskyActorProfile.Record(
            display_name="Someone", labels=models.ComAtprotoLabelDefs.SelfLabels(values=values)
        )
        client.com.atproto.repo.put_record(
            {"repo": did, "collection": "app.bsky.actor.profile", "rkey": "self",
             "record": profile}
        )  # fmt: skip
        self.network_.process_all()

    def refused(self, root: Path) -> BotFolder:
        return bot_folder(
            root, bluesky=(self.network_.pds_url, self.bot_handle, "xxxx-xxxx-xxxx-xxxx")
        )

    def settle(self) -> None:
        self.network_.process_all()

    def ref(self, unit: dict[str, Any], root: dict[str, Any]) -> Ref:
        first = Ref(str(root["remote_id"]), "", str(root["remote_cid"]))
        return Ref(str(unit["remote_id"]), "", str(unit["remote_cid"]), first)

    def bot_posts(self) -> list[ServerPost]:
        assert self.owner is not None
        return [
            ServerPost(
                r.uri, r.value.text, r.value.reply.parent.uri if r.value.reply is not None else None
            )
            for r in _records(self.owner, self.bot_did)
        ]

    def _account(self, role: str) -> tuple[str, str, Client]:
        did, handle = self.network_.create_account(f"{role}{secrets.token_hex(3)}.test", PASSWORD)
        client = Client(base_url=self.network_.pds_url)
        client.login(handle, PASSWORD)
        self.closing.callback(client.request.close)
        return did, handle, client
