"""Every broken script in tests/fixtures/broken/ gets a clear, line-numbered problem.

Each fixture's first lines state what ``chatbot validate`` must report::

    # expect: line=12 field=questions[2].text message="Q2 is too long for ..." hint="shorten"

- ``line``: the 1-based line the problem is reported on (the mistake's own line),
  ``none`` for a problem with the file as a whole that has no line;
- ``field``: the dotted field exactly as reported, ``(file)`` for the file as a whole;
- ``message``: the problem's whole message, exactly;
- ``hint`` (optional): a fragment its "fix:" line must contain;
- ``severity`` (optional): ``error`` (the default), ``warning`` or ``note``;
- ``file`` (optional, in a folder's ``expect.txt``): the file the problem names,
  relative to the folder; the folder itself when left out.

Values with spaces are quoted (shell rules). A file with several mistakes has one
``# expect:`` line for each, and the report must hold exactly those, no more. A
case with an error or a warning exits 1; one with only notes, or ``# expect: none``
(a script the checks once got wrong), exits 0. A folder is one case (e.g. two
files sharing a chat id); a file in it that is fine by itself says
``# expect: none``; an ``expect.txt`` holds the expectations of files that cannot
carry their own (a link, a UTF-16 file) and of the folder itself.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import subprocess
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chatbot.cli import app

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "broken"
NOW = "2026-11-24T12:00"
EXPECT = "# expect:"
# A rendered problem: "FILE:LINE:COLUMN: FIELD: MESSAGE", then "    fix: HINT".
_PROBLEM = re.compile(
    r"^(?P<file>[^\s:]+)(?::(?P<line>\d+))?(?::(?P<column>\d+))?: (?P<field>\S+): "
    r"(?:(?P<severity>warning|note): )?(?P<message>.*)$"
)
EXPECT_FILE = "expect.txt"


@dataclass(frozen=True)
class Expected:
    """One problem a fixture says ``chatbot validate`` reports."""

    file: str
    line: int | None
    field: str  # "" for the file as a whole
    message: str
    hint: str
    severity: str = "error"

    def matches(self, problem: dict[str, object]) -> bool:
        return (
            problem["file"] == self.file
            and problem["line"] == self.line
            and problem["field"] == self.field
            and problem["message"] == self.message
            and self.hint in str(problem["hint"])
            and problem["severity"] == self.severity
        )

    @property
    def prefix(self) -> str:
        """How the problem's line in the text report starts."""
        return f"{self.file}:{self.line}:" if self.line is not None else f"{self.file}: "


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def read_expectations(path: Path) -> list[Expected]:
    """The ``# expect:`` lines at the top of ``path`` (a file may be deliberately not UTF-8)."""
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    if not lines or not lines[0].startswith(EXPECT):
        raise ValueError(f"{path}: the first line must be a '{EXPECT} ...' comment")
    expected = []
    for text in lines:
        if not text.startswith(EXPECT):
            break
        body = text.removeprefix(EXPECT).strip()
        if body.startswith("none"):
            continue
        fields = dict(token.split("=", 1) for token in shlex.split(body))
        unknown = set(fields) - {"line", "field", "message", "hint", "severity", "file"}
        if unknown or not {"line", "field", "message"} <= set(fields):
            raise ValueError(f"{path}: bad expectation {text!r}")
        if path.name == EXPECT_FILE:
            named = path.parent / fields["file"] if "file" in fields else path.parent
        else:
            named = path
        expected.append(
            Expected(
                file=_relative(named),
                line=None if fields["line"] == "none" else int(fields["line"]),
                field="" if fields["field"] == "(file)" else fields["field"],
                message=fields["message"],
                hint=fields.get("hint", ""),
                severity=fields.get("severity", "error"),
            )
        )
    return expected


def _is_script(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml")


def cases() -> list[Path]:
    """Each top-level file is a case; each folder is one case of the files in it."""
    return sorted(p for p in CORPUS.iterdir() if p.is_dir() or _is_script(p))


def case_expectations(case: Path) -> list[Expected]:
    if not case.is_dir():
        return read_expectations(case)
    files = sorted(
        p
        for p in case.rglob("*")
        if p.name == EXPECT_FILE or (_is_script(p) and not p.is_symlink() and _labelled(p))
    )
    return [item for file in files for item in read_expectations(file)]


def _labelled(path: Path) -> bool:
    """Whether a script in a folder case carries its own ``# expect:`` lines."""
    return path.read_bytes().startswith(EXPECT.encode())


def expected_exit(case: Path) -> int:
    """1 when the case expects an error or a warning, 0 when only notes or nothing."""
    return int(any(item.severity != "note" for item in case_expectations(case)))


def parse_text_report(output: str) -> list[dict[str, object]]:
    """The problems in ``chatbot validate``'s text output, shaped like its JSON ones."""
    problems: list[dict[str, object]] = []
    for text in output.splitlines():
        if text.startswith("    fix: ") and problems:
            problems[-1]["hint"] = text.removeprefix("    fix: ")
            continue
        match = _PROBLEM.match(text)
        if match:
            problems.append(
                {
                    "file": match["file"],
                    "line": int(match["line"]) if match["line"] else None,
                    "field": "" if match["field"] == "(file)" else match["field"],
                    "message": match["message"],
                    "hint": "",
                    "severity": match["severity"] or "error",
                }
            )
    return problems


@dataclass(frozen=True)
class Run:
    """One ``chatbot validate`` run: its exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Runs:
    """``chatbot validate CASE`` with text output and with ``--format json``."""

    text: Run
    json: Run


def _in_process(args: list[str]) -> Run:
    """The CLI's validate command, in this process (the whole corpus in seconds)."""
    with contextlib.chdir(ROOT):
        result = CliRunner().invoke(app, ["validate", *args, "--now", NOW])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(result.exception))
        return Run(99, result.stdout, f"{result.stderr}\nTraceback (in process)\n{trace}")
    return Run(result.exit_code, result.stdout, result.stderr)


