"""The transcript in Markdown, HTML, CSV and JSON: complete, and safe to publish."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from chatdata import add_chat, add_post, hostile_answers, open_store, person
from markdown_it import MarkdownIt
from typer.testing import CliRunner

from chatbot.archive import FORMATS, archive_folder, render, write_archives
from chatbot.cli import app
from chatbot.script import NetworkName
from chatbot.store import Store
from chatbot.transcript import build_transcript

CHAT = "blchat-2030-01-02"
QUESTIONS = (
    "Q1: What does station rotation look like in your room? #BLchat",
    "Q2: How do you pick the teacher-led group? #BLchat",
    "Q3: What would you tell a first-year teacher? #BLchat",
)
ANA = person("ana@mastodon.education", "Ana Rivera")
BEN = person("ben.bsky.social", "Ben Okafor", network=NetworkName.BLUESKY, account_id="did:plc:ben")
OLGA = person("olga@school.example", "Olga Hidden", opt_out="#nobot in bio")
TROLL = person("troll@spam.example", "Troll")
DAN = person("dan@school.example", "Dan Deleted")
HOST = person("blchat@mastodon.education", "BL Chat Team")
EVE = person("eve@school.example", '=HYPERLINK("https://evil.example")')

# Every public answer carries a token that no format's escaping changes.
PUBLIC_TOKENS = ("ANATOKENQ1", "ANATOKENQ2A", "ANATOKENQ2B", "BENTOKENQ1", "EVETOKENQ3")
HIDDEN_TOKENS = ("OLGATOKEN", "OLGAINTRO", "TROLLTOKEN", "DANTOKEN", "HOSTTOKEN")
HIDDEN_PEOPLE = ("Olga Hidden", "olga@school.example", "Troll", "Dan Deleted", "dan@school")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    store = open_store(tmp_path)
    add_chat(store, CHAT, questions=QUESTIONS)
    post = add_post
    post(store, CHAT, ANA, "1", "Hi! Ana, 4th grade, Lincoln", kind="introduction", minutes=2)
    post(store, CHAT, OLGA, "2", "OLGAINTRO I teach art", kind="introduction", minutes=3)
    post(
        store,
        CHAT,
        ANA,
        "3",
        "A1: ANATOKENQ1 three stations",
        answers=[(1, "", "ANATOKENQ1 three stations")],
        minutes=14.2,
    )
    post(
        store,
        CHAT,
        BEN,
        "4",
        "A1 BENTOKENQ1 [click](javascript:alert(1)) <b>bold</b> **x**",
        answers=[(1, "", "BENTOKENQ1 [click](javascript:alert(1)) <b>bold</b> **x**")],
        minutes=15,
    )
    post(
        store,
        CHAT,
        OLGA,
        "5",
        "A1: OLGATOKEN secret",
        answers=[(1, "", "OLGATOKEN secret")],
        minutes=16,
    )
    post(
        store,
        CHAT,
        ANA,
        "6",
        "A2a ANATOKENQ2A A2b ANATOKENQ2B",
        answers=[(2, "a", "ANATOKENQ2A data"), (2, "b", "ANATOKENQ2B choice")],
        minutes=24,
    )
    post(store, CHAT, TROLL, "7", "TROLLTOKEN buy now", kind="blocked", minutes=25)
    post(
        store,
        CHAT,
        DAN,
        "8",
        "A2: DANTOKEN oops",
        answers=[(2, "", "DANTOKEN oops")],
        minutes=26,
        deleted=True,
    )
    post(store, CHAT, HOST, "9", "HOSTTOKEN great answers everyone", kind="host", minutes=27)
    post(store, CHAT, ANA, "10", "love this chat", kind="conversation", minutes=28)
    post(
        store,
        CHAT,
        EVE,
        "11",
        "A3: =1+2 EVETOKENQ3",
        answers=[(3, "", "=1+2 EVETOKENQ3")],
        minutes=35,
    )
    store.close()
    return tmp_path


@pytest.fixture
def store(data_dir: Path) -> Store:
    return open_store(data_dir)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_holds_every_question_and_every_public_answer(store: Store, fmt: str) -> None:
    """Each format has each question's text and each answer of a person who did not opt out."""
    text = render(build_transcript(store, CHAT), fmt)
    for word in ("station rotation look like", "teacher", "first", *PUBLIC_TOKENS):
        assert word in text, f"{word!r} missing from the {fmt} transcript"
    assert "Ana Rivera" in text
    assert "ben.bsky.social" in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_opted_out_blocked_deleted_and_host_posts_never_appear(store: Store, fmt: str) -> None:
    """No format quotes, names or links an opted-out, blocked, deleted or host's post."""
    text = render(build_transcript(store, CHAT), fmt)
    for hidden in (*HIDDEN_TOKENS, *HIDDEN_PEOPLE):
        assert hidden not in text, f"{hidden!r} leaked into the {fmt} transcript"
    assert "/posts/blchat-2030-01-02/5" not in text  # Olga's answer's link


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_opted_out_answers_are_counted_where_they_were(store: Store, fmt: str) -> None:
    """Q1 says it had an answer from someone who opted out, and the introductions too."""
    text = render(build_transcript(store, CHAT), fmt)
    assert "1 answer from someone who opted out of bots" in text
    assert "1 introduction from someone who opted out of bots" in text


