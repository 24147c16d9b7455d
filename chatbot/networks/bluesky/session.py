"""The atproto client, kept signed in: the session stored, resumed, and renewed when it dies.

``createSession`` is limited to 30 per 5 minutes and 100-300 a day per account
(then a lock-out of about a day), so the session is stored in
``<data_dir>/sessions/bluesky-<handle>.session`` (mode 0600) whenever it is
created or refreshed, and resumed at the next start; the app password is used
only when there is no stored session or the server rejects it. Never loop on
it: a refused password is not tried again, and a session made here is not
replaced by another, for :data:`LOGIN_COOLDOWN`.

Every request of the adapter goes through :meth:`Client.__call__`: signed in,
then the shared :class:`~chatbot.networks.calls.Caller` (paced, posting ahead
of reading, record writes also within their points), which logs in anew once
when the session died mid-run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import structlog
from atproto_client import Client as AtprotoClient
from atproto_client.client.session import Session, SessionEvent
from atproto_client.exceptions import AtProtocolError
from atproto_client.request import Request
from pydantic import SecretStr

from chatbot import errors
from chatbot.networks.bluesky.calls import (
    CREATE_POINTS,
    REQUEST_LIMIT,
    SESSION_ERRORS,
    WRITE_POINTS,
    already_there,
    not_found,
    read_failure,
    says_nothing_about_the_request,
)
from chatbot.networks.calls import Caller, Expected, Failure
from chatbot.networks.pacing import Pacer

log = structlog.get_logger("chatbot.networks.bluesky")
T = TypeVar("T")

# Seconds during which a refused password is not tried again, and a session
# created here is not replaced by another.
LOGIN_COOLDOWN = 300.0


class Client:
    """The bot's atproto client: signed in on first use, every request paced and classified."""

    def __init__(
        self,
        service: str,
        request: Request,
        *,
        handle: str,
        app_password: SecretStr,
        session_dir: Path,
        clock: Callable[[], datetime],
    ) -> None:
        """No network call happens here. ``request``: the SDK's HTTP side (timeout, transport)."""
        self.handle = handle
        self._password = app_password
        self._session_dir = session_dir
        self.sdk = AtprotoClient(base_url=service, request=request)
        self.sdk.on_session_change(self._on_session_change)
        # Who is signed in, as the last session change said (the SDK keeps its
        # session private): (did, handle).
        self._who: tuple[str, str] | None = None
        self._session_lock = threading.Lock()
        self._signed_in = False
        self.logins = 0  # sessions created (password logins) by this process
        self._login_at: float | None = None  # time.monotonic() of the last login here
        self._login_refused: tuple[float, errors.NetworkError] | None = None
        # One pacer per account for every request, posting ahead of reading, and
        # one for record writes, which are limited by points (a create costs 3).
        self._writes = Pacer(WRITE_POINTS[0] // CREATE_POINTS, WRITE_POINTS[1], wall=clock)
        self._caller = Caller(
            sdk_error=AtProtocolError,
            read=read_failure,
            pacer=Pacer(*REQUEST_LIMIT, wall=clock),
            clock=clock,
            network="bluesky",
        )

    def __call__(
        self,
        what: str,
        call: Callable[[], T],
        *,
        posting: bool = True,
        write: bool = False,
        expect: Callable[[Failure], bool] | None = None,
    ) -> T:
        """Run an SDK call signed in and paced, translate its errors, log in anew once if the
        session died. ``write``: a record write, within the points too."""
        self.sign_in()
        return self._caller(
            what,
            call,
            posting=posting,
            also=[self._writes] if write else [],
            expect=expect,
            renew=self._renew,
        )

    def did(self) -> str:
        """The DID of the account signed in (signing in first if need be)."""
        self.sign_in()
        if self._who is None:
            raise errors.AuthFailed("not signed in to Bluesky")
        return self._who[0]

    def own_record(self, what: str, collection: str, rkey: str) -> Any | None:
        """The record at ``rkey`` in the account's own repo; None if there is none."""
        did = self.did()
        get_record = self.sdk.com.atproto.repo.get_record
        try:
            return self(
                what,
                lambda: get_record({"repo": did, "collection": collection, "rkey": rkey}),
                expect=not_found,
            )
        except Expected:
            return None

    def create_record(
        self, what: str, collection: str, rkey: str, record: dict[str, Any]
    ) -> Any | None:
        """Create ``record`` at ``rkey`` in the account's repo, only if no record is there:
        the response, or None if one already is (InvalidSwap). A retry of a write whose
        answer was lost therefore never writes twice."""
        body = {
            "repo": self.did(),
            "collection": collection,
            "rkey": rkey,
            "record": record,
            # Explicit null, not absent: "only if there is no record yet". The
            # SDK's models drop None fields, so the JSON is written here.
            "swapRecord": None,
        }
        content = json.dumps(body).encode()
        try:
            return self(
                what,
                lambda: self.sdk.invoke_procedure(
                    "com.atproto.repo.putRecord",
                    content=content,
                    headers={"Content-Type": "application/json"},
                ),
                write=True,
                expect=already_there,
            )
        except Expected:
            return None

    def signed_in_handle(self) -> str:
        """The handle of the account signed in, as the server says; else the configured one."""
        return self._who[1] if self._who is not None else self.handle

    @property
    def session_file(self) -> Path:
        safe = re.sub(r"[^a-z0-9._-]", "_", self.handle)
        return self._session_dir / f"bluesky-{safe}.session"

    def close(self) -> None:
        self.sdk.request.close()

    # --- signing in -----------------------------------------------------------------------

    def sign_in(self, *, force_new: bool = False) -> None:
        """Resume the stored session, or log in with the app password if there is none."""
        with self._session_lock:
            if self._signed_in and not force_new:
                return
            stored = None if force_new else self._read_session()
            if stored is not None and self._resume(stored):
                self._signed_in = True
                log.info("bluesky session resumed", handle=self.handle)
                return
            self._password_login()

    def _resume(self, stored: str) -> bool:
        """Whether the server still takes the stored session; raises if it cannot tell."""
        what = "resuming the Bluesky session"
        try:
            self._caller.pace(what, posting=True)
            self.sdk.login(session_string=stored, fetch_bsky_profile=False)
            # Ask the server: this also refreshes an access token near expiry.
            self._caller.pace(what, posting=True)
            self.sdk.com.atproto.server.get_session()
        except ValueError as exc:  # not a session string
            log.info(
                "bluesky stored session rejected", handle=self.handle, error=type(exc).__name__
            )
            return False
        except AtProtocolError as exc:
            failure = self._caller.read(exc)
            if says_nothing_about_the_request(failure):
                # Not a verdict on the session: keep it, try again later.
                raise self._caller.translate(exc, what) from exc
            error = failure.error or type(exc).__name__
            log.info("bluesky stored session rejected", handle=self.handle, error=error)
            return False
        return True

    def _password_login(self) -> None:
        now = time.monotonic()
        if self._login_refused is not None and now - self._login_refused[0] < LOGIN_COOLDOWN:
            refused = self._login_refused[1]
            raise errors.AuthFailed(f"{refused} (not tried again yet)", status=refused.status)
        what = f"logging in to Bluesky as {self.handle}"
        self._caller.pace(what, posting=True)
        try:
            self.sdk.login(self.handle, self._password.get_secret_value(), fetch_bsky_profile=False)
        except AtProtocolError as exc:
            problem = self._caller.translate(exc, what)
            if isinstance(problem, errors.AuthFailed):
                self._login_refused = (now, problem)
            raise problem from exc
        self._login_refused = None
        self._login_at = now
        self.logins += 1
        self._signed_in = True
        log.info("bluesky login (new session)", handle=self.handle)

    def _renew(self, failure: Failure) -> bool:
        """A session that died mid-run: log in anew (True), unless it was made moments ago."""
        fresh = self._login_at is not None and time.monotonic() - self._login_at < LOGIN_COOLDOWN
        if fresh or not (failure.error in SESSION_ERRORS or failure.status == 401):
            return False
        log.info("bluesky session expired", handle=self.handle, error=failure.error)
        self.sign_in(force_new=True)
        return True

    def _read_session(self) -> str | None:
        try:
            text = self.session_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read the stored bluesky session", error=exc.strerror)
            return None
        return text or None

    def _on_session_change(self, event: SessionEvent, session: Session) -> None:
        self._who = (session.did, session.handle)
        if event is SessionEvent.IMPORT:
            return  # it came from the file
        write_private(self.session_file, session.export())


def write_private(path: Path, text: str) -> None:
    """Write a secret file readable by this user only (folder 0700, file 0600), atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        path.parent.chmod(0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file was left over with other bits
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)
