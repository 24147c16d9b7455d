"""The units: each step of a chat on each network, and its way from planned to posted.

Posting is write-ahead: a unit's intent (with its idempotency key) is committed
before the network call and its result after, so a restart knows what *may*
have been posted and asks the network instead of guessing. A unit carries
everything its post needs (text, facets, image, visibility): what the store
says is what is sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Required, TypedDict, Unpack

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from chatbot.kinds import REPLY_KINDS, StepKind, Visibility
from chatbot.posts import PostRef
from chatbot.script import NetworkName
from chatbot.store.leases import Fence, LeaseLost
from chatbot.store.model import Image, PlannedUnit, UnitRow, UnitState
from chatbot.store.repository import Repository
from chatbot.store.schema import UtcDateTime, units_table
from chatbot.text import Facet

# Units decided while the chat runs, not by the script: the recap's posts (composed when
# the recap is due) and replies to people (acknowledgements, welcomes, likes). A new plan
# (a restart, an edited script) neither rewrites nor cancels them.
RUN_TIME_KINDS = frozenset({StepKind.RECAP.value, *REPLY_KINDS})


class When(TypedDict, total=False):
    """When a write of an intent or a result is made, and under which lease."""

    now: Required[datetime]
    fence: Fence | None  # the chat's lease: the write is refused once another holds it


class Units(Repository):
    """Reads and writes of the units table."""

    def plan(self, chat_id: str, units: Sequence[PlannedUnit], *, now: datetime) -> None:
        """Record the planned units; pending ones take the new plan, others keep their history.

        Units the new plan no longer has are cancelled if they have not been posted.
        """
        wanted = {(u.step_key, u.network.value): u for u in units}

        def write(conn: Connection) -> None:
            existing = {
                (r.step_key, r.network): r
                for r in conn.execute(
                    sa.select(units_table).where(units_table.c.chat_id == chat_id)
                )
            }
            for key, unit in wanted.items():
                row = existing.get(key)
                values = {**_plan_values(unit), "updated_at": now}
                if row is None:
                    conn.execute(
                        units_table.insert().values(**_new_values(chat_id, unit), **values)
                    )
                elif row.kind in RUN_TIME_KINDS:
                    continue
                elif row.state in (UnitState.PENDING, UnitState.CANCELLED):
                    conn.execute(
                        units_table.update()
                        .where(_where(chat_id, unit.step_key, unit.network))
                        .values(state=UnitState.PENDING, reason="", **values)
                    )
            for key, row in existing.items():
                if key in wanted or row.state != UnitState.PENDING or row.kind in RUN_TIME_KINDS:
                    continue
                conn.execute(
                    units_table.update()
                    .where(_where(chat_id, row.step_key, NetworkName(row.network)))
                    .values(
                        state=UnitState.CANCELLED, reason="no longer in the script", updated_at=now
                    )
                )

        self._racing(write)

    def add(self, chat_id: str, units: Sequence[PlannedUnit], *, now: datetime) -> None:
        """Units decided at run time (the recap's posts), pending; existing ones are kept."""

        def write(conn: Connection) -> None:
            for unit in units:
                if conn.execute(
                    sa.select(units_table.c.state).where(
                        _where(chat_id, unit.step_key, unit.network)
                    )
                ).first():
                    continue
                conn.execute(
                    units_table.insert().values(
                        **_new_values(chat_id, unit), **_plan_values(unit), updated_at=now
                    )
                )

        self._racing(write)

    def compose(
        self,
        chat_id: str,
        step_key: str,
        network: NetworkName,
        text: str,
        facets: Sequence[Facet],
        *,
        now: datetime,
    ) -> None:
        """Set the text of a unit composed at run time (the recap's first post)."""
        with self._tx() as conn:
            _set(
                conn,
                chat_id,
                step_key,
                network,
                text=text,
                facets=_facets_json(facets),
                updated_at=now,
            )

    def of_chat(self, chat_id: str) -> list[UnitRow]:
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(units_table)
                .where(units_table.c.chat_id == chat_id)
                .order_by(units_table.c.seq, units_table.c.network)
            )
            return [unit_row(r) for r in rows]

    def get(self, chat_id: str, step_key: str, network: NetworkName) -> UnitRow | None:
        with self._tx() as conn:
            row = conn.execute(
                sa.select(units_table).where(_where(chat_id, step_key, network))
            ).first()
        return unit_row(row) if row else None

    def mark_intent(
        self, chat_id: str, step_key: str, network: NetworkName, **when: Unpack[When]
    ) -> None:
        """Write-ahead: the post is about to be sent (committed before the network call).

        ``when``: ``now`` (required) and the ``fence`` of the chat's lease, as for every
        write of an intent or a result.
        """
        now: datetime = when["now"]
        self._write(
            chat_id,
            step_key,
            network,
            when.get("fence"),
            state=UnitState.INTENT,
            intent_at=sa.func.coalesce(units_table.c.intent_at, sa.literal(now, UtcDateTime())),
            attempts=units_table.c.attempts + 1,
            updated_at=now,
        )

    def mark_posted(
        self,
        chat_id: str,
        step_key: str,
        ref: PostRef,
        *,
        now: datetime,
        fence: Fence | None = None,
    ) -> None:
        """The post exists: its reference is recorded."""
        self._write(
            chat_id,
            step_key,
            ref.network,
            fence,
            state=UnitState.POSTED,
            remote_id=ref.id,
            remote_url=ref.url,
            remote_cid=ref.cid,
            posted_at=now,
            retry_at=None,
            reason="",
            updated_at=now,
        )

    def mark_retry(
        self,
        chat_id: str,
        step_key: str,
        network: NetworkName,
        retry_at: datetime,
        reason: str,
        **when: Unpack[When],
    ) -> None:
        """The call failed in a way worth retrying; the intent stays (the post may exist)."""
        values = {"retry_at": retry_at, "reason": reason, "updated_at": when["now"]}
        self._write(chat_id, step_key, network, when.get("fence"), **values)

    def mark_done(
        self,
        chat_id: str,
        step_key: str,
        network: NetworkName,
        state: UnitState,
        reason: str,
        **when: Unpack[When],
    ) -> None:
        """Close a unit without a post: skipped, failed or cancelled, with the reason."""
        values = {"state": state.value, "reason": reason, "retry_at": None}
        self._write(chat_id, step_key, network, when.get("fence"), updated_at=when["now"], **values)

    def _write(
        self,
        chat_id: str,
        step_key: str,
        network: NetworkName,
        fence: Fence | None,
        **values: Any,
    ) -> None:
        """Update one unit's columns; under ``fence``, only while that lease still holds."""
        with self._tx() as conn:
            _set(conn, chat_id, step_key, network, fence=fence, **values)

    def cancel_pending(self, chat_id: str, reason: str, *, now: datetime) -> int:
        with self._tx() as conn:
            return int(
                conn.execute(
                    units_table.update()
                    .where(
                        units_table.c.chat_id == chat_id,
                        units_table.c.state == UnitState.PENDING,
                    )
                    .values(state=UnitState.CANCELLED, reason=reason, updated_at=now)
                ).rowcount
            )

    def recent(self, limit: int = 20) -> list[UnitRow]:
        """The units that moved last (posted, skipped, failed, in flight), newest first."""
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(units_table)
                .where(units_table.c.state != UnitState.PENDING)
                .order_by(units_table.c.updated_at.desc())
                .limit(limit)
            )
            return [unit_row(r) for r in rows]

    def waiting(self, chat_ids: Sequence[str]) -> list[UnitRow]:
        """Units of these chats still to be posted (pending, or sent with no result yet)."""
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(units_table).where(
                    units_table.c.chat_id.in_(list(chat_ids)),
                    units_table.c.state.in_([UnitState.PENDING, UnitState.INTENT]),
                )
            )
            return [unit_row(r) for r in rows]


