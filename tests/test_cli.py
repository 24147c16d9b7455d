"""The ``chatbot`` command as people use it: help for every command, validate, preview."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from chatbot import localtime
from chatbot.cli import app
from chatbot.loader import load_script
from chatbot.plan import plan_upcoming
from chatbot.script import NetworkName

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "schedules").glob("*.yaml"))
NOW = "2026-11-24T12:00"
NOW_UTC = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

RunChatbot = Callable[..., subprocess.CompletedProcess[str]]


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path of the app, sub-commands of groups included.

    Duck-typed: typer builds its commands on its own copy of click, so a group is
    whatever has ``commands``.
    """
    for name, command in sorted(getattr(group, "commands", {}).items()):
        yield (*prefix, name)
        yield from _commands(command, (*prefix, name))


def _command(path: tuple[str, ...]) -> Any:
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


COMMANDS = list(_commands(typer.main.get_command(app)))


def test_the_app_registers_commands() -> None:
    """The app has the commands the help test iterates (validate and preview at least)."""
    assert {("validate",), ("preview",)} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help_text(path: tuple[str, ...]) -> None:
    """Every registered command answers --help with a description of what it does."""
    description = (_command(path).help or "").strip()
    assert description, f"chatbot {' '.join(path)} has no help text (give it a docstring)"
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert description.splitlines()[0] in result.output


def test_top_level_help_lists_every_command() -> None:
    """``chatbot --help`` names every command."""
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for path in COMMANDS:
        assert path[0] in result.output


# --- validate -------------------------------------------------------------------------


def test_validate_accepts_the_example_schedules(run_chatbot: RunChatbot) -> None:
    """``chatbot validate schedules/`` exits 0 and says all is well."""
    result = run_chatbot("validate", "schedules/", "--now", NOW)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(EXAMPLES)} valid chat script(s)" in result.stdout


def test_validate_json_of_the_examples_lists_their_chats(run_chatbot: RunChatbot) -> None:
    """``--format json`` on valid scripts says ok, with the chat ids and no problems."""
    result = run_chatbot("validate", "schedules/", "--format", "json", "--now", NOW)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["problems"] == []
    assert sorted(report["chats"]) == ["blchat", "family-literacy-night"]


def test_validate_accepts_the_example_config(run_chatbot: RunChatbot) -> None:
    """``validate --config config.example.yaml`` exits 0."""
    result = run_chatbot("validate", "--config", "config.example.yaml", "schedules/", "--now", NOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_validate_reports_a_broken_config_by_line(run_chatbot: RunChatbot, tmp_path: Path) -> None:
    """A broken config gives file:line problems naming each field, and never echoes a secret."""
    config = tmp_path / "config.yaml"
    config.write_text(
        "# a broken config\n"
        "data_dir: data\n"
        "accounts:\n"
        "  mastodon:\n"
        "    instance: https://mastodon.education\n"
        "    access_token: abc123secret\n"
        "late:\n"
        "  step_grace: soon\n"
        "  missed_start: skipp\n"
        "log_formt: json\n",
        encoding="utf-8",
    )
    result = run_chatbot("validate", "--config", str(config), "schedules/", "--now", NOW)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    assert f"{config}:6:19: accounts.mastodon.access_token: secrets are never written" in output
    assert f"{config}:8:15: late.step_grace: " in output
    assert f'{config}:9:17: late.missed_start: "skipp" is not one of: skip, shift' in output
    assert 'did you mean "skip"?' in output
    assert f'{config}:10:1: log_formt: unknown key "log_formt"' in output
    assert "abc123secret" not in output


def test_validate_of_a_missing_path_is_a_problem_not_a_crash(run_chatbot: RunChatbot) -> None:
    """A path that does not exist is reported as a problem with exit code 1."""
    result = run_chatbot("validate", "no-such-folder/", "--now", NOW)
    assert result.returncode == 1
    assert "no-such-folder: (file): no such file or folder" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


# --- preview --------------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_preview_piped_prints_every_step_in_local_and_utc_time(
    example: Path, run_chatbot: RunChatbot
) -> None:
    """Piped, preview prints plain text: each step's key with its local and UTC time."""
    relative = example.relative_to(ROOT).as_posix()
    result = run_chatbot("preview", relative, "--now", NOW)
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout
    assert "\x1b[" not in output, "colour codes in piped output"
    assert not set("│┃━─┏┗") & set(output), "a table drawn in piped output"

    loaded = load_script(example, NOW_UTC)
    chat = plan_upcoming(loaded.script, loaded.script_id, NOW_UTC, count=1)[0]
    tz = localtime.zone(chat.timezone)
    lines = output.splitlines()
    for step in chat.steps:
        local = step.at.astimezone(tz).strftime("%H:%M %Z")
        utc = f"{step.at:%H:%M} UTC"
        assert any(
            line.rstrip().endswith(f" {step.key}") and local in line and utc in line
            for line in lines
        ), f"no line for {step.key} at {local} / {utc}\n{output}"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_preview_piped_shows_lengths_in_each_networks_unit(
    example: Path, run_chatbot: RunChatbot
) -> None:
    """Preview gives Mastodon lengths in characters and Bluesky lengths in graphemes."""
    result = run_chatbot("preview", example.relative_to(ROOT).as_posix(), "--now", NOW)
    assert result.returncode == 0, result.stdout + result.stderr
    networks = load_script(example, NOW_UTC).script.networks
    if NetworkName.MASTODON in networks:
        assert "[mastodon]" in result.stdout
        assert "/500 characters ok" in result.stdout
    if NetworkName.BLUESKY in networks:
        assert "[bluesky]" in result.stdout
        assert "/300 graphemes ok" in result.stdout


