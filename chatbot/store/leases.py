"""Leases: for each chat, exactly one replica acts, and a replica that lost its lease is fenced.

Any number of ``chatbot run`` processes may share one database. A replica acts
for a chat only while it holds the chat's lease (a row with the holder, a
fencing token and an expiry), renewing it while it works. When the holder dies,
the lease expires and another replica takes it, with a new token. Every write
of a post's intent or result names the token it was made under
(:class:`Fence`), and is refused once the token has changed: a replica that was
paused or cut off cannot post, or record a post, for a chat it no longer holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from chatbot.errors import ChatbotError
from chatbot.store.repository import Repository, upsert
from chatbot.store.schema import accounts_table, leases_table, replicas_table


class LeaseLost(ChatbotError):
    """A write was refused: another replica holds the chat's lease now."""


@dataclass(frozen=True)
class Fence:
    """The lease a write is made under: the chat, its holder and the token it holds."""

    chat_id: str
    holder: str
    token: int

    def holds(self) -> sa.ColumnElement[bool]:
        """SQL: the lease is still this one (for a write's WHERE clause)."""
        c = leases_table.c
        return sa.exists().where(
            c.chat_id == self.chat_id, c.holder == self.holder, c.token == self.token
        )


@dataclass(frozen=True)
class LeaseRow:
    chat_id: str
    holder: str
    token: int
    acquired_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class ReplicaRow:
    holder: str
    started_at: datetime
    beat_at: datetime
    stopped_at: datetime | None
    lost_lease_at: datetime | None
    lost_chat: str | None


@dataclass(frozen=True)
class AccountRow:
    network: str
    last_ok_at: datetime | None
    auth_failed_at: datetime | None
    error: str


class Leases(Repository):
    """Reads and writes of the leases, the replicas' heartbeats and the accounts' health."""

    def acquire(
        self,
        chat_id: str,
        holder: str,
        *,
        now: datetime,
        ttl: timedelta,
        gone: Callable[[str], bool] = lambda _holder: False,
    ) -> Fence | LeaseRow:
        """Take or renew the chat's lease: a :class:`Fence` if ``holder`` now holds it,
        else the lease another replica holds (and until when).

        A lease is taken over when it has expired, or at once when ``gone`` says its
        holder is known to be dead (a process of this machine that no longer runs).
        """
        c = leases_table.c
        with self._tx() as conn:
            query = sa.select(leases_table).where(c.chat_id == chat_id)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:
                token = 1
                conn.execute(
                    leases_table.insert().values(
                        chat_id=chat_id,
                        holder=holder,
                        token=token,
                        acquired_at=now,
                        expires_at=now + ttl,
                    )
                )
                return Fence(chat_id, holder, token)
            if row.holder == holder:
                conn.execute(
                    leases_table.update()
                    .where(c.chat_id == chat_id, c.token == row.token)
                    .values(expires_at=now + ttl)
                )
                return Fence(chat_id, holder, row.token)
            if row.expires_at > now and not gone(row.holder):
                return _lease(row)
            # Taken over: a new token, so the old holder's writes are refused from now on.
            taken = conn.execute(
                leases_table.update()
                .where(c.chat_id == chat_id, c.token == row.token)
                .values(holder=holder, token=row.token + 1, acquired_at=now, expires_at=now + ttl)
            ).rowcount
            if not taken:  # another replica took it in the same instant
                latest = conn.execute(sa.select(leases_table).where(c.chat_id == chat_id)).one()
                return _lease(latest)
            conn.execute(
                replicas_table.update()
                .where(replicas_table.c.holder == row.holder)
                .values(lost_lease_at=now, lost_chat=chat_id)
            )
            return Fence(chat_id, holder, row.token + 1)

    def release(self, holder: str, *, now: datetime) -> None:
        """A replica stopping cleanly: its leases expire now, so another takes over at once."""
        with self._tx() as conn:
            conn.execute(
                leases_table.update()
                .where(leases_table.c.holder == holder, leases_table.c.expires_at > now)
                .values(expires_at=now)
            )

    def holds(self, fence: Fence) -> bool:
        with self._tx() as conn:
            return bool(conn.execute(sa.select(fence.holds())).scalar())

    def of_chats(self) -> list[LeaseRow]:
        with self._tx() as conn:
            return [_lease(r) for r in conn.execute(sa.select(leases_table))]

    # --- replicas -------------------------------------------------------------------------

    def beat(self, holder: str, *, now: datetime, started_at: datetime) -> None:
        """The replica is alive and its scheduler runs."""
        with self._tx() as conn:
            upsert(
                conn,
                replicas_table,
                {"holder": holder},
                {"beat_at": now},
                on_insert={"started_at": started_at},
            )

    def stopped(self, holder: str, *, now: datetime) -> None:
        with self._tx() as conn:
            conn.execute(
                replicas_table.update()
                .where(replicas_table.c.holder == holder)
                .values(stopped_at=now)
            )

    def replicas(self) -> list[ReplicaRow]:
        with self._tx() as conn:
            return [
                ReplicaRow(
                    r.holder, r.started_at, r.beat_at, r.stopped_at, r.lost_lease_at, r.lost_chat
                )
                for r in conn.execute(
                    sa.select(replicas_table).order_by(replicas_table.c.beat_at.desc())
                )
            ]

    def probe(self, *, now: datetime) -> None:
        """A write that changes nothing, to prove the store takes writes (``chatbot health``)."""
        with self._tx() as conn:
            conn.execute(
                replicas_table.update().where(replicas_table.c.holder == "").values(beat_at=now)
            )

    # --- accounts -------------------------------------------------------------------------

    def account_ok(self, network: str, *, now: datetime) -> None:
        self._account(network, {"last_ok_at": now, "auth_failed_at": None, "error": ""})

    def account_refused(self, network: str, error: str, *, now: datetime) -> None:
        self._account(network, {"auth_failed_at": now, "error": error})

    def accounts(self) -> list[AccountRow]:
        with self._tx() as conn:
            return [
                AccountRow(r.network, r.last_ok_at, r.auth_failed_at, r.error)
                for r in conn.execute(sa.select(accounts_table))
            ]

    def _account(self, network: str, values: dict[str, Any]) -> None:
        # Replicas share the account: two may record its first call at once.
        self._racing(lambda conn: upsert(conn, accounts_table, {"network": network}, values))


def _lease(row: sa.Row[Any]) -> LeaseRow:
    return LeaseRow(row.chat_id, row.holder, row.token, row.acquired_at, row.expires_at)
