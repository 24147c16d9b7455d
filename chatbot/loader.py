"""Loading chat scripts and checking them: every problem at once, each with its line and fix.

Co-moderators are not programmers, so nothing here raises a traceback at them:
YAML mistakes, wrong types, misspelt keys, time-zone typos, DST traps, missing
images and over-long posts all become :class:`~chatbot.errors.Problem` entries.
The running bot loads its folder through the same functions, so one bad file is
reported and skipped, and never stops the others.
"""

from __future__ import annotations

import dataclasses
import errno
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chatbot import localtime
from chatbot.checks import check_script
from chatbot.checks.shape import pydantic_problems, validate_every_part
from chatbot.checks.when import HORIZON_YEARS
from chatbot.errors import Problem, ScriptError, Severity
from chatbot.plan import chat_id, occurrences
from chatbot.script import ChatScript
from chatbot.source import SourceDoc, load_yaml, parse_yaml
from chatbot.text import Limits

__all__ = [
    "SCRIPT_SUFFIXES",
    "LoadedScript",
    "Report",
    "check_paths",
    "load_script",
    "no_scripts_problem",
    "pydantic_problems",
    "script_files",
]

# Script files end in .yaml or .yml, in any case (.YAML from Windows tools too).
SCRIPT_SUFFIXES = (".yaml", ".yml")
_MAX_FOLDER_DEPTH = 20


@dataclass(frozen=True)
class LoadedScript:
    """A valid chat script and where it came from."""

    script_id: str
    path: Path
    script: ChatScript
    doc: SourceDoc
    source: str = ""  # the YAML text this was loaded from
    stale: bool = False  # the file is broken now; this is its last good version
    notes: tuple[Problem, ...] = ()  # warnings and notes about a script that runs

    @property
    def base_dir(self) -> Path:
        return self.path.parent


@dataclass
class Report:
    """Result of checking files: the good scripts, every problem, warning and note found.

    ``problems`` holds the errors (a file with one does not run); ``warnings``
    are almost certainly mistakes but the script runs; ``notes`` only inform.
    """

    scripts: list[LoadedScript] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: int = 0
    warnings: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            {
                Severity.ERROR: self.problems,
                Severity.WARNING: self.warnings,
                Severity.NOTE: self.notes,
            }[problem.severity].append(problem)


# --- which files -------------------------------------------------------------------------


def script_files(paths: Iterable[Path]) -> tuple[list[Path], list[Problem]]:
    """Expand folders into their script files, sorted; missing paths and broken links are problems.

    Files and folders whose name starts with "." (editors' lock and backup
    files, .git) are left out.
    """
    found: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            _walk(path, found, problems, set(), 0)
        elif path.is_file():
            found.append(path)
        elif path.is_symlink():
            problems.append(_link_problem(path))
        else:
            problems.append(
                Problem(str(path), None, None, "", "no such file or folder", "check the path")
            )
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values()), problems


def _walk(
    folder: Path, found: list[Path], problems: list[Problem], seen: set[Path], depth: int
) -> None:
    real = folder.resolve()
    if real in seen or depth > _MAX_FOLDER_DEPTH:
        return  # a link back to a folder already read
    seen.add(real)
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        problems.append(
            Problem(
                str(folder), None, None, "", f"cannot read the folder: {exc.strerror}", "check it"
            )
        )
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        script = entry.suffix.lower() in SCRIPT_SUFFIXES
        if entry.is_symlink() and not entry.exists():
            if script:
                problems.append(_link_problem(entry))
        elif entry.is_dir():
            _walk(entry, found, problems, seen, depth + 1)
        elif script and entry.is_file():
            found.append(entry)
        elif script:
            problems.append(
                Problem(
                    str(entry),
                    None,
                    None,
                    "",
                    "this is not a regular file",
                    "chat scripts are plain text files: move this out of the folder",
                )
            )


def _link_problem(path: Path) -> Problem:
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return Problem(
                str(path),
                None,
                None,
                "",
                "this link points back to itself (a loop of links), not to a file",
                "delete the link, or point it at the chat script",
            )
    target = path.readlink()
    return Problem(
        str(path),
        None,
        None,
        "",
        f"this link points to {target}, which does not exist",
        "fix or delete the link",
    )


def no_scripts_problem(paths: list[Path]) -> Problem:
    """The problem of finding no script at all where some were expected."""
    where = ", ".join(str(p) for p in paths) or "."
    return Problem(
        where,
        None,
        None,
        "",
        f"no chat scripts found in {where}",
        "chat scripts are files ending in .yaml or .yml (in any case); check the folder",
    )


# --- checking ----------------------------------------------------------------------------


