"""Which Mastodon-API server the bot talks to, and what it serves: read once, then trusted.

Districts run Mastodon and its forks, GoToSocial, Akkoma/Pleroma and snac; they
speak the same client API with differences. The adapter works with what each
server serves instead of assuming Mastodon:

- the software: nodeinfo's ``software.name`` and ``version`` (``/.well-known/nodeinfo``,
  schema 2.0 or 2.1), else the instance's ``version`` string (snac says
  "4.0.0 (not true; really snac/2.75)", Pleroma and Akkoma "2.7.2 (compatible; Akkoma 3.13.2)");
- the instance: ``/api/v2/instance`` (Mastodon 4.0+), else ``/api/v1/instance``
  (snac serves only v1); the domain in local handles from its answer (v2
  ``domain``; v1 ``domain`` or ``uri``), else the configured address; the length
  limit from ``configuration.statuses.max_characters``, or v1's ``max_toot_chars``
  (Pleroma, Akkoma) or ``max_characters``;
- :class:`Traits`, what the software is known to do. An unknown server gets the
  careful defaults: ids are opaque strings, the Idempotency-Key may be ignored,
  a context may list only direct replies.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import structlog

from chatbot import errors
from chatbot.networks.calls import Expected, Failure
from chatbot.networks.mastodon.calls import Client

log = structlog.get_logger("chatbot.networks.mastodon")
T = TypeVar("T")

V2 = "/api/v2/instance"
V1 = "/api/v1/instance"
NODEINFO_SCHEMAS = (
    "http://nodeinfo.diaspora.software/ns/schema/2.0",
    "http://nodeinfo.diaspora.software/ns/schema/2.1",
)
# A server that does not serve an endpoint answers one of these.
NOT_SERVED = frozenset({404, 405, 410, 501})
# When the software could not be read (no answer at all), ask again after this long.
RETRY_AFTER = timedelta(minutes=5)

# snac: "4.0.0 (not true; really snac/2.75)" (mastoapi.c); Pleroma and Akkoma:
# "2.7.2 (compatible; Pleroma 2.6.1)".
_REALLY = re.compile(r"really ([A-Za-z][\w.-]*)/([^\s)]+)")
_COMPATIBLE = re.compile(r"compatible; ([A-Za-z][\w.-]*) ([^\s)]+)")


@dataclass(frozen=True)
class Traits:
    """What a server's software is known to do; the defaults are safe on any server."""

    # Ids are numbers that sort in posting order (Mastodon's Snowflake ids), so
    # min_id pages forward and the greatest id is the newest. snac's 42-character
    # ids (second + md5) do not sort within a second; GoToSocial's are ULIDs.
    numeric_ids: bool = False
    # A repeated Idempotency-Key returns the first status, for an hour (Mastodon's
    # PostStatusService keeps the key 3,600 s). snac ignores the header.
    keeps_idempotency_keys: bool = False
    # A context lists the replies at every depth (Mastodon: up to 4,096 for a
    # user token). snac lists only direct replies in the viewer's timeline.
    deep_context: bool = False
    # One request per connection, closed without a Connection: close header (snac).
    closes_connections: bool = False
    # Visibilities the server changes on its own (asked -> given).
    visibility_changes: Mapping[str, str] = field(default_factory=dict)
    # Whether to try the streaming API (snac 2.75 has none: its instance answer sends
    # Mastodon.py to an address that does not serve it).
    streams: bool = True


MASTODON = Traits(numeric_ids=True, keeps_idempotency_keys=True, deep_context=True)
# snac 2.75: tests/integration/test_snac_server.py and tests/servers/README.md.
SNAC = Traits(
    streams=False,
    closes_connections=True,
    visibility_changes={"unlisted": "public", "direct": "private"},
)
KNOWN: dict[str, Traits] = {"mastodon": MASTODON, "hometown": MASTODON, "snac": SNAC}


@dataclass(frozen=True)
class Software:
    """What the server says it runs, and where it said so."""

    name: str = ""  # lower case, as nodeinfo names it ("mastodon", "snac"); "" if unknown
    version: str = ""
    source: str = ""  # "its nodeinfo", "the version string in /api/v1/instance"; "" if unread

    @property
    def traits(self) -> Traits:
        return KNOWN.get(self.name, Traits())

    def __str__(self) -> str:
        if self.name:
            return f"{self.name} {self.version}".strip()
        if self.version:
            return f"a server that gives its version as {self.version!r}"
        return "a server that does not say which software it runs"


@dataclass(frozen=True)
class Instance:
    """The parts of an instance's answer the bot uses."""

    endpoint: str = ""  # V2 or V1; "" when the server serves neither
    domain: str = ""  # "" when the answer names none
    max_characters: int | None = None  # None when the answer gives no limit
    version: str = ""


def software_from_nodeinfo(document: Any) -> Software | None:
    """``software.name`` and ``version`` of a nodeinfo document, if it has a name."""
    software = (document or {}).get("software") or {}
    name = str(software.get("name") or "").strip().lower()
    if not name:
        return None
    return Software(name, str(software.get("version") or "").strip(), "its nodeinfo")


