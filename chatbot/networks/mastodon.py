"""Mastodon through Mastodon.py: one thread per chat, idempotent posts, images with alt text,
and the chat's conversation read back (hashtag, threads, mentions).

Exactly once: every ``status_post`` carries the step's idempotency key, and the
server returns the original status for a repeated key. Mastodon remembers keys
for one hour only, so a retry of an attempt older than that first looks for the
post among the account's own statuses.

Reading (:meth:`MastodonNetwork.collect`): one instance only knows the posts
that reach it, so a round reads three sources: the hashtag timeline (forward
from a cursor, without gaps), the context of the chat's own posts (replies
that forgot the hashtag), and mention notifications; optionally the public
hashtag timelines of other instances. Every request, posting or reading, goes
through the account's pacers, posting first.
"""

from __future__ import annotations

import mimetypes
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import structlog
from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonError,
    MastodonIllegalArgumentError,
    MastodonIOError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
)
from pydantic import SecretStr

from chatbot import errors
from chatbot.markup import html_to_text
from chatbot.networks.base import Account, Attachment, ChatThread, Collected, PostRequest
from chatbot.networks.pacing import Pacer
from chatbot.networks.reading import (
    SWEEP_ROUNDS,
    Rounds,
    as_utc,
    id_order,
    pace,
    remember,
    remembered,
)
from chatbot.posts import Author, PostRef, SeenPost
from chatbot.script import NetworkName
from chatbot.text import MASTODON_DEFAULT_MAX_CHARACTERS, Limits

log = structlog.get_logger("chatbot.networks.mastodon")
T = TypeVar("T")

# Seconds per HTTP request: the runner finishes the call in flight on SIGTERM
# and must be done within 10 s.
REQUEST_TIMEOUT = 7.0
# The server keeps an Idempotency-Key for 1 hour; past ~50 minutes we no longer
# trust it and look for the post ourselves before posting.
IDEMPOTENCY_TRUST = timedelta(minutes=50)
# find(): the account's own statuses, newest first, 40 a page (the API's maximum).
FIND_PAGE_SIZE = 40
FIND_MAX_PAGES = 5
# A post found by find() cannot be older than its first attempt (clock skew aside).
FIND_SKEW = timedelta(minutes=10)
# Media: Mastodon may answer 202 and process an image asynchronously.
MEDIA_WAIT = 5.0
MEDIA_POLL = 0.5
# When the instance's limits cannot be read, ask again after this long.
LIMITS_RETRY = timedelta(minutes=5)
# The oldest Mastodon the bot supports (the first with /api/v2/instance).
ASSUMED_MASTODON_VERSION = "4.0.0"
# When a 429 carries no usable reset time.
DEFAULT_RATELIMIT_WAIT = timedelta(seconds=60)
# Rate limits (docs.joinmastodon.org/api/rate-limits): 300 requests per 5 minutes
# per account; requests with max_id/min_id/since_id also count as paging, 300
# per 15 minutes. Unauthenticated reads of other instances: 300 per 5 minutes per IP.
REQUEST_LIMIT = (300, 300.0)
PAGING_LIMIT = (300, 900.0)

# --- reading ---
# Timelines and notifications: at most 40 a page.
PAGE_SIZE = 40
# A safety stop for one source in one round (10,000 posts); the cursor only
# moves as far as was read, so the rest comes next round.
MAX_PAGES = 250
# A context answers at most 4,096 descendants to a user token; a bot post found
# in a smaller answer had all its replies in it and need not be read again.
CONTEXT_DESCENDANTS = 4096
# Only these reach the transcript: followers-only and direct replies are private.
READABLE = frozenset({"public", "unlisted"})
# The mention notifications of a chat (Mastodon 4.5 adds "quote" for quotes of
# the bot's posts; older servers ignore the type).
NOTIFICATION_TYPES = ("mention", "quote")
# The #nobot convention (and its variants) in a profile's bio or fields.
_OPT_OUT_TAG = re.compile(r"#(nobots?|noindex)\b", re.IGNORECASE)

_REMOTE_MENTION = re.compile(r"(?<![\w@])(@\w+)@[\w.-]+\w")


