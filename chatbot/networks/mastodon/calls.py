"""A Mastodon.py client and its requests: built without a network call, paced, errors read.

Every request of the adapter, posting or reading, goes through
:meth:`Client.__call__`, which is the shared :class:`~chatbot.networks.calls.Caller`
with what is Mastodon's: a second pacer for paging requests, and the reading
of Mastodon.py's exceptions (the HTTP status in ``args``, the reset time that
Mastodon.py keeps on the client).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
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

from chatbot.networks.calls import Caller, Failure
from chatbot.networks.mastodon import connections
from chatbot.networks.pacing import Pacer

T = TypeVar("T")

# Seconds per HTTP request: the runner finishes the call in flight on SIGTERM
# and must be done within 10 s.
REQUEST_TIMEOUT = 7.0
# The oldest Mastodon the bot supports (the first with /api/v2/instance).
ASSUMED_MASTODON_VERSION = "4.0.0"
USER_AGENT = "chatbot (hashtag chats for teachers)"
# Rate limits (docs.joinmastodon.org/api/rate-limits): 300 requests per 5 minutes
# per account; requests with max_id/min_id/since_id also count as paging, 300
# per 15 minutes. Unauthenticated reads of other instances: 300 per 5 minutes per IP.
REQUEST_LIMIT = (300, 300.0)
PAGING_LIMIT = (300, 900.0)
AUTH_HINT = "the access token was refused: create a new one with read and write scopes"


def status_code(exc: MastodonError) -> int | None:
    """The HTTP status of a Mastodon.py API error (its second argument), if it has one."""
    if len(exc.args) > 1 and isinstance(exc.args[1], int):
        return exc.args[1]
    return None


def read_failure(
    exc: MastodonError, now: datetime, *, ratelimit_reset: float | None, server: str = "Mastodon"
) -> Failure:
    """What a Mastodon.py error says; ``ratelimit_reset``: the client's, in epoch seconds;
    ``server``: who answered, for messages (the host: it may not be Mastodon)."""
    status = status_code(exc)
    reason = exc.args[3] if len(exc.args) > 3 and exc.args[3] else ""
    detail = f"{server} answered {status or 'an error'}{': ' if reason else ''}{reason}"
    refused_locally = isinstance(exc, MastodonIllegalArgumentError | MastodonIOError)
    if isinstance(exc, MastodonNetworkError):
        detail = f"could not reach {server} ({exc})"
    elif refused_locally:
        detail = str(exc)
    elif status is None and isinstance(exc, MastodonAPIError):
        # A 2xx whose body could not be read: the post may exist. The retry carries the
        # key, and looks for the post first where the key may be ignored.
        detail = f"unexpected answer from {server} ({exc.args[0]})"
    elif status is None:
        detail = f"{type(exc).__name__}: {exc}"
    # Mastodon.py reads X-RateLimit-Reset (ISO 8601), corrected for the server's
    # clock, into ratelimit_reset (epoch seconds).
    retry_at = None
    if ratelimit_reset is not None and ratelimit_reset > now.timestamp():
        retry_at = datetime.fromtimestamp(ratelimit_reset, UTC)
    return Failure(
        network=server,
        detail=detail,
        status=status,
        rate_limited=isinstance(exc, MastodonRatelimitError),
        retry_at=retry_at,
        unreachable=isinstance(exc, MastodonNetworkError),
        auth=isinstance(exc, MastodonUnauthorizedError),
        transient=isinstance(exc, MastodonServerError),
        refused=isinstance(exc, MastodonNotFoundError) or refused_locally,
        hint=AUTH_HINT,
    )


class SdkClient(Mastodon):
    """Mastodon.py's client, without its probe of the timeline's availability.

    Before every ``timeline()`` read (the hashtag's among them) Mastodon.py asks
    ``/api/v2/instance`` whether the timeline is open, and caches only a success:
    a server without v2 (snac) is asked on every read, and the answer only
    decides a warning. The bot reads the timeline and handles a refusal itself.
    """

    def timeline_is_available(self, *_args: Any, **_kwargs: Any) -> bool:
        return True


def gone(failure: Failure) -> bool:
    """The status asked for is not there (404, 410): deleted, or never visible to us."""
    return failure.status in (404, 410)


class Client:
    """One Mastodon.py client (one instance, one token or none) and the pacing of its requests."""

    def __init__(
        self,
        url: str,
        *,
        access_token: SecretStr | None,
        clock: Callable[[], datetime],
        timeout: float = REQUEST_TIMEOUT,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        paging: bool = True,
    ) -> None:
        """No network call happens here. ``paging``: count paging requests against their limit.

        Without ``session`` the client makes its own, through
        :class:`~chatbot.networks.mastodon.connections.Connections`.
        """
        self.url = url.rstrip("/")
        self._own_session = session is None
        self.session = session if session is not None else connections.session()
        self.api = SdkClient(
            access_token=access_token.get_secret_value() if access_token else None,
            api_base_url=self.url,
            # "wait" (the default) sleeps inside the call; the runner decides instead.
            ratelimit_method="throw",
            request_timeout=timeout,
            session=self.session,
            user_agent=USER_AGENT,
            # Declared, not probed: the bot needs /api/v2/instance (Mastodon 4.0+),
            # and Mastodon.py 2.3's own probe recurses without end when
            # /api/v1/instance fails. "created" only refuses methods newer than that.
            mastodon_version=ASSUMED_MASTODON_VERSION,
            version_check_mode="created",
        )
        # One pacer for every request of the account, posting ahead of reading; paging
        # requests (max_id/min_id/since_id) also count against their own limit.
        self._paging = Pacer(*PAGING_LIMIT, sleep=sleep, wall=clock) if paging else None
        # Requests sent through this client so far (a collection round's cost is the
        # difference; posting meanwhile only makes it look dearer).
        self.requests = 0
        self.calls = Caller(
            sdk_error=MastodonError,
            read=lambda exc, now: read_failure(
                exc, now, ratelimit_reset=self.api.ratelimit_reset, server=self.host
            ),
            pacer=Pacer(*REQUEST_LIMIT, sleep=sleep, wall=clock),
            clock=clock,
            # Mastodon.py keeps rate-limit state on the client: one call at a time.
            lock=threading.RLock(),
            network="mastodon",
            sleep=sleep,
        )

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc or self.url

    def __call__(
        self,
        what: str,
        call: Callable[[], T],
        *,
        posting: bool = True,
        paging: bool = False,
        expect: Callable[[Failure], bool] | None = None,
    ) -> T:
        """One request through the shared Caller; ``paging``: it carries max_id/min_id/since_id."""
        also = [self._paging] if paging and self._paging is not None else []
        self.requests += 1
        return self.calls(what, call, posting=posting, also=also, expect=expect)

    def keep_alive(self, value: bool) -> None:
        """Whether idle connections are kept for the next request (a server that closes them
        after each answer: False). Only the client's own session is changed."""
        adapter = connections.connections_of(self.session) if self._own_session else None
        if adapter is not None:
            adapter.keep_alive = value

    def close(self) -> None:
        self.session.close()
