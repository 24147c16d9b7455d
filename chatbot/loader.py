"""Loading chat scripts and checking them: every problem at once, each with its line and fix.

Co-moderators are not programmers, so nothing here raises a traceback at them:
YAML mistakes, wrong types, misspelt keys, time-zone typos, DST traps, missing
images and over-long posts all become :class:`~chatbot.errors.Problem` entries.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import re
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from chatbot import localtime
from chatbot.errors import Problem, ScriptError
from chatbot.kinds import StepKind
from chatbot.plan import (
    PLACEHOLDERS,
    PlaceholderError,
    Slot,
    local_occurrences,
    occurrences,
    placeholders_in,
    render_post,
    slots,
)
from chatbot.script import ChatScript, FieldError, NetworkName, Question, format_duration
from chatbot.source import Path_, SourceDoc, dotted, load_yaml, parse_yaml
from chatbot.text import Limits

SCRIPT_SUFFIXES = (".yaml", ".yml")
# Bluesky: images up to 2,000,000 bytes each (app.bsky.embed.images blob maxSize).
BLUESKY_MAX_IMAGE_BYTES = 2_000_000
# Mastodon's default image limit (configuration.media_attachments.image_size_limit).
MASTODON_MAX_IMAGE_BYTES = 16 * 1024 * 1024
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
SERIES_CHECK_COUNT = 24  # a series' next two years of dates are checked for DST traps


@dataclass(frozen=True)
class LoadedScript:
    """A valid chat script and where it came from."""

    script_id: str
    path: Path
    script: ChatScript
    doc: SourceDoc
    source: str = ""  # the YAML text this was loaded from
    stale: bool = False  # the file is broken now; this is its last good version

    @property
    def base_dir(self) -> Path:
        return self.path.parent


@dataclass
class Report:
    """Result of checking files: the good scripts and every problem found."""

    scripts: list[LoadedScript] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def script_files(paths: Iterable[Path]) -> tuple[list[Path], list[Problem]]:
    """Expand folders into their ``*.yaml``/``*.yml`` files, sorted; missing paths are problems."""
    found: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.suffix in SCRIPT_SUFFIXES and p.is_file())
            )
        elif path.is_file():
            found.append(path)
        else:
            problems.append(
                Problem(str(path), None, None, "", "no such file or folder", "check the path")
            )
    return found, problems


def check_paths(
    paths: Iterable[Path],
    now: datetime | None,
    limits: Limits | None = None,
    *,
    last_good: Callable[[Path], str | None] | None = None,
) -> Report:
    """Load and check every script under ``paths``; duplicate ids across files are problems.

    With ``last_good``, a file that is broken now is reported and its last good
    version (as ``last_good`` returns it) is used instead, marked stale.
    """
    files, problems = script_files(paths)
    report = Report(problems=problems, files=len(files))
    seen: dict[str, LoadedScript] = {}
    for path in files:
        try:
            loaded = load_script(path, now, limits)
        except ScriptError as exc:
            report.problems.extend(exc.problems)
            previous = last_good(path) if last_good else None
            if previous is None:
                continue
            try:
                loaded = load_script(path, now, limits, text=previous)
            except ScriptError:
                continue
            loaded = dataclasses.replace(loaded, stale=True)
        if loaded.script_id in seen:
            first = seen[loaded.script_id]
            report.problems.append(
                loaded.doc.problem(
                    ("id",),
                    f'chat id "{loaded.script_id}" is already used by {first.path}',
                    "give each chat a unique id: (or rename the file when it has no id:)",
                )
            )
            continue
        seen[loaded.script_id] = loaded
        report.scripts.append(loaded)
    return report


def load_script(
    path: Path,
    now: datetime | None,
    limits: Limits | None = None,
    *,
    text: str | None = None,
) -> LoadedScript:
    """Load one script; raises ScriptError listing every problem in it.

    ``now`` enables the checks against the calendar (a start in the past); the
    runner passes None because a chat that has started is not an error there.
    ``text`` loads a stored version instead of the file's current content.
    """
    if text is None:
        doc, problems = load_yaml(path)
    else:
        doc, problems = parse_yaml(text, str(path))
    if problems:
        raise ScriptError(problems)
    if doc.data is None:
        raise ScriptError(
            [doc.problem((), "the file is empty", "write a chat script here (see schedules/)")]
        )
    if doc.data is None:
        raise ScriptError(
            [doc.problem((), "the file is empty", "write a chat script here (see schedules/)")]
        )
    if not isinstance(doc.data, dict):
        raise ScriptError(
            [
                doc.problem(
                    (),
                    "a chat script must be a set of key: value lines",
                    "see schedules/ for examples",
                )
            ]
        )
    try:
        script = ChatScript.model_validate(doc.data)
    except ValidationError as exc:
        raise ScriptError(pydantic_problems(exc, doc, ChatScript)) from None
    script_id = script.id or _id_from_name(path)
    problems = check_script(script, doc, path.parent, now, limits or Limits())
    if problems:
        raise ScriptError(problems)
    source = text if text is not None else path.read_text(encoding="utf-8")
    return LoadedScript(script_id, path, script, doc, source)


def _id_from_name(path: Path) -> str:
    return "".join(c if c.isalnum() else "-" for c in path.stem.lower()).strip("-") or "chat"


# --- pydantic errors -> problems ---------------------------------------------------------


def pydantic_problems(exc: ValidationError, doc: SourceDoc, root: type[BaseModel]) -> list[Problem]:
    """Turn pydantic's errors into problems with lines, plain words and a fix."""
    problems = []
    errors = exc.errors(include_url=False)
    # A misspelt key ("questons") also leaves the real one missing; the "did you
    # mean" on the misspelt key's line says it all, so the second problem is dropped.
    misspelt: set[Path_] = set()
    for error in errors:
        if error["type"] == "extra_forbidden":
            loc: Path_ = tuple(error["loc"])
            close = _close_key(str(loc[-1]), _fields_at(root, loc[:-1]))
            if close:
                misspelt.add((*loc[:-1], close))
    for error in errors:
        path: Path_ = tuple(error["loc"])
        kind = error["type"]
        message = str(error["msg"]).removeprefix("Value error, ")
        hint = ""
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, FieldError):
            path = (*path, cause.key)  # a check across fields: point at the key it names
        if kind == "extra_forbidden":
            key = str(path[-1])
            allowed = _fields_at(root, path[:-1])
            close = _close_key(key, allowed)
            message = f'unknown key "{key}"'
            hint = (
                f'did you mean "{close}"?'
                if close
                else f"remove it; allowed here: {', '.join(sorted(allowed))}"
            )
            problems.append(doc.problem(path, message, hint, key=True))
            continue
        if kind == "missing":
            if path in misspelt:
                continue
            message = f'"{path[-1]}" is required'
            hint = f"add {path[-1]}: to {_dotted_or_top(path[:-1])}"
            problems.append(doc.problem(path, message, hint))
            continue
        if kind in ("enum", "literal_error"):
            expected = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
            message = f'"{error["input"]}" is not one of: {", ".join(expected)}'
            close_values = difflib.get_close_matches(str(error["input"]), expected, n=1)
            hint = (
                f'did you mean "{close_values[0]}"?'
                if close_values
                else "use one of the values listed"
            )
        elif kind in ("model_type", "dict_type"):
            message = "this should be a section of key: value lines, not a single value"
            keys = _fields_at(root, path)
            hint = (
                f"write key: value lines indented under it ({', '.join(keys)})"
                if keys
                else _type_hint(kind)
            )
        elif kind in ("string_type", "int_type", "int_parsing", "list_type"):
            hint = _type_hint(kind)
        elif kind == "too_short" and path and path[-1] == "questions":
            message = "the chat has no questions"
            hint = "add at least one question under questions:"
        elif kind == "string_too_short":
            hint = "write some text here, or remove the key"
        elif kind == "string_pattern_mismatch":
            hint = "use lowercase letters, digits and dashes, e.g. blended-learning"
        problems.append(doc.problem(path, message, hint))
    return problems