def comparable(text: str) -> str:
    """A status text reduced for comparison: whitespace collapsed, ``@user@domain`` as ``@user``.

    Mastodon's HTML shows a remote mention as ``@user`` only.
    """
    return " ".join(_REMOTE_MENTION.sub(r"\1", text).split())


def status_code(exc: MastodonError) -> int | None:
    """The HTTP status of a Mastodon.py API error (its second argument), if it has one."""
    if len(exc.args) > 1 and isinstance(exc.args[1], int):
        return exc.args[1]
    return None


def translate(
    exc: MastodonError, what: str, *, ratelimit_reset: float | None, now: datetime
) -> errors.NetworkError:
    """A Mastodon.py error as one of ours, keeping the status code and the retry time."""
    status = status_code(exc)
    reason = exc.args[3] if len(exc.args) > 3 and exc.args[3] else ""
    detail = f"{what}: Mastodon answered {status or 'an error'}{': ' if reason else ''}{reason}"
    if isinstance(exc, MastodonRatelimitError) or status == 429:
        # Mastodon.py reads X-RateLimit-Reset (ISO 8601), corrected for the
        # server's clock, into ratelimit_reset (epoch seconds).
        retry_at = (
            datetime.fromtimestamp(ratelimit_reset, UTC)
            if ratelimit_reset is not None and ratelimit_reset > now.timestamp()
            else now + DEFAULT_RATELIMIT_WAIT
        )
        return errors.RateLimited(
            f"{what}: Mastodon rate limit until {retry_at:%H:%M:%S} UTC", retry_at=retry_at
        )
    if isinstance(exc, MastodonNetworkError):
        return errors.Transient(f"{what}: could not reach Mastodon ({exc})")
    if isinstance(exc, MastodonUnauthorizedError) or status in (401, 403):
        return errors.AuthFailed(
            f"{detail} (the access token was refused: create a new one with read and write scopes)",
            status=status,
        )
    if isinstance(exc, MastodonServerError) or (status is not None and status >= 500):
        return errors.Transient(detail, status=status)
    if isinstance(exc, MastodonNotFoundError) or (status is not None and 400 <= status < 500):
        return errors.Rejected(detail, status=status)
    if isinstance(exc, MastodonIllegalArgumentError | MastodonIOError):
        return errors.Rejected(f"{what}: {exc}")
    if isinstance(exc, MastodonAPIError):
        # A 2xx whose body could not be read: the post may exist; the key makes a retry safe.
        return errors.Transient(f"{what}: unexpected answer from Mastodon ({exc.args[0]})")
    return errors.Transient(f"{what}: {type(exc).__name__}: {exc}")


def _same_post(status: Any, parent: str | None, wanted: str) -> bool:
    """Whether a status replies to ``parent`` (None: to nothing) with the ``wanted`` text."""
    in_reply_to = status.get("in_reply_to_id")
    if (str(in_reply_to) if in_reply_to is not None else None) != parent:
        return False
    return comparable(html_to_text(status.get("content") or "")) == wanted


def _older_than(status: Any, moment: datetime) -> bool:
    created = status.get("created_at")
    return isinstance(created, datetime) and created.tzinfo is not None and created < moment


# --- reading: statuses -> SeenPost --------------------------------------------------------


def opt_out_reason(account: Any, *, indexable_opts_out: bool = True) -> str:
    """Why an account is not to be shown in public ("" if it may be), from its own signals.

    - ``note`` (the bio, HTML) and the profile ``fields``: the #nobot / #nobots /
      #noindex convention, case-insensitive;
    - ``noindex`` (Account entity, Mastodon 4.0+, local users of the account's
      server): the person opted out of search engines;
    - ``indexable`` (Account entity, Mastodon 4.2+): false means the person's
      public posts are not to be searchable by anyone. It is opt-in, so false is
      also what most accounts have; ``indexable_opts_out`` turns this signal off.
      Absent or null (older servers, other software) is no signal.
    """
    reasons = []
    profile = [html_to_text(str(account.get("note") or ""))]
    for item in account.get("fields") or []:
        profile += [str(item.get("name") or ""), html_to_text(str(item.get("value") or ""))]
    found = _OPT_OUT_TAG.search("\n".join(profile))
    if found:
        reasons.append(f"#{found.group(1).lower()} in the profile")
    if account.get("noindex") is True:
        reasons.append("noindex")
    if indexable_opts_out and account.get("indexable") is False:
        reasons.append("indexable: false")
    return "; ".join(reasons)


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


