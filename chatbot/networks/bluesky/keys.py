"""Record keys for exactly-once posting: a TID from the step's planned time and its key.

A post is written at a record key of our choosing (``putRecord`` with
``swapRecord: null``, see :mod:`chatbot.networks.bluesky.records`), so the key
must be the same at every attempt of a step and differ between steps. It must
also be a valid TID: the SDK validates TIDs but does not generate them.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

# TIDs (atproto.com/specs/tid): 64 bits, top bit 0, then 53 bits of microseconds
# since the Unix epoch and a 10-bit clock id, written as 13 characters of
# base32-sortable, so that keys sort by time.
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
TID_LENGTH = 13
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def tid_from(micros: int, clock_id: int) -> str:
    """The TID for a timestamp (microseconds since the epoch) and a clock id (0..1023)."""
    if not 0 <= micros < 1 << 53:
        raise ValueError("a TID timestamp is 0 <= microseconds < 2**53")
    if not 0 <= clock_id < 1 << 10:
        raise ValueError("a TID clock id is 0 <= clock_id < 1024")
    value = (micros << 10) | clock_id
    chars = []
    for _ in range(TID_LENGTH):
        chars.append(TID_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def tid_parts(tid: str) -> tuple[int, int]:
    """(microseconds, clock id) of a TID: the inverse of :func:`tid_from`."""
    value = 0
    for char in tid:
        value = value * 32 + TID_ALPHABET.index(char)
    return value >> 10, value & 0x3FF


def record_key(created_at: datetime, idempotency_key: str, candidate: int = 0) -> str:
    """The deterministic record key of a post: its planned time plus a clock id from its key.

    Two steps planned for the same microsecond still differ by clock id (from a
    hash of the idempotency key); ``candidate`` > 0 moves the time by that many
    microseconds for the rare case of a clash.
    """
    if created_at.tzinfo is None:
        raise ValueError("record_key needs an aware datetime")
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    clock_id = int.from_bytes(hashlib.sha256(idempotency_key.encode()).digest()[:2], "big") & 0x3FF
    return tid_from(micros + candidate, clock_id)
