"""Co-moderators at the controls and participants cared for, on the local network with a
hand-moved clock: commands by identity, acknowledged; one reply per person per chat."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chatbot.config import LatePolicy
from chatbot.networks.local import LocalNetwork
from chatbot.run.commands import Command, parse
from chatbot.run.runner import Runner
from chatbot.script import NetworkName, Person
from chatbot.store import BOT_AUTHOR, CommandState, Store, UnitState
from chatbot.testing import FakeClock

START = datetime(2030, 1, 3, 20, 0, tzinfo=UTC)
CHAT = "comod"
SCRIPT = """\
    id: comod
    title: Co-moderated
    hashtag: CoMod
    timezone: UTC
    start: 2030-01-03 20:00
    networks: [local]
    moderators: [{name: Host, local: host}]
    co_moderators: [{name: Marcus Davis, local: coachdavis}]
    welcome: {text: "Welcome to {hashtag}"}
    question_spacing: 10m
    questions:
      - text: "First question?"
      - text: "Second question?"
        followup: "And what made it work?"
      - text: "Third question?"
    closing: {at: 40m, text: "Thanks! {hashtag}"}
    recap: {after: 5m}
    care:
      appreciation: all
"""


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("@chatbot pause", Command("pause")),
        ("@chatbot PAUSE #CoMod", Command("pause")),
        ("!resume", Command("resume")),
        ("/next", Command("next")),
        ("@chatbot@school.social please extend 5", Command("extend", 5)),
        ("@host @chatbot extend 5 minutes", Command("extend", 5)),
        ("@chatbot skip", Command("skip")),
        ("@chatbot end", Command("end")),
        ("@chatbot status?", Command("status")),
        ("@chatbot follow up 2", Command("followup", 2)),
        ("@chatbot followup Q2", Command("followup", 2)),
        ("\uff30\uff41\uff55\uff53\uff45 @chatbot", Command("pause")),  # full-width "Pause"
        ("@chatbot@127.0.0.1:8001 pause", Command("pause")),  # snac's handles carry the port
    ],
)
def test_the_forms_people_type_are_understood(text: str, command: Command) -> None:
    """Case, a leading ! or /, the hashtag and the bot's handle anywhere, filler words."""
    assert parse(text) == command


@pytest.mark.parametrize("handle", ["@coach@127.0.0.1:8001", "@coach@localhost:3000"])
def test_a_host_on_a_test_server_is_named_with_its_port(handle: str) -> None:
    """snac's and mastodon-mock's handles carry host and port; a script can name them."""
    assert Person(name="Coach", mastodon=handle).mastodon == handle


@pytest.mark.parametrize("text", ["Thanks @chatbot!", "@chatbot A1: stations", "great chat"])
def test_posts_that_are_not_commands_are_not_parsed_as_one(text: str) -> None:
    """Thanks and answers that mention the bot are not commands."""
    assert parse(text) is None


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.schedules = tmp_path / "schedules"
        self.schedules.mkdir()
        self.write(SCRIPT)
        self.clock = FakeClock(START - timedelta(minutes=5))
        self.store = Store.open(f"sqlite:///{tmp_path / 'state.db'}", now=self.clock())
        self.local = LocalNetwork(self.store, clock=self.clock, participants=False)
        self.runner = Runner(
            store=self.store,
            networks={NetworkName.LOCAL: self.local},
            schedules=self.schedules,
            late=LatePolicy(),
            clock=self.clock,
            watch=False,
            data_dir=tmp_path / "data",
        )
        self.runner.sync()

    def write(self, text: str) -> None:
        (self.schedules / "comod.yaml").write_text(textwrap.dedent(text), encoding="utf-8")

    def at(self, minutes: float) -> None:
        """Move the clock, read the answers, apply commands, post what is due."""
        self.clock.set(START + timedelta(minutes=minutes))
        self.runner.collect(CHAT)
        self.runner.apply_commands()
        self.runner.advance(CHAT)

    def question(self, number: int) -> str:
        unit = next(u for u in self.store.units.of_chat(CHAT) if u.step_key == f"q{number}")
        assert unit.remote is not None
        return unit.remote.id

    def say(self, author: str, text: str, *, under: int | None = None) -> None:
        from chatbot.posts import PostRef

        reply_to = PostRef(NetworkName.LOCAL, self.question(under)) if under else None
        self.local.post_as(author, text, reply_to=reply_to)

    def bot_replies(self, to: str | None = None) -> list[str]:
        posts = self.local.posts(include_future=True)
        authors = {p.id: p.author for p in posts}
        return [
            p.text
            for p in posts
            if p.author == BOT_AUTHOR
            and p.reply_to is not None
            and authors.get(p.reply_to) not in (BOT_AUTHOR, None)
            and (to is None or authors.get(p.reply_to) == to)
        ]

    def commands(self) -> list[tuple[str, CommandState]]:
        return [(c.author, c.state) for c in self.store.commands.of_chat(CHAT)]

    def due(self, step: str) -> datetime:
        chat = self.store.chats.get(CHAT)
        unit = next(u for u in self.store.units.of_chat(CHAT) if u.step_key == step)
        assert chat is not None
        return unit.planned_at + chat.shift


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    made = Harness(tmp_path)
    for minutes in (0, 6):
        made.at(minutes)
    yield made
    made.store.close()


