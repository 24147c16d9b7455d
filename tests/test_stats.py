"""Participation across a year of monthly chats, against figures worked out by hand."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from chatdata import BLUESKY, add_chat, add_post, open_store, person
from PIL import Image
from typer.testing import CliRunner

from chatbot import localtime
from chatbot.cli import app
from chatbot.config import Identity
from chatbot.stats import (
    SeriesStats,
    UnknownSeries,
    draw_chart,
    render_stats,
    report_csv,
    series_stats,
)
from chatbot.store import ChatState, Store

SERIES = "blchat"
# The first Thursday of each month of 2030, 20:00 in New York.
DAYS = (3, 7, 7, 4, 2, 6, 4, 1, 5, 3, 7, 5)
NEW_YORK = localtime.zone("America/New_York")
QUESTIONS = ("Q1: What works? #BLchat", "Q2: What next? #BLchat")

ANA_MASTODON = person("ana@mastodon.education", "Ana R.")
ANA_BLUESKY = person("ana.bsky.social", "ana 🍎", network=BLUESKY, account_id="did:plc:ana")
ANA = Identity(name="Ana Rivera", accounts=["@ana@mastodon.education", "ana.bsky.social"])
BEN = person("ben@school.example", "Ben Okafor")
CLEO = person("cleo@school.example", "Cleo Park")
DEV = person("dev@school.example", "Dev Shah")
ELI = person("eli@school.example", "Eli Moss")
GUS = person("gus@school.example", "Gus Lind")
OLGA = person("olga@school.example", "Olga Hidden", opt_out="#nobot in bio")
HOST = person("blchat@mastodon.education", "BL Chat Team")
TROLL = person("troll@spam.example", "Troll")
FAY = person("fay@school.example", "Fay Gone")
BOT = person("helper@bots.example", "Helper Bot", bot=True)
ZED = person("zed@school.example", "Zed Missed")

# Who answered (two answers a post) in which chat, numbered 1 to 12.
ATTENDANCE = {
    ANA_MASTODON: (1, 2, 3, 4, 9, 11, 12),
    ANA_BLUESKY: (5, 6, 7, 8, 9),  # chat 9: both of Ana's accounts, one person
    BEN: (1, 3, 5, 7, 9, 11),
    CLEO: (6, 7, 8, 9, 10, 11, 12),
    DEV: (12,),
    OLGA: (2, 3, 4),
}


def chat_id(n: int) -> str:
    return f"{SERIES}-2030-{n:02d}-{DAYS[n - 1]:02d}"


def start(n: int) -> datetime:
    wall_clock = datetime(2030, n, DAYS[n - 1], 20, 0)  # noqa: DTZ001 - to_utc takes local time
    return localtime.to_utc(wall_clock, NEW_YORK)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Twelve held chats of blchat, a missed one, and another series' chat."""
    store = open_store(tmp_path)
    for n in range(1, 13):
        add_chat(store, chat_id(n), script_id=SERIES, start=start(n), questions=QUESTIONS)
        add_post(store, chat_id(n), HOST, "host", "Welcome!", kind="host", start=start(n))
    for author, chats in ATTENDANCE.items():
        for n in chats:
            answers = [(1, "", "stations"), (2, "", "exit tickets")]
            if author is ANA_BLUESKY and n == 9:
                answers = answers[:1]  # her second account answered once that night
            add_post(
                store,
                chat_id(n),
                author,
                f"{author.id}-{n}",
                "A1 stations A2 exit tickets",
                answers=answers,
                start=start(n),
            )
    add_post(
        store, chat_id(1), ELI, "eli", "Hi, Eli, 2nd grade", kind="introduction", start=start(1)
    )
    add_post(store, chat_id(10), GUS, "gus", "love this", kind="conversation", start=start(10))
    add_post(store, chat_id(2), TROLL, "troll", "buy now", kind="blocked", start=start(2))
    add_post(store, chat_id(3), BOT, "bot", "Reminder!", kind="conversation", start=start(3))
    add_post(
        store,
        chat_id(4),
        FAY,
        "fay",
        "A1: oops",
        answers=[(1, "", "oops")],
        start=start(4),
        deleted=True,
    )
    missed = f"{SERIES}-2030-07-18"
    add_chat(store, missed, script_id=SERIES, start=start(7), state=ChatState.MISSED)
    add_post(store, missed, ZED, "zed", "anyone here?", kind="conversation", start=start(7))
    add_chat(store, "mathchat-2030-03-12", script_id="mathchat", start=start(3))
    add_post(store, "mathchat-2030-03-12", ZED, "zed2", "A1: hi", answers=[(1, "", "hi")])
    store.close()
    return tmp_path


