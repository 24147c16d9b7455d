"""A whole chat on each real server, written once: snac2, mastodon-mock and the AT Protocol
network (:mod:`tests.integration.venues`).

- a whole chat: the real ``chatbot`` process posts it as one thread; two
  participants answer in the forms people use (a reply to a question, a top-level
  post with the hashtag, an unprefixed reply under a later question, a comment on
  someone's answer); the store ends with exactly those answers, attributed; the
  recap is a thread of its own linking them; the transcript shows them;
- a SIGKILL between a post reaching the server and its result being recorded,
  with answers before and after it: every post and every answer there once;
- answers in every form (two in one post, edited, deleted, quoted, by mention,
  from a person who opted out): exactly the expected table.

The ``venue`` fixture (conftest.py) runs each test on each server. What a server
cannot deliver is in :data:`tests.integration.venues.DIFFERENCES`, with the reason:
the scenario then takes the form that server can deliver. Faults and rate limits
are tested on mastodon-mock alone (``test_collect_mastodon.py``,
``test_networks_mastodon.py``).
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from chatbot.kinds import REPLY_KINDS
from tests.integration.botrun import BotFolder, BotProcess, BotRunner, chat_script, wait_until
from tests.integration.collecting import Row, chat_id_of, wait_for_posted, wait_for_table
from tests.integration.venues import Venue

SPEED = "20"  # one minute of the script is three seconds
QUESTIONS = ("What worked this month?", "How do you group students?", "What will you try next?")
URL = re.compile(r"https?://\S+")


def _script(venue: Venue, tag: str, chat_id: str, **timing: Any) -> str:
    """The scenario's chat: a welcome, three questions and a closing, at ``timing``."""
    return chat_script(chat_id=chat_id, hashtag=tag, networks=[venue.network], reminder=False,
                       questions=QUESTIONS, image_question=None, **timing)  # fmt: skip


def _start(
    bots: BotRunner, folder: BotFolder, *extra: str, hold_after_post: str | None = None
) -> BotProcess:
    return bots.start(
        folder, "run", *extra, "--config", str(folder.config), hold_after_post=hold_after_post
    )


def _assert_each_post_once_in_threads(venue: Venue, folder: BotFolder) -> None:
    """The bot's posts on the server are its units, once each: the chat one thread, the recap
    a thread of its own, each post replying to the one before (replies to people, such as
    welcomes, are in their threads)."""
    units = folder.units(venue.network)
    assert {u["state"] for u in units} == {"posted"}
    held = {post.id: post for post in venue.bot_posts()}
    assert sorted(held) == sorted(u["remote_id"] for u in units), "each post once, no other"
    for thread in (
        [u for u in units if u["kind"] not in ("recap", *REPLY_KINDS)],
        [u for u in units if u["kind"] == "recap"],
    ):
        if not thread:
            continue
        assert held[thread[0]["remote_id"]].parent is None
        for previous, unit in itertools.pairwise(thread):
            assert held[unit["remote_id"]].parent == previous["remote_id"]
        assert [held[u["remote_id"]].text for u in thread] == [u["text"] for u in thread]


def test_a_whole_chat_is_posted_collected_recapped_and_archived(
    venue: Venue, tmp_path: Any, bots: BotRunner, run_chatbot: Any
) -> None:
    """One thread; answers from two people in four forms collected and attributed; a recap
    thread linking every answer; a transcript naming them."""
    folder = venue.bot(tmp_path / "bot")
    tag = venue.tag()
    folder.write_script(
        "chat.yaml",
        _script(
            venue,
            tag,
            "scenario",
            first_question_at="1m",
            spacing="1m",
            closing_at="6m",
            recap=True,
            recap_after="4m",  # 30 s after the start: snac's deliveries take up to 9 s
        ),
    )
    process = _start(bots, folder, "--speed", SPEED)
    units = wait_for_posted(folder, venue.network, {"welcome", "q1", "q2", "q3"}, process, 45)
    chat_id = chat_id_of(folder)
    q = {n: venue.ref(units[f"q{n}"], units["welcome"]) for n in (1, 2, 3)}
    ana, ben = venue.person("ana"), venue.person("ben")
    venue.settle()

    answer = ana.post("A1: Station rotation finally clicked", reply_to=q[1])  # under Q1
    ben.post("A2: Peer feedback pairs", tag=tag)  # top-level, with the hashtag
    ana.post("Exit tickets every Friday", reply_to=q[3])  # unprefixed, under a later question
    venue.settle()  # a reply must find its parent indexed (the AppView)
    comment_tag = tag if venue.differences.comment_needs_hashtag else None
    ben.post("Same here, with a timer", tag=comment_tag, reply_to=answer)  # on ana's answer
    venue.settle()

    comment = "Same here, with a timer" + (f" #{tag}" if comment_tag else "")
    expected: list[Row] = [
        (1, ana.name, "Station rotation finally clicked"),
        (1, ben.name, comment),
        (2, ben.name, f"Peer feedback pairs #{tag}"),
        (3, ana.name, "Exit tickets every Friday"),
    ]
    store = wait_for_table(folder, chat_id, expected, process, timeout=45)
    assert process.wait(90) == 0, process.tail()

    _assert_each_post_once_in_threads(venue, folder)
    recap = [u["text"] for u in folder.units(venue.network) if u["kind"] == "recap"]
    assert "2 participants shared 4 answers" in recap[0]
    links = {link for text in recap for link in URL.findall(text)}
    assert links == {a.url for a in store.answers}, "every answer linked, nothing else"

    result = run_chatbot(
        "archive", chat_id, "--format", "md", "--config", str(folder.config), cwd=folder.root
    )
    assert result.returncode == 0, result.stderr
    for name, text in [(ana.name, "Station rotation"), (ben.name, "Peer feedback pairs"),
                       (ana.name, "Exit tickets"), (ben.name, "with a timer")]:  # fmt: skip
        assert name in result.stdout and text in result.stdout


