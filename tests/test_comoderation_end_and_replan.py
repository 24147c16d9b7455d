"""Two co-moderation behaviours the real servers once showed wrong: ``end`` keeps the recap
(and the answers still waiting), and a re-plan (every sync: each minute, on a file change,
at a restart) keeps the replies recorded but not yet sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_comoderation import CHAT, SCRIPT, Harness

from chatbot.store import UnitState


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    made = Harness(tmp_path)
    for minutes in (0, 6):
        made.at(minutes)
    yield made
    made.store.close()


def _states(harness: Harness) -> dict[str, UnitState]:
    return {u.step_key: u.state for u in harness.store.units.of_chat(CHAT)}


def test_end_posts_the_closing_and_then_the_recap(harness: Harness) -> None:
    """end: the closing now, and the recap after it, as the answer says."""
    harness.say("coachdavis", "@chatbot end")
    harness.at(7)
    harness.at(7.01)
    assert _states(harness)["closing"] is UnitState.POSTED
    assert _states(harness)["recap"] is not UnitState.SKIPPED


def test_a_re_plan_keeps_the_answers_waiting_to_be_sent(harness: Harness) -> None:
    """The script edited between recording an answer and sending it: the answer is still
    to be sent (a restart re-plans the same way)."""
    harness.say("host", "@chatbot status")
    harness.runner.collect(CHAT)
    harness.runner.apply_commands()  # the answer is recorded, not yet sent
    harness.write(SCRIPT.replace("title: Co-moderated", "title: Co-moderated chat"))
    harness.runner.sync()
    answers = [u for u in harness.store.units.of_chat(CHAT) if u.kind == "ack"]
    assert [u.state for u in answers] == [UnitState.PENDING]
