"""The bot's account on a Mastodon-API server behind the Network and Reader Protocols, put
together."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import requests
import structlog
from pydantic import SecretStr

from chatbot import errors
from chatbot.networks.base import (
    Account,
    Arrived,
    ChatThread,
    Collected,
    PostRequest,
    ServerFacts,
    ThreadCheck,
)
from chatbot.networks.mastodon.calls import (
    ASSUMED_MASTODON_VERSION,
    AUTH_HINT,
    REQUEST_LIMIT,
    REQUEST_TIMEOUT,
    USER_AGENT,
    Client,
    SdkClient,
)
from chatbot.networks.mastodon.interactions import Interactions
from chatbot.networks.mastodon.others import OtherInstances
from chatbot.networks.mastodon.server import ReadOnce, Server, Software
from chatbot.networks.mastodon.sources import NOTIFICATION_TYPES, MastodonSources
from chatbot.networks.mastodon.statuses import Statuses, status_ref
from chatbot.networks.mastodon.stream import QUIET, NoStream, Opener, Streams
from chatbot.networks.reading import SWEEP_ROUNDS, CollectionRound
from chatbot.posts import PostRef
from chatbot.script import NetworkName
from chatbot.text import MASTODON_DEFAULT_MAX_CHARACTERS, Limits

log = structlog.get_logger("chatbot.networks.mastodon")

# The share of the account's request limit that rounds woken by a stream may spend; the
# rest is for posting, polling rounds and the account's other clients.
STREAM_READ_SHARE = 0.5


class MastodonNetwork:
    """The bot's account on a Mastodon-API server (Mastodon, its forks, GoToSocial,
    Akkoma/Pleroma, snac), behind the :class:`~chatbot.networks.base.Network` Protocol."""

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
        indexable_opts_out: bool = False,
        extra_instances: Sequence[str] = (),
        sweep_every: int = SWEEP_ROUNDS,
        streaming: bool = True,
    ) -> None:
        """No network call happens here. ``streaming``: wake collection by the server's
        streams where it has them (see :mod:`~chatbot.networks.mastodon.stream`)."""
        self.instance = instance.rstrip("/")
        self._clock = clock or (lambda: datetime.now(UTC))
        self._client = Client(
            self.instance,
            access_token=access_token,
            clock=self._clock,
            timeout=timeout,
            session=session,
            sleep=sleep,
        )
        self._server = Server(self._client, clock=self._clock, on_software=self._met)
        self._max_characters = max_characters
        self._limits = ReadOnce(
            self._read_limits, default=Limits(), clock=self._clock, what="mastodon limits"
        )
        self._me: Any = None
        self._statuses = Statuses(
            self._client,
            server=self._server,
            account=self._account,
            clock=self._clock,
            sleep=sleep,
        )
        self._sources = MastodonSources(
            self._client,
            server=self._server,
            account=lambda: self._account(posting=False),
            domain=self._local_domain,
            indexable_opts_out=indexable_opts_out,
        )
        self._round = CollectionRound(self._sources, sweep_every=sweep_every)
        self._interactions = Interactions(self._client, domain=self._local_domain)
        self._others = OtherInstances(
            extra_instances,
            ours=self._client,
            domain=self._local_domain,
            clock=self._clock,
            timeout=timeout,
            session=session,
            sleep=sleep,
            indexable_opts_out=indexable_opts_out,
        )
        self._access_token = access_token
        self._timeout = timeout
        self._stream_api: SdkClient | None = None
        self._streams = Streams(self._open_hashtag, self._open_user) if streaming else None
        self._round_cost = 1  # requests the last collection round sent to this server

    # --- the Protocol ---------------------------------------------------------------------

    def limits(self) -> Limits:
        """The instance's length limit (the config's value wins; 500 if the instance says none)."""
        if self._max_characters:
            return Limits(mastodon_max_characters=self._max_characters)
        return self._limits(instance=self.instance, default=str(MASTODON_DEFAULT_MAX_CHARACTERS))

    def post(self, request: PostRequest) -> PostRef:
        return self._statuses.post(request)

    def find(self, request: PostRequest) -> PostRef | None:
        return self._statuses.find(request)

    def close(self) -> None:
        if self._streams is not None:
            self._streams.close()
        self._client.close()
        self._others.close()

    # --- streams: the Listening Protocol --------------------------------------------------

    def listen(self, chat_id: str, hashtag: str, arrived: Arrived) -> None:
        """Keep the chat's hashtag stream and the bot's user stream open (no-op without)."""
        if self._streams is not None:
            streamed = self._sources.streamed
            self._streams.listen(chat_id, hashtag, lambda c, carried: arrived(c, streamed(carried)))

    def unlisten(self, chat_id: str) -> None:
        if self._streams is not None:
            self._streams.unlisten(chat_id)

    def live(self, chat_id: str) -> bool:
        return self._streams is not None and self._streams.live(chat_id)

    def woken_gap(self) -> timedelta:
        """The last round's requests at :data:`STREAM_READ_SHARE` of the account's rate: a
        stream in a busy chat wakes a round at most this often (3 requests: every 6 s)."""
        limit, period = REQUEST_LIMIT
        return timedelta(seconds=self._round_cost * period / (limit * STREAM_READ_SHARE))

    def _stream_client(self, *, check: bool = False) -> SdkClient:
        """A client of its own for the streams: a stream holds its connection for hours.
        ``check``: raise NoStream on a server known to have no streaming (in the stream's
        thread: reading the software may take a request)."""
        if check and not self._server.traits().streams:
            raise NoStream(f"{self._server.software()} has no streaming API")
        if self._stream_api is None:
            self._stream_api = SdkClient(
                access_token=self._access_token.get_secret_value(),
                api_base_url=self.instance,
                request_timeout=self._timeout,
                session=requests.Session(),
                user_agent=USER_AGENT,
                mastodon_version=ASSUMED_MASTODON_VERSION,
                version_check_mode="created",
            )
        return self._stream_api

    def _open_hashtag(self, tag: str) -> Opener:
        # Since Mastodon 4.2 the hashtag stream needs a user token (read:statuses).
        def opener(listener: Any) -> None:
            self._stream_client(check=True).stream_hashtag(
                tag, listener, run_async=False, timeout=QUIET
            )

        return opener

    def _open_user(self, listener: Any) -> None:
        self._stream_client(check=True).stream_user(listener, run_async=False, timeout=QUIET)

    # --- reading: the Reader Protocol -----------------------------------------------------

    def collect(self, thread: ChatThread, cursors: dict[str, str]) -> Collected:
        """The chat's posts new or changed since ``cursors``; errors raise before any cursor moves.

        Cursors: ``tag`` and ``mentions`` on Mastodon (the newest ids read),
        ``tag_time`` and ``mentions_time`` elsewhere (the newest creation times
        read); ``threads`` and ``tagged`` (the statuses seen in the chat's threads
        and under its hashtag, id -> uri, to notice deletions); ``to_bot`` (the
        mentions handed over last round, so none is handed over twice);
        ``tag@<host>`` per extra instance. ``to_bot`` holds the mentions, direct
        statuses included (which never reach ``posts``).
        """
        before = self._client.requests
        try:
            collected = self._round(thread, cursors)
        finally:
            self._round_cost = max(1, self._client.requests - before)
        if not thread.bot_posts or not self._others:
            return collected
        # Other instances' public hashtag timelines, for posts ours never saw.
        more, more_cursors = self._others.read(
            thread, cursors, collected.posts, me=self._sources.me()
        )
        return Collected(
            posts=collected.posts + tuple(more),
            deleted=collected.deleted,
            cursors={**collected.cursors, **more_cursors},
            to_bot=collected.to_bot,
        )

    # --- likes and identities: the Interacting Protocol -----------------------------------

    def like(self, post: PostRef) -> PostRef:
        """Favourite ``post``; idempotent (see :mod:`~chatbot.networks.mastodon.interactions`)."""
        return self._interactions.like(post)

    def resolve(self, handle: str) -> str | None:
        """The account id on the bot's instance of ``@user@domain``, exactly; None if none."""
        return self._interactions.resolve(handle)

    # --- for `chatbot check` --------------------------------------------------------------

    def account(self) -> Account:
        """The bot's account id, handle (with the instance's domain) and bot flag."""
        me = self._account(refresh=True)
        acct = str(me["acct"])
        if "@" not in acct:
            acct = f"{acct}@{self._local_domain()}"
        return Account(
            network=self.name,
            id=str(me["id"]),
            handle=f"@{acct}",
            is_bot=bool(me.get("bot")),
            details={"url": str(me.get("url") or ""), "instance": self.instance},
        )

    def server(self) -> ServerFacts:
        """The software, domain and limit, and where each was read (raises if the instance
        cannot be read at all)."""
        software = self._server.software()
        instance = self._server.instance()
        domain, domain_source = self._server.domain()
        if self._max_characters:
            limit, limit_source = self._max_characters, "the config's max_characters"
        elif instance.max_characters is not None:
            limit, limit_source = instance.max_characters, instance.endpoint
        else:
            limit, limit_source = MASTODON_DEFAULT_MAX_CHARACTERS, ""
        return ServerFacts(
            software=str(software),
            kind=software.name,
            software_source=software.source,
            domain=domain,
            domain_source=domain_source,
            max_characters=limit,
            limit_source=limit_source,
            visibility_changes=tuple(software.traits.visibility_changes.items()),
        )

    def hashtag_feed(self, tag: str, limit: int = 10) -> int:
        """How many recent posts the instance's #tag timeline shows (raises if unreadable)."""
        api = self._client.api
        page = self._client(
            f"reading #{tag}", lambda: api.timeline_hashtag(tag.removeprefix("#"), limit=limit)
        )
        return len(page)

    def notifications_feed(self, limit: int = 10) -> int:
        """How many recent mention notifications there are (raises if unreadable)."""
        notes = self._client(
            "reading notifications",
            partial(self._client.api.notifications, types=list(NOTIFICATION_TYPES), limit=limit),
        )
        # snac ignores types[]: count only what a chat reads.
        return sum(1 for note in notes if note.get("type") in NOTIFICATION_TYPES)

    def thread_replies(self) -> ThreadCheck | None:
        """The replies in the context of the bot's newest status; None if it has none."""
        me = self._account(posting=False)
        api = self._client.api
        recent = self._client(
            "reading the bot's statuses",
            partial(api.account_statuses, me["id"], limit=1, exclude_reblogs=True),
        )
        if not recent:
            return None
        ref = status_ref(recent[0])
        replies = self._sources.replies(ref)
        if replies is None:
            raise errors.Rejected(f"reading the replies to {ref.url}: the status is gone")
        return ThreadCheck(ref.url, len(replies.items))

    # --- internals ------------------------------------------------------------------------

    def _account(self, *, refresh: bool = False, posting: bool = True) -> Any:
        """The bot's account (verify_credentials), read once."""
        if self._me is None or refresh:
            try:
                self._me = self._client(
                    "checking the access token",
                    self._client.api.account_verify_credentials,
                    posting=posting,
                )
            except errors.Rejected as exc:
                if exc.status != 422:
                    raise
                # snac answers 422, not 401, for a token it does not know (mastoapi.c: "no login").
                raise errors.AuthFailed(f"{exc} ({AUTH_HINT})", status=422) from exc
        return self._me

    def _local_domain(self) -> str:
        """The domain in local accounts' handles (LOCAL_DOMAIN, which may differ from the host):
        the instance's answer, else the configured address."""
        return self._server.domain()[0]

    def _read_limits(self) -> Limits:
        value = self._server.instance().max_characters
        if value is None:
            log.warning(
                "the instance names no length limit",
                instance=self.instance,
                default=MASTODON_DEFAULT_MAX_CHARACTERS,
            )
        return Limits(mastodon_max_characters=value or MASTODON_DEFAULT_MAX_CHARACTERS)

    def _met(self, software: Software) -> None:
        """What to change once the server's software is known."""
        if software.traits.closes_connections:
            self._client.keep_alive(False)
