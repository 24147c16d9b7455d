"""The shared shape of a network call: one order of classifying failures, one way to send.

The adapters' own tests hold each SDK's errors end to end; these hold the
order every network shares, on failures as an adapter reads them, and the
Caller around a stand-in SDK that raises its own exception.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chatbot import errors
from chatbot.networks.calls import Caller, Expected, Failure, classify, observe_requests
from chatbot.networks.pacing import Pacer

NOW = datetime(2027, 3, 4, 19, 0, tzinfo=UTC)


def _failure(**facts: Any) -> Failure:
    return Failure(network="Example", detail="the server said no", **facts)


# --- classify -------------------------------------------------------------------------------


def test_a_rate_limit_comes_first_and_waits_for_the_servers_reset() -> None:
    """A 429 is RateLimited at the reset, whatever else the failure says."""
    reset = NOW + timedelta(minutes=4)
    problem = classify(_failure(status=429, auth=True, retry_at=reset), "posting", NOW)
    assert isinstance(problem, errors.RateLimited)
    assert (problem.retry_at, problem.status) == (reset, 429)
    assert str(problem) == "posting: Example rate limit until 19:04:00 UTC"


def test_a_rate_limit_without_a_reset_waits_a_minute() -> None:
    """The SDK's rate-limit error with no usable reset: a minute from now."""
    problem = classify(_failure(rate_limited=True), "reading", NOW)
    assert isinstance(problem, errors.RateLimited)
    assert problem.retry_at == NOW + timedelta(seconds=60)


def test_no_answer_is_transient_without_a_status() -> None:
    """A refused connection or a timeout is worth retrying later."""
    problem = classify(_failure(unreachable=True, transient=True), "posting", NOW)
    assert type(problem) is errors.Transient
    assert problem.status is None
    assert str(problem) == "posting: the server said no"


@pytest.mark.parametrize("facts", [{"status": 401}, {"status": 403}, {"status": 400, "auth": True}])
def test_refused_credentials_are_auth_failed_with_the_fix(facts: dict[str, Any]) -> None:
    """401, 403 or the SDK's word for it: AuthFailed, before any 4xx or 5xx rule, with the hint."""
    problem = classify(_failure(hint="make a new token", transient=True, **facts), "posting", NOW)
    assert type(problem) is errors.AuthFailed
    assert problem.status == facts["status"]
    assert str(problem) == "posting: the server said no (make a new token)"


@pytest.mark.parametrize("facts", [{"status": 502}, {"status": 409, "transient": True}])
def test_server_trouble_is_transient_with_its_status(facts: dict[str, Any]) -> None:
    """A 5xx, or what the SDK files as worth retrying, is retried with the same key."""
    problem = classify(_failure(**facts), "posting", NOW)
    assert type(problem) is errors.Transient
    assert problem.status == facts["status"]


@pytest.mark.parametrize("facts", [{"status": 422}, {"refused": True}])
def test_a_refused_request_is_rejected(facts: dict[str, Any]) -> None:
    """Another 4xx, or the SDK's own refusal, will not get better by retrying."""
    problem = classify(_failure(**facts), "posting", NOW)
    assert type(problem) is errors.Rejected
    assert problem.status == facts.get("status")


def test_anything_else_is_transient() -> None:
    """An answer whose body could not be read: the post may exist; a retry with the key is safe."""
    problem = classify(_failure(status=200), "posting", NOW)
    assert type(problem) is errors.Transient


# --- the Caller ---------------------------------------------------------------------------


class SdkError(Exception):
    """A stand-in SDK's exception, carrying an HTTP status and an error name."""

    def __init__(self, status: int, error: str = "", reset: datetime | None = None) -> None:
        super().__init__(f"{status} {error}")
        self.status, self.error, self.reset = status, error, reset


def _read(exc: SdkError, now: datetime) -> Failure:
    return Failure(
        network="Example", detail=str(exc), status=exc.status, error=exc.error, retry_at=exc.reset
    )


def _caller(slept: list[float] | None = None) -> Caller[SdkError]:
    pacer = Pacer(100, 60.0, sleep=lambda _s: None, wall=lambda: NOW)
    return Caller(
        sdk_error=SdkError,
        read=_read,
        pacer=pacer,
        clock=lambda: NOW,
        network="example",
        sleep=(slept if slept is not None else []).append,
    )


def _fails(*raised: SdkError) -> Callable[[], str]:
    queue = list(raised)

    def call() -> str:
        if queue:
            raise queue.pop(0)
        return "answer"

    return call