@pytest.fixture
def store(data_dir: Path) -> Store:
    return open_store(data_dir)


@pytest.fixture
def stats(store: Store) -> SeriesStats:
    return series_stats(store, SERIES, [ANA])


# Chat by chat. Participants: the people in ATTENDANCE for that chat, plus Eli (chat 1,
# an introduction only) and Gus (chat 10, a conversation post only); never the host,
# the troll (blocked), Fay (her only post deleted) or the bot. New: first chat of the
# series for that person; Ana's Bluesky account in chat 5 is Ana, so not new.
# Answers: two a post, Eli and Gus none, Ana three in chat 9 (two + one).
# Growth: against the previous chat's participants, e.g. chat 2: 2 - 3 = -1, -33%.
CHATS = [
    # label,      people, new, returning, answers, growth, percent
    ("2030-01-03", 3, 3, 0, 4, None, None),  # Ana, Ben, Eli: all new
    ("2030-02-07", 2, 1, 1, 4, -1, -33),  # Ana back; Olga new
    ("2030-03-07", 3, 0, 3, 6, +1, +50),  # Ana, Ben, Olga
    ("2030-04-04", 2, 0, 2, 4, -1, -33),  # Ana, Olga (Fay deleted her post)
    ("2030-05-02", 2, 0, 2, 4, 0, 0),  # Ana (on Bluesky), Ben
    ("2030-06-06", 2, 1, 1, 4, 0, 0),  # Ana; Cleo new
    ("2030-07-04", 3, 0, 3, 6, +1, +50),  # Ana, Ben, Cleo (the missed chat is not a chat)
    ("2030-08-01", 2, 0, 2, 4, -1, -33),  # Ana, Cleo
    ("2030-09-05", 3, 0, 3, 7, +1, +50),  # Ana (both accounts, once), Ben, Cleo
    ("2030-10-03", 2, 1, 1, 2, -1, -33),  # Cleo; Gus new, no answers
    ("2030-11-07", 3, 0, 3, 6, +1, +50),  # Ana, Ben, Cleo
    ("2030-12-05", 3, 1, 2, 6, 0, 0),  # Ana, Cleo; Dev new
]

# Person by person (Olga opted out: counted above, listed nowhere). Streaks count
# consecutive chats of the series: Ana came to 1-9, missed 10, came to 11-12
# (longest 9, current 2); Ben every other chat (longest 1, current 0: not in 12);
# Cleo 6-12 (7 and 7). Order: most chats, then longest streak, answers, name.
PEOPLE = [
    # name,        chats, current, longest, answers
    ("Ana Rivera", 11, 2, 9, 23),  # 10 chats x 2 answers + 3 in chat 9
    ("Cleo Park", 7, 7, 7, 14),
    ("Ben Okafor", 6, 0, 1, 12),
    ("Dev Shah", 1, 1, 1, 2),
    ("Eli Moss", 1, 0, 1, 0),
    ("Gus Lind", 1, 0, 1, 0),
]


def test_each_chats_figures_match_the_table(stats: SeriesStats) -> None:
    """Participants, new, returning, answers and growth per chat are the hand-worked ones."""
    got = [
        (
            c.label,
            c.participants,
            c.new,
            c.returning,
            c.answers,
            c.growth,
            None if c.growth_percent is None else round(c.growth_percent),
        )
        for c in stats.chats
    ]
    assert got == CHATS


def test_each_persons_figures_match_the_table(stats: SeriesStats) -> None:
    """Chats attended, current and longest streak and answers per person, in badge order."""
    got = [
        (p.person.name, p.chats, p.current_streak, p.longest_streak, p.total_answers)
        for p in stats.people
    ]
    assert got == PEOPLE


