"""Co-moderation on each real server (snac2, mastodon-mock, the AT Protocol network): the
hosts a script names command the running bot by mention or direct message and are
answered; lookalikes are refused; the schedule on the server moves exactly as commanded;
a first-timer gets one reply however much they post, one who opted out none, and a
SIGKILL mid-chat sends nothing twice.

Each chat runs in real time (a real account refuses ``--speed``): questions ten minutes
apart, so that nothing moves unless a command moves it. What a server cannot do is in
:data:`tests.integration.hosts.HOST_DIFFERENCES`, with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chatbot.kinds import CARE_KINDS, REPLY_KINDS
from chatbot.run.commands import parse
from tests.integration.botrun import (
    BotFolder,
    BotProcess,
    BotRunner,
    chat_script,
    wait_until,
)
from tests.integration.collecting import chat_id_of, snapshot, user_name, wait_for_posted
from tests.integration.hosts import (
    HOST_DIFFERENCES,
    CommandSeen,
    chat_shift,
    command,
    commands,
    handle,
    liked_by_bot,
    local_twin,
    lookalikes,
    named,
    opt_out_of_bots,
    planned,
    posted_at,
    posts_by,
    told,
)
from tests.integration.venues import MastodonVenue, Person, Ref, Venue

QUESTIONS = tuple(f"Question {n}?" for n in range(1, 6))
SPACING = timedelta(minutes=10)
COACH_NAME = "Marcus Davis"
# snac delivers a mention to the bot in 5 to 9 s (tests/servers/README.md); then a
# collection round (1 s), the command job (2 s) and the answer.
COMMAND_DEADLINE = 40.0


def _script(venue: Venue, tag: str, hosts: str, care: str, **timing: Any) -> str:
    text = chat_script(
        chat_id="comod",
        hashtag=tag,
        networks=[venue.network],
        start=datetime.now(UTC) + timedelta(seconds=3),
        reminder=False,
        questions=QUESTIONS,
        image_question=None,
        first_question_at="2s",
        spacing="10m",
        closing_at="60m",
        **timing,
    )
    return text.replace("moderators:\n  - name: Host\n", hosts) + care


def _hosts(venue: Venue, host: Person, coach: Person) -> str:
    key = venue.network
    return (
        f'moderators:\n  - name: Host\n    {key}: "{handle(venue, host)}"\n'
        f'co_moderators:\n  - name: {COACH_NAME}\n    {key}: "{handle(venue, coach)}"\n'
    )


def _start(bots: BotRunner, folder: BotFolder, venue: Venue, **kw: Any) -> BotProcess:
    text = folder.config_text()
    if "collect_every" not in text:
        # snac's contexts list only direct replies, so a round reads the context of every
        # post of the bot (an answer to a command is one): about 15 requests. Every second,
        # the bot's pacer (Mastodon's 300 requests in 5 minutes) would hold reading to one
        # request a second after half a minute, and a round would take 15 s.
        every = "3s" if venue.name == "snac2" else "1s"
        extra = f"collect_every: {every}\nanswer_tail: 3s\n"
        folder.config.write_text(text.rstrip("\n") + "\n" + extra, encoding="utf-8")
    return bots.start(folder, "run", "--config", str(folder.config), **kw)


def _until_done(folder: BotFolder, process: BotProcess, count: int, what: str) -> list[str]:
    """Wait until the bot has received ``count`` commands and decided each; returns
    "<user name> <verb>: <state>" for each, in the order received."""

    last: list[CommandSeen] = []

    def decided() -> bool:
        last[:] = commands(folder)
        return len(last) >= count and all(c.state != "received" for c in last)

    wait_until(decided, COMMAND_DEADLINE, what, process=process)
    return [f"{user_name(c.author)} {_verb(c.text)}: {c.state}" for c in last]


def _verb(text: str) -> str:
    parsed = parse(text)
    return parsed.verb if parsed else text


def _acks(folder: BotFolder) -> dict[str, dict[str, Any]]:
    """The bot's answers to commands, by the id of the command's post, once posted."""
    return {
        str(u["reply_to_id"]): u
        for u in folder.units()
        if u["kind"] in ("ack", "help") and u["state"] == "posted"
    }


def _wait_acks(folder: BotFolder, process: BotProcess, refs: list[Ref], what: str) -> None:
    ids = {r.id for r in refs}
    wait_until(lambda: ids <= _acks(folder).keys(), COMMAND_DEADLINE, what, process=process)


def _due(folder: BotFolder, chat_id: str) -> Callable[[str], datetime]:
    """When each step is due now: planned time plus the chat's shift."""
    shift = timedelta(seconds=chat_shift(folder, chat_id))
    plan = planned(folder)
    return lambda step: plan[step] + shift


