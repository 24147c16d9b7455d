"""Tests for chatbot.markup: post HTML -> the text the participant wrote, and what it quotes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml
from html_reference import html_to_text as reference_text

from chatbot.markup import PostText, html_to_text, read_html

DATA = Path(__file__).parent / "data"
HOSTILE_REPEAT = 200  # the reference is quadratic or recursive on the longest hostile posts


def _load(name: str) -> list[dict[str, Any]]:
    entries = yaml.safe_load((DATA / name).read_text(encoding="utf-8"))
    assert isinstance(entries, list)
    return entries


def _every_html_post() -> list[tuple[str, str]]:
    """(name, HTML) for every post of the labelled and hostile corpora, read as HTML."""
    posts = [
        (e["id"], e.get("html") or e["text"])
        for name in ("attribution_corpus.yaml", "attribution_blind.yaml")
        for e in _load(name)
    ]
    posts += [
        (e["name"], e.get("prefix", "") + e["text"] * e.get("repeat", 1))
        for e in _load("hostile_answers.yaml")
    ]
    posts += [
        (
            e["name"],
            e.get("prefix", "")
            + e["unit"] * min(e["repeat"], HOSTILE_REPEAT)
            + e.get("suffix", ""),
        )
        for e in _load("attribution_hostile.yaml")
    ]
    return posts


def test_text_is_identical_to_the_beautifulsoup_reading() -> None:
    """Every labelled and hostile post reads exactly as it did with BeautifulSoup (issue 14)."""
    posts = _every_html_post()
    assert len(posts) > 850
    differ = [
        f"{name}: {reference_text(html)!r} != {html_to_text(html)!r}"
        for name, html in posts
        if reference_text(html) != html_to_text(html)
    ]
    assert differ == []


def test_mastodon_shaped_html_reads_as_the_reference() -> None:
    """Nested paragraphs, lists, quotes, links and entities read as BeautifulSoup read them."""
    mention = (
        '<span class="h-card"><a href="https://h/@m" class="u-url mention">@<span>m</span></a>'
        "</span>"
    )
    for html in (
        f"<p>{mention} A1: <b>bold</b> &amp; <em>it</em><br />next</p><p>two</p>",
        "<blockquote><p>A2: x</p><ul><li>a</li><li><p>b</p></li></ul></blockquote>after",
        "<ol><li>one<br>two</li></ol><pre>  code\n  block</pre><h2>head</h2>tail",
        "<p>a <!-- note --> b</p><div><div>deep</div></div>&nbsp;end",
        '<p>x<a href="https://e/x"><span class="invisible">https://</span>e/x</a> y</p>',
        "<ruby>漢<rt>kan</rt><rp>(</rp></ruby> read",
        "<title>a <b>t</b></title><textarea>b <i>x</i></textarea>",
        "<head><meta charset=utf-8><title>gone</title></head><p>kept</p>",
        '<a href="u">x<script>s</script><template>t</template>y<!-- c -->z</a>',
        "text <b>never closed",
        "A1: x <!-- a comment never closed",
        "<p>A3: y</p><a href='x",
    ):
        assert html_to_text(html) == reference_text(html), html


# --- what is read --------------------------------------------------------------------------

HASHTAG = (
    '<a href="https://h.example/tags/edchat" class="mention hashtag" rel="tag">#<span>edchat</span>'
    "</a>"
)
MENTION = (
    '<span class="h-card" translate="no"><a href="https://h.example/@mod" class="u-url mention">'
    "@<span>mod</span></a></span>"
)


def test_html_paragraphs_and_line_breaks_become_newlines() -> None:
    """<p> separates paragraphs with a blank line; <br> is one line break."""
    assert html_to_text("<p>A1: a<br>A2: b</p><p>end</p>") == "A1: a\nA2: b\n\nend"


def test_html_entities_are_decoded() -> None:
    """&amp;, &#39;, &gt; and &nbsp; become the characters they stand for."""
    assert html_to_text("<p>A &amp; B&#39;s &gt; C&nbsp;D</p>") == "A & B's > C D"


def test_html_mentions_and_hashtags_keep_their_text() -> None:
    """Mastodon mention and hashtag links become "@mod" and "#edchat"."""
    assert html_to_text(f"<p>{MENTION} A3 hi {HASHTAG}</p>") == "@mod A3 hi #edchat"