def _close_key(key: str, allowed: list[str]) -> str | None:
    """The allowed key that ``key`` is most likely a misspelling of."""
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    return close[0] if close else None


def _dotted_or_top(path: Path_) -> str:
    return dotted(path) if path else "the top level"


def _type_hint(kind: str) -> str:
    return {
        "string_type": 'write text here (put it in quotes if it looks like a number: "2027")',
        "int_type": "write a whole number here",
        "int_parsing": "write a whole number here",
        "list_type": "write a list here, one item per line starting with - ",
        "model_type": "this needs a section with key: value lines under it",
        "dict_type": "this needs a section with key: value lines under it",
    }[kind]


def _fields_at(model: type[BaseModel], path: Path_) -> list[str]:
    """The keys allowed at ``path`` inside ``model`` (for "did you mean")."""
    current: Any = model
    for part in path:
        current = _unwrap(current)
        if isinstance(part, int):
            args = typing.get_args(current)
            current = args[0] if args else current
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(part)
            if info is None:
                return []
            current = info.annotation
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """``Post | None`` -> ``Post``; ``Annotated[X, ...]`` -> ``X``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(members[0]) if len(members) == 1 else annotation
    return annotation


# --- meaning checks on a well-formed script ----------------------------------------------


def check_script(
    script: ChatScript, doc: SourceDoc, base_dir: Path, now: datetime | None, limits: Limits
) -> list[Problem]:
    """Everything a valid YAML shape can still get wrong."""
    try:
        tz = localtime.zone(script.timezone)
    except KeyError:
        close = localtime.close_zone_names(script.timezone)
        hint = (
            f"did you mean {' or '.join(close)}?"
            if close
            else "use an IANA name such as America/New_York or Europe/Paris"
        )
        return [doc.problem(("timezone",), f'unknown time zone "{script.timezone}"', hint)]
    problems = _check_when(script, doc, tz, now)
    problems += _check_questions(script, doc)
    problems += _check_order(script, doc)
    problems += _check_texts(script, doc, limits)
    problems += _check_images(script, doc, base_dir)
    return problems


def _check_local(
    local: datetime, tz: Any, doc: SourceDoc, path: Path_, what: str
) -> Problem | None:
    issue = localtime.check_local(local, tz)
    if issue is localtime.LocalTimeIssue.NONEXISTENT:
        return doc.problem(
            path,
            f"{what} {local:%Y-%m-%d %H:%M} does not exist in {tz.key}: the clocks "
            "spring forward over it on that day",
            "pick a time outside the skipped hour (e.g. an hour later)",
        )
    if issue is localtime.LocalTimeIssue.AMBIGUOUS:
        return doc.problem(
            path,
            f"{what} {local:%Y-%m-%d %H:%M} happens twice in {tz.key}: the clocks fall "
            "back over it on that day",
            "pick a time outside the repeated hour so everyone knows which one",
        )
    return None


def _check_when(script: ChatScript, doc: SourceDoc, tz: Any, now: datetime | None) -> list[Problem]:
    problems = []
    if script.start is not None:
        problem = _check_local(script.start, tz, doc, ("start",), "the start")
        if problem:
            return [problem]
        start = localtime.to_utc(script.start, tz)
        if now is not None and start < now:
            problems.append(
                doc.problem(
                    ("start",),
                    f"the start {script.start:%Y-%m-%d %H:%M} ({script.timezone}) is in the past",
                    "set a future date, or move the file out of schedules/ once the chat is over",
                )
            )
        return problems
    assert script.recurrence is not None
    checked = 0
    for local in local_occurrences(script.recurrence):
        if now is not None and localtime.to_utc(local, tz) < now:
            continue
        problem = _check_local(local, tz, doc, ("recurrence", "time"), "the series' chat on")
        if problem:
            problems.append(problem)
            break
        checked += 1
        if checked >= SERIES_CHECK_COUNT:
            break
    if now is not None and not problems and not occurrences(script, now, 1):
        problems.append(
            doc.problem(
                ("recurrence", "until") if script.recurrence.until else ("recurrence",),
                "the series has no chat left after today",
                "extend until:, or move the file out of schedules/",
            )
        )
    return problems


def _check_questions(script: ChatScript, doc: SourceDoc) -> list[Problem]:
    problems = []
    numbers: dict[int, int] = {}
    for index, question in enumerate(script.questions):
        expected = index + 1
        if question.number is not None:
            if question.number in numbers:
                problems.append(
                    doc.problem(
                        ("questions", index, "number"),
                        f"question number {question.number} is used twice "
                        f"(also question {numbers[question.number] + 1} in the list)",
                        "number the questions 1, 2, 3 ... in order, or remove number: "
                        "and let the bot count",
                    )
                )
            elif question.number != expected:
                problems.append(
                    doc.problem(
                        ("questions", index, "number"),
                        f"this is question {expected} in the list "
                        f"but says number: {question.number}",
                        f"set number: {expected}, or remove number: and let the bot count",
                    )
                )
            numbers.setdefault(question.number, index)
        problems += _check_label(question, index, expected, doc)
    return problems


def _check_label(question: Question, index: int, expected: int, doc: SourceDoc) -> list[Problem]:
    problems = []
    for key in ("text", "mastodon", "bluesky"):
        text = getattr(question, key)
        match = re.match(r"^\s*Q\s*(\d+)\b", text or "", re.IGNORECASE)
        if match and int(match.group(1)) != expected:
            problems.append(
                doc.problem(
                    ("questions", index, key),
                    f'the text starts with "Q{match.group(1)}" but this is question {expected}',
                    'leave the "Q<n>:" out: the bot numbers questions itself',
                )
            )
    return problems


def _slot_path(slot: Slot, script: ChatScript) -> Path_:
    if slot.kind == "reminder":
        return ("reminders", int(slot.key.split("-")[1]) - 1)
    if slot.kind is StepKind.QUESTION:
        assert slot.number is not None
        return ("questions", slot.number - 1)
    return (slot.kind,)


def _label(slot: Slot) -> str:
    return f"Q{slot.number}" if slot.number else slot.key


def _check_order(script: ChatScript, doc: SourceDoc) -> list[Problem]:
    problems = []
    chat = [s for s in slots(script) if s.kind != "reminder"]
    for earlier, later in itertools.pairwise(chat):
        if later.offset <= earlier.offset:
            path = _slot_path(later, script)
            problems.append(
                doc.problem(
                    (*path, "at"),
                    f"{_label(later)} is at {_fmt(later.offset)}, not after "
                    f"{_label(earlier)} at {_fmt(earlier.offset)}",
                    "steps are posted in order: give it a later at:",
                )
            )
    return problems


def _fmt(offset: timedelta) -> str:
    return format_duration(offset)


def _check_texts(script: ChatScript, doc: SourceDoc, limits: Limits) -> list[Problem]:
    problems: list[Problem] = []
    probe_start = datetime(2030, 1, 1, tzinfo=localtime.zone("UTC"))
    next_start = probe_start + timedelta(days=30) if script.is_series else None
    for slot in slots(script):
        if slot.post is None:
            continue
        path = _slot_path(slot, script)
        found_before = len(problems)
        for key in ("text", "mastodon", "bluesky"):
            text = getattr(slot.post, key)
            try:
                names = placeholders_in(text or "")
            except ValueError as exc:  # str.format's words: "Single '}' encountered ..."
                problems.append(
                    doc.problem(
                        (*path, key),
                        f"the {{braces}} do not match: {exc}",
                        "close every { with }, or write {{ and }} for literal braces",
                    )
                )
                continue
            for name in dict.fromkeys(names):  # each placeholder once, however often used
                problem = _placeholder_problem(name, slot, script, doc, (*path, key))
                if problem:
                    problems.append(problem)
        if len(problems) > found_before:
            continue  # this step's text cannot be rendered; later steps are still measured
        for network in script.networks:
            try:
                rendered = render_post(
                    script,
                    slot.post,
                    network,
                    start=probe_start,
                    next_start=next_start,
                    number=slot.number,
                    limits=limits,
                    with_extra_tags=slot.kind is StepKind.WELCOME,
                )
            except PlaceholderError as exc:
                problems.append(doc.problem((*path, "text"), str(exc), "check the {braces}"))
                continue
            if not rendered.measure.fits:
                source = network.value if getattr(slot.post, network.value, None) else "text"
                problems.append(
                    doc.problem(
                        (*path, source),
                        f"{_label(slot)} is too long for {network.value}: "
                        f"{rendered.measure.describe()} ({rendered.measure.too_long_by} over)",
                        f"shorten it, or add a shorter {network.value}: text for this step",
                    )
                )
    return problems


def _placeholder_problem(
    name: str, slot: Slot, script: ChatScript, doc: SourceDoc, path: Path_
) -> Problem | None:
    if name not in PLACEHOLDERS:
        close = difflib.get_close_matches(name, list(PLACEHOLDERS), n=1, cutoff=0.5)
        hint = (
            f"did you mean {{{close[0]}}}?"
            if close
            else "available: " + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
        )
        if not name:
            return doc.problem(path, "empty placeholder {}", "write {{ and }} for literal braces")
        return doc.problem(path, f"unknown placeholder {{{name}}}", hint)
    if name == "n" and slot.number is None:
        return doc.problem(path, "{n} is only for questions", "write the number out here")
    if name == "guest" and script.guest is None:
        return doc.problem(
            path,
            "{guest} is used but the script has no guest:",
            "add a guest: section or remove {guest}",
        )
    if name == "next_chat" and not script.is_series:
        return doc.problem(
            path,
            "{next_chat} needs a series: a one-off chat has no next date",
            "write the next date out, or use recurrence: instead of start:",
        )
    return None


def _check_images(script: ChatScript, doc: SourceDoc, base_dir: Path) -> list[Problem]:
    problems = []
    for slot in slots(script):
        post = slot.post
        if post is None or post.image is None:
            continue
        path = (*_slot_path(slot, script), "image", "path")
        file = base_dir / post.image.path
        if not file.is_file():
            problems.append(
                doc.problem(
                    path,
                    f"image file {post.image.path} not found (looked in {base_dir})",
                    "put the image next to the script or fix the path",
                )
            )
            continue
        if file.suffix.lower() not in IMAGE_TYPES:
            problems.append(
                doc.problem(
                    path,
                    f"{file.suffix or 'this file'} is not an image type both networks take",
                    "use a .png, .jpg, .gif or .webp file",
                )
            )
            continue
        size = file.stat().st_size
        if NetworkName.BLUESKY in script.networks and size > BLUESKY_MAX_IMAGE_BYTES:
            problems.append(
                doc.problem(
                    path,
                    f"image is {size:,} bytes; Bluesky takes at most {BLUESKY_MAX_IMAGE_BYTES:,}",
                    "make the image smaller (e.g. a JPEG at 1600 px wide)",
                )
            )
        elif size > MASTODON_MAX_IMAGE_BYTES:
            problems.append(
                doc.problem(
                    path,
                    f"image is {size:,} bytes; Mastodon takes at most {MASTODON_MAX_IMAGE_BYTES:,}",
                    "make the image smaller",
                )
            )
    return problems
