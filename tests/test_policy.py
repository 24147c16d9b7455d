"""The late policy and live controls, with time passed in (no clock, no sleeps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chatbot.config import LatePolicy, MissedStart
from chatbot.posts import PostRef
from chatbot.run.policy import (
    Post,
    Reconcile,
    Skip,
    decide,
    next_step_key,
    shift_for_next,
    shift_for_resume,
    units_to_end,
)
from chatbot.script import NetworkName
from chatbot.store import ChatRow, ChatState, UnitRow, UnitState

START = datetime(2027, 1, 8, 1, 0, tzinfo=UTC)
STEPS = [
    ("reminder-1", "reminder", -60),
    ("welcome", "welcome", 0),
    ("q1", "question", 6),
    ("q2", "question", 15),
    ("closing", "closing", 58),
]
GRACE = LatePolicy(step_grace=timedelta(minutes=5))


def chat(**changes: object) -> ChatRow:
    values: dict[str, object] = {
        "chat_id": "c",
        "script_id": "s",
        "title": "T",
        "hashtag": "tag",
        "timezone": "UTC",
        "start_at": START,
        "end_at": START + timedelta(minutes=58),
        "state": ChatState.SCHEDULED,
        "shift": timedelta(0),
        "paused_at": None,
        "note": "",
    }
    values.update(changes)
    return ChatRow(**values)  # type: ignore[arg-type]


def units(
    states: dict[str, UnitState] | None = None,
    networks: tuple[NetworkName, ...] = (NetworkName.LOCAL,),
    retry: dict[str, datetime] | None = None,
) -> list[UnitRow]:
    states = states or {}
    retry = retry or {}
    rows = []
    for seq, (key, kind, minutes) in enumerate(STEPS):
        for network in networks:
            state = states.get(key, UnitState.PENDING)
            rows.append(
                UnitRow(
                    chat_id="c",
                    step_key=key,
                    network=network,
                    seq=seq,
                    kind=kind,
                    number=None,
                    planned_at=START + timedelta(minutes=minutes),
                    state=state,
                    idempotency_key=f"{key}-{network.value}",
                    text=key,
                    remote=PostRef(network, key) if state is UnitState.POSTED else None,
                    attempts=0,
                    retry_at=retry.get(key),
                    reason="",
                    posted_at=None,
                )
            )
    return rows


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def keys(decision_actions: tuple[object, ...]) -> list[tuple[str, str]]:
    return [(type(a).__name__, a.unit.step_key) for a in decision_actions]  # type: ignore[attr-defined]


def test_nothing_is_due_before_the_first_step() -> None:
    """Before the first step the decision is to wait until it is due."""
    decision = decide(chat(), units(), at(-90), GRACE)
    assert decision.actions == ()
    assert decision.wake_at == at(-60)


def test_a_due_step_is_posted() -> None:
    """A step whose time has come is posted."""
    decision = decide(chat(), units({"reminder-1": UnitState.POSTED}), at(0), GRACE)
    assert keys(decision.actions) == [("Post", "welcome")]


def test_steps_are_posted_one_at_a_time_in_order() -> None:
    """Even when several steps are due, only the earliest is returned: Q2 never before Q1."""
    done = {"reminder-1": UnitState.POSTED, "welcome": UnitState.POSTED}
    decision = decide(chat(state=ChatState.RUNNING), units(done), at(15.5), GRACE)
    assert keys(decision.actions) == [("Skip", "q1")]


def test_a_step_within_the_grace_is_still_posted_late() -> None:
    """A step four minutes late, with five minutes of grace, is posted."""
    done = {"reminder-1": UnitState.POSTED, "welcome": UnitState.POSTED}
    decision = decide(chat(state=ChatState.RUNNING), units(done), at(10), GRACE)
    assert keys(decision.actions) == [("Post", "q1")]


def test_a_step_later_than_the_grace_is_skipped_with_the_reason() -> None:
    """A question more late than the grace is skipped, and the reason says how late."""
    done = {"reminder-1": UnitState.POSTED, "welcome": UnitState.POSTED}
    decision = decide(chat(state=ChatState.RUNNING), units(done), at(12), GRACE)
    (action,) = decision.actions
    assert isinstance(action, Skip)
    assert "6m00s late" in action.reason


def test_a_late_reminder_is_skipped_but_the_chat_goes_on() -> None:
    """A reminder missed while the bot was down is skipped; the chat still starts on time."""
    decision = decide(chat(), units(), at(-30), GRACE)
    assert keys(decision.actions) == [("Skip", "reminder-1")]


def test_a_missed_start_skips_the_whole_chat_by_default() -> None:
    """If the bot was down over the start (beyond the grace), the chat is recorded as missed."""
    decision = decide(chat(), units({"reminder-1": UnitState.POSTED}), at(20), GRACE)
    assert decision.state is ChatState.MISSED
    assert {a.unit.step_key for a in decision.actions} == {"welcome", "q1", "q2", "closing"}
    assert all(isinstance(a, Skip) for a in decision.actions)
    assert "chat start missed by 20m00s" in decision.notes[0]


def test_a_missed_start_within_max_shift_starts_the_chat_late() -> None:
    """With missed_start: shift, a chat whose start was missed by 20 minutes starts now."""
    shift_policy = LatePolicy(missed_start=MissedStart.SHIFT, max_shift=timedelta(minutes=30))
    decision = decide(chat(), units({"reminder-1": UnitState.POSTED}), at(20), shift_policy)
    assert decision.shift == timedelta(minutes=20)
    assert decision.actions == ()
    shifted = chat(shift=decision.shift, state=ChatState.RUNNING)
    follow = decide(shifted, units({"reminder-1": UnitState.POSTED}), at(20), shift_policy)
    assert keys(follow.actions) == [("Post", "welcome")]


def test_a_missed_start_beyond_max_shift_is_missed_even_with_shift() -> None:
    """Shifting has a limit: a start missed by more than max_shift is recorded as missed."""
    shift_policy = LatePolicy(missed_start=MissedStart.SHIFT, max_shift=timedelta(minutes=30))
    decision = decide(chat(), units({"reminder-1": UnitState.POSTED}), at(45), shift_policy)
    assert decision.state is ChatState.MISSED


def test_a_restart_during_the_start_within_grace_posts_the_welcome() -> None:
    """The bot restarting three minutes after the start posts the welcome, not a missed chat."""
    decision = decide(chat(), units({"reminder-1": UnitState.POSTED}), at(3), GRACE)
    assert keys(decision.actions) == [("Post", "welcome")]
    assert decision.state is ChatState.RUNNING


def test_an_intent_within_grace_is_sent_again_with_its_key() -> None:
    """A crash between intent and result leads to the same post being sent again (idempotent)."""
    done = {"reminder-1": UnitState.POSTED, "welcome": UnitState.INTENT}
    decision = decide(chat(state=ChatState.RUNNING), units(done), at(1), GRACE)
    assert keys(decision.actions) == [("Post", "welcome")]


def test_an_intent_too_late_to_post_is_reconciled_not_reposted() -> None:
    """An unknown outcome found too late is looked up on the network instead of posted."""
    done = {"reminder-1": UnitState.POSTED, "welcome": UnitState.POSTED, "q1": UnitState.INTENT}
    decision = decide(chat(state=ChatState.RUNNING), units(done), at(13), GRACE)
    (action,) = decision.actions
    assert isinstance(action, Reconcile)


def test_a_rate_limited_step_waits_and_blocks_the_next() -> None:
    """A step waiting for a rate-limit reset holds back the steps after it on that network."""
    done = {"reminder-1": UnitState.POSTED, "welcome": UnitState.POSTED, "q1": UnitState.INTENT}
    decision = decide(
        chat(state=ChatState.RUNNING), units(done, retry={"q1": at(7)}), at(6.5), GRACE
    )
    assert decision.actions == ()
    assert decision.wake_at == at(7)


def test_networks_advance_independently() -> None:
    """A network waiting on a retry does not hold back the other network."""
    both = (NetworkName.MASTODON, NetworkName.BLUESKY)
    rows = units({"reminder-1": UnitState.POSTED, "welcome": UnitState.POSTED}, networks=both)
    rows = [
        u
        if not (u.network is NetworkName.BLUESKY and u.step_key == "q1")
        else UnitRow(**{**u.__dict__, "state": UnitState.INTENT, "retry_at": at(8)})
        for u in rows
    ]
    decision = decide(chat(state=ChatState.RUNNING), rows, at(6), GRACE)
    assert [(a.unit.step_key, a.unit.network) for a in decision.actions] == [
        ("q1", NetworkName.MASTODON)
    ]
    assert decision.wake_at == at(8)


def test_a_paused_chat_posts_nothing() -> None:
    """While paused, nothing is posted, however due."""
    decision = decide(chat(paused_at=at(5)), units({"reminder-1": UnitState.POSTED}), at(7), GRACE)
    assert decision == type(decision)()


def test_resuming_moves_every_remaining_step_by_the_pause() -> None:
    """A ten-minute pause moves the remaining steps ten minutes later."""
    assert shift_for_resume(chat(paused_at=at(5)), at(15)) == timedelta(minutes=10)


def test_next_makes_the_next_step_due_now_and_keeps_the_spacing() -> None:
    """'Next' posts the next question now; the ones after move up by the same amount."""
    done = {"reminder-1": UnitState.POSTED, "welcome": UnitState.POSTED, "q1": UnitState.POSTED}
    rows = units(done)
    shift = shift_for_next(chat(state=ChatState.RUNNING), rows, at(10))
    assert shift == timedelta(minutes=-5)
    assert next_step_key(rows) == "q2"


def test_ending_early_skips_the_questions_and_keeps_the_closing() -> None:
    """Ending a chat early skips the remaining questions but still posts the closing."""
    done = {"reminder-1": UnitState.POSTED, "welcome": UnitState.POSTED}
    skipped, closing = units_to_end(units(done))
    assert [u.step_key for u in skipped] == ["q1", "q2"]
    assert closing == "closing"


def test_a_chat_with_every_unit_done_is_done() -> None:
    """When every step is posted or skipped the chat is done."""
    finished = {k: UnitState.POSTED for k, _kind, _m in STEPS}
    assert (
        decide(chat(state=ChatState.RUNNING), units(finished), at(60), GRACE).state
        is ChatState.DONE
    )


def test_posts_are_due_at_the_planned_time_plus_the_shift() -> None:
    """A chat extended by five minutes has its next question due five minutes later."""
    done = {"reminder-1": UnitState.POSTED, "welcome": UnitState.POSTED, "q1": UnitState.POSTED}
    extended = chat(state=ChatState.RUNNING, shift=timedelta(minutes=5))
    assert decide(extended, units(done), at(16), GRACE).wake_at == at(20)
    assert keys(decide(extended, units(done), at(20), GRACE).actions) == [("Post", "q2")]


def test_post_action_carries_the_unit() -> None:
    """A Post action names the unit to send, with its idempotency key."""
    decision = decide(chat(), units(), at(-60), GRACE)
    (action,) = decision.actions
    assert isinstance(action, Post)
    assert action.unit.idempotency_key == "reminder-1-local"


def test_a_round_reads_the_threads_of_the_chat_and_its_recap_not_of_replies_to_people() -> None:
    """The bot's replies to people (welcomes, nudges, answers to commands, likes) are not read
    as threads every round: each would cost a request (replies to them notify the bot)."""
    from chatbot.collect.collector import thread_posts
    from chatbot.kinds import ReplyKind

    posted = units({key: UnitState.POSTED for key, _kind, _m in STEPS})
    hello = UnitRow(**{**posted[0].__dict__, "step_key": "care-1", "kind": ReplyKind.HELLO.value})
    like = UnitRow(**{**posted[0].__dict__, "step_key": "like-1", "kind": ReplyKind.LIKE.value})
    read = thread_posts([*posted, hello, like])
    assert [ref.id for ref in read] == [key for key, _kind, _m in STEPS]