def test_a_co_moderators_extend_moves_the_rest_and_is_acknowledged(harness: Harness) -> None:
    """extend 5 from a co-moderator: Q2, the closing and the recap move by 5 minutes, and the
    reply says what changed."""
    before = {step: harness.due(step) for step in ("q2", "closing", "recap")}
    harness.say("coachdavis", "@chatbot extend 5 #CoMod", under=1)
    harness.at(7)
    assert harness.commands() == [("coachdavis", CommandState.APPLIED)]
    for step, when in before.items():
        assert harness.due(step) == when + timedelta(minutes=5)
    (ack,) = harness.bot_replies(to="coachdavis")
    assert ack.startswith("Extended by 5 minutes. Q2 goes out at 20:21")


def test_pause_holds_the_next_question_until_resume(harness: Harness) -> None:
    """pause: Q2 is not posted at its time; resume: it goes out, later by the pause."""
    harness.say("host", "@chatbot pause")
    harness.at(7)
    assert harness.bot_replies(to="host") == ["Paused. Q2 waits until you say resume."]
    harness.at(12)
    assert {u.step_key: u.state for u in harness.store.units.of_chat(CHAT)}["q2"] is (
        UnitState.PENDING
    )
    harness.say("host", "@chatbot resume")
    harness.at(15)  # paused from 7 to 15: Q2 moves from 16 to 24
    assert harness.due("q2") == START + timedelta(minutes=24)
    harness.at(24)
    q2 = next(u for u in harness.store.units.of_chat(CHAT) if u.step_key == "q2")
    assert q2.state is UnitState.POSTED


def test_next_posts_the_next_question_at_once_and_keeps_the_spacing(harness: Harness) -> None:
    """next at 7 minutes: Q2 goes out then, and Q3 ten minutes after it, not at 20."""
    harness.say("coachdavis", "@chatbot next")
    harness.at(7)
    harness.at(7.01)
    assert next(u for u in harness.store.units.of_chat(CHAT) if u.step_key == "q2").state is (
        UnitState.POSTED
    )
    assert harness.due("q3") == START + timedelta(minutes=17)


@pytest.mark.parametrize(
    "impostor",
    ["CoachDavis_", "coachdavis2", "someone"],
)
def test_commands_from_anyone_but_the_chats_hosts_are_refused_silently(
    harness: Harness, impostor: str
) -> None:
    """A lookalike or a stranger: the command is recorded as refused, nothing changes, no
    reply is sent."""
    before = harness.due("q2")
    harness.say(impostor, "@chatbot extend 30")
    harness.at(7)
    assert harness.commands() == [(impostor, CommandState.REFUSED)]
    assert harness.due("q2") == before
    assert harness.bot_replies(to=impostor) == []


def test_the_same_display_name_on_another_account_is_refused(harness: Harness) -> None:
    """An account that calls itself "Marcus Davis" is not the co-moderator: ids decide."""
    harness.local.post_as("marcus_davis", "@chatbot end", name="Marcus Davis")
    harness.at(7)
    assert harness.commands() == [("marcus_davis", CommandState.REFUSED)]


