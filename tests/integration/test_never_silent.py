"""Never silent, never false: while a chat's answers cannot be read (a server refuses its
instance endpoints, or its hashtag timeline), `chatbot status`, `chatbot answers` and
`chatbot check` say so, and no recap is posted; once reading recovers, every answer is
collected and the recap tells the truth. On mastodon-mock, with its fault injection."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from tests.integration.botrun import BotRunner, chat_script, wait_until
from tests.integration.collecting import chat_id_of, wait_for_posted, wait_for_table
from tests.integration.test_collect_mastodon import (
    QUESTIONS,
    SPEED,
    Person,
    _bot,
    _start,
    _tag,
    closing,
    people,
)
from tests.servers import MastodonServer

_ = (closing, people)  # fixtures


def _chat(folder: Any, tag: str) -> None:
    folder.write_script(
        "chat.yaml",
        chat_script(
            chat_id="silent",
            hashtag=tag,
            networks=["mastodon"],
            reminder=False,
            questions=QUESTIONS,
            image_question=None,
            first_question_at="1m",
            spacing="1m",
            closing_at="4m",
            recap=True,
            recap_after="1m",
        ),
    )


@pytest.mark.parametrize(
    "fault",
    [
        # Mastodon.py asks for /api/v2/instance/ (a trailing slash): globs match both forms.
        pytest.param(("/api/v2/instance*", "/api/v1/instance*"), id="instance-endpoints"),
        pytest.param(("/api/v1/timelines/tag/*",), id="hashtag-timeline"),
    ],
)
def test_a_chat_whose_answers_cannot_be_read_says_so_and_posts_no_false_recap(
    mastodon_server: MastodonServer,
    people: dict[str, Person],
    tmp_path: Path,
    bots: BotRunner,
    closing: contextlib.ExitStack,
    run_chatbot: Any,
    fault: tuple[str, ...],
) -> None:
    """While the endpoint fails: status and answers name the failure, check exits non-zero,
    the recap is held; when it recovers: every answer is in and the recap counts them."""
    folder, _api = _bot(mastodon_server, tmp_path / "bot", closing, indexable_opt_out=False)
    tag = _tag()
    _chat(folder, tag)
    for path in fault:
        mastodon_server.inject_fault(path, status=500, count=None)
    try:
        process = _start(bots, folder, "--speed", SPEED)
        units = wait_for_posted(folder, "mastodon", {"q1", "q2", "q3", "closing"}, process, 45)
        chat_id = chat_id_of(folder)
        ana, ben = people["ana"], people["ben"]
        ana.post(f"A1: Station rotation #{tag}")
        ben.post("Peer tutors", in_reply_to_id=str(units["q2"]["remote_id"]))

        def said(*args: str) -> str:
            result = run_chatbot(*args, "--config", str(folder.config), cwd=folder.root)
            return result.stdout + result.stderr

        wait_until(
            lambda: "cannot be read since" in said("status").split("Recent posts:")[0],
            timeout=30,
            what="status to name the unreadable answers",
            process=process,
        )
        assert "cannot be read" in said("answers", chat_id)
        assert "no answers yet" not in said("answers", chat_id)
        check = run_chatbot("check", "--config", str(folder.config), cwd=folder.root)
        assert check.returncode != 0, check.stdout
        wait_until(
            lambda: any(
                u["step_key"] == "recap" and "recap held" in u["reason"]
                for u in folder.units("mastodon")
            ),
            timeout=45,
            what="the recap to be held",
            process=process,
        )
        assert not [
            u for u in folder.units("mastodon") if u["kind"] == "recap" and u["state"] == "posted"
        ]
    finally:
        mastodon_server.clear_faults()

    expected = [(1, ana.name, f"Station rotation #{tag}"), (2, ben.name, "Peer tutors")]
    wait_for_table(folder, chat_id, expected, process, timeout=60)
    wait_until(
        lambda: any(
            u["step_key"] == "recap" and u["state"] == "posted" for u in folder.units("mastodon")
        ),
        timeout=60,
        what="the recap, once the answers can be read",
        process=process,
    )
    recap = next(u for u in folder.units("mastodon") if u["step_key"] == "recap")
    assert "2 participants shared 2 answers" in recap["text"]
    assert process.terminate() < 10
