"""What an atproto error says: read for the shared classification (:mod:`chatbot.networks.calls`).

The SDK raises by status (401/403 UnauthorizedError, 400 BadRequestError, 429
RateLimitExceededError, 409/413/502 NetworkError, else RequestException) and
puts the XRPC error name in the response; a transport failure is a
NetworkError without a response. A rate limit carries ``reset_at`` (from
``RateLimit-Reset``) or ``retry_after``, and the SDK does not retry it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
from atproto_client.exceptions import (
    AtProtocolError,
    InvokeTimeoutError,
    LoginRequiredError,
    ModelError,
    NetworkError,
    RateLimitExceededError,
    RequestErrorBase,
    UnauthorizedError,
)
from atproto_client.models.common import XrpcError
from atproto_client.request import Request, Response

from chatbot import errors
from chatbot.networks.calls import Failure, classify

# Seconds per HTTP request: the runner finishes the call in flight on SIGTERM
# and must be done within 10 s.
REQUEST_TIMEOUT = 7.0
# Rate limits (docs.bsky.app/docs/advanced-guides/rate-limits): 3,000 requests
# per 5 minutes per IP; record writes 5,000 points an hour, a create costs 3.
REQUEST_LIMIT = (3000, 300.0)
WRITE_POINTS = (5000, 3600.0)
CREATE_POINTS = 3
# Errors that mean the stored session is no longer good: log in again.
SESSION_ERRORS = frozenset({"ExpiredToken", "InvalidToken", "AuthMissing"})
AUTH_ERRORS = SESSION_ERRORS | {
    "AuthenticationRequired",
    "AccountTakedown",
    "AccountDeactivated",
    "AuthFactorTokenRequired",
}


def xrpc_error(exc: BaseException) -> tuple[int | None, str, str]:
    """(HTTP status, XRPC error name, message) of an SDK error, as far as it has them."""
    response = exc.response if isinstance(exc, RequestErrorBase) else None
    if response is None:
        return None, "", ""
    content = response.content
    if isinstance(content, XrpcError):
        return response.status_code, content.error or "", content.message or ""
    if isinstance(content, dict):
        return response.status_code, str(content.get("error", "")), str(content.get("message", ""))
    return response.status_code, "", ""


def read_failure(exc: AtProtocolError, now: datetime) -> Failure:
    """What an atproto error says."""
    status, error, message = xrpc_error(exc)
    detail = f"{status or ''} {error}{': ' if message else ''}{message}".strip()
    unreachable = isinstance(exc, NetworkError) and status is None
    if isinstance(exc, InvokeTimeoutError):
        detail = "Bluesky did not answer in time"
    elif unreachable:
        detail = f"could not reach Bluesky ({exc.__cause__ or exc})"
    elif isinstance(exc, ModelError):
        detail = f"unexpected answer from Bluesky ({exc})"
    elif not detail:
        detail = "not signed in" if isinstance(exc, LoginRequiredError) else type(exc).__name__
    retry_at = None
    if isinstance(exc, RateLimitExceededError):
        retry_at = exc.reset_at
        if retry_at is None and exc.retry_after is not None:
            retry_at = now + timedelta(seconds=exc.retry_after)
    return Failure(
        network="Bluesky",
        detail=detail,
        status=status,
        error=error,
        rate_limited=isinstance(exc, RateLimitExceededError),
        retry_at=retry_at,
        unreachable=unreachable,
        auth=isinstance(exc, UnauthorizedError | LoginRequiredError) or error in AUTH_ERRORS,
        # The SDK files 409, 413 and 502 as NetworkError, worth retrying; but a
        # payload too large (413) stays too large: refused.
        transient=isinstance(exc, NetworkError) and status != 413,
    )


def translate(exc: AtProtocolError, what: str, now: datetime | None = None) -> errors.NetworkError:
    """An SDK error as one of ours: rate limit, auth, rejected, or worth retrying."""
    now = now or datetime.now(UTC)
    return classify(read_failure(exc, now), what, now)


def already_there(failure: Failure) -> bool:
    """putRecord with swapRecord null found a record at the key."""
    return failure.error == "InvalidSwap"


def not_found(failure: Failure) -> bool:
    """getRecord found no record at the key; getPostThread no post at the uri."""
    return failure.error in ("RecordNotFound", "NotFound")


def says_nothing_about_the_request(failure: Failure) -> bool:
    """No answer, a 5xx or a 429: not a verdict on what was sent (a session, say)."""
    status = failure.status
    return failure.unreachable or (status is not None and (status == 429 or status >= 500))


class SdkRequest(Request):  # type: ignore[misc]  # the SDK's module is not followed
    """The SDK's HTTP side, raising only the SDK's own errors.

    The SDK turns httpx's timeouts and network errors into its own, but not a connection
    closed before the whole answer came (``httpx.RemoteProtocolError``) nor an answer whose
    JSON cannot be read (a ``ValueError``): those escaped every ``except AtProtocolError``
    and failed the job that made the call (the fault suite found them). Here they become
    the SDK's NetworkError and ModelError, read as transient like any unreadable answer.
    """

    def _send_request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response: httpx.Response = super()._send_request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise NetworkError() from exc
        return response

    def get(self, *args: Any, **kwargs: Any) -> Response:
        return _readable(lambda: super(SdkRequest, self).get(*args, **kwargs))

    def post(self, *args: Any, **kwargs: Any) -> Response:
        return _readable(lambda: super(SdkRequest, self).post(*args, **kwargs))


def _readable(call: Any) -> Response:
    try:
        return cast(Response, call())
    except ValueError as exc:
        raise ModelError(f"the answer could not be read: {exc}") from exc
