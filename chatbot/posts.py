"""What a post is, on any network: a reference to one, its author, and a post as read back.

Plain data shared by the network adapters, the store and what is built from
the store; nothing here talks to a network.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chatbot.script import NetworkName


@dataclass(frozen=True)
class PostRef:
    """A post that exists on a network."""

    network: NetworkName
    id: str  # Mastodon status id, Bluesky at:// URI, local post id
    url: str = ""
    cid: str = ""  # Bluesky content hash, needed for strong refs in replies


@dataclass(frozen=True)
class Author:
    """Who wrote a post, with the signals that decide what may be shown in public."""

    network: NetworkName
    id: str  # stable: Mastodon account id on our instance, Bluesky DID
    handle: str  # Mastodon full acct (user@instance), Bluesky handle
    display_name: str = ""
    url: str = ""
    bot: bool = False
    opt_out: str = ""  # why the person is never to be shown in public ("#nobot in bio"); "" if not
    # Why the person is not to be shown on the open web (Mastodon's noindex, Bluesky's
    # !no-unauthenticated): kept out of the published transcript, but the recap, seen
    # by people on the network, may still quote them.
    web_opt_out: str = ""


@dataclass(frozen=True)
class SeenPost:
    """A post of the conversation as a network returned it, HTML already turned into text."""

    network: NetworkName
    uri: str  # canonical and the same on every server: Mastodon status uri, Bluesky at:// URI
    id: str  # the id our own server uses (what PostRef.id holds for the bot's posts)
    url: str
    author: Author
    text: str
    created_at: datetime
    reply_to: str | None = None  # id (as in PostRef.id) of the post replied to
    quote_of: str | None = None  # id of the quoted post
    tags: tuple[str, ...] = ()  # hashtags, lowercase, without '#'
    edited_at: datetime | None = None
    likes: int = 0  # favourites / likes
    reposts: int = 0  # boosts / reposts
    cid: str = ""  # Bluesky content hash (a reply to this post needs it)
    root: str | None = None  # id of the first post of this post's thread, if it is a reply
    direct: bool = False  # a direct message to the bot (Mastodon direct, a Bluesky DM)

    def ref(self) -> PostRef:
        """This post, as something the bot can reply to or like."""
        return PostRef(self.network, self.id, self.url, self.cid)
