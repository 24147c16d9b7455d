"""The recap thread, composed when it is due from what collection stored.

The first post becomes the recap unit's text; the others are added as units of
their own after it, so they are posted (and survive restarts) like any step.

A recap is a public statement of counts in a community's name: it is composed
only when the chat's last collection round succeeded on every network. While
answers cannot be read, it is held (and tried again); it is never posted with
counts that are not true.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from chatbot.networks.base import Network, idempotency_key
from chatbot.recap import compose, facts_for
from chatbot.run.sync import Snapshot
from chatbot.script import NetworkName
from chatbot.store import PlannedUnit, Store, UnitRow
from chatbot.text import Facet, bluesky_facets

log = structlog.get_logger("chatbot.run.recaps")
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Held:
    """The recap cannot be composed truthfully now; try again at ``until``."""

    reason: str
    until: datetime


class Recaps:
    """Writes a chat's recap thread into the store, per network."""

    def __init__(
        self,
        *,
        store: Store,
        networks: Mapping[NetworkName, Network],
        snapshot: Callable[[], Snapshot],
        final_round: Callable[[str], object],
        clock: Clock,
        hold_for: timedelta = timedelta(minutes=1),
        transcript_url: str = "",
    ) -> None:
        self._store = store
        self._networks = networks
        self._snapshot = snapshot
        self._final_round = final_round
        self._clock = clock
        self._hold_for = hold_for
        self._transcript_url = transcript_url

    def compose(self, chat_id: str, unit: UnitRow) -> UnitRow | Held | str:
        """The recap unit with its text, or why it is held for now, or why there can be none."""
        snapshot = self._snapshot()
        plan = snapshot.plans.get(chat_id)
        loaded = snapshot.script_of(chat_id)
        if plan is None or loaded is None:
            return "no script to build the recap from"
        self._final_round(chat_id)  # a last reading, so the recap counts every answer
        failing = [r for r in self._store.conversation.rounds(chat_id) if r.failing]
        if failing:
            reason = "; ".join(
                f"the answers on {r.network.value} cannot be read ({r.error})" for r in failing
            )
            return Held(f"recap held: {reason}", self._clock() + self._hold_for)
        facts = facts_for(
            self._store, plan, loaded.script, unit.network, transcript_url=self._transcript_url
        )
        parts = compose(facts, unit.network, self._networks[unit.network].limits())
        now = self._clock()

        def facets(text: str) -> tuple[Facet, ...]:
            return tuple(bluesky_facets(text)) if unit.network is NetworkName.BLUESKY else ()

        self._store.units.compose(
            chat_id, unit.step_key, unit.network, parts[0], facets(parts[0]), now=now
        )
        self._store.units.add(
            chat_id,
            [
                PlannedUnit(
                    step_key=f"{unit.step_key}-{index}",
                    network=unit.network,
                    seq=unit.seq + index - 1,
                    kind=unit.kind,
                    number=None,
                    # Distinct, ordered times: Bluesky record keys are derived from them.
                    planned_at=unit.planned_at + timedelta(milliseconds=index),
                    idempotency_key=idempotency_key(
                        chat_id, f"{unit.step_key}-{index}", unit.network
                    ),
                    text=text,
                    facets=facets(text),
                    visibility=unit.visibility,
                )
                for index, text in enumerate(parts[1:], start=2)
            ],
            now=now,
        )
        log.info("recap composed", chat=chat_id, network=unit.network.value, posts=len(parts))
        composed = self._store.units.get(chat_id, unit.step_key, unit.network)
        assert composed is not None
        return composed
