"""Loading and checking scripts: bounds, the horizon, every problem at once, no surprises."""

from __future__ import annotations

import json
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chatbot import cli, loader
from chatbot.errors import ScriptError, Severity
from chatbot.loader import check_paths, load_script, script_files
from chatbot.source import MAX_SCRIPT_BYTES, parse_yaml

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ONE_OFF = """title: Fixture chat
hashtag: FixChat
timezone: America/New_York
start: 2027-01-07 20:00
networks: [mastodon, bluesky]
moderators:
  - name: Host
welcome:
  text: "Welcome to {hashtag}!"
questions:
  - text: "What did you try this month?"
closing:
  text: "Thanks for joining {hashtag}!"
"""
WEEKLY_0130 = ONE_OFF.replace(
    "start: 2027-01-07 20:00\n",
    'recurrence:\n  every: week\n  weekday: sunday\n  time: "01:30"\n  starting: 2027-01-07\n',
)


def write(folder: Path, text: str, name: str = "chat.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_weekly_0130_new_york_is_refused_for_both_fall_back_days(tmp_path: Path) -> None:
    """A weekly 01:30 New York series from 2027-01-07 names the fall-backs of 2027 and 2028."""
    with pytest.raises(ScriptError) as caught:
        load_script(write(tmp_path, WEEKLY_0130), NOW)
    messages = [p.message for p in caught.value.problems]
    assert len(messages) == 1
    assert "2027-11-07 and 2028-11-05 at 01:30 happen twice" in messages[0]


def test_the_runner_checks_the_horizon_from_today_not_from_the_series_start(
    tmp_path: Path,
) -> None:
    """With now=None (the running bot), a series begun in 2000 is checked from today on."""
    path = write(tmp_path, WEEKLY_0130.replace("2027-01-07", "2000-01-06"))
    report = check_paths([path], None, today=NOW)
    assert len(report.problems) == 1
    assert "chats on 2027-11-07 and 2028-11-05 at 01:30" in report.problems[0].message


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """A file over the cap is one problem naming its size and the cap."""
    path = write(tmp_path, ONE_OFF + "#" * MAX_SCRIPT_BYTES)
    report = check_paths([path], NOW)
    assert len(report.problems) == 1
    assert f"a chat script can be at most {MAX_SCRIPT_BYTES:,} bytes" in report.problems[0].message


def test_a_script_at_the_size_cap_is_checked(tmp_path: Path) -> None:
    """A script just under the cap (padded with a comment) is loaded like any other."""
    padding = "# " + "x" * (MAX_SCRIPT_BYTES - len(ONE_OFF) - 10) + "\n"
    path = write(tmp_path, ONE_OFF + padding)
    assert path.stat().st_size <= MAX_SCRIPT_BYTES
    assert check_paths([path], NOW).scripts


def test_an_alias_bomb_is_refused_on_the_line_it_explodes(tmp_path: Path) -> None:
    """Aliases past the budget are refused before anything is expanded."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)]
    doc, problems = parse_yaml("\n".join(lines), "bomb.yaml")
    assert doc.data is None
    assert [(p.line, p.message[:25]) for p in problems] == [(4, "aliases (*name) in this f")]


def test_ten_thousand_levels_of_nesting_are_refused(tmp_path: Path) -> None:
    """Nesting deeper than any script needs is one problem, not a RecursionError."""
    _doc, problems = parse_yaml("title: " + "[" * 10_000 + "]" * 10_000, "deep.yaml")
    assert len(problems) == 1
    assert "nested more than 10 levels deep" in problems[0].message


def test_a_shared_moderator_through_an_alias_is_fine(tmp_path: Path) -> None:
    """A small alias (the host as guest too) is accepted."""
    text = ONE_OFF.replace(
        "moderators:\n  - name: Host\n",
        "moderators:\n  - &host {name: Host, bluesky: host.bsky.social}\nguest: *host\n",
    )
    loaded = load_script(write(tmp_path, text), NOW)
    assert loaded.script.guest is not None and loaded.script.guest.name == "Host"


def test_one_bad_file_never_stops_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An internal error on one file is a problem naming it; the other files still load."""
    write(tmp_path, ONE_OFF, "a.yaml")
    write(tmp_path, ONE_OFF.replace("Fixture chat", "Broken chat"), "b.yaml")
    import chatbot.loader

    real = chatbot.loader.check_script

    def fragile(script, *args, **kwargs):  # type: ignore[no-untyped-def]
        if script.title == "Broken chat":
            raise RuntimeError("surprise")
        return real(script, *args, **kwargs)

    monkeypatch.setattr(chatbot.loader, "check_script", fragile)
    report = check_paths([tmp_path], NOW)
    assert [s.script_id for s in report.scripts] == ["a"]
    assert len(report.problems) == 1
    assert report.problems[0].file.endswith("b.yaml")
    assert "internal error: RuntimeError" in report.problems[0].message


def test_upper_case_suffixes_are_scripts_and_hidden_files_are_not(tmp_path: Path) -> None:
    """CHAT.YAML and x.Yml are found; .#chat.yaml (an editor's lock file) is not."""
    for name in ("CHAT.YAML", "x.Yml", ".#chat.yaml", "notes.txt"):
        write(tmp_path, ONE_OFF, name)
    found, problems = script_files([tmp_path])
    assert sorted(p.name for p in found) == ["CHAT.YAML", "x.Yml"]
    assert problems == []


def test_the_same_file_named_twice_is_checked_once(tmp_path: Path) -> None:
    """A file given directly and through its folder is one file, not a duplicate id."""
    path = write(tmp_path, ONE_OFF)
    report = check_paths([tmp_path, path], NOW)
    assert report.files == 1
    assert report.problems == []


def test_a_past_one_off_is_a_note_and_still_loads(tmp_path: Path) -> None:
    """A finished one-off is a note: no problem, the script is there."""
    path = write(tmp_path, ONE_OFF.replace("2027-01-07", "2026-10-01"))
    report = check_paths([path], NOW)
    assert report.problems == [] and report.warnings == []
    assert [p.severity for p in report.notes] == [Severity.NOTE]
    assert report.scripts


def test_a_fixed_offset_zone_is_a_warning_and_the_script_runs(tmp_path: Path) -> None:
    """EST warns, suggesting America/New_York; the script is still valid for the bot."""
    path = write(tmp_path, ONE_OFF.replace("America/New_York", "EST"))
    report = check_paths([path], NOW)
    assert report.scripts
    assert [p.hint for p in report.warnings] == [
        "use America/New_York to follow its local time in winter and in summer"
    ]


def test_a_time_zone_typo_hides_no_other_problem(tmp_path: Path) -> None:
    """A bad zone, a bad type and an unknown placeholder are all reported together."""
    text = (
        ONE_OFF.replace("America/New_York", "America/New_Yrok")
        .replace("{hashtag}!", "{hashtg}!", 1)
        .replace('  - text: "What did you try this month?"', "  - text: Hi\n    number: two")
    )
    report = check_paths([write(tmp_path, text)], NOW)
    assert sorted(p.field for p in report.problems) == [
        "questions[1].number",
        "timezone",
        "welcome.text",
    ]


def test_main_prints_json_and_exits_3_on_an_internal_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An error that escapes is one line on stderr, JSON on stdout in JSON mode, exit 3."""

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom\nsecond line")

    # `chatbot validate` imports check_paths when it runs (a fast start), so it is
    # replaced where it lives.
    monkeypatch.setattr(loader, "check_paths", broken)
    monkeypatch.setattr(sys, "argv", ["chatbot", "validate", "schedules", "--format", "json"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 3
    out, err = capsys.readouterr()
    assert json.loads(out)["error"] == "internal"
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_a_broken_image_file_is_not_an_image(tmp_path: Path) -> None:
    """A text file named .png is refused by what it holds, not accepted by its name."""
    (tmp_path / "q.png").write_text("not a picture", encoding="utf-8")
    text = ONE_OFF.replace(
        '  - text: "What did you try this month?"',
        '  - text: "What did you try this month?"\n    image: {path: q.png, alt: A card}',
    )
    report = check_paths([write(tmp_path, text)], NOW)
    assert [p.field for p in report.problems] == ["questions[1].image.path"]


def test_a_real_picture_passes_the_image_check(tmp_path: Path) -> None:
    """The example's PNG, under its own name, is accepted."""
    shutil.copy(ROOT / "schedules" / "images" / "q1-blended-model.png", tmp_path / "q.png")
    text = ONE_OFF.replace(
        '  - text: "What did you try this month?"',
        '  - text: "What did you try this month?"\n    image: {path: q.png, alt: A card}',
    )
    assert check_paths([write(tmp_path, text)], NOW).scripts


def test_the_running_bots_reload_skips_a_bomb_and_keeps_the_other_scripts(tmp_path: Path) -> None:
    """As the runner reloads (now=None): the bomb is one problem, the good script still runs."""
    write(tmp_path, ONE_OFF, "good.yaml")
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)]
    write(tmp_path, "\n".join(lines), "bomb.yaml")
    report = check_paths([tmp_path], None, today=NOW)
    assert [s.script_id for s in report.scripts] == ["good"]
    assert [p.file.rsplit("/", 1)[-1] for p in report.problems] == ["bomb.yaml"]