def test_linked_accounts_count_as_one_person(stats: SeriesStats) -> None:
    """Ana's Mastodon and Bluesky accounts are one person, listed once under her name."""
    anas = [p for p in stats.people if "ana.bsky.social" in p.person.accounts]
    assert len(anas) == 1
    assert anas[0].person.accounts == ("@ana@mastodon.education", "ana.bsky.social")
    assert not any(p.person.name in ("Ana R.", "ana 🍎") for p in stats.people)


def test_without_the_link_the_two_accounts_are_two_people(store: Store) -> None:
    """With no identities configured, Ana's Bluesky account first comes as someone new."""
    unlinked = series_stats(store, SERIES)
    assert unlinked.chats[4].new == 1  # chat 5: "ana 🍎" is new
    assert unlinked.chats[8].participants == 4  # chat 9: both accounts


def test_an_opted_out_person_is_counted_but_never_named(stats: SeriesStats, tmp_path: Path) -> None:
    """Olga counts in chats 2-4 and the total, and appears in no list, report or text."""
    assert (stats.total_people, stats.opted_out_people) == (7, 1)
    outputs = render_stats(stats) + report_csv(stats)
    for trace in ("Olga", "olga@school.example"):
        assert trace not in outputs
    assert "1 of them opted out of bots" in render_stats(stats)


def test_hosts_bots_blocked_and_deleted_posts_make_no_participant(stats: SeriesStats) -> None:
    """The host, the bot, the troll and Fay (post deleted) are in no list or count."""
    names = {p.person.name for p in stats.people}
    assert names.isdisjoint({"BL Chat Team", "Helper Bot", "Troll", "Fay Gone"})


def test_missed_chats_and_other_series_are_left_out(stats: SeriesStats) -> None:
    """A missed chat breaks no streak, and another series' chats are not counted."""
    assert len(stats.chats) == 12
    assert "Zed Missed" not in {p.person.name for p in stats.people}


def test_report_lists_each_person_with_dates_and_answers_per_chat(stats: SeriesStats) -> None:
    """The CSV has each person, their accounts, the dates attended and answers per chat."""
    rows = list(csv.DictReader(io.StringIO(report_csv(stats))))
    assert [r["person"] for r in rows] == [p[0] for p in PEOPLE]
    ana = rows[0]
    assert ana["accounts"] == "ana@mastodon.education ana.bsky.social"
    assert ana["chats_attended"] == "11"
    assert ana["dates_attended"].split("; ")[-3:] == ["2030-09-05", "2030-11-07", "2030-12-05"]
    assert (ana["answers 2030-09-05"], ana["answers 2030-10-03"]) == ("3", "")
    assert rows[-1]["answers 2030-10-03"] == "0"  # Gus came, answered nothing


def test_chart_is_a_png_of_every_chat(stats: SeriesStats, tmp_path: Path) -> None:
    """The chart is a PNG, wide enough for twelve labelled bars."""
    path = draw_chart(stats, tmp_path / "chart.png")
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width >= 800 and image.height == 400


def test_cli_stats_writes_the_report_and_the_chart(data_dir: Path) -> None:
    """`chatbot stats SERIES --csv --chart` prints the tables and writes both files."""
    config = data_dir / "config.yaml"
    config.write_text(
        yaml.safe_dump({"identities": [ANA.model_dump()], "data_dir": str(data_dir)}),
        encoding="utf-8",
    )
    report, chart = data_dir / "report.csv", data_dir / "chart.png"
    result = CliRunner().invoke(
        app, ["stats", SERIES, "--config", str(config), "--csv", str(report), "--chart", str(chart)]
    )
    assert result.exit_code == 0, result.output
    assert "Ana Rivera" in result.output and "Olga" not in result.output
    assert report.read_text(encoding="utf-8").startswith("person,accounts,chats_attended")
    assert chart.stat().st_size > 0


def test_stats_of_an_unknown_series_names_the_known_ones(store: Store) -> None:
    """Asking for a series that never met is an error listing the series there are."""
    with pytest.raises(UnknownSeries, match="blchat, mathchat"):
        series_stats(store, "nochat")
