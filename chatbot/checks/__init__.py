"""The checks of a chat script, one concept per module, all run on every script.

Each check returns problems and never raises for anything a script can hold;
a part already reported as broken (``doc.invalid``) is not reported again.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from chatbot import localtime
from chatbot.checks.images import check_images
from chatbot.checks.steps import check_steps
from chatbot.checks.texts import check_texts
from chatbot.checks.when import Chat, check_when, check_zone, sample_chats, schedule_known
from chatbot.errors import Problem
from chatbot.script import ChatScript
from chatbot.source import SourceDoc, dotted
from chatbot.text import Limits

__all__ = ["check_script"]


def check_script(
    script: ChatScript,
    doc: SourceDoc,
    base_dir: Path,
    now: datetime | None,
    limits: Limits,
    *,
    today: datetime,
) -> list[Problem]:
    """Everything a script of the right shape can still get wrong.

    ``today`` (aware UTC) starts the horizon the series are checked over;
    ``now`` (None in the running bot) turns on the notes about past chats.
    """
    tz, problems = check_zone(script, doc)
    chats: list[Chat]
    if not schedule_known(doc):
        chats = sample_chats()
    elif tz is None:  # the zone is reported; the dates still measure the texts
        utc = localtime.zone("UTC")
        chats, _ = check_when(_in_utc(script), doc, utc, None, today)
    else:
        chats, found = check_when(script, doc, tz, now, today)
        problems += found
    problems += check_steps(script, doc)
    problems += check_texts(
        script if tz else _in_utc(script), doc, limits, chats, samples=not schedule_known(doc)
    )
    problems += check_images(script, doc, base_dir)
    invalid = [dotted(doc.as_written(path)) for path in doc.invalid]
    return [p for p in problems if not any(_inside(p.field, bad) for bad in invalid)]


def _in_utc(script: ChatScript) -> ChatScript:
    return script.model_copy(update={"timezone": "UTC"})


def _inside(field: str, parent: str) -> bool:
    return field == parent or field.startswith((f"{parent}.", f"{parent}["))