def _set(
    conn: sa.Connection,
    chat_id: str,
    step_key: str,
    network: NetworkName,
    *,
    fence: Fence | None = None,
    **values: Any,
) -> None:
    """Update one unit's columns; under ``fence``, only while that lease still holds."""
    where = [_where(chat_id, step_key, network)]
    if fence is not None:
        where.append(fence.holds())
    if not conn.execute(units_table.update().where(*where).values(**values)).rowcount and fence:
        raise LeaseLost(
            f"another replica holds chat {chat_id} now: {step_key} on {network.value} "
            "was not recorded here"
        )


def _where(chat_id: str, step_key: str, network: NetworkName) -> sa.ColumnElement[bool]:
    return sa.and_(
        units_table.c.chat_id == chat_id,
        units_table.c.step_key == step_key,
        units_table.c.network == network.value,
    )


def _new_values(chat_id: str, unit: PlannedUnit) -> dict[str, Any]:
    return {
        "chat_id": chat_id,
        "step_key": unit.step_key,
        "network": unit.network.value,
        "state": UnitState.PENDING,
        "idempotency_key": unit.idempotency_key,
    }


def _plan_values(unit: PlannedUnit) -> dict[str, Any]:
    return {
        "seq": unit.seq,
        "kind": unit.kind,
        "number": unit.number,
        "planned_at": unit.planned_at,
        "text": unit.text,
        "facets": _facets_json(unit.facets),
        "image_path": unit.image.path if unit.image else None,
        "image_alt": unit.image.alt if unit.image else None,
        "visibility": unit.visibility.value,
        "reply_to_id": unit.reply_to.id if unit.reply_to else None,
        "reply_to_cid": unit.reply_to.cid if unit.reply_to else None,
        "reply_root_id": unit.reply_root.id if unit.reply_root else None,
        "reply_root_cid": unit.reply_root.cid if unit.reply_root else None,
        "person": unit.person,
    }


def _facets_json(facets: Sequence[Facet]) -> str:
    return json.dumps(
        [[f.kind, f.byte_start, f.byte_end, f.value] for f in facets], separators=(",", ":")
    )


def _facets(raw: str | None) -> tuple[Facet, ...]:
    return tuple(Facet(k, start, end, value) for k, start, end, value in json.loads(raw or "[]"))


def unit_row(row: sa.Row[Any]) -> UnitRow:
    network = NetworkName(row.network)
    remote = (
        PostRef(network, row.remote_id, row.remote_url or "", row.remote_cid or "")
        if row.remote_id
        else None
    )
    return UnitRow(
        chat_id=row.chat_id,
        step_key=row.step_key,
        network=network,
        seq=row.seq,
        kind=row.kind,
        number=row.number,
        planned_at=row.planned_at,
        state=UnitState(row.state),
        idempotency_key=row.idempotency_key,
        text=row.text,
        remote=remote,
        attempts=row.attempts,
        retry_at=row.retry_at,
        reason=row.reason,
        posted_at=row.posted_at,
        intent_at=row.intent_at,
        facets=_facets(row.facets),
        image=Image(row.image_path, row.image_alt or "") if row.image_path else None,
        visibility=Visibility(row.visibility),
        reply_to=PostRef(network, row.reply_to_id, "", row.reply_to_cid or "")
        if row.reply_to_id
        else None,
        reply_root=PostRef(network, row.reply_root_id, "", row.reply_root_cid or "")
        if row.reply_root_id
        else None,
        person=row.person,
    )
