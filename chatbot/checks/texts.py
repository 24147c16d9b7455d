"""What is posted: placeholders, lengths on every date, alt text and hashtags, per network.

Lengths are measured with the same functions that build the posts
(:func:`chatbot.plan.post_text`, :func:`chatbot.text.measure`), against every
chat within the horizon: ``{date}`` is "Tuesday, May 4" one month and
"Wednesday, September 29" another. Two dates written with the same shape
(letters for letters, digits for digits) measure the same, so each shape is
measured once; and a text is measured only until it is past the limit.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from chatbot import localtime
from chatbot.checks.steps import label, slot_path
from chatbot.checks.when import Chat
from chatbot.errors import Problem
from chatbot.kinds import StepKind
from chatbot.plan import (
    DATED_PLACEHOLDERS,
    PLACEHOLDERS,
    PlaceholderError,
    Slot,
    placeholder_values,
    placeholders,
    post_text,
    slots,
    text_for,
)
from chatbot.script import ChatScript, NetworkName
from chatbot.source import Path_, SourceDoc
from chatbot.text import (
    BLUESKY_MAX_TAG_GRAPHEMES,
    Limits,
    Measure,
    alt_text_length,
    alt_text_limit,
    bluesky_graphemes,
    links_hashtag,
    measure_bounded,
)

_LETTER = re.compile(r"[^\W\d_]")
_DIGIT = re.compile(r"\d")
_SOCIAL = (NetworkName.MASTODON, NetworkName.BLUESKY)


@dataclass
class _Values:
    """Placeholder values per network and chat, computed once for all the steps."""

    script: ChatScript
    chats: list[Chat]
    samples: bool  # stand-in dates: the script's own schedule is broken
    cache: dict[tuple[NetworkName, int], dict[str, str]] = field(default_factory=dict)

    def get(self, network: NetworkName, index: int, number: int | None) -> dict[str, str]:
        key = (network, index)
        if key not in self.cache:
            chat = self.chats[index]
            self.cache[key] = placeholder_values(
                self.script, network, chat.start, chat.next_start, None
            )
        values = self.cache[key]
        return values if number is None else {**values, "n": str(number)}


def check_texts(
    script: ChatScript,
    doc: SourceDoc,
    limits: Limits,
    chats: list[Chat],
    *,
    samples: bool = False,
) -> list[Problem]:
    """Placeholders of every text, each post's length on every chat, alt text and hashtags.

    ``samples``: the chats are stand-ins (every day of a year) for a broken schedule.
    """
    problems: list[Problem] = []
    values = _Values(script, chats, samples)
    networks = [] if doc.is_invalid(("networks",)) else script.networks
    for slot in slots(script):
        if slot.post is None:
            continue
        path = slot_path(slot)
        found = _placeholder_problems(slot, script, doc, path)
        problems += found
        if not found and chats:
            for network in networks:
                problem = _length_problem(slot, script, doc, network, limits, values)
                if problem:
                    problems.append(problem)
        problems += _alt_problems(slot, doc, networks, path)
    problems += _hashtag_problems(script, doc, networks)
    return problems


def _placeholder_problems(
    slot: Slot, script: ChatScript, doc: SourceDoc, path: Path_
) -> list[Problem]:
    assert slot.post is not None
    problems: list[Problem] = []
    for key in ("text", "mastodon", "bluesky"):
        text = getattr(slot.post, key) or ""
        try:
            found = placeholders(text)
        except ValueError as exc:  # str.format's words: "Single '}' encountered ..."
            problems.append(
                doc.problem(
                    (*path, key),
                    f"the {{braces}} do not match: {exc}",
                    "close every { with }, or write {{ and }} for literal braces",
                )
            )
            continue
        reported: set[str] = set()
        for placeholder in found:  # each placeholder once, however often it is used
            if placeholder.written in reported:
                continue
            reported.add(placeholder.written)
            if placeholder.spec or placeholder.conversion:
                problems.append(
                    doc.problem(
                        (*path, key),
                        f"{placeholder.written} has something after the name: placeholders "
                        "take no format",
                        f"write {{{placeholder.name}}} alone",
                    )
                )
                continue
            problem = _placeholder_problem(placeholder.name, slot, script, doc, (*path, key))
            if problem:
                problems.append(problem)
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


def _shape(value: str) -> str:
    return _DIGIT.sub("9", _LETTER.sub("a", value))


def _length_problem(
    slot: Slot,
    script: ChatScript,
    doc: SourceDoc,
    network: NetworkName,
    limits: Limits,
    values: _Values,
) -> Problem | None:
    """The first chat on which the step is too long for ``network``, as a problem."""
    assert slot.post is not None
    template = text_for(slot.post, network)
    dated = sorted({p.name for p in placeholders(template)} & DATED_PLACEHOLDERS)
    sizes: dict[tuple[str, ...], Measure] = {}
    over: list[tuple[int, Measure]] = []  # the chats on which it is too long
    for index in range(len(values.chats) if dated else 1):
        filled = values.get(network, index, slot.number)
        shape = tuple(_shape(filled[name]) for name in dated if name in filled)
        if shape not in sizes:
            try:
                text = post_text(
                    script,
                    slot.post,
                    network,
                    filled,
                    slot.number,
                    with_extra_tags=slot.kind is StepKind.WELCOME,
                )
            except PlaceholderError as exc:
                return doc.problem((*slot_path(slot), "text"), str(exc), "check the {braces}")
            sizes[shape] = measure_bounded(network, text, limits)
        if not sizes[shape].fits:
            over.append((index, sizes[shape]))
    if not over:
        return None
    index, size = over[0]
    chat = values.chats[index] if dated else None
    if chat is not None and values.samples:
        return _too_long(slot, script, doc, network, size, None, 0, chat)
    return _too_long(slot, script, doc, network, size, chat, len(over) - 1)


def _too_long(
    slot: Slot,
    script: ChatScript,
    doc: SourceDoc,
    network: NetworkName,
    size: Measure,
    chat: Chat | None,
    others: int = 0,
    sample: Chat | None = None,
) -> Problem:
    assert slot.post is not None
    source = network.value if getattr(slot.post, network.value, None) else "text"
    when = ""
    if chat is not None:
        local = localtime.to_local(chat.start, _zone(script, doc))
        when = f" for the chat of {local:%A, %B} {local.day}, {local.year}"
        if others:
            when += f" (and {others} more chat{'s' if others > 1 else ''} within two years)"
    if sample is not None:
        local = localtime.to_local(sample.start, _zone(script, doc))
        when = f" with some dates, such as {local:%A, %B} {local.day}"
    return doc.problem(
        (*slot_path(slot), source),
        f"{label(slot)} is too long for {network.value}{when}: "
        f"{size.describe()} ({size.too_long_by} over)",
        f"shorten it, or add a shorter {network.value}: text for this step",
    )


def _zone(script: ChatScript, doc: SourceDoc) -> ZoneInfo:
    try:
        return localtime.zone(script.timezone)
    except KeyError:
        return localtime.zone("UTC")


def _alt_problems(
    slot: Slot, doc: SourceDoc, networks: list[NetworkName], path: Path_
) -> list[Problem]:
    assert slot.post is not None
    image = slot.post.image
    if image is None:
        return []
    for network in networks:
        limit = alt_text_limit(network)
        if limit is None:
            continue
        most, unit = limit
        length = alt_text_length(network, image.alt)
        if length > most:
            # Bluesky's count stops once past the limit (grapheme counting is slow).
            told = f"more than {most:,}" if network is NetworkName.BLUESKY else f"{length:,}"
            return [
                doc.problem(
                    (*path, "image", "alt"),
                    f"the alt text is {told} {unit}; {network.value} takes at most {most:,}",
                    "describe the picture in fewer words: what someone who cannot see it "
                    "needs to follow the question",
                )
            ]
    return []


def _hashtag_problems(
    script: ChatScript, doc: SourceDoc, networks: list[NetworkName]
) -> list[Problem]:
    tags: list[tuple[Path_, str]] = [(("hashtag",), script.hashtag)]
    tags += [(("extra_tags", index), tag) for index, tag in enumerate(script.extra_tags)]
    problems = []
    for path, tag in tags:
        if doc.is_invalid(path):
            continue
        dead = [n for n in networks if n in _SOCIAL and not links_hashtag(n, tag)]
        if dead:
            names = " or ".join(n.value.capitalize() for n in dead)
            problems.append(
                doc.problem(
                    path,
                    f'"#{tag}" would not be a working hashtag on {names}: {_why_dead(tag, dead)}',
                    "use letters and digits only, starting with a letter, e.g. #BLchat",
                )
            )
    return problems


def _why_dead(tag: str, dead: list[NetworkName]) -> str:
    if not _LETTER.search(tag):
        return "a hashtag needs at least one letter"
    if NetworkName.BLUESKY in dead and bluesky_graphemes(tag) > BLUESKY_MAX_TAG_GRAPHEMES:
        return f"Bluesky links hashtags of at most {BLUESKY_MAX_TAG_GRAPHEMES} characters"
    if NetworkName.MASTODON in dead:
        return "Mastodon links only letters, digits and _ in a hashtag"
    return "Bluesky does not link a hashtag that ends with punctuation"
