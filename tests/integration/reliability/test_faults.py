"""The fault suite: a real ``chatbot run`` through a fault-injecting proxy on each real
server, a share of its requests answered with 5xx, 429 with reset headers, timeouts,
malformed and truncated bodies, dropped connections and slow answers (seeded).

In front of the PDS (the AT Protocol network) and snac2 the proxy makes the faults
itself; in front of mastodon-mock it arms the mock's own fault API for the requests it
chose. People answer directly on the server. At the end: every step posted exactly once,
every answer collected, the bot ran to its end by itself, and no request was sent again
before the reset a 429 gave (the proxy's recorded timings).
"""

from __future__ import annotations

import contextlib
import time
import zlib
from pathlib import Path

from tests.integration.botrun import BotRunner
from tests.integration.reliability import summary
from tests.integration.reliability.faultproxy import KINDS, FaultProxy, MockFaults
from tests.integration.reliability.plan import (
    answer_posted_questions,
    chats_for,
    compare,
    finished,
    states,
)
from tests.integration.venues import BlueskyVenue, MastodonVenue, Venue

SEED = 2013
SHARE = 0.25  # of the requests faulted at least (in storms, and between them)
MIN_SHARE = 0.2


def upstream_of(venue: Venue) -> str:
    if isinstance(venue, BlueskyVenue):
        return venue.network_.pds_url
    assert isinstance(venue, MastodonVenue)
    return venue.server.api_base_url


def test_through_faults_each_post_is_made_once_each_answer_collected_no_retry_too_soon(
    venue: Venue, tmp_path: Path, bots: BotRunner
) -> None:
    """Over 20% of the bot's requests faulted (every kind): the chats run to their end, each
    step once, in order, each answer once, and no request before a 429's reset."""
    began = time.monotonic()
    upstream = upstream_of(venue)
    with contextlib.ExitStack() as closing:
        arm = None
        if venue.name == "mastodon-mock":
            arm = closing.enter_context(contextlib.closing(MockFaults(upstream)))
        proxy = closing.enter_context(
            FaultProxy(
                upstream,
                seed=SEED + zlib.crc32(venue.name.encode()) % 1000,
                share=SHARE,
                rewrite=isinstance(venue, BlueskyVenue),
                arm=arm,
            )
        )
        folder = venue.bot(tmp_path / "bot")
        folder.config.write_text(folder.config_text().replace(upstream, proxy.url), "utf-8")
        chats = chats_for(venue, folder, ["faults"], first_in=5, gap=0,
                          spacing=4, answer_tail=10)  # fmt: skip
        ana, ben = venue.person("ana"), venue.person("ben")
        process = bots.start(folder, "run", "--exit-when-done", "--config", str(folder.config))
        deadline = time.monotonic() + 150
        while not finished(folder, chats) and time.monotonic() < deadline:
            assert not process.exited(), f"the bot exited:\n{process.tail()}"
            answer_posted_questions(venue, folder, chats, ana, ben)
            time.sleep(0.3)
        assert finished(folder, chats), (states(folder, venue.network), process.tail())
        exited = process.exited()
        if not exited:
            process.terminate()  # everything done: stopped as a service manager would
        venue.settle()
        found = compare(venue, folder, chats, [ana, ben])
        faults = proxy.faults()
        requests = len(proxy.exchanges)
        early = proxy.early_retries()
    summary.tally("requests", requests)
    for kind, n in faults.items():
        summary.fault(kind, n)
    summary.tally("duplicates", found.duplicates)
    summary.tally("losses", found.losses)
    summary.tally(f"fault_suite_seconds_{venue.name}", round(time.monotonic() - began))
    assert not exited or process.popen.returncode == 0, process.tail()
    assert found.problems == [], (found.problems, states(folder, venue.network))
    assert early == []
    assert sum(faults.values()) >= MIN_SHARE * requests, (faults, requests)
    assert set(faults) == set(KINDS), faults