def test_a_call_answers_and_a_failure_is_raised_from_the_sdks() -> None:
    """Success returns the SDK's answer; a failure raises ours with the SDK's as its cause."""
    caller = _caller()
    assert caller("reading", _fails()) == "answer"
    with pytest.raises(errors.Rejected) as raised:
        caller("posting", _fails(SdkError(422, "Invalid")))
    assert isinstance(raised.value.__cause__, SdkError)


def test_after_a_429_the_pacer_holds_every_request_until_the_reset() -> None:
    """The next request, posting or reading, is refused by the pacer and never sent."""
    caller = _caller()
    reset = NOW + timedelta(minutes=2)
    with pytest.raises(errors.RateLimited):
        caller("reading", _fails(SdkError(429, reset=reset)))
    sent: list[str] = []
    with pytest.raises(errors.RateLimited, match="pacing") as raised:
        caller("posting", lambda: sent.append("sent"))
    assert raised.value.retry_at >= reset
    assert sent == []


def test_a_read_that_fails_on_the_way_is_sent_again_twice_after_short_waits() -> None:
    """A round is all or nothing: one 502 among its dozen reads would cost all of them."""
    slept: list[float] = []
    caller = _caller(slept)
    assert caller("reading", _fails(SdkError(502), SdkError(503)), posting=False) == "answer"
    assert slept == [0.25, 0.5]
    with pytest.raises(errors.Transient):
        caller("reading", _fails(SdkError(502), SdkError(502), SdkError(502)), posting=False)


def test_a_post_or_a_refused_read_is_never_sent_again_by_the_caller() -> None:
    """A post is sent again only by the runner, after it looked for the first attempt; a
    4xx read would be refused again; a 429 waits for its reset."""
    caller = _caller()
    sent: list[str] = []

    def fails_once() -> str:
        sent.append("sent")
        if len(sent) == 1:
            raise SdkError(502)
        return "answer"

    with pytest.raises(errors.Transient):
        caller("posting", fails_once)
    with pytest.raises(errors.Rejected):
        caller("reading", _fails(SdkError(404)), posting=False)
    with pytest.raises(errors.RateLimited):
        caller("reading", _fails(SdkError(429, reset=NOW + timedelta(minutes=1))), posting=False)
    assert sent == ["sent"]


def test_an_expected_failure_is_handed_back_as_it_was_read() -> None:
    """A failure the caller asked for (not there, key taken) is Expected, not classified."""
    with pytest.raises(Expected) as raised:
        _caller()("reading a post", _fails(SdkError(400, "NotFound")), expect=lambda f: True)
    assert raised.value.failure.error == "NotFound"


def test_a_renewed_session_gets_one_more_try_and_only_one() -> None:
    """After renew() fixed what was wrong the call is sent again, once; then it fails as it is."""
    renewals: list[str] = []

    def renew(failure: Failure) -> bool:
        renewals.append(failure.error)
        return True

    caller = _caller()
    assert caller("posting", _fails(SdkError(400, "ExpiredToken")), renew=renew) == "answer"
    expired = [SdkError(400, "ExpiredToken"), SdkError(400, "ExpiredToken")]
    with pytest.raises(errors.Rejected):
        caller("posting", _fails(*expired), renew=renew)
    assert renewals == ["ExpiredToken", "ExpiredToken"]


def test_every_request_is_told_to_the_observers_with_its_outcome() -> None:
    """The metrics count each request sent: by network, post or read, and outcome."""
    told: list[tuple[str, str, str]] = []
    stop = observe_requests(lambda *request: told.append(request))
    try:
        caller = _caller()
        caller("reading", _fails(), posting=False)
        with pytest.raises(Expected):
            caller("reading a post", _fails(SdkError(404)), posting=False, expect=lambda f: True)
        with pytest.raises(errors.Rejected):
            caller("posting", _fails(SdkError(422)))
        with pytest.raises(errors.RateLimited):
            caller("posting", _fails(SdkError(429, reset=NOW + timedelta(minutes=1))))
        with pytest.raises(errors.RateLimited):
            caller("posting", _fails())  # held by the pacer: never sent, never counted
    finally:
        stop()
    _caller()("reading", _fails(), posting=False)  # after stop(): not told
    assert told == [
        ("example", "read", "ok"),
        ("example", "read", "expected"),
        ("example", "post", "error"),
        ("example", "post", "rate_limited"),
    ]