def test_hosts_command_the_chat_and_lookalikes_are_refused(
    venue: Venue, tmp_path: Any, bots: BotRunner
) -> None:
    """pause, status, like, resume, extend 5, next, skip, end from the chat's hosts (the
    co-moderator by direct message where the server has them): each applied and answered
    to its sender; the same display name, a confusable user name, the same user name on
    another server, a quote of the moderator's command: refused, unanswered; the schedule
    moves exactly as commanded."""
    differences = HOST_DIFFERENCES[venue.name]
    folder = venue.bot(tmp_path / "bot")
    tag = venue.tag()
    host = venue.person("host")
    if differences.no_twin:
        coach = named(venue, "coach", COACH_NAME)
    else:
        assert isinstance(venue, MastodonVenue)
        coach = local_twin(venue, COACH_NAME)
    impostors = lookalikes(venue, coach, COACH_NAME)
    ana, quoter = venue.person("ana"), venue.person("quoter")
    care = (
        "care:\n  welcome: {enabled: false, text: Hi}\n  nudge: {enabled: false, text: Hi}\n"
        "  appreciation: marked\n"
    )
    folder.write_script("comod.yaml", _script(venue, tag, _hosts(venue, host, coach), care,
                                              recap=True, recap_after="5s"))  # fmt: skip
    process = _start(bots, folder, venue)
    units = wait_for_posted(folder, venue.network, {"welcome", "q1"}, process, 45)
    chat_id = chat_id_of(folder)
    q1 = venue.ref(units["q1"], units["welcome"])
    venue.settle()

    # extend 5 (direct), status (a reply in the thread), like (a reply to an answer); the
    # lookalikes, and a quote of the host's command by someone else.
    # A reply under Q1: snac likes only what reached the bot (likes_delivered_only).
    answer = ana.post("A1: stations", reply_to=q1)
    venue.settle()
    direct = not differences.no_direct
    due = _due(folder, chat_id)
    remaining = [u["step_key"] for u in folder.units() if u["kind"] not in REPLY_KINDS]
    before = {step: due(step) for step in remaining if step not in ("welcome", "q1")}
    assert {"q2", "q5", "closing"} <= before.keys(), remaining
    extend = command(venue, coach, "extend 5", direct=direct)
    status = command(venue, host, "status", reply_to=q1)
    venue.settle()
    like = command(venue, coach, "like", reply_to=answer)  # public: it replies to the answer
    refused = [command(venue, person, "end") for person in impostors.values()]
    if differences.no_quotes:
        refused.append(command(venue, quoter, "status, as the host said", reply_to=status))
    else:
        refused.append(command(venue, quoter, "status", quote=status))
    venue.settle()
    seen = _until_done(folder, process, 3 + len(refused), "extend, status, like, lookalikes")
    assert sorted(seen) == sorted(
        [
            f"{coach.name} extend: applied",
            f"{host.name} status: applied",
            f"{coach.name} like: applied",
            *(f"{user_name(handle(venue, p))} end: refused" for p in impostors.values()),
            f"{quoter.name} status: refused",
        ]
    )
    # Every remaining step (the closing and the recap after it too) exactly 5 minutes later.
    due = _due(folder, chat_id)
    assert {step: due(step) - when for step, when in before.items()} == dict.fromkeys(
        before, timedelta(minutes=5)
    )
    _wait_acks(folder, process, [extend, status, like], "extend, status and like answered")
    acks = _acks(folder)
    assert "Extended by 5 minutes. Q2 goes out at" in acks[extend.id]["text"]
    assert f"#{tag}: Q1 is out;" in acks[status.id]["text"]
    assert acks[like.id]["text"].endswith("Liked.")
    assert not {r.id for r in refused} & acks.keys(), "a lookalike is never answered"
    wait_until(lambda: liked_by_bot(venue, answer), 30, "the answer liked", process=process)

    # pause; then resume, and next: Q2 goes out at once and Q3 keeps its ten minutes after it.
    pause = command(venue, coach, "pause", direct=direct)
    venue.settle()
    _wait_acks(folder, process, [pause], "pause answered")
    assert _acks(folder)[pause.id]["text"].endswith("Paused. Q2 waits until you say resume.")
    paused = chat_shift(folder, chat_id)
    resume = command(venue, coach, "resume", direct=direct)
    nxt = command(venue, host, "next", reply_to=q1)
    venue.settle()
    q2 = wait_for_posted(folder, venue.network, {"q2"}, process, COMMAND_DEADLINE)["q2"]
    _wait_acks(folder, process, [resume, nxt], "resume and next answered")
    assert chat_shift(folder, chat_id) != paused
    due = _due(folder, chat_id)
    assert abs(due("q3") - posted_at(q2) - SPACING) < timedelta(seconds=5)

    # skip, then end: Q3 never goes out, nor Q4 and Q5; the closing goes out now. (One
    # after the other: `end` skips every pending unit, a waiting answer too.)
    skip = command(venue, coach, "skip", direct=direct)
    venue.settle()
    _wait_acks(folder, process, [skip], "skip answered")
    end = command(venue, coach, "end", direct=direct)
    venue.settle()
    _wait_acks(folder, process, [end], "end answered")
    wait_until(
        lambda: any(u["step_key"] == "closing" and u["state"] == "posted" for u in folder.units()),
        COMMAND_DEADLINE,
        "the closing posted",
        process=process,
    )
    assert process.terminate() < 10

    steps = {u["step_key"]: u for u in folder.units(venue.network)}
    assert {k: steps[k]["state"] for k in ("q2", "q3", "q4", "q5", "closing")} == {
        "q2": "posted", "q3": "skipped", "q4": "skipped", "q5": "skipped", "closing": "posted"
    }  # fmt: skip
    assert steps["recap"]["state"] != "skipped", "the recap still follows the closing"
    thread = [u for u in steps.values() if u["kind"] not in REPLY_KINDS and u["kind"] != "recap"]
    assert [u["step_key"] for u in thread if u["state"] == "posted"] == [
        "welcome", "q1", "q2", "closing"
    ]  # fmt: skip
    held = [post.id for post in venue.bot_posts()]
    for unit in thread:
        assert held.count(unit["remote_id"]) == (unit["state"] == "posted"), unit["step_key"]
    assert not [u for u in steps.values() if u["reply_to_id"] in {r.id for r in refused}]
    reached = told(venue, coach)
    assert any("Paused. Q2 waits until you say resume." in text for text in reached), reached
    for impostor in impostors.values():
        assert told(venue, impostor) == []
    stored = {p.post_id for p in snapshot(folder, chat_id).posts}
    privately = [extend, pause, resume, skip, end] if direct else []
    assert not {r.id for r in privately} & stored, "a direct message never joins the chat"
    if differences.no_direct:  # the bot asked for its direct messages and was told no
        assert "bluesky direct messages not offered; commands come by mention" in (process.events())


