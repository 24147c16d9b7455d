"""Two ``chatbot run`` processes on one PostgreSQL database: one acts per chat, the other
takes over when it dies, and a replica that was paused past its lease is fenced.

Each test runs on the local network and on the real AT Protocol network (both replicas
logged in as the same Bluesky account, each with its own data_dir); on Bluesky, what the
PDS holds is checked against the store's units.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chatbot.store import Store
from tests.integration.botrun import BotFolder, BotProcess, BotRunner, wait_until
from tests.integration.test_networks_bluesky import BotAccount
from tests.servers import PostgresServer

LEASE = 4  # seconds: short, so that a takeover happens within the test's patience
CHAT = "replicas"


def _script(start: datetime, network: str) -> str:
    when = start.strftime("%Y-%m-%d %H:%M:%S")
    questions = "\n".join(f'  - text: "Question {n}?"' for n in range(1, 6))
    tag = f"Replicas{secrets.token_hex(2)}"  # one chat's posts, whoever else posted before
    return (
        f"id: {CHAT}\ntitle: Replicas\nhashtag: {tag}\ntimezone: UTC\nstart: {when}\n"
        f"networks: [{network}]\nmoderators: [{{name: Host}}]\n"
        'welcome: {text: "Welcome to {hashtag}, introduce yourself"}\n'
        f"question_spacing: 3s\nquestions:\n{questions}\n"
        '  \nclosing: {at: 20s, text: "Thanks! {hashtag}"}\nrecap: {enabled: false}\n'
    ).replace("questions:\n  - text", "questions:\n  - at: 3s\n    text", 1)


class Where:
    """The network the replicas post on: the local one, or a Bluesky account on the real
    AT Protocol network that both replicas share."""

    def __init__(self, account: BotAccount | None) -> None:
        self.account = account
        self.network = "local" if account is None else "bluesky"

    def config(self) -> tuple[str, dict[str, str]]:
        """The accounts part of each replica's config, and the environment it reads."""
        if self.account is None:
            return "", {}
        return (
            "accounts:\n  bluesky:\n"
            f"    service: {self.account.network.pds_url}\n"
            f"    handle: {self.account.handle}\n"
            "    app_password: {env: CHATBOT_IT_BLUESKY_PASSWORD}\n",
            {"CHATBOT_IT_BLUESKY_PASSWORD": self.account.app_password},
        )


@pytest.fixture(params=["local", "atproto"])
def where(request: pytest.FixtureRequest) -> Iterator[Where]:
    """Each network in turn; the AT Protocol network starts only for its own runs."""
    if request.param == "local":
        yield Where(None)
        return
    account = BotAccount(request.getfixturevalue("atproto_network"), "replica")
    yield Where(account)
    account.owner.request.close()


def _replicas(tmp_path: Path, database: str, where: Where) -> tuple[BotFolder, BotFolder]:
    schedules = tmp_path / "schedules"
    schedules.mkdir()
    accounts, env = where.config()
    folders = []
    for name in ("a", "b"):
        root = tmp_path / name
        root.mkdir()
        (root / "config.yaml").write_text(
            f"data_dir: data\nschedules: {schedules}\ndatabase_url: {database}\n"
            f"log_format: json\nlease: {LEASE}s\nanswer_tail: 3s\n"
            # Collection rounds, which renew the lease after the closing, come oftener
            # than the lease lasts (15 s and 30 s by default).
            f"collect_every: 1s\n{accounts}",
            encoding="utf-8",
        )
        folders.append(BotFolder(root, env))
    start = datetime.now(UTC) + timedelta(seconds=6)
    (schedules / "chat.yaml").write_text(_script(start, where.network), encoding="utf-8")
    return folders[0], folders[1]


class Shared:
    """What the two replicas share: the database, read from the test."""

    def __init__(self, url: str) -> None:
        self.store = Store.open(url, now=datetime.now(UTC))

    def holder_pid(self) -> int | None:
        leases = [lease for lease in self.store.leases.of_chats() if lease.chat_id == CHAT]
        return int(leases[0].holder.split(":")[1]) if leases else None

    def states(self) -> dict[str, str]:
        return {u.step_key: u.state.value for u in self.store.units.of_chat(CHAT)}

    def posted(self) -> set[str]:
        return {k for k, state in self.states().items() if state == "posted"}

    def bot_keys(self) -> list[str | None]:
        return [
            p.idempotency_key
            for p in self.store.local_posts.visible(until=None)
            if p.author == "chatbot"
        ]

    def close(self) -> None:
        self.store.close()


def _start_both(bots: BotRunner, a: BotFolder, b: BotFolder) -> dict[int, BotProcess]:
    first = bots.start(a, "run", "--exit-when-done", "--config", str(a.config))
    second = bots.start(b, "run", "--exit-when-done", "--config", str(b.config))
    return {first.popen.pid: first, second.popen.pid: second}