def test_a_co_moderator_removed_from_the_script_is_refused_at_once(harness: Harness) -> None:
    """Hot reload: after the script loses its co-moderator, their next command is refused."""
    harness.write(
        SCRIPT.replace("    co_moderators: [{name: Marcus Davis, local: coachdavis}]\n", "")
    )
    harness.runner.sync()
    harness.say("coachdavis", "@chatbot end")
    harness.at(7)
    assert harness.commands() == [("coachdavis", CommandState.REFUSED)]


def test_an_unknown_command_gets_one_short_help_reply(harness: Harness) -> None:
    """A moderator's "paws": ignored, with the list of commands."""
    harness.say("host", "@chatbot paws")
    harness.at(7)
    assert harness.commands() == [("host", CommandState.IGNORED)]
    (help_reply,) = harness.bot_replies(to="host")
    assert help_reply.startswith("I understand: pause, resume, skip")


def test_followup_posts_the_prompt_under_its_question(harness: Harness) -> None:
    """followup 2 after Q2 is out: the script's follow-up is a reply under Q2."""
    harness.at(16)
    harness.say("coachdavis", "@chatbot followup 2")
    harness.at(17)
    q2 = harness.question(2)
    followups = [
        p
        for p in harness.local.posts(include_future=True)
        if p.reply_to == int(q2) and p.author == BOT_AUTHOR
    ]
    assert [p.text for p in followups] == ["And what made it work? #CoMod"]


def test_a_host_command_from_the_command_line_is_applied(harness: Harness) -> None:
    """`chatbot control` records a command for the running bot, which applies it."""
    harness.store.commands.receive(
        CHAT, source="host", author_id="host", author="host", text="extend 3", now=harness.clock()
    )
    before = harness.due("q2")
    harness.at(7)
    assert harness.due("q2") == before + timedelta(minutes=3)


def test_fifty_posts_of_a_first_timer_earn_exactly_one_reply(harness: Harness) -> None:
    """A first-timer posts 50 times, with and without the hashtag and numbers: one welcome,
    nothing more, even after a restart."""
    for n in range(50):
        text = f"A1: idea {n} #CoMod" if n % 3 == 0 else f"thinking out loud {n} about this one"
        harness.say("newbie", text, under=1 if n % 2 else None)
    harness.at(8)
    harness.at(9)
    assert len(harness.bot_replies(to="newbie")) == 1
    harness.runner.sync()  # a restart rebuilds nothing that was sent
    harness.at(10)
    assert len(harness.bot_replies(to="newbie")) == 1


def test_someone_who_opted_out_of_bots_gets_no_reply_and_no_like(harness: Harness) -> None:
    """#nobot in the profile (the demo's librarian): no welcome, no nudge, no like."""
    harness.say("librarian_jo", "A1: picture books first #CoMod")
    harness.at(8)
    harness.at(9)
    assert harness.bot_replies(to="librarian_jo") == []
    assert not [u for u in harness.store.units.of_chat(CHAT) if u.person == "librarian_jo"]


def test_answers_are_liked_when_the_script_asks(harness: Harness) -> None:
    """appreciation: all: each answer gets a like, once."""
    harness.say("msrivera", "A1: stations #CoMod")
    harness.at(8)
    harness.at(9)
    likes = [u for u in harness.store.units.of_chat(CHAT) if u.kind == "like"]
    assert len(likes) == 1 and likes[0].state is UnitState.POSTED


def test_hosts_get_no_care_replies(harness: Harness) -> None:
    """The chat's own hosts are never welcomed or nudged."""
    harness.say("coachdavis", "Love these answers, everyone #CoMod")
    harness.at(8)
    assert harness.bot_replies(to="coachdavis") == []


def test_a_reply_waiting_to_be_sent_survives_a_replan(harness: Harness) -> None:
    """A welcome decided but not yet sent is neither rewritten nor cancelled by a new plan
    (a restart or an edited script): it is sent once."""
    harness.say("newbie", "A1: a first answer #CoMod")
    harness.clock.set(START + timedelta(minutes=8))
    harness.runner.collect(CHAT)  # decided, not posted
    harness.runner.sync()
    harness.write(SCRIPT.replace("First question?", "The first question?"))
    harness.runner.sync()
    harness.at(8.5)
    assert len(harness.bot_replies(to="newbie")) == 1
