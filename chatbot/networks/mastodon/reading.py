"""Statuses as the conversation sees them: a status of any Mastodon-API server as a
:class:`~chatbot.posts.SeenPost`, with its author's opt-outs.

Where the statuses come from is :mod:`chatbot.networks.mastodon.sources`.
"""

from __future__ import annotations

from typing import Any

from chatbot.markup import html_to_text
from chatbot.networks.reading import as_utc, opt_out_in
from chatbot.posts import Author, SeenPost
from chatbot.script import NetworkName

# Only these reach the transcript: followers-only and direct replies are private.
READABLE = frozenset({"public", "unlisted"})
# A status seen only by the accounts it mentions (and the author's followers): a
# direct message to the bot. snac gives a direct status as "private" (mastoapi.c:
# visibility is "public" or "private", nothing else).
PRIVATE = frozenset({"private", "direct"})


# --- statuses -> SeenPost -----------------------------------------------------------------


def opt_out_reason(account: Any, *, indexable_opts_out: bool = False) -> str:
    """Why an account is never to be shown in public ("" if it may be), from its own signals.

    - ``note`` (the bio, HTML) and the profile ``fields``: the #nobot / #nobots /
      #noindex convention, case-insensitive;
    - ``indexable`` (Account entity, Mastodon 4.2+), only if ``indexable_opts_out``:
      false means the person's posts are not in full-text search. It is opt-in, so
      false is what most accounts have, and it is about search, not about being
      quoted: by default it is no signal. Absent or null is never a signal.
    """
    reasons = []
    profile = [html_to_text(str(account.get("note") or ""))]
    for item in account.get("fields") or []:
        profile += [str(item.get("name") or ""), html_to_text(str(item.get("value") or ""))]
    found = opt_out_in("\n".join(profile))
    if found:
        reasons.append(found)
    if indexable_opts_out and account.get("indexable") is False:
        reasons.append("indexable: false")
    return "; ".join(reasons)


def web_opt_out_reason(account: Any) -> str:
    """Why an account is not to be shown on the open web ("" if it may be).

    ``noindex`` (Account entity, Mastodon 4.0+, local users of the account's
    server): the person asked search engines not to index them, so the published
    transcript leaves them out; the recap, seen on the network, may quote them.
    """
    return "noindex" if account.get("noindex") is True else ""


def full_handle(acct: str, domain: str) -> str:
    """``user@domain`` for an ``acct`` as a server gives it (local accounts have no domain)."""
    acct = acct.removeprefix("@")
    return acct if "@" in acct else f"{acct}@{domain}"


def quoted_id(status: Any) -> str | None:
    """The id of the status quoted, from ``quote`` (Mastodon 4.4+): a Quote with
    ``quoted_status`` or a ShallowQuote with ``quoted_status_id``."""
    quote = status.get("quote")
    if not quote:
        return None
    inner = quote.get("quoted_status")
    if inner:
        return str(inner["id"])
    shallow = quote.get("quoted_status_id")
    return str(shallow) if shallow is not None else None


def seen_status(status: Any, *, domain: str, indexable_opts_out: bool = False) -> SeenPost:
    """A status as the conversation sees it (``domain``: the server's, for local handles)."""
    account = status["account"]
    text = html_to_text(str(status.get("content") or ""))
    spoiler = str(status.get("spoiler_text") or "").strip()
    if spoiler:  # the content warning is part of what was written ("A2" may be in it)
        text = f"{spoiler}\n\n{text}" if text else spoiler
    created = as_utc(status.get("created_at"))
    if created is None:
        raise ValueError(f"status {status.get('id')} has no creation time")
    in_reply_to = status.get("in_reply_to_id")
    return SeenPost(
        network=NetworkName.MASTODON,
        uri=str(status.get("uri") or status.get("url") or ""),
        id=str(status["id"]),
        url=str(status.get("url") or status.get("uri") or ""),
        author=Author(
            network=NetworkName.MASTODON,
            id=str(account["id"]),
            handle=full_handle(str(account.get("acct") or account.get("username") or ""), domain),
            display_name=str(account.get("display_name") or ""),
            url=str(account.get("url") or ""),
            bot=bool(account.get("bot")),
            opt_out=opt_out_reason(account, indexable_opts_out=indexable_opts_out),
            web_opt_out=web_opt_out_reason(account),
        ),
        text=text,
        created_at=created,
        edited_at=as_utc(status.get("edited_at")),
        reply_to=str(in_reply_to) if in_reply_to is not None else None,
        quote_of=quoted_id(status),
        tags=tuple(
            dict.fromkeys(
                str(t.get("name") or "").lower() for t in status.get("tags") or [] if t.get("name")
            )
        ),
        likes=int(status.get("favourites_count") or 0),
        reposts=int(status.get("reblogs_count") or 0),
        # A reply on a Mastodon-API server needs only in_reply_to_id: no root is kept.
        direct=status.get("visibility") in PRIVATE,
    )


def readable(status: Any) -> bool:
    """Public or unlisted, and not a boost (a boost is not a post of the conversation)."""
    return status.get("visibility") in READABLE and not status.get("reblog")
