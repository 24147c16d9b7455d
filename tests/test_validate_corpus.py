"""Every broken script in tests/fixtures/broken/ gets a clear, line-numbered problem.

Each fixture's first lines state what ``chatbot validate`` must report::

    # expect: line=12 field=questions[2].text message="too long for bluesky" hint="shorten"

- ``line``: the 1-based line the problem is reported on (the mistake's own line);
- ``field``: the dotted field exactly as reported, ``(file)`` for the file as a whole;
- ``message`` and the optional ``hint``: fragments the problem's message and its
  "fix:" line must contain. Values with spaces are quoted (shell rules).

A file with several mistakes has one ``# expect:`` line for each, and the report
must hold exactly those problems, no more. A folder is one case (e.g. two files
sharing a chat id); a file in it that is fine by itself says ``# expect: none``.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "broken"
NOW = "2026-11-24T12:00"
EXPECT = "# expect:"
# A rendered problem: "FILE:LINE:COLUMN: FIELD: MESSAGE", then "    fix: HINT".
_PROBLEM = re.compile(
    r"^(?P<file>[^\s:]+)(?::(?P<line>\d+))?(?::(?P<column>\d+))?: (?P<field>\S+): (?P<message>.*)$"
)


@dataclass(frozen=True)
class Expected:
    """One problem a fixture says ``chatbot validate`` reports."""

    file: str
    line: int
    field: str  # "" for the file as a whole
    message: str
    hint: str

    def matches(self, problem: dict[str, object]) -> bool:
        return (
            problem["file"] == self.file
            and problem["line"] == self.line
            and problem["field"] == self.field
            and self.message in str(problem["message"])
            and self.hint in str(problem["hint"])
        )


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
        unknown = set(fields) - {"line", "field", "message", "hint"}
        if unknown or not {"line", "field", "message"} <= set(fields):
            raise ValueError(f"{path}: bad expectation {text!r}")
        expected.append(
            Expected(
                file=_relative(path),
                line=int(fields["line"]),
                field="" if fields["field"] == "(file)" else fields["field"],
                message=fields["message"],
                hint=fields.get("hint", ""),
            )
        )
    return expected


def cases() -> list[Path]:
    """Each top-level file is a case; each folder is one case of the files in it."""
    return sorted(p for p in CORPUS.iterdir() if p.is_dir() or p.suffix in (".yaml", ".yml"))


def case_expectations(case: Path) -> list[Expected]:
    files = sorted(case.rglob("*.yaml")) if case.is_dir() else [case]
    return [item for file in files for item in read_expectations(file)]


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
                }
            )
    return problems


@dataclass(frozen=True)
class Runs:
    """``chatbot validate CASE`` with text output and with ``--format json``."""

    text: subprocess.CompletedProcess[str]
    json: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def validate(
    chatbot_command: list[str], cli_env: dict[str, str]
) -> Iterator[Callable[[Path], Runs]]:
    """Run the real CLI on a case, both output formats at once, each case once per module."""
    done: dict[Path, Runs] = {}

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*chatbot_command, "validate", *args, "--now", NOW],
            cwd=ROOT,
            env=cli_env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=120,
            check=False,
        )

    with ThreadPoolExecutor(max_workers=2) as pool:

        def get(case: Path) -> Runs:
            if case not in done:
                target = _relative(case)
                text = pool.submit(run, [target])
                as_json = pool.submit(run, [target, "--format", "json"])
                done[case] = Runs(text.result(), as_json.result())
            return done[case]

        yield get


def _report(run: subprocess.CompletedProcess[str]) -> str:
    return f"exit code {run.returncode}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}"


def test_corpus_covers_at_least_28_broken_scripts() -> None:
    """The corpus holds at least 28 cases, each stating at least one expected problem."""
    all_cases = cases()
    assert len(all_cases) >= 28
    for case in all_cases:
        assert case_expectations(case), f"{case} states no expected problem"


@pytest.mark.parametrize("case", cases(), ids=lambda case: case.stem)
def test_broken_script_reports_its_problems_by_line(
    case: Path, validate: Callable[[Path], Runs]
) -> None:
    """A broken script exits 1 and names each mistake's file:line, field, message and fix."""
    run = validate(case).text
    output = run.stdout + run.stderr
    assert "Traceback" not in output, _report(run)
    assert run.returncode == 1, _report(run)
    expected = case_expectations(case)
    problems = parse_text_report(run.stdout)
    for item in expected:
        assert f"{item.file}:{item.line}:" in run.stdout, f"{item}\n{_report(run)}"
        assert any(item.matches(p) for p in problems), f"{item}\n{_report(run)}"
    assert len(problems) == len(expected), f"unexpected extra problems\n{_report(run)}"


@pytest.mark.parametrize("case", cases(), ids=lambda case: case.stem)
def test_broken_script_json_report_has_the_same_problems(
    case: Path, validate: Callable[[Path], Runs]
) -> None:
    """``--format json`` exits 1 and lists exactly the problems the text report shows."""
    runs = validate(case)
    assert "Traceback" not in runs.json.stdout + runs.json.stderr, _report(runs.json)
    assert runs.json.returncode == 1, _report(runs.json)
    report = json.loads(runs.json.stdout)
    assert report["ok"] is False
    problems = [
        {key: problem[key] for key in ("file", "line", "field", "message", "hint")}
        for problem in report["problems"]
    ]
    for item in case_expectations(case):
        assert any(item.matches(p) for p in problems), f"{item}\n{_report(runs.json)}"
    assert problems == parse_text_report(runs.text.stdout)