def test_a_kill_mid_chat_leaves_every_post_and_answer_once(
    venue: Venue, tmp_path: Any, bots: BotRunner
) -> None:
    """SIGKILL after Q2 reached the server but before it was recorded, with answers collected
    before and more posted while the bot is down: after a restart, each post and each answer
    exactly once (on snac, which ignores the Idempotency-Key, Q2 is found, not posted again)."""
    folder = venue.bot(tmp_path / "bot")
    tag = venue.tag()
    q3_line = f'  - text: "{QUESTIONS[2]}"'
    folder.write_script(
        "chat.yaml",
        _script(
            venue,
            tag,
            "restart",
            start=datetime.now(UTC) + timedelta(seconds=3),
            first_question_at="2s",
            spacing="2s",
            closing_at="36s",
        ).replace(q3_line, f"{q3_line}\n    at: 30s"),  # a step after the restart
    )
    first = _start(bots, folder, hold_after_post=f"{venue.network}:3")  # welcome, Q1, then Q2
    first.wait_for_event("fault injection: holding after post", timeout=30)
    units = {u["step_key"]: u for u in folder.units(venue.network)}
    assert units["q2"]["state"] == "intent"  # on the server, not recorded
    chat_id = chat_id_of(folder)
    q1 = venue.ref(units["q1"], units["welcome"])
    ana, ben = venue.person("ana"), venue.person("ben")
    venue.settle()

    ana.post("A1: Station rotation", tag=tag)
    ben.post("Small groups, changed weekly", reply_to=q1)
    venue.settle()
    before: list[Row] = [
        (1, ana.name, f"Station rotation #{tag}"),
        (1, ben.name, "Small groups, changed weekly"),
    ]
    wait_for_table(folder, chat_id, before, first, timeout=45)
    first.kill()  # SIGKILL: no goodbye, Q2's result never recorded

    ben.post("A2: mixed-ability tables", tag=tag)
    ana.post("A1: exit tickets", reply_to=q1)
    venue.settle()
    second = _start(bots, folder)
    after = [*before, (1, ana.name, "exit tickets"), (2, ben.name, f"mixed-ability tables #{tag}")]
    store = wait_for_table(folder, chat_id, after, second, timeout=60)
    wait_until(
        lambda: {u["state"] for u in folder.units(venue.network)} == {"posted"},
        timeout=45,
        what="every step posted after the restart",
        process=second,
        detail=lambda: str(
            [(u["step_key"], u["state"], u["reason"]) for u in folder.units(venue.network)]
        ),
    )
    assert second.terminate() < 10

    _assert_each_post_once_in_threads(venue, folder)
    held = ana.held() | ben.held()
    assert sorted(p.uri for p in store.posts if not p.deleted) == sorted(held)
    assert len(store.answers) == len({(x.uri, x.question, x.part) for x in store.answers})