def test_a_first_timer_gets_one_reply_and_a_kill_mid_chat_sends_nothing_twice(
    venue: Venue, tmp_path: Any, bots: BotRunner
) -> None:
    """50 posts of a first-timer (answers, posts without the hashtag or the number, replies
    under a question): one welcome, held on the server but unrecorded when the bot is
    SIGKILLed, found (not sent again) after the restart; one who opted out gets nothing;
    every post of the bot is on the server once."""
    folder = venue.bot(tmp_path / "bot")
    tag = venue.tag()
    host = venue.person("host")
    hosts = f'moderators:\n  - name: Host\n    {venue.network}: "{handle(venue, host)}"\n'
    folder.write_script("care.yaml", _script(venue, tag, hosts, ""))
    newbie, shy = venue.person("newbie"), venue.person("shy")
    opt_out = opt_out_of_bots(venue, shy)
    # The third post on the network is the first reply to a person (welcome, Q1, then it).
    first = _start(bots, folder, venue, hold_after_post=f"{venue.network}:3")
    units = wait_for_posted(folder, venue.network, {"welcome", "q1"}, first, 45)
    chat_id = chat_id_of(folder)
    q1 = venue.ref(units["q1"], units["welcome"])
    venue.settle()

    mine = [newbie.post("A1: station rotation", tag=tag)]
    shy.post("A1: picture books first", tag=tag)
    first.wait_for_event("fault injection: holding after post", timeout=45)
    hello = [u for u in folder.units(venue.network) if u["kind"] == "hello"]
    assert [u["state"] for u in hello] == ["intent"], hello  # on the server, not recorded
    first.kill()

    for n in range(1, 50):
        if n % 3 == 0:
            mine.append(newbie.post(f"A1: idea {n}", tag=tag))
        elif n % 3 == 1:  # the hashtag, and no number
            mine.append(newbie.post(f"thinking out loud about idea {n} with my team", tag=tag))
        else:
            mine.append(newbie.post(f"idea {n}", reply_to=q1))  # no hashtag, no number
    shy.post("picture books, again", reply_to=q1)
    venue.settle()
    second = _start(bots, folder, venue)

    wait_until(
        lambda: (
            posts_by(folder, chat_id)[newbie.name] >= 50
            and posts_by(folder, chat_id)[shy.name] >= 2
        ),
        60,
        "the first-timer's 50 posts and the opted-out person's 2 collected",
        process=second,
    )
    time.sleep(2)  # a round or two more, so care has weighed every post
    assert second.terminate() < 10

    units = folder.units(venue.network)
    replies = [(u["kind"], u["state"]) for u in units if u["kind"] in CARE_KINDS]
    assert replies == [("hello", "posted")]
    held = venue.bot_posts()
    posted = [u["remote_id"] for u in units if u["remote_id"]]
    assert sorted(p.id for p in held) == sorted(posted), "each post once, no other"
    to_newbie = [p for p in held if p.parent in {r.id for r in mine}]
    assert [p.parent for p in to_newbie] == [mine[0].id]
    assert snapshot(folder, chat_id).participants[shy.name] == opt_out
    people = {p.parent for p in held} - {None, *posted}
    assert people == {mine[0].id}, "no reply to anyone else: not the one who opted out"


def test_check_finds_every_host_and_names_the_one_without_an_account(
    venue: Venue, tmp_path: Any, bots: BotRunner
) -> None:
    """`chatbot check` looks up each host the script names on the real server: the real ones
    are found, a lookalike's handle that names no account is a problem (exit 1), in one
    whole sentence naming the person, the handle and the script, with a fix."""
    folder = venue.bot(tmp_path / "bot")
    host, coach = venue.person("host"), venue.person("coach")
    ghost = handle(venue, coach).replace(coach.name, f"{coach.name}x")
    hosts = _hosts(venue, host, coach) + f'guest:\n  name: Ghost\n  {venue.network}: "{ghost}"\n'
    folder.write_script("comod.yaml", _script(venue, venue.tag(), hosts, ""))
    code, out = bots.call(folder, "check", "--config", str(folder.config))
    assert code == 1, out
    assert "2 host(s) named in the chat scripts have an account here." in out
    assert (
        f"problem  The guest Ghost ({ghost}) of comod.yaml names no account on "
        f"{'Mastodon' if venue.network == 'mastodon' else 'Bluesky'}, so their commands to "
        "the bot would be refused."
    ) in out
    assert "fix: Check the handle against the person's profile" in out