def seen_status(status: Any, *, domain: str, indexable_opts_out: bool = True) -> SeenPost:
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
    )


def _readable(status: Any) -> bool:
    """Public or unlisted, and not a boost (a boost is not a post of the conversation)."""
    return status.get("visibility") in READABLE and not status.get("reblog")


def _newest(page: Iterable[Any], current: str | None) -> str | None:
    ids = [str(item["id"]) for item in page]
    if current is not None:
        ids.append(current)
    return max(ids, key=id_order) if ids else None


@dataclass(frozen=True)
class ExtraInstance:
    """Another instance whose public hashtag timeline widens what the bot sees."""

    url: str
    api: Mastodon
    pacer: Pacer

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc or self.url


class MastodonNetwork:
    """The bot's Mastodon account, behind the :class:`~chatbot.networks.base.Network` Protocol."""

    name = NetworkName.MASTODON

    def __init__(
        self,
        *,
        instance: str,
        access_token: SecretStr,
        max_characters: int | None = None,
        timeout: float = REQUEST_TIMEOUT,
        session: requests.Session | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        indexable_opts_out: bool = True,
        extra_instances: Sequence[str] = (),
        sweep_every: int = SWEEP_ROUNDS,
    ) -> None:
        """No network call happens here."""
        self.instance = instance.rstrip("/")
        self._api = Mastodon(
            access_token=access_token.get_secret_value(),
            api_base_url=self.instance,
            # "wait" (the default) sleeps inside the call; the runner decides instead.
            ratelimit_method="throw",
            request_timeout=timeout,
            session=session,
            user_agent="chatbot (hashtag chats for teachers)",
            # Declared, not probed: the bot needs /api/v2/instance (Mastodon 4.0+),
            # and Mastodon.py 2.3's own probe recurses without end when
            # /api/v1/instance fails. "created" only refuses methods newer than that.
            mastodon_version=ASSUMED_MASTODON_VERSION,
            version_check_mode="created",
        )
        self._max_characters = max_characters
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sleep = sleep
        # Mastodon.py keeps rate-limit state on the client: one call at a time.
        self._lock = threading.RLock()
        self._limits: Limits | None = None
        self._limits_failed_at: datetime | None = None
        self._me: Any = None
        self._domain: str | None = None
        # One pacer per account for every request, posting ahead of reading; paging
        # requests (max_id/min_id/since_id) also count against their own limit.
        self._pacer = Pacer(*REQUEST_LIMIT, sleep=sleep, wall=self._clock)
        self._paging = Pacer(*PAGING_LIMIT, sleep=sleep, wall=self._clock)
        self._indexable_opts_out = indexable_opts_out
        self._rounds = Rounds(sweep_every)
        self._extras = [
            ExtraInstance(
                url=url.rstrip("/"),
                api=Mastodon(
                    api_base_url=url.rstrip("/"),  # public timelines: no token
                    ratelimit_method="throw",
                    request_timeout=timeout,
                    session=session,
                    user_agent="chatbot (hashtag chats for teachers)",
                    mastodon_version=ASSUMED_MASTODON_VERSION,
                    version_check_mode="created",
                ),
                pacer=Pacer(*REQUEST_LIMIT, sleep=sleep, wall=self._clock),
            )
            for url in extra_instances
        ]
        self._remote_accounts: dict[str, str] = {}  # user@domain -> account id on our instance

    # --- the Protocol ---------------------------------------------------------------------

    def limits(self) -> Limits:
        """The instance's ``configuration.statuses.max_characters`` (the config's value wins)."""
        if self._max_characters:
            return Limits(mastodon_max_characters=self._max_characters)
        if self._limits is not None:
            return self._limits
        now = self._clock()
        if self._limits_failed_at is not None and now - self._limits_failed_at < LIMITS_RETRY:
            return Limits()
        try:
            instance = self._call("reading the instance's limits", self._api.instance_v2)
            value = int(instance["configuration"]["statuses"]["max_characters"])
        except (errors.NetworkError, KeyError, TypeError, ValueError) as exc:
            self._limits_failed_at = now
            log.warning(
                "mastodon limits unreadable",
                instance=self.instance,
                default=MASTODON_DEFAULT_MAX_CHARACTERS,
                error=str(exc),
            )
            return Limits()
        self._limits = Limits(mastodon_max_characters=value)
        return self._limits

    def post(self, request: PostRequest) -> PostRef:
        if (
            request.first_attempt_at is not None
            and self._clock() - request.first_attempt_at > IDEMPOTENCY_TRUST
        ):
            # The server may have forgotten the key by now: look before posting again.
            found = self.find(request)
            if found is not None:
                log.info("mastodon post found from an earlier attempt", id=found.id)
                return found
        media_ids = [self._upload(attachment) for attachment in request.attachments]
        status = self._call(
            "posting",
            lambda: self._api.status_post(
                request.text,
                in_reply_to_id=request.parent.id if request.parent else None,
                media_ids=media_ids or None,
                visibility=request.visibility.value,
                idempotency_key=request.idempotency_key,
            ),
        )
        return self._ref(status)

    def find(self, request: PostRequest) -> PostRef | None:
        me = self._account()
        parent = request.parent.id if request.parent else None
        wanted = comparable(request.text)
        oldest = request.first_attempt_at - FIND_SKEW if request.first_attempt_at else None
        page: Any = self._call(
            "reading the bot's statuses",
            lambda: self._api.account_statuses(
                me["id"], limit=FIND_PAGE_SIZE, exclude_reblogs=True
            ),
        )
        for _ in range(FIND_MAX_PAGES):
            if not page:
                return None
            for status in page:
                if _same_post(status, parent, wanted):
                    return self._ref(status)
                if oldest is not None and _older_than(status, oldest):
                    return None  # older than the first attempt: cannot be ours
            page = self._next_page(page)
        return None

    def close(self) -> None:
        self._api.session.close()
        for extra in self._extras:
            extra.api.session.close()

    # --- reading: the Reader Protocol -----------------------------------------------------

    def collect(self, thread: ChatThread, cursors: dict[str, str]) -> Collected:
        """The chat's posts new or changed since ``cursors``; errors raise before any cursor moves.

        Cursors: ``tag`` (newest status id read under the hashtag), ``mentions``
        (newest notification id), ``threads`` and ``tagged`` (the statuses seen
        in the chat's threads and under its hashtag, id -> uri, to notice
        deletions), ``tag@<host>`` per extra instance.
        """
        bot_ids = {ref.id for ref in thread.bot_posts}
        if not bot_ids:
            return Collected()
        tag = thread.hashtag.removeprefix("#")
        sweep = self._rounds.next_is_sweep(thread.chat_id)
        me = str(self._account(posting=False)["id"])
        domain = self._local_domain()
        statuses: dict[str, Any] = {}  # id -> status, everything worth returning this round

        def keep(status: Any) -> bool:
            sid = str(status["id"])
            if not _readable(status) or sid in bot_ids or str(status["account"]["id"]) == me:
                return False
            statuses[sid] = status
            return True

        # 1. The hashtag timeline: forward from the cursor; a sweep starts again
        # from the chat's first post (ids above it), which shows edits, deletions
        # and remote posts that arrived with ids older than the cursor.
        floor = min(bot_ids, key=id_order)
        tag_cursor = cursors.get("tag") or floor
        tagged, newest_tag = self._forward(
            f"reading #{tag}",
            lambda min_id: self._api.timeline_hashtag(tag, min_id=min_id, limit=PAGE_SIZE),
            floor if sweep else tag_cursor,
        )
        tag_now = {str(s["id"]): str(s["uri"]) for s in tagged if keep(s)}

        # 2. Mentions (and, on Mastodon 4.5+, quotes) of the bot during the chat.
        notes, newest_note = self._mentions(cursors.get("mentions"), thread.since)
        for note in notes:
            status = note.get("status")
            created = as_utc(status.get("created_at")) if status else None
            if status and created is not None and created >= thread.since:
                keep(status)

        # 3. The replies under the bot's posts, at any depth, with or without the
        # hashtag. Read every round: edits and deletions show there.
        thread_now: dict[str, str] = {}
        covered: set[str] = set()
        for ref in sorted(thread.bot_posts, key=lambda r: id_order(r.id)):
            if ref.id in covered:
                continue
            try:
                context = self._call(
                    "reading the replies to the chat",
                    partial(self._api.status_context, ref.id),
                    posting=False,
                    gone_ok=True,
                )
            except _Gone:
                continue  # the bot's post itself is gone
            descendants = list(context.get("descendants") or [])
            if len(descendants) < CONTEXT_DESCENDANTS:
                covered.update(str(d["id"]) for d in descendants)
            thread_now.update({str(d["id"]): str(d["uri"]) for d in descendants if keep(d)})

        # 4. What was seen before and is not there now: deleted (404), or only out
        # of sight (its parent was deleted, its hashtag edited away): returned as it is.
        known_threads = remembered(cursors, "threads")
        known_tagged = remembered(cursors, "tagged")
        vanished = {i: u for i, u in known_threads.items() if i not in thread_now}
        if sweep:
            vanished.update({i: u for i, u in known_tagged.items() if i not in tag_now})
        deleted: dict[str, str] = {}
        for sid, uri in vanished.items():
            if sid in statuses:
                continue
            try:
                status = self._call(
                    "checking a post that left the chat",
                    partial(self._api.status, sid),
                    posting=False,
                    gone_ok=True,
                )
            except _Gone:
                deleted[sid] = uri
                continue
            keep(status)
        tagged_after = tag_now if sweep else {**known_tagged, **tag_now}
        tagged_after = {i: u for i, u in tagged_after.items() if i not in deleted}

        posts = self._seen(statuses.values(), domain)
        new_cursors = {
            "tag": max(newest_tag, tag_cursor, key=id_order),
            "threads": remember(thread_now),
            "tagged": remember(tagged_after),
        }
        if newest_note is not None:
            new_cursors["mentions"] = newest_note

        # 5. Other instances' public hashtag timelines, for posts ours never saw.
        extra_posts, extra_cursors = self._read_extras(thread, tag, cursors, posts, me)
        new_cursors.update(extra_cursors)
        return Collected(
            posts=tuple(posts + extra_posts),
            deleted=tuple(deleted.values()),
            cursors=new_cursors,
        )

    def _seen(self, statuses: Iterable[Any], domain: str) -> list[SeenPost]:
        posts = []
        for status in statuses:
            try:
                posts.append(
                    seen_status(status, domain=domain, indexable_opts_out=self._indexable_opts_out)
                )
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("mastodon status unreadable", id=status.get("id"), error=str(exc))
        return posts

    def _forward(
        self, what: str, fetch: Callable[[str], Any], start: str, *, read: Any = None
    ) -> tuple[list[Any], str]:
        """Every item with an id above ``start``, oldest pages first; (items, newest id).

        With ``min_id`` Mastodon answers the page just above it, so advancing
        ``min_id`` to the newest id of each page leaves no gap and reads nothing
        twice. A short page is not trusted to be the last: only an empty one is.
        """
        call = read or self._call
        items: list[Any] = []
        newest = start
        for _ in range(MAX_PAGES):
            page = call(what, partial(fetch, newest), posting=False, paging=True)
            if not page:
                break
            items.extend(page)
            newest = _newest(page, newest) or newest
        else:
            log.warning("mastodon: more pages than one round reads", what=what, pages=MAX_PAGES)
        return items, newest

    def _mentions(self, cursor: str | None, since: datetime) -> tuple[list[Any], str | None]:
        """Mention notifications after ``cursor``; the first time, back to the chat's start."""

        def fetch(**page: Any) -> Any:
            return self._api.notifications(types=list(NOTIFICATION_TYPES), limit=PAGE_SIZE, **page)

        if cursor:
            return self._forward("reading mentions", lambda min_id: fetch(min_id=min_id), cursor)
        items: list[Any] = []
        newest: str | None = None
        max_id: str | None = None
        for _ in range(MAX_PAGES):
            page = self._call(
                "reading mentions",
                partial(fetch, max_id=max_id) if max_id else fetch,
                posting=False,
                paging=max_id is not None,
            )
            if not page:
                break
            items.extend(page)
            newest = newest or _newest(page, None)
            times = [as_utc(n.get("created_at")) for n in page]
            if any(t is not None and t < since for t in times):
                break
            max_id = min((str(n["id"]) for n in page), key=id_order)
        return items, newest

    def _local_domain(self) -> str:
        """The domain in our accounts' handles (LOCAL_DOMAIN, which may differ from the host)."""
        if self._domain is None:
            info = self._call("reading the instance", self._api.instance_v2, posting=False)
            self._domain = str(info.get("domain") or "") or urlsplit(self.instance).netloc
        return self._domain

    # --- reading: other instances ---------------------------------------------------------

    def _read_extras(
        self,
        thread: ChatThread,
        tag: str,
        cursors: dict[str, str],
        ours: list[SeenPost],
        me: str,
    ) -> tuple[list[SeenPost], dict[str, str]]:
        """Posts under the hashtag on other instances that ours does not hold (by uri).

        Their ids mean nothing on our instance: such a post gets its uri as id,
        its author our instance's id for the account (resolved once), and a
        ``reply_to`` only when the parent is among the posts known by uri.
        """
        if not self._extras:
            return [], {}
        local_by_uri = {p.uri: p.id for p in ours}
        posts: dict[str, SeenPost] = {}
        new_cursors: dict[str, str] = {}
        for extra in self._extras:
            key = f"tag@{extra.host}"
            found, cursor = self._extra_timeline(extra, tag, cursors.get(key), thread)
            if cursor is not None:
                new_cursors[key] = cursor
            uri_by_remote_id = {str(s["id"]): str(s["uri"]) for s in found}
            for status in found:
                uri = str(status.get("uri") or "")
                created = as_utc(status.get("created_at"))
                if (
                    not uri
                    or uri in local_by_uri
                    or uri in posts
                    or not _readable(status)
                    or created is None
                    or created < thread.since
                ):
                    continue
                try:
                    seen = seen_status(
                        status,
                        domain=extra.host,
                        indexable_opts_out=self._indexable_opts_out,
                    )
                except (KeyError, TypeError, ValueError) as exc:
                    log.warning("mastodon remote status unreadable", uri=uri, error=str(exc))
                    continue
                author_id = self._remote_account_id(seen.author.handle)
                if author_id == me:
                    continue
                parent_uri = uri_by_remote_id.get(seen.reply_to or "")
                quoted = status.get("quote") or {}
                quoted_uri = str((quoted.get("quoted_status") or {}).get("uri") or "")
                posts[uri] = SeenPost(
                    **{
                        **seen.__dict__,
                        "id": uri,
                        "author": Author(**{**seen.author.__dict__, "id": author_id}),
                        "reply_to": (
                            local_by_uri.get(parent_uri, parent_uri) if parent_uri else None
                        ),
                        "quote_of": local_by_uri.get(quoted_uri) if quoted_uri else None,
                    }
                )
        return list(posts.values()), new_cursors

    def _extra_timeline(
        self, extra: ExtraInstance, tag: str, cursor: str | None, thread: ChatThread
    ) -> tuple[list[Any], str | None]:
        """One instance's public #tag timeline after ``cursor`` (the first time: since the chat)."""
        what = f"reading #{tag} on {extra.host}"

        def call(label: str, fetch: Callable[[], T], **_kind: Any) -> T:
            pace([extra.pacer], posting=False, what=label, now=self._clock())
            try:
                return fetch()
            except MastodonError as exc:
                problem = translate(
                    exc, label, ratelimit_reset=extra.api.ratelimit_reset, now=self._clock()
                )
                if isinstance(problem, errors.RateLimited):
                    extra.pacer.block_until(problem.retry_at)
                raise problem from exc

        def fetch(**page: Any) -> Any:
            return extra.api.timeline_hashtag(tag, limit=PAGE_SIZE, **page)

        if cursor:
            return self._forward(what, lambda min_id: fetch(min_id=min_id), cursor, read=call)
        items: list[Any] = []
        newest: str | None = None
        max_id: str | None = None
        for _ in range(MAX_PAGES):
            page = call(what, partial(fetch, max_id=max_id) if max_id else fetch)
            if not page:
                break
            items.extend(page)
            newest = newest or _newest(page, None)
            times = [as_utc(s.get("created_at")) for s in page]
            if any(t is not None and t < thread.since for t in times):
                break
            max_id = min((str(s["id"]) for s in page), key=id_order)
        return items, newest

    def _remote_account_id(self, handle: str) -> str:
        """Our instance's id for a remote account (one search, remembered); else the handle."""
        if handle not in self._remote_accounts:
            found = self._call(
                f"looking up @{handle}",
                partial(self._api.account_search, handle, limit=1, resolve=True),
                posting=False,
            )
            domain = self._local_domain()
            match = [
                a
                for a in found
                if full_handle(str(a.get("acct") or ""), domain).lower() == handle.lower()
            ]
            self._remote_accounts[handle] = str(match[0]["id"]) if match else f"acct:{handle}"
        return self._remote_accounts[handle]

    # --- for `chatbot check` --------------------------------------------------------------

    def account(self) -> Account:
        """The bot's account id, handle and bot flag."""
        me = self._account(refresh=True)
        acct = str(me["acct"])
        if "@" not in acct:
            acct = f"{acct}@{urlsplit(self.instance).netloc}"
        return Account(
            network=self.name,
            id=str(me["id"]),
            handle=f"@{acct}",
            is_bot=bool(me.get("bot")),
            details={"url": str(me.get("url") or ""), "instance": self.instance},
        )

    def hashtag_feed(self, tag: str, limit: int = 10) -> int:
        """How many recent posts the instance's #tag timeline shows (raises if unreadable)."""
        page = self._call(
            f"reading #{tag}",
            lambda: self._api.timeline_hashtag(tag.removeprefix("#"), limit=limit),
        )
        return len(page)

    # --- internals ------------------------------------------------------------------------

    def _account(self, *, refresh: bool = False, posting: bool = True) -> Any:
        if self._me is None or refresh:
            self._me = self._call(
                "checking the access token",
                self._api.account_verify_credentials,
                posting=posting,
            )
        return self._me

    def _upload(self, attachment: Attachment) -> Any:
        mime, _encoding = mimetypes.guess_type(attachment.path.name)
        try:
            # Opened here (not by path) so the file is closed whatever happens.
            with attachment.path.open("rb") as data:
                media = self._call(
                    "uploading an image",
                    lambda: self._api.media_post(
                        data,
                        mime_type=mime,
                        description=attachment.alt,
                        file_name=attachment.path.name,
                    ),
                )
        except OSError as exc:
            raise errors.Rejected(f"cannot read the image {attachment.path}: {exc}") from exc
        # /api/v2/media may answer before the image is processed (url still null);
        # a status cannot attach it until it is. Wait a little, bounded.
        polls = round(MEDIA_WAIT / MEDIA_POLL)
        while media.get("url") is None:
            if polls <= 0:
                raise errors.Transient("uploading an image: Mastodon is still processing it")
            polls -= 1
            self._sleep(MEDIA_POLL)
            media = self._media(media)
        return media

    def _next_page(self, page: Any) -> Any:
        return self._call("reading the bot's statuses", lambda: self._api.fetch_next(page))

    def _media(self, media: Any) -> Any:
        return self._call("uploading an image", lambda: self._api.media(media))

    def _ref(self, status: Any) -> PostRef:
        return PostRef(
            network=self.name,
            id=str(status["id"]),
            url=str(status.get("url") or status.get("uri") or ""),
        )

    def _call(
        self,
        what: str,
        call: Callable[[], T],
        *,
        posting: bool = True,
        paging: bool = False,
        gone_ok: bool = False,
    ) -> T:
        """One request: paced (outside the lock, so a waiting read never holds up a post),
        its errors translated; a 429 stops every request until its reset."""
        pace(
            [self._paging, self._pacer] if paging else [self._pacer],
            posting=posting,
            what=what,
            now=self._clock(),
        )
        with self._lock:
            try:
                return call()
            except MastodonError as exc:
                if gone_ok and status_code(exc) in (404, 410):
                    raise _Gone from exc
                problem = translate(
                    exc, what, ratelimit_reset=self._api.ratelimit_reset, now=self._clock()
                )
                if isinstance(problem, errors.RateLimited):
                    self._pacer.block_until(problem.retry_at)
                raise problem from exc


class _Gone(Exception):
    """The status asked for is not there (404): deleted, or never visible to us."""