@pytest.fixture(scope="module")
def validate() -> Callable[[Path], Runs]:
    """Run the CLI's validate on a case, both output formats, each case once per module."""
    done: dict[Path, Runs] = {}

    def get(case: Path) -> Runs:
        if case not in done:
            target = _relative(case)
            done[case] = Runs(_in_process([target]), _in_process([target, "--format", "json"]))
        return done[case]

    return get


def _report(run: Run | subprocess.CompletedProcess[str]) -> str:
    return f"exit code {run.returncode}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}"


def test_corpus_covers_at_least_80_cases() -> None:
    """The corpus holds at least 80 cases; nearly all of them expect a problem."""
    all_cases = cases()
    assert len(all_cases) >= 80
    quiet = [case.name for case in all_cases if not case_expectations(case)]
    assert len(quiet) <= 5, quiet


def test_every_expected_problem_says_how_to_fix_it() -> None:
    """Each expectation names a fix: no problem leaves a co-moderator without one."""
    for case in cases():
        for item in case_expectations(case):
            assert item.hint, f"{case.name}: {item.message} has no hint in its expectation"


@pytest.mark.parametrize("case", cases(), ids=lambda case: case.stem)
def test_broken_script_reports_its_problems_by_line(
    case: Path, validate: Callable[[Path], Runs]
) -> None:
    """A case exits as expected and names each mistake's file:line, field, message and fix."""
    run = validate(case).text
    output = run.stdout + run.stderr
    assert "Traceback" not in output, _report(run)
    assert run.returncode == expected_exit(case), _report(run)
    expected = case_expectations(case)
    problems = parse_text_report(run.stdout)
    for item in expected:
        assert item.prefix in run.stdout, f"{item}\n{_report(run)}"
        assert any(item.matches(p) for p in problems), f"{item}\n{_report(run)}"
    assert len(problems) == len(expected), f"unexpected extra problems\n{_report(run)}"


@pytest.mark.parametrize("case", cases(), ids=lambda case: case.stem)
def test_broken_script_json_report_has_the_same_problems(
    case: Path, validate: Callable[[Path], Runs]
) -> None:
    """``--format json`` prints only JSON, exits the same, and lists the text report's problems."""
    runs = validate(case)
    assert "Traceback" not in runs.json.stdout + runs.json.stderr, _report(runs.json)
    assert runs.json.returncode == expected_exit(case), _report(runs.json)
    report = json.loads(runs.json.stdout)
    assert report["ok"] is (expected_exit(case) == 0)
    problems = [
        {key: problem[key] for key in ("file", "line", "field", "message", "hint", "severity")}
        for problem in [*report["problems"], *report["notes"]]
    ]
    for item in case_expectations(case):
        assert any(item.matches(p) for p in problems), f"{item}\n{_report(runs.json)}"
    assert problems == parse_text_report(runs.text.stdout)


# The crash classes of the first hostile-scripts report, through the installed command:
# no traceback, exit code 1, and only JSON on stdout in JSON mode.
CRASH_CASES = [
    "date-not-in-calendar-starting.yaml",
    "time-as-number.yaml",
    "duration-infinite.yaml",
    "closing-far-future.yaml",
    "calendar-edge-tokyo.yaml",
    "tag-int.yaml",
    "deep-nesting.yaml",
    "alias-bomb.yaml",
]


@pytest.mark.parametrize("name", CRASH_CASES)
def test_crash_case_through_the_installed_command_prints_only_json(
    name: str, chatbot_command: list[str], cli_env: dict[str, str]
) -> None:
    """Through the real ``chatbot`` process: exit 1, JSON alone on stdout, the expected problem."""
    case = CORPUS / name
    run = subprocess.run(
        [*chatbot_command, "validate", _relative(case), "--format", "json", "--now", NOW],
        cwd=ROOT,
        env=cli_env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert "Traceback" not in run.stdout + run.stderr, _report(run)
    assert run.returncode == 1, _report(run)
    report = json.loads(run.stdout)
    for item in case_expectations(case):
        assert any(item.matches(p) for p in report["problems"]), _report(run)
