"""Texts to hold our rules equal to the SDKs' on: the repository's corpora and generated ones.

The corpus is every string of tests/data/*.yaml (the attribution corpora, the
hostile answers with their repeats written out), every string of the example
scripts and every post the examples' next chats would send. The strategies build
texts of hashtags, links and mentions in mixed scripts, where the rules differ most.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from chatdata import hostile_answers
from hypothesis import strategies as st

from chatbot.loader import check_paths
from chatbot.plan import plan_upcoming

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
EXAMPLES = sorted((ROOT / "schedules").glob("*.yaml"))
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def rendered_posts() -> list[str]:
    """Every post of the examples' next three chats, on each network they name."""
    report = check_paths(EXAMPLES, NOW)
    assert not report.problems and len(report.scripts) == len(EXAMPLES)
    return [
        post.text
        for loaded in report.scripts
        for plan in plan_upcoming(loaded.script, loaded.script_id, NOW, count=3)
        for step in plan.steps
        for post in step.posts.values()
    ]


def corpus() -> list[str]:
    """The repository's texts, each once, in a stable order."""
    texts: list[str] = []
    for path in [*sorted(DATA.glob("*.yaml")), *EXAMPLES]:
        texts += _strings(yaml.safe_load(path.read_text(encoding="utf-8")))
    texts += [answer.text for answer in hostile_answers()]
    texts += rendered_posts()
    return list(dict.fromkeys(texts))


# --- generated texts ------------------------------------------------------------------------

# Letters of several scripts, digits of several systems, combining marks, emoji parts.
LETTERS = "aZéßøłжЖΩ\u03b1אבعربي中文日本語한국어ไทยहिन्दी"
DIGITS = "0123456789٣٤\u06f5߁१\uff13"
COMBINING = "\u0301\u0308\u0327\u093f\u0e31\u05b7\u064b\u20e3\u20e2"
EMOJI = [
    "\U0001f44d",  # 👍
    "\U0001f44d\U0001f3fd",  # 👍🏽 skin tone
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # 👨‍👩‍👧
    "\U0001f1eb\U0001f1f7",  # 🇫🇷
    "\u2764\ufe0f",  # ❤️ with the emoji variation selector
    "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # 🏴 Scotland
    "\ufe0f",
    "1\ufe0f\u20e3",  # 1️⃣
]
# ASCII, typographic, full-width (U+FF03 #, U+FF01 !, ...) and Unicode 17's new marks.
PUNCTUATION = (
    ".,;:!?()[]{}\"'…‽¡¿«»“”\u2018\u2019—\u2013-_/\\@#$%&*+=~|・。、【】"
    "\uff03\uff01\uff1f\uff08\uff09\u2e60\U00010ed0"
)
SPACES = " \t\n\u00a0\u2003\u3000\u200b\u200a\u2060\ufeff\u00ad"
BIDI = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c"
# TLDs: common, new, IDN, twitter-text's old ones IANA dropped, case, and made up.
TLDS = [
    "com", "org", "social", "education", "app", "co", "uk", "io", "test", "local",
    "onion", "xperia", "zippo", "bsky", "network", "xn--p1ai", "рф", "中国", "コム",
    "COM", "Org", "example", "a", "x1", "1com", "dev", "moe", "museum", "ly",
]  # fmt: skip

_char = st.one_of(
    st.sampled_from(LETTERS),
    st.sampled_from(DIGITS),
    st.sampled_from(COMBINING),
    st.sampled_from(EMOJI),
    st.sampled_from(PUNCTUATION),
    st.sampled_from(BIDI),
)
_word = st.lists(_char, min_size=1, max_size=12).map("".join)
_label = st.from_regex(r"\A[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?\Z") | st.sampled_from(
    ["-bad", "bad-", "bücher", "例え", "xn--bcher-kva", "münchen", "a" * 64, "www", "1"]
)
_domain = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(_label, min_size=1, max_size=3),
    st.sampled_from(TLDS),
)
_path = st.lists(
    st.one_of(
        st.from_regex(r"\A[a-zA-Z0-9_~%-]{1,8}\Z"),
        st.sampled_from(["(x)", "(", ")", "wiki/Foo_(bar)", "é", "ж", "#frag", "?q=1&r=(2)", "@u"]),
    ),
    max_size=4,
).map("/".join)
_trailing = st.sampled_from(["", ".", ",", ";", ":", "!", "?", ")", "),", "...", "!?", "'", '"'])


@st.composite
def links(draw: st.DrawFn) -> str:
    """A URL: scheme or none, www or not, port, path, query, trailing punctuation."""
    scheme = draw(st.sampled_from(["", "", "http://", "https://", "HTTPS://", "ftp://", "https:/"]))
    www = draw(st.sampled_from(["", "", "www."]))
    port = draw(st.sampled_from(["", "", ":8080", ":"]))
    path = draw(_path)
    return f"{scheme}{www}{draw(_domain)}{port}{'/' if path or draw(st.booleans()) else ''}{path}"


@st.composite
def mentions(draw: st.DrawFn) -> str:
    """@user, @user@domain (Mastodon) or @handle (Bluesky), valid or not."""
    user = draw(st.from_regex(r"\A[a-zA-Z0-9_]{1,12}\Z") | st.sampled_from(["é", "_", "a.b"]))
    kind = draw(st.sampled_from(["local", "remote", "handle"]))
    if kind == "local":
        return f"@{user}"
    if kind == "remote":
        return f"@{user}@{draw(_domain)}"
    return f"@{draw(_domain)}"


@st.composite
def hashtags(draw: st.DrawFn) -> str:
    """#tag or full-width #tag (U+FF03): mixed scripts, digits, emoji, punctuation; some past 64."""
    sign = draw(st.sampled_from(["#", "#", "\uff03", "$", "##"]))
    body = draw(st.lists(_char, max_size=10).map("".join))
    if draw(st.integers(0, 9)) == 0:
        body = body * draw(st.integers(6, 70)) or "a" * 65
    return sign + body


_sep = st.one_of(
    st.sampled_from(SPACES), st.sampled_from(["(", " (", ")", "/", "", "a", "é", "#", "@", "$"])
)


@st.composite
def rich_texts(draw: st.DrawFn) -> str:
    """Words, hashtags, links and mentions, with spaces, brackets or nothing between."""
    pieces = draw(
        st.lists(
            st.one_of(_word, hashtags(), links(), mentions(), st.text(max_size=8)),
            min_size=1,
            max_size=8,
        )
    )
    text = ""
    for piece in pieces:
        text += draw(_sep) + piece + draw(_trailing)
    return text
