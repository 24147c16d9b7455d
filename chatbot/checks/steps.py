"""The chat's steps: numbered questions in order, and times that make sense.

A welcome before the start, a reminder during the chat, two steps at the same
moment or a recap at the closing's instant are all accepted by the format but
never meant, so each is a problem on the line of the time at fault.
"""

from __future__ import annotations

import itertools
import re
from datetime import timedelta

from chatbot.errors import Problem
from chatbot.kinds import StepKind
from chatbot.plan import Slot, slots
from chatbot.script import ChatScript, Post, Question
from chatbot.scriptvalues import format_duration
from chatbot.source import Path_, SourceDoc

# A chat is an hour or so; a step more than a day after the start is a typo.
MAX_STEP_OFFSET = timedelta(days=1)


def slot_path(slot: Slot) -> Path_:
    """Where a step is written in the script."""
    if slot.kind is StepKind.REMINDER:
        return ("reminders", int(slot.key.split("-")[1]) - 1)
    if slot.kind is StepKind.QUESTION:
        assert slot.number is not None
        return ("questions", slot.number - 1)
    if slot.kind is StepKind.FORMAT_NOTE:
        return ("format_note",)
    return (slot.kind.value,)


def label(slot: Slot) -> str:
    """How a step is named in messages: Q3, the welcome, reminder 1 ..."""
    if slot.number:
        return f"Q{slot.number}"
    if slot.kind is StepKind.REMINDER:
        return slot.key.replace("-", " ")
    return _NAMES.get(slot.kind, slot.key)


_NAMES = {
    StepKind.WELCOME: "the welcome",
    StepKind.INTRODUCTIONS: "the introductions post",
    StepKind.FORMAT_NOTE: "the format note",
    StepKind.CLOSING: "the closing",
    StepKind.RECAP: "the recap",
}


def _time_path(slot: Slot) -> Path_:
    if slot.kind is StepKind.REMINDER:
        return (*slot_path(slot), "before")
    if slot.kind is StepKind.RECAP:
        return ("recap", "after")
    return (*slot_path(slot), "at")


def check_steps(script: ChatScript, doc: SourceDoc) -> list[Problem]:
    """Question numbers and labels, and every step's time."""
    problems = _check_numbers(script, doc)
    for index, question in enumerate(script.questions):
        problems += _check_label(question, index, doc)
    problems += _check_times(script, doc)
    return problems


def _check_numbers(script: ChatScript, doc: SourceDoc) -> list[Problem]:
    problems = []
    numbers: dict[int, int] = {}
    for index, question in enumerate(script.questions):
        expected = index + 1
        if question.number is None:
            continue
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
                    f"this is question {expected} in the list but says number: {question.number}",
                    f"set number: {expected}, or remove number: and let the bot count",
                )
            )
        numbers.setdefault(question.number, index)
    return problems


def _check_label(question: Question, index: int, doc: SourceDoc) -> list[Problem]:
    problems = []
    expected = index + 1
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


def _check_times(script: ChatScript, doc: SourceDoc) -> list[Problem]:
    problems = []
    if script.question_spacing <= timedelta(0) and len(script.questions) > 1:
        problems.append(
            doc.problem(
                ("question_spacing",),
                f"question_spacing is {format_duration(script.question_spacing)}: the questions "
                "would all be posted at the same moment or in reverse order",
                "give question_spacing: a time such as 8m or 10m",
            )
        )
    steps = slots(script)
    bad: set[str] = set()
    for slot in steps:
        problem = _time_problem(slot, script, doc)
        if problem and not (bad and "more than a day" in problem.message):
            problems.append(problem)  # (a step after one too late is too late because of it)
        if problem:
            bad.add(slot.key)
    chat = [s for s in steps if s.kind is not StepKind.REMINDER and s.key not in bad]
    spacing_reported = bool(problems) and script.question_spacing <= timedelta(0)
    for earlier, later in itertools.pairwise(chat):
        if later.offset > earlier.offset:
            continue
        spaced = later.kind in (StepKind.QUESTION, StepKind.CLOSING) and not _own_at(later)
        if spacing_reported and spaced:
            continue
        problems.append(_order_problem(earlier, later, doc))
    return problems


def _time_problem(slot: Slot, script: ChatScript, doc: SourceDoc) -> Problem | None:
    path = _time_path(slot)
    if slot.kind is StepKind.REMINDER:
        before = -slot.offset
        if before <= timedelta(0):
            when = (
                "at the same moment as the start"
                if before == timedelta(0)
                else f"{format_duration(-before)} after the start, during the chat"
            )
            return doc.problem(
                path,
                f"{label(slot)} would be posted {when}: a reminder comes before the chat",
                "give before: a time such as 1h or 1 day",
            )
        return None
    if slot.kind is StepKind.RECAP and script.recap.after <= timedelta(0):
        return doc.problem(
            path,
            f"the recap would be posted with the closing or before it "
            f"(after: {format_duration(script.recap.after)})",
            "give after: a time such as 15m, so answers to the closing are in",
        )
    if slot.offset < timedelta(0):
        return doc.problem(
            path,
            f"{label(slot)} is at {format_duration(slot.offset)}, before the chat starts",
            "give it an at: of 0m or later; for a post before the chat, use reminders:",
        )
    if slot.offset > MAX_STEP_OFFSET:
        return doc.problem(
            path,
            f"{label(slot)} is at {format_duration(slot.offset)}, more than a day after the start",
            "a chat lasts an hour or so: check the at: times and question_spacing",
        )
    return None


def _own_at(slot: Slot) -> bool:
    """Whether the step's time is written in the script (not a default or a spacing)."""
    return isinstance(slot.post, Post) and slot.post.at is not None


def _order_problem(earlier: Slot, later: Slot, doc: SourceDoc) -> Problem:
    when = (
        "at the same moment as"
        if later.offset == earlier.offset
        else f"at {format_duration(later.offset)}, before"
    )
    by_default = not _own_at(later) and later.kind in (
        StepKind.INTRODUCTIONS,
        StepKind.FORMAT_NOTE,
        StepKind.QUESTION,
    )
    default = " (its default time)" if by_default and later.number in (None, 1) else ""
    return doc.problem(
        _time_path(later),
        f"{label(later)} is {when}{default} {label(earlier)} at {format_duration(earlier.offset)}",
        "steps are posted in order: give it a later at:",
    )