def test_json_counts_add_up(store: Store) -> None:
    """JSON: counts include opted-out answers; conversation posts are counted, not listed."""
    data = json.loads(render(build_transcript(store, CHAT), "json"))
    assert data["counts"] == {
        "participants": 4,  # Ana, Ben, Olga, Eve; Dan deleted his only post
        "questions": 3,
        "answers": 6,
        "answers_from_people_who_opted_out": 1,
        "introductions": 2,
        "conversation_posts": 1,
    }
    q1 = data["questions"][0]
    assert [a["author"] for a in q1["answers"]] == ["Ana Rivera", "Ben Okafor"]
    assert q1["answers_from_people_who_opted_out"] == 1
    assert [a["label"] for a in data["questions"][1]["answers"]] == ["A2a", "A2b"]


def test_answer_times_are_on_the_chats_clock(store: Store) -> None:
    """An answer at 01:14 UTC shows as 20:14 in a New York chat, with UTC kept in the data."""
    transcript = build_transcript(store, CHAT)
    first = transcript.questions[0].answers[0]
    assert (first.local, first.utc) == ("20:14", "2030-01-03T01:14:12Z")
    assert first.local_iso == "2030-01-02T20:14:12-05:00"
    assert "20:14" in render(transcript, "md")


def test_csv_guards_cells_that_look_like_formulas(store: Store) -> None:
    """A spreadsheet never runs a participant's text or name: such cells start with '."""
    rows = list(csv.DictReader(io.StringIO(render(build_transcript(store, CHAT), "csv"))))
    eve = next(r for r in rows if r["question"] == "Q3")
    assert eve["text"] == "'=1+2 EVETOKENQ3"
    assert eve["author"] == '\'=HYPERLINK("https://evil.example")'
    assert all(not v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())


def test_csv_keeps_a_bare_row_for_an_opted_out_answer(store: Store) -> None:
    """The opted-out answer is a row with its question only: counts add up, nobody is named."""
    rows = list(csv.DictReader(io.StringIO(render(build_transcript(store, CHAT), "csv"))))
    assert len(rows) == 6
    hidden = [r for r in rows if r["author"] == "someone who opted out of bots"]
    assert [(r["question"], r["handle"], r["url"], r["text"], r["time_utc"]) for r in hidden] == [
        ("Q1", "", "", "", "")
    ]


def test_markdown_cannot_be_made_to_link_or_inject_html(store: Store) -> None:
    """Participant text renders as text: no javascript: link, no <b>, no emphasis."""
    markdown = render(build_transcript(store, CHAT), "md")
    html = MarkdownIt("commonmark").render(markdown)
    soup = BeautifulSoup(html, "html.parser")
    hrefs = [a["href"] for a in soup.find_all("a")]
    assert hrefs and all(h.startswith("https://") for h in hrefs)
    assert soup.find("b") is None
    ben = next(li for li in soup.find_all("li") if "BENTOKENQ1" in li.get_text())
    assert "[click](javascript:alert(1)) <b>bold</b> **x**" in ben.get_text()
    assert ben.find("strong").get_text() == "Ben Okafor"  # the only bold is the name


def test_markdown_neutralises_block_syntax_at_line_starts(tmp_path: Path) -> None:
    """Lines of an answer that look like headings, quotes or lists stay in the answer."""
    store = open_store(tmp_path)
    add_chat(store, CHAT, questions=QUESTIONS[:1])
    text = "# heading\n> quote\n- item\n1. one\n    code\n<div>raw</div>\n---"
    add_post(store, CHAT, ANA, "1", text, answers=[(1, "", text)])
    html = MarkdownIt("commonmark").render(render(build_transcript(store, CHAT), "md"))
    soup = BeautifulSoup(html, "html.parser")
    for tag in ("h2", "blockquote", "pre", "div", "hr", "ol"):
        found = [t.get_text() for t in soup.find_all(tag)]
        assert not any("heading" in f or "quote" in f or "raw" in f for f in found), tag
    answer = soup.find_all("li")[-1].get_text()
    for line in ("# heading", "> quote", "- item", "1. one", "code", "<div>raw</div>", "---"):
        assert line in answer


def test_html_links_only_http_addresses(store: Store) -> None:
    """In the page, every href is http(s) and marked nofollow ugc noopener."""
    soup = BeautifulSoup(render(build_transcript(store, CHAT), "html"), "html.parser")
    links = soup.find_all("a", href=lambda h: not h.startswith("#"))
    assert links
    for link in links:
        assert link["href"].startswith(("https://", "http://"))
        assert link["rel"] == ["nofollow", "ugc", "noopener"]
    assert "javascript:alert(1)" in soup.get_text()