def test_html_shortened_link_uses_the_full_address() -> None:
    """A link Mastodon shortened with invisible/ellipsis spans becomes its full href."""
    html = (
        '<p><a href="https://www.example.org/a/very/long/path"><span class="invisible">'
        'https://www.</span><span class="ellipsis">example.org/a/very/</span>'
        '<span class="invisible">long/path</span></a></p>'
    )
    assert html_to_text(html) == "https://www.example.org/a/very/long/path"


def test_html_link_with_words_keeps_its_visible_text() -> None:
    """A link with words as its text keeps the words."""
    assert html_to_text('<p>see <a href="https://x.example/u">the guide</a></p>') == "see the guide"


def test_html_quote_fallback_is_dropped() -> None:
    """Mastodon's "RE: <link>" quote fallback is not part of the participant's text."""
    html = '<p>Peer visits.</p><p class="quote-inline">RE: <a href="https://x/1">x/1</a></p>'
    assert html_to_text(html) == "Peer visits."


def test_html_list_items_are_lines() -> None:
    """Each <li> is one line, with no blank lines between items."""
    assert html_to_text("<ul><li>A1: x</li><li>A2: y</li></ul>") == "A1: x\nA2: y"


def test_html_comments_and_scripts_are_not_text() -> None:
    """Comments, scripts and styles are left out; the text around them stays."""
    assert html_to_text("<p>a <!-- c --> b<script>x()</script><style>p{}</style> c</p>") == (
        "a  b c"
    )


def test_html_never_closed_at_the_end_stays_visible() -> None:
    """A tag or comment never closed at the end of a post shows as the characters typed."""
    assert html_to_text("<!-- everything after this") == "<!-- everything after this"
    assert html_to_text("<p>A1: x</p><b") == "A1: x\n\n<b"


def test_blockquotes_are_marked_as_quoted() -> None:
    """The lines inside <blockquote> are quoted spans of the text; the poster's own are not."""
    post = read_html("<blockquote><p>A2: frames</p><p>more</p></blockquote><p>This! 🙌</p>")
    assert post == PostText("A2: frames\n\nmore\n\nThis! 🙌", ((0, 16),))
    assert [post.text[a:b] for a, b in post.quoted] == ["A2: frames\n\nmore"]


def test_nested_and_separate_blockquotes() -> None:
    """Each blockquote is a span, nested ones count once, text between them is the poster's."""
    post = read_html(
        "a<blockquote>q<br>r</blockquote>b<blockquote><blockquote>s</blockquote></blockquote>"
    )
    assert [post.text[a:b] for a, b in post.quoted] == ["q\nr", "s"]
    assert post.text == "a\n\nq\nr\n\nb\n\ns"


def test_plain_text_quotes_are_not_marked_by_markup() -> None:
    """A "> " line typed by the poster is text; reading it as a quote is attribution's job."""
    assert read_html("<p>&gt; A3: x</p>") == PostText("> A3: x")


def test_deep_nesting_reads_without_recursion() -> None:
    """20,000 nested divs or blockquotes read without a RecursionError."""
    assert html_to_text("<div>" * 20_000 + "A1: x") == "A1: x"
    post = read_html("<blockquote>" * 5_000 + "A1: x")
    assert post.text == "A1: x" and post.quoted == ((0, 5),)


def test_hostile_html_is_read_in_linear_time() -> None:
    """No hostile post of 100,000 characters takes more than a second (html.parser took 10 s)."""
    slow = []
    for entry in _load("attribution_hostile.yaml"):
        html = entry.get("prefix", "") + entry["unit"] * entry["repeat"] + entry.get("suffix", "")
        start = time.perf_counter()
        read_html(html)
        if time.perf_counter() - start > 1:
            slow.append(entry["name"])
    assert slow == []


def test_empty_and_odd_input() -> None:
    """Empty posts, blank posts, lone surrogates and XML declarations read without errors."""
    assert html_to_text("") == ""
    assert html_to_text("  \n ") == ""
    assert html_to_text("<p></p>") == ""
    assert html_to_text("a\ud800b") == "a\ufffdb"
    assert html_to_text('<?xml version="1.0" encoding="latin-1"?><p>é</p>') == "é"