def test_preview_of_a_series_lists_the_next_dates_with_their_utc_offset(
    run_chatbot: RunChatbot,
) -> None:
    """A series' preview lists the following dates with the offset in force on each."""
    result = run_chatbot("preview", "schedules/blended-learning.yaml", "--now", NOW)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "chat blchat-2027-01-07: Thu 07 Jan 2027 20:00 EST (2027-01-08 01:00 UTC)" in (
        result.stdout
    )
    assert "Thu 01 Apr 2027 20:00 EDT  (2027-04-02 00:00 UTC, UTC-04:00)" in result.stdout
    assert "Thu 04 Feb 2027 20:00 EST  (2027-02-05 01:00 UTC, UTC-05:00)" in result.stdout


def test_preview_of_a_broken_script_lists_its_problems_and_fails(
    run_chatbot: RunChatbot,
) -> None:
    """preview refuses a broken script with its problems and exit code 1, no traceback."""
    result = run_chatbot("preview", "tests/fixtures/broken/bad-hashtag.yaml", "--now", NOW)
    assert result.returncode == 1
    assert "tests/fixtures/broken/bad-hashtag.yaml:3:" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_validate_in_json_mode_prints_json_even_for_a_usage_mistake(
    run_chatbot: RunChatbot,
) -> None:
    """A mistake in the command line exits 2, and stdout is still JSON in JSON mode."""
    result = run_chatbot("validate", "schedules/", "--format", "json", "--no-such-option")
    assert result.returncode == 2
    assert json.loads(result.stdout) == {"ok": False, "error": "usage", "message": "see stderr"}
    assert "Traceback" not in result.stderr


def test_preview_of_a_past_one_off_shows_the_note_and_succeeds(
    run_chatbot: RunChatbot,
) -> None:
    """A finished one-off is a note: preview says there is no upcoming chat and exits 0."""
    result = run_chatbot("preview", "tests/fixtures/broken/start-in-past.yaml", "--now", NOW)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no upcoming chat" in result.stdout
    assert "note: this chat started on 2026-10-01" in result.stderr


def test_preview_lists_each_post_over_its_limit_as_a_problem() -> None:
    """A preview planned against a smaller limit names each post it shows as too long."""
    from chatbot.preview import build_preview, too_long
    from chatbot.text import Limits

    loaded = load_script(ROOT / "schedules" / "blended-learning.yaml", NOW_UTC)
    item = build_preview(loaded, NOW_UTC, Limits(mastodon_max_characters=60))
    problems = too_long(item)
    assert problems
    assert all("too long for mastodon" in p.message for p in problems)
    assert all(p.field and p.line for p in problems), "each names its step's line"


def test_run_names_every_missing_secret_at_once(run_chatbot: RunChatbot, tmp_path: Path) -> None:
    """A missing environment variable does not hide a missing secret file: both are named."""
    config = tmp_path / "config.yaml"
    config.write_text(
        "accounts:\n"
        "  mastodon:\n"
        "    instance: https://mastodon.education\n"
        "    access_token: {env: CHATBOT_TEST_NO_SUCH_TOKEN}\n"
        "  bluesky:\n"
        "    handle: district.bsky.social\n"
        "    app_password: {file: no-such-secret}\n",
        encoding="utf-8",
    )
    result = run_chatbot("run", "--config", str(config))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "2 secrets are missing" in output
    assert "environment variable CHATBOT_TEST_NO_SUCH_TOKEN is not set" in output
    assert f"cannot read the secret file {tmp_path / 'no-such-secret'}" in output
    assert "Traceback" not in output


def test_run_exit_when_done_with_no_chat_to_run_exits_at_once(
    run_chatbot: RunChatbot, tmp_path: Path
) -> None:
    """Nothing planned (an empty folder, or every chat already over) is nothing to wait for."""
    (tmp_path / "schedules").mkdir()
    config = tmp_path / "config.yaml"
    config.write_text("data_dir: data\nschedules: schedules\n", encoding="utf-8")
    result = run_chatbot("run", "--config", str(config), "--exit-when-done", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