def check_paths(
    paths: Iterable[Path],
    now: datetime | None,
    limits: Limits | None = None,
    *,
    last_good: Callable[[Path], str | None] | None = None,
    today: datetime | None = None,
) -> Report:
    """Load and check every script under ``paths``; duplicate ids across files are problems.

    With ``last_good``, a file that is broken now is reported and its last good
    version (as ``last_good`` returns it) is used instead, marked stale. Series
    are checked from ``today`` (default: ``now``, or the clock when ``now`` is
    None as in the running bot) over the two years that follow.
    """
    today = today or now or datetime.now(UTC)
    files, problems = script_files(paths)
    report = Report(files=len(files))
    report.add(problems)
    for path in files:
        loaded, found = _check_one(path, now, limits, today)
        report.add(found)
        if loaded is None:
            previous = last_good(path) if last_good else None
            if previous is None:
                continue
            loaded, _ = _check_one(path, now, limits, today, previous)
            if loaded is None:
                continue
            loaded = dataclasses.replace(loaded, stale=True)
        clash = _id_clash(loaded, report.scripts, today)
        if clash is not None:
            report.add([clash])
            continue
        report.scripts.append(loaded)
    return report


def load_script(
    path: Path,
    now: datetime | None,
    limits: Limits | None = None,
    *,
    text: str | None = None,
    today: datetime | None = None,
) -> LoadedScript:
    """Load one script; raises ScriptError listing every problem in it.

    ``now`` enables the checks against the calendar (a start in the past); the
    runner passes None because a chat that has started is not an error there.
    ``text`` loads a stored version instead of the file's current content.
    """
    loaded, problems = _check_one(path, now, limits, today or now or datetime.now(UTC), text)
    if loaded is None:
        raise ScriptError(problems)
    return loaded


def _check_one(
    path: Path,
    now: datetime | None,
    limits: Limits | None,
    today: datetime,
    text: str | None = None,
) -> tuple[LoadedScript | None, list[Problem]]:
    try:
        return _check_file(path, now, limits or Limits(), today, text)
    except Exception as exc:  # noqa: BLE001 - one file's surprise must never stop the others
        return None, [
            Problem(
                str(path),
                None,
                None,
                "",
                f"chatbot could not finish checking this file (internal error: "
                f"{type(exc).__name__}); the other files were checked",
                "this is a bug in chatbot: please report it with the file attached",
            )
        ]


def _check_file(
    path: Path, now: datetime | None, limits: Limits, today: datetime, text: str | None
) -> tuple[LoadedScript | None, list[Problem]]:
    if text is None:
        doc, problems = load_yaml(path)
    else:
        doc, problems = parse_yaml(text, str(path))
    if doc.data is None and not problems:
        problems = [
            doc.problem((), "the file is empty", "write a chat script here (see schedules/)")
        ]
    elif doc.data is not None and not isinstance(doc.data, dict):
        problems.append(
            doc.problem(
                (),
                "a chat script must be a set of key: value lines",
                "see schedules/ for examples",
            )
        )
    if not isinstance(doc.data, dict):
        return None, problems
    script, found = validate_every_part(ChatScript, doc)
    problems += found
    if script is None:
        return None, problems
    script_id = script.id if script.id and not doc.is_invalid(("id",)) else _id_from_name(path)
    problems += check_script(script, doc, path.parent, now, limits, today=today)
    problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    if any(p.severity is Severity.ERROR for p in problems):
        return None, problems
    loaded = LoadedScript(script_id, path, script, doc, doc.text, notes=tuple(problems))
    return loaded, problems


def _id_from_name(path: Path) -> str:
    return "".join(c if c.isalnum() else "-" for c in path.stem.lower()).strip("-") or "chat"


# --- chat ids across files ---------------------------------------------------------------


def _id_clash(loaded: LoadedScript, earlier: list[LoadedScript], today: datetime) -> Problem | None:
    """Whether ``loaded`` reuses a script id, or a chat id, of a script checked before it.

    A chat id is the store's key: a one-off "blchat-2027-02-04" and the series
    blchat's chat on 4 February 2027 would be one chat to the bot.
    """
    for first in earlier:
        if first.script_id == loaded.script_id:
            return loaded.doc.problem(
                ("id",),
                f'chat id "{loaded.script_id}" is already used by {first.path}',
                "give each chat a unique id: (or rename the file when it has no id:)",
            )
    mine = _chat_ids(loaded, today)
    for first in earlier:
        theirs = _chat_ids(first, today)
        for shared in sorted(mine.keys() & theirs.keys()):
            tz = localtime.zone(first.script.timezone)
            day = localtime.to_local(theirs[shared], tz)
            return loaded.doc.problem(
                ("id",),
                f'chat id "{shared}" is also the id of the chat of '
                f"{day:%A, %B} {day.day}, {day.year} in {first.path}",
                "give one of the two scripts another id: (the bot keeps each chat under its id)",
            )
    return None


def _chat_ids(loaded: LoadedScript, today: datetime) -> dict[str, datetime]:
    script = loaded.script
    if not script.is_series:
        starts = occurrences(script, datetime.min.replace(tzinfo=UTC), 1)
    else:
        end = today + timedelta(days=366 * HORIZON_YEARS + 31)
        starts = [s for s in occurrences(script, today, 120) if s <= end]
    return {chat_id(loaded.script_id, script, start): start for start in starts}