def test_answers_in_every_form_end_as_exactly_the_expected_table(
    venue: Venue, tmp_path: Any, bots: BotRunner, run_chatbot: Any
) -> None:
    """Hashtag or not, under a question or top-level, nested, two in one post, edited, deleted,
    quoted, by mention (where the server has them): the store holds exactly the answers; the
    person who opted out counts and never shows in the transcript."""
    differences = venue.differences
    folder = venue.bot(tmp_path / "bot")
    tag = venue.tag()
    folder.write_script(
        "chat.yaml",
        # Three minutes at 30x: the test stops the bot long before the closing.
        _script(venue, tag, "forms", first_question_at="1m", spacing="1m", closing_at="90m"),
    )
    process = _start(bots, folder, "--speed", "30")
    units = wait_for_posted(folder, venue.network, {"welcome", "q1", "q2", "q3"}, process, 45)
    chat_id = chat_id_of(folder)
    q = {n: venue.ref(units[f"q{n}"], units["welcome"]) for n in (1, 2, 3)}
    ana, ben, cleo, dev, eli = (venue.person(role) for role in ("ana", "ben", "cleo", "dev", "eli"))
    opt_out = venue.opt_out(eli)
    venue.settle()

    ana.post("A1: Station rotation finally clicked", tag=tag)  # hashtag, top-level
    under_q2 = ana.post("Exit tickets decide my groups", reply_to=q[2])  # no tag, no label
    ben.post("A1: choice boards A2: peer feedback pairs", tag=tag)  # two answers in one post
    ben.post("A3: a reading corner", tag=tag, reply_to=q[3])  # both hashtag and reply
    final = "A2: small groups by reading level"
    draft = cleo.post("A2: first draft" if not differences.no_edits else final, tag=tag)
    if not differences.no_quotes:
        dev.post("Reading logs every day", tag=tag, quote=q[3])  # a quote, no label
    eli.post("A3: podcasts for read-alouds", tag=tag)  # the person who opted out
    mention = venue.mention(eli, "A1: morning meetings")  # no tag, no reply
    ben.post("Great question!", tag=tag)  # conversation, not an answer
    gone = []
    if not differences.no_deletes:
        gone = [
            cleo.post("A1: this one I take back", reply_to=q[1]),
            ana.post("A3: a typo", tag=tag),
        ]
    venue.settle()  # the nested reply needs its parent indexed first (the AppView)
    nested = "Same for me, exit tickets and a quick check-in"
    nested_tag = tag if differences.comment_needs_hashtag else None
    dev.post(nested, tag=nested_tag, reply_to=under_q2)
    venue.settle()

    a, b, c, d, e = ana.name, ben.name, cleo.name, dev.name, eli.name
    settled: list[Row] = [
        (1, a, f"Station rotation finally clicked #{tag}"),
        (1, b, "choice boards"),
        (1, e, f"{mention} morning meetings"),
        (2, a, "Exit tickets decide my groups"),
        (2, b, f"peer feedback pairs #{tag}"),
        (2, d, nested + (f" #{tag}" if nested_tag else "")),
        (3, b, f"a reading corner #{tag}"),
        (3, e, f"podcasts for read-alouds #{tag}"),
        *([] if differences.no_quotes else [(3, d, f"Reading logs every day #{tag}")]),
    ]
    edited = (2, c, f"small groups by reading level #{tag}")
    first = [*settled, edited if differences.no_edits else (2, c, f"first draft #{tag}")]
    if gone:
        first += [(1, c, "this one I take back"), (3, a, f"a typo #{tag}")]
    wait_for_table(folder, chat_id, first, process, timeout=45)

    if not differences.no_edits:
        cleo.edit(draft, f"{final} #{tag}")
    for post in gone:
        (cleo if post is gone[0] else ana).delete(post)
    venue.settle()
    store = wait_for_table(
        folder, chat_id, [*settled, edited], process, timeout=45,
        also=lambda s: len(s.deleted_texts()) == len(gone),
    )  # fmt: skip
    assert process.terminate() < 10

    assert store.participants[e] == opt_out
    assert {store.participants[n] for n in (a, b, c, d)} == {""}
    assert [x.question for x in store.answers if x.opt_out or x.web_opt_out] == [1, 3]  # counted
    if not differences.no_edits:
        [changed] = [p for p in store.posts if p.text.startswith(final)]
        assert changed.edited_at is not None
    result = run_chatbot(
        "archive", chat_id, "--format", "md", "--config", str(folder.config), cwd=folder.root
    )
    assert result.returncode == 0, result.stderr
    transcript = result.stdout
    for name, text in [(a, "Station rotation"), (b, "a reading corner"), (d, "check-in")]:
        assert name in transcript and text in transcript
    assert e not in transcript
    assert "podcasts" not in transcript and "morning meetings" not in transcript
    assert "take back" not in transcript and "a typo" not in transcript
