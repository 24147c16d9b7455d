"""The bot's Mastodon account behind the Network and Reader Protocols, put together."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import structlog
from pydantic import SecretStr

from chatbot import errors
from chatbot.networks.base import Account, ChatThread, Collected, PostRequest
from chatbot.networks.mastodon.calls import REQUEST_TIMEOUT, Client
from chatbot.networks.mastodon.others import OtherInstances
from chatbot.networks.mastodon.reading import MastodonSources
from chatbot.networks.mastodon.statuses import Statuses
from chatbot.networks.reading import SWEEP_ROUNDS, CollectionRound
from chatbot.posts import PostRef
from chatbot.script import NetworkName
from chatbot.text import MASTODON_DEFAULT_MAX_CHARACTERS, Limits

log = structlog.get_logger("chatbot.networks.mastodon")

# When the instance's limits cannot be read, ask again after this long.
LIMITS_RETRY = timedelta(minutes=5)


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
        indexable_opts_out: bool = False,
        extra_instances: Sequence[str] = (),
        sweep_every: int = SWEEP_ROUNDS,
    ) -> None:
        """No network call happens here."""
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
        self._max_characters = max_characters
        self._limits: Limits | None = None
        self._limits_failed_at: datetime | None = None
        self._me: Any = None
        self._domain: str | None = None
        self._statuses = Statuses(
            self._client, account=self._account, clock=self._clock, sleep=sleep
        )
        self._sources = MastodonSources(
            self._client,
            account=lambda: self._account(posting=False),
            domain=self._local_domain,
            indexable_opts_out=indexable_opts_out,
        )
        self._round = CollectionRound(self._sources, sweep_every=sweep_every)
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
            instance = self._client("reading the instance's limits", self._client.api.instance_v2)
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
        return self._statuses.post(request)

    def find(self, request: PostRequest) -> PostRef | None:
        return self._statuses.find(request)

    def close(self) -> None:
        self._client.close()
        self._others.close()

    # --- reading: the Reader Protocol -----------------------------------------------------

    def collect(self, thread: ChatThread, cursors: dict[str, str]) -> Collected:
        """The chat's posts new or changed since ``cursors``; errors raise before any cursor moves.

        Cursors: ``tag`` (newest status id read under the hashtag), ``mentions``
        (newest notification id), ``threads`` and ``tagged`` (the statuses seen
        in the chat's threads and under its hashtag, id -> uri, to notice
        deletions), ``tag@<host>`` per extra instance.
        """
        collected = self._round(thread, cursors)
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
        )

    # --- for `chatbot check` --------------------------------------------------------------

    def account(self) -> Account:
        """The bot's account id, handle and bot flag."""
        me = self._account(refresh=True)
        acct = str(me["acct"])
        if "@" not in acct:
            acct = f"{acct}@{self._client.host}"
        return Account(
            network=self.name,
            id=str(me["id"]),
            handle=f"@{acct}",
            is_bot=bool(me.get("bot")),
            details={"url": str(me.get("url") or ""), "instance": self.instance},
        )

    def hashtag_feed(self, tag: str, limit: int = 10) -> int:
        """How many recent posts the instance's #tag timeline shows (raises if unreadable)."""
        api = self._client.api
        page = self._client(
            f"reading #{tag}", lambda: api.timeline_hashtag(tag.removeprefix("#"), limit=limit)
        )
        return len(page)

    # --- internals ------------------------------------------------------------------------

    def _account(self, *, refresh: bool = False, posting: bool = True) -> Any:
        """The bot's account (verify_credentials), read once."""
        if self._me is None or refresh:
            self._me = self._client(
                "checking the access token",
                self._client.api.account_verify_credentials,
                posting=posting,
            )
        return self._me

    def _local_domain(self) -> str:
        """The domain in our accounts' handles (LOCAL_DOMAIN, which may differ from the host)."""
        if self._domain is None:
            info = self._client("reading the instance", self._client.api.instance_v2, posting=False)
            self._domain = str(info.get("domain") or "") or self._client.host
        return self._domain
