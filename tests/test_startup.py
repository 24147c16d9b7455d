"""``chatbot --help``, ``validate`` and ``preview`` start fast: they import no SDK or heavy library.

Co-moderators run ``chatbot validate`` in editors and pre-commit hooks, where a
second is an eternity. Each command runs in a fresh Python (``python -c``, which
imports :mod:`chatbot.cli` and runs it with the command's arguments, as the
``chatbot`` script does) and reports every module it imported; none of the
heavy ones may be among them. benchmarks/startup.py measures the time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "schedules").glob("*.yaml"))
NOW = "2026-11-24T12:00"
# The network SDKs, the database, templates, charts, the scheduler, metrics, HTTP.
HEAVY = {
    "atproto",
    "atproto_client",
    "mastodon",
    "sqlalchemy",
    "jinja2",
    "matplotlib",
    "apscheduler",
    "psycopg",
    "prometheus_client",
    "requests",
    "httpx",
}
MARKER = "imported modules: "
CHILD = f"""
import json, sys
from chatbot.cli import main
sys.argv = ["chatbot", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print({MARKER!r} + json.dumps({{"code": code, "modules": sorted(sys.modules)}}), file=sys.stderr)
"""
COMMANDS = [
    ["--help"],
    ["validate", "schedules/", "--now", NOW],
    *[["preview", str(path.relative_to(ROOT)), "--now", NOW] for path in EXAMPLES],
]


def imported_by(args: list[str], env: dict[str, str]) -> tuple[int, set[str]]:
    """The exit code of ``chatbot *args`` and the top-level packages it imported."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith(MARKER)]
    assert lines, result.stderr
    found = json.loads(lines[-1].removeprefix(MARKER))
    return found["code"], {name.split(".")[0] for name in found["modules"]}


def test_the_examples_are_there() -> None:
    """Both example scripts are checked (one on Mastodon and Bluesky, one on Bluesky)."""
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_the_command_imports_nothing_heavy(args: list[str], cli_env: dict[str, str]) -> None:
    """The command succeeds without importing a network SDK, SQLAlchemy, Jinja2, matplotlib..."""
    code, modules = imported_by(args, cli_env)
    assert code == 0
    assert "chatbot" in modules
    assert sorted(modules & HEAVY) == []


def test_the_check_sees_a_heavy_import(cli_env: dict[str, str], tmp_path: Path) -> None:
    """The check itself works: a command that opens the database imports SQLAlchemy."""
    code, modules = imported_by(["db", "upgrade", "--data-dir", str(tmp_path)], cli_env)
    assert code == 0
    assert "sqlalchemy" in modules


# What a bot at rest has no use for until it posts on that network, reads HTML, checks a
# picture or writes a transcript.
AT_REST_UNUSED = {"atproto", "atproto_client", "mastodon", "lxml", "PIL", "jinja2", "matplotlib"}


def test_a_bot_on_the_local_network_at_rest_loads_no_sdk_parser_or_template(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """`chatbot run` with only the local network (run with nothing planned, so that
    --exit-when-done ends it) loads neither network SDK, nor lxml, Pillow, Jinja2 or
    matplotlib: about 70 MB at rest instead of 116 MB."""
    (tmp_path / "schedules").mkdir()
    (tmp_path / "config.yaml").write_text(
        f"data_dir: {tmp_path / 'data'}\nschedules: {tmp_path / 'schedules'}\n", encoding="utf-8"
    )
    args = ["run", "--config", str(tmp_path / "config.yaml"), "--exit-when-done"]
    code, modules = imported_by(args, cli_env)
    assert code == 0
    assert "apscheduler" in modules  # it did run
    assert sorted(modules & AT_REST_UNUSED) == []
