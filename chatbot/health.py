"""``chatbot health``: is the running bot doing its job? What a container's HEALTHCHECK runs.

It reads what the running bot records in the store (its heartbeat, the steps
due, the accounts, collection rounds, its leases) and makes one harmless write;
it never calls a network. Each failed check names its cause.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from chatbot.run.policy import due_at
from chatbot.run.replica import LEASE_TTL, REPLICA_FILE
from chatbot.store import ChatState, Store, UnitState

# A scheduler that has not beaten for this long has stopped running its jobs.
HEARTBEAT_LATE = LEASE_TTL
# A step still pending this long after it was due was never run.
STEP_OVERDUE = timedelta(minutes=2)
# Collection failing this long for a running chat is a failure of the bot's job.
COLLECTION_FAILING = timedelta(minutes=10)


@dataclass(frozen=True)
class Finding:
    ok: bool
    message: str


def check_health(
    store: Store,
    data_dir: Path,
    now: datetime,
    *,
    step_grace: timedelta,
    collection_failing: timedelta = COLLECTION_FAILING,
) -> list[Finding]:
    """Every check, in order; the bot is healthy when all are ok."""
    findings = [_writable(store, now)]
    name = _replica_name(data_dir)
    if name is None:
        return [*findings, Finding(False, f"no bot has run with the data folder {data_dir}.")]
    findings.append(_heartbeat(store, name, now))
    findings.append(_overdue(store, now, step_grace, name))
    findings += _accounts(store)
    findings += _collection(store, now, collection_failing)
    findings.append(_leases(store, name))
    return findings


def _writable(store: Store, now: datetime) -> Finding:
    try:
        store.leases.probe(now=now)
    except Exception as exc:  # noqa: BLE001 - any failure to write is the finding
        return Finding(False, f"the store cannot be written: {exc}.")
    return Finding(True, "the store can be written.")


def _replica_name(data_dir: Path) -> str | None:
    try:
        return str(json.loads((data_dir / REPLICA_FILE).read_text(encoding="utf-8"))["name"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _heartbeat(store: Store, name: str, now: datetime) -> Finding:
    replica = next((r for r in store.leases.replicas() if r.holder == name), None)
    if replica is None:
        return Finding(False, f"the bot {name} has no heartbeat in the store.")
    if replica.stopped_at is not None:
        return Finding(False, f"the bot {name} stopped at {replica.stopped_at:%H:%M:%S} UTC.")
    if now - replica.beat_at > HEARTBEAT_LATE:
        return Finding(
            False,
            f"the scheduler has not run a job since {replica.beat_at:%H:%M:%S} UTC "
            f"(it runs one every {int(HEARTBEAT_LATE.total_seconds() / 3)} s).",
        )
    return Finding(True, "the scheduler runs its jobs.")


def _overdue(store: Store, now: datetime, step_grace: timedelta, name: str) -> Finding:
    """A step of a chat this bot may act for, due and not posted long after it should be."""
    held_elsewhere = {
        lease.chat_id
        for lease in store.leases.of_chats()
        if lease.holder != name and lease.expires_at > now
    }
    for chat in store.chats.list([ChatState.SCHEDULED, ChatState.RUNNING]):
        if chat.paused_at is not None or chat.chat_id in held_elsewhere:
            continue
        for unit in store.units.of_chat(chat.chat_id):
            if unit.state is not UnitState.PENDING or unit.retry_at is not None:
                continue
            due = due_at(chat, unit)
            if now - due > step_grace + STEP_OVERDUE:
                return Finding(
                    False,
                    f"the scheduler has not run a job it should have: {chat.chat_id} "
                    f"{unit.step_key} on {unit.network.value} was due at {due:%H:%M:%S} UTC.",
                )
    return Finding(True, "no step is overdue.")


def _accounts(store: Store) -> list[Finding]:
    return [
        Finding(
            False,
            f"the {account.network} account has failed authentication since "
            f"{account.auth_failed_at:%Y-%m-%d %H:%M} UTC: {account.error}.",
        )
        for account in store.leases.accounts()
        if account.auth_failed_at is not None
    ] or [Finding(True, "every account's credentials worked last time.")]


def _collection(store: Store, now: datetime, threshold: timedelta) -> list[Finding]:
    running = {c.chat_id for c in store.chats.list([ChatState.RUNNING])}
    return [
        Finding(
            False,
            f"the answers of {r.chat_id} on {r.network.value} have not been readable since "
            f"{r.failing_since:%H:%M:%S} UTC: {r.error}.",
        )
        for r in store.conversation.rounds()
        if r.chat_id in running
        and r.failing_since is not None
        and now - r.failing_since > threshold
    ] or [Finding(True, "the answers of every running chat can be read.")]


def _leases(store: Store, name: str) -> Finding:
    replica = next((r for r in store.leases.replicas() if r.holder == name), None)
    if replica is not None and replica.lost_lease_at is not None:
        return Finding(
            False,
            f"the bot lost its lease on {replica.lost_chat} at "
            f"{replica.lost_lease_at:%H:%M:%S} UTC: another replica acts for it now.",
        )
    return Finding(True, "the bot holds the leases it acts on.")


def render(findings: list[Finding]) -> str:
    return "\n".join(f"{'ok' if f.ok else 'FAIL'}: {f.message}" for f in findings)