def test_write_archives_writes_the_four_formats(store: Store, data_dir: Path) -> None:
    """write_archives leaves <chat>.md/.html/.csv/.json in <data_dir>/archives."""
    paths = write_archives(store, CHAT, archive_folder(data_dir))
    assert [p.name for p in paths] == [f"{CHAT}.{fmt}" for fmt in FORMATS]
    assert all(p.parent == data_dir / "archives" and p.stat().st_size > 0 for p in paths)
    assert not [p for p in (data_dir / "archives").iterdir() if p.name.startswith(".")]


def test_cli_archive_writes_the_chosen_format(data_dir: Path) -> None:
    """`chatbot archive CHAT --format html --output FILE` writes that page."""
    out = data_dir / "page.html"
    result = CliRunner().invoke(
        app,
        ["archive", CHAT, "--format", "html", "--output", str(out), "--data-dir", str(data_dir)],
    )
    assert result.exit_code == 0, result.output
    assert "ANATOKENQ1" in out.read_text(encoding="utf-8")


def test_cli_archive_names_the_chats_it_knows(data_dir: Path) -> None:
    """An unknown chat id is an error that lists the chats there are."""
    result = CliRunner().invoke(app, ["archive", "nope", "--data-dir", str(data_dir)])
    assert result.exit_code != 0
    assert CHAT in str(result.exception)


@pytest.fixture
def hostile_store(tmp_path: Path) -> Store:
    """A chat whose answers, and some authors' names, are the hostile corpus."""
    store = open_store(tmp_path)
    add_chat(store, CHAT, questions=QUESTIONS)
    for i, item in enumerate(hostile_answers()):
        author = person(f"teacher{i}@school.example", item.author)
        add_post(store, CHAT, author, str(i), item.text, answers=[(1, "", item.text)])
    return store


def test_json_keeps_every_hostile_text_exactly(hostile_store: Store) -> None:
    """JSON round-trips each hostile answer, bidi controls included (as escapes)."""
    text = render(build_transcript(hostile_store, CHAT), "json")
    assert "\u202e" not in text  # written as a visible escape, not the character
    answers = json.loads(text)["questions"][0]["answers"]
    assert sorted(a["text"] for a in answers) == sorted(h.text for h in hostile_answers())


def test_markdown_of_hostile_answers_renders_no_markup(hostile_store: Store) -> None:
    """Rendered Markdown of the hostile corpus holds no element a participant wrote."""
    html = MarkdownIt("commonmark").render(render(build_transcript(hostile_store, CHAT), "md"))
    soup = BeautifulSoup(html, "html.parser")
    written = {t.name for t in soup.find_all(True)}
    assert written <= {"h1", "h2", "p", "ul", "li", "strong", "em", "a", "br"}
    assert all(a["href"].startswith("https://") for a in soup.find_all("a"))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("signal", ["noindex", "!no-unauthenticated label"])
def test_people_off_the_web_are_counted_but_never_shown(
    tmp_path: Path, fmt: str, signal: str
) -> None:
    """Someone who keeps off the open web (Mastodon noindex, Bluesky !no-unauthenticated) is
    left out of the published transcript, in every format, and counted."""
    store = open_store(tmp_path)
    add_chat(store, CHAT, questions=QUESTIONS)
    nina = person("nina@school.example", "Nina Private", web_opt_out=signal)
    add_post(store, CHAT, ANA, "1", "A1: ANATOKENQ1", answers=[(1, "", "ANATOKENQ1")])
    add_post(store, CHAT, nina, "2", "A1: NINATOKEN", answers=[(1, "", "NINATOKEN")])
    add_post(store, CHAT, nina, "3", "Hi, Nina, art", kind="introduction", minutes=2)
    transcript = build_transcript(store, CHAT)
    text = render(transcript, fmt)
    assert "ANATOKENQ1" in text
    for hidden in ("NINATOKEN", "Nina Private", "nina@school.example", "Hi, Nina"):
        assert hidden not in text, f"{hidden!r} leaked into the {fmt} transcript"
    assert (transcript.questions[0].opted_out, transcript.introductions_opted_out) == (1, 1)


def test_the_time_line_names_a_zone_once(tmp_path: Path) -> None:
    """A UTC chat reads "... to 21:00 UTC", not "UTC (UTC)"; a New York one names its zone."""
    store = open_store(tmp_path)
    add_chat(store, "utc-chat", questions=QUESTIONS, timezone="UTC")
    add_chat(store, "ny-chat", questions=QUESTIONS)
    assert build_transcript(store, "utc-chat").when.endswith("02:00 UTC")
    assert build_transcript(store, "ny-chat").when.endswith("EST (America/New_York)")