def software_from_version(version: str, endpoint: str) -> Software:
    """The software behind an instance's ``version`` string (which may claim to be Mastodon)."""
    source = f"the version string in {endpoint}"
    for pattern in (_REALLY, _COMPATIBLE):
        found = pattern.search(version)
        if found:
            return Software(found.group(1).lower(), found.group(2), source)
    return Software("", version.strip(), source if version.strip() else "")


def _domain(answer: Mapping[str, Any]) -> str:
    """v2 and snac's v1: ``domain``; Mastodon's v1: ``uri`` (a bare domain; Pleroma's is a URL)."""
    value = str(answer.get("domain") or answer.get("uri") or "").strip()
    if "://" in value:
        value = urlsplit(value).netloc
    return value.strip("/")


def _max_characters(answer: Mapping[str, Any]) -> int | None:
    """The length limit, in the forms servers give it; None if none is given or readable."""
    statuses = ((answer.get("configuration") or {}).get("statuses")) or {}
    for value in (
        statuses.get("max_characters"),
        answer.get("max_toot_chars"),  # Pleroma, Akkoma, glitch-soc's v1
        answer.get("max_characters"),
    ):
        if value is None:
            continue
        try:
            number = int(value)
        except (TypeError, ValueError):
            continue
        if number > 0:
            return number
    return None


def instance_from(answer: Any, endpoint: str) -> Instance:
    """An instance's answer (v1 or v2) as :class:`Instance`."""
    answer = answer if isinstance(answer, Mapping) else {}
    return Instance(
        endpoint=endpoint,
        domain=_domain(answer),
        max_characters=_max_characters(answer),
        version=str(answer.get("version") or ""),
    )


def not_served(failure: Failure) -> bool:
    """The server does not serve the endpoint asked for."""
    return failure.status in NOT_SERVED


class ReadOnce(Generic[T]):
    """A fact read from the server once and kept; while it cannot be read, ``default``, and
    the server is asked again only after ``RETRY_AFTER``."""

    def __init__(
        self, read: Callable[[], T], *, default: T, clock: Callable[[], datetime], what: str
    ) -> None:
        """``what``: the fact's name in the log line of a failed read."""
        self._read = read
        self._default = default
        self._clock = clock
        self._what = what
        self._value: T | None = None
        self._failed_at: datetime | None = None

    def __call__(self, **context: str) -> T:
        """The fact, or ``default`` (``context``: added to the log line of a failure)."""
        if self._value is not None:
            return self._value
        now = self._clock()
        if self._failed_at is not None and now - self._failed_at < RETRY_AFTER:
            return self._default
        try:
            self._value = self._read()
        except errors.NetworkError as exc:
            self._failed_at = now
            log.warning(f"{self._what} unreadable", error=str(exc), **context)
            return self._default
        return self._value


class Server:
    """The server behind a client: its software and its instance, each read once."""

    def __init__(
        self,
        client: Client,
        *,
        clock: Callable[[], datetime],
        on_software: Callable[[Software], None] = lambda _s: None,
    ) -> None:
        """No network call happens here. ``on_software``: called once the software is known."""
        self._client = client
        self._clock = clock
        self._on_software = on_software
        self._software = ReadOnce(
            self._read_software, default=Software(), clock=clock, what="server software"
        )
        self._instance: Instance | None = None

    def software(self) -> Software:
        """What the server runs; an unreadable answer gives Software() (asked again later)."""
        return self._software(url=self._client.url)

    def traits(self) -> Traits:
        """What the software is known to do (the safe defaults until it is known)."""
        return self.software().traits

    def instance(self) -> Instance:
        """The instance's answer, v2 or else v1; Instance() if it serves neither.

        Raises NetworkError when the server could not answer (it is asked again next time).
        """
        if self._instance is None:
            self._instance = self._read_instance()
        return self._instance

    def domain(self) -> tuple[str, str]:
        """The domain in local accounts' handles, and where it came from."""
        instance = self.instance()
        if instance.domain:
            return instance.domain, instance.endpoint
        return self._client.host, "the configured address"

    def _read_software(self) -> Software:
        software = self._nodeinfo()
        if software is None:
            instance = self.instance()
            software = software_from_version(instance.version, instance.endpoint or V1)
        log.info("server", url=self._client.url, software=str(software), source=software.source)
        self._on_software(software)
        return software

    def _read_instance(self) -> Instance:
        api = self._client.api
        for endpoint, call in ((V2, api.instance_v2), (V1, api.instance_v1)):
            try:
                answer = self._client(f"reading {endpoint}", call, posting=False, expect=not_served)
            except Expected:
                continue  # snac serves no /api/v2/instance (404): try v1
            return instance_from(answer, endpoint)
        return Instance()

    def _nodeinfo(self) -> Software | None:
        api = self._client.api
        for schema in NODEINFO_SCHEMAS:
            try:
                document = self._client(
                    "reading the server's nodeinfo",
                    partial(api.instance_nodeinfo, schema=schema),
                    posting=False,
                )
            except (errors.Rejected, errors.AuthFailed):
                continue  # not served, or not this schema
            return software_from_nodeinfo(document)
        return None