def _acting(shared: Shared, processes: dict[int, BotProcess]) -> tuple[BotProcess, BotProcess]:
    wait_until(lambda: shared.holder_pid() in processes, 30, "a replica to take the chat")
    pid = shared.holder_pid()
    assert pid is not None
    acting = processes[pid]
    other = next(p for p in processes.values() if p is not acting)
    return acting, other


def _over_at(process: BotProcess) -> str:
    """When the process ended its collection for the chat (a log timestamp)."""
    over = [r for r in process.records() if r.get("event") == "collection over"]
    assert [r.get("chat") for r in over] == [CHAT]
    return str(over[0]["timestamp"])


def _holders_while_acting(shared: Shared, acting: BotProcess, timeout: float) -> set[int | None]:
    """The chat's lease holders seen until ``acting`` ends its collection for the chat."""
    seen: set[int | None] = set()
    deadline = time.monotonic() + timeout
    while "collection over" not in acting.events():
        seen.add(shared.holder_pid())
        if time.monotonic() > deadline:
            pytest.fail(f"the chat was not over within {timeout:.0f} s:\n{acting.tail()}")
        time.sleep(0.05)
    return seen


def _assert_exactly_once(shared: Shared, where: Where) -> None:
    states = shared.states()
    assert set(states.values()) == {"posted"}, states
    if where.account is None:
        keys = shared.bot_keys()
        assert len(keys) == len(states)
        assert [k for k, n in Counter(keys).items() if n > 1] == []
        return
    # What the PDS holds: each posted unit's record once, no other post, no text twice.
    units = shared.store.units.of_chat(CHAT)
    posts = where.account.posts()
    assert sorted(p.uri for p in posts) == sorted(u.remote.id for u in units if u.remote)
    assert len(posts) == len(units)
    assert sorted(p.value.text for p in posts) == sorted(u.text for u in units)
    assert [t for t, n in Counter(p.value.text for p in posts).items() if n > 1] == []


def test_each_step_is_posted_once_and_the_survivor_finishes_after_a_kill(
    postgres_server: PostgresServer, tmp_path: Path, bots: BotRunner, where: Where
) -> None:
    """SIGKILL the acting replica after the welcome: the other takes over within 30 s of the
    lease expiring and finishes the chat; every step is posted exactly once."""
    url = postgres_server.recreate_database("replicas_kill")
    a, b = _replicas(tmp_path, url, where)
    shared = Shared(url)
    try:
        processes = _start_both(bots, a, b)
        acting, survivor = _acting(shared, processes)
        wait_until(lambda: "welcome" in shared.posted(), 30, "the welcome", process=acting)
        acting.kill()
        killed_at = time.monotonic()
        lease_expiry = killed_at + LEASE
        wait_until(
            lambda: len(shared.posted()) > 1,
            LEASE + 30,
            "the survivor's first post",
            process=survivor,
        )
        assert time.monotonic() - lease_expiry < 30
        assert survivor.wait(90) == 0
        _assert_exactly_once(shared, where)
    finally:
        shared.close()


def test_a_replica_paused_past_its_lease_posts_and_records_nothing_when_it_wakes(
    postgres_server: PostgresServer, tmp_path: Path, bots: BotRunner, where: Where
) -> None:
    """SIGSTOP the acting replica after the welcome; once the other has taken over and
    posted, SIGCONT it: it posts nothing and records nothing for the chat (fencing)."""
    url = postgres_server.recreate_database("replicas_stop")
    a, b = _replicas(tmp_path, url, where)
    shared = Shared(url)
    try:
        processes = _start_both(bots, a, b)
        paused, other = _acting(shared, processes)
        wait_until(lambda: "welcome" in shared.posted(), 30, "the welcome", process=paused)
        os.killpg(paused.popen.pid, signal.SIGSTOP)
        before = len(shared.posted())
        wait_until(
            lambda: shared.holder_pid() == other.popen.pid and len(shared.posted()) > before,
            LEASE + 30,
            "the other replica to take over and post",
            process=other,
        )
        woken_at = len(paused.records())
        os.killpg(paused.popen.pid, signal.SIGCONT)
        holders = _holders_while_acting(shared, other, 90)
        assert other.wait(30) == 0
        time.sleep(1)  # the woken replica's due jobs fire at once; give them a moment
        after = paused.records()[woken_at:]
        # Once the other has stopped (and handed its lease over), the woken one may take the
        # chat and send what is still pending (a reply decided in the last round): that is
        # finishing the work, not a second post, which _assert_exactly_once checks below.
        # Until the other replica is done with the chat, the woken one never holds it again
        # and does nothing for it (it may only notice that it lost the lease).
        assert holders == {other.popen.pid}
        over = _over_at(other)
        assert [
            r["event"]
            for r in after
            if r.get("chat") == CHAT and r["timestamp"] < over and r["event"] != "lease lost"
        ] == []
        assert paused.terminate() < 10
        _assert_exactly_once(shared, where)
        # Who holds the lease now is not asked: the other replica handed its leases over as it
        # stopped, and the woken one may take the finished chat's (to find nothing to do).
    finally:
        shared.close()
