"""Post HTML -> the plain text the participant wrote (Mastodon-API servers send HTML).

Parsed with lxml (libxml2), iteratively, so that deep nesting cannot exhaust the stack. The text
is the one the project has always produced (with BeautifulSoup and Python's html.parser until
issue 14): tests/test_markup.py compares the two over every labelled and hostile post. Where the
two parsers read broken markup differently and the old reading is what users saw (a tag or
comment never closed at the end of a post stays visible; title and textarea hold markup), the
input is adjusted first; for markup no server sends (mis-nested blocks inside inline tags,
entities with unknown names, NUL characters) we follow libxml2.
"""

from __future__ import annotations

import importlib
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from lxml import etree
else:

    class _OnFirstUse:
        """lxml, imported when the first HTML post is read: a bot that reads no HTML (the
        local network, Bluesky) never loads it."""

        def __getattr__(self, name: str) -> Any:
            return getattr(importlib.import_module("lxml.etree"), name)

    etree = _OnFirstUse()

__all__ = ["PostText", "html_to_text", "read_html"]


@dataclass(frozen=True)
class PostText:
    """The visible text of a post, and where it quotes someone else (``<blockquote>``)."""

    text: str
    quoted: tuple[tuple[int, int], ...] = ()  # [start, end) spans of `text` inside blockquotes


_BLOCK_TAGS = frozenset(
    {"p", "div", "blockquote", "li", "ul", "ol", "pre", "h1", "h2", "h3", "h4", "h5", "h6"}
)
_PARAGRAPH_TAGS = frozenset({"p", "blockquote", "pre", "ul", "ol"})
# Elements whose content is never text. "x-head": an explicit <head>, renamed (see _RENAMED).
_DROPPED_TAGS = frozenset({"script", "style", "template", "head", "x-head"})
# Ruby annotations: their words are not read (html.parser's tree kept them as other strings),
# but the blocks and line breaks inside them still count.
_SILENT_TAGS = frozenset({"rt", "rp"})
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")
_UNUSUAL_SPACE = re.compile(r"[\t\n\r\f\xa0]|  ")
# Blockquotes open and close with marks written at the start of the next line (see _Text).
_QUOTE_OPEN = "\x01"
_QUOTE_CLOSE = "\x02"
_QUOTE_MARKS = re.compile(r"[\x01\x02]+")
_BLANK_LINES = re.compile(r"\n{3,}")

_PARSERS = threading.local()  # a parser and its error log per thread (collection rounds run
# in the scheduler's threads)
# libxml2 reads these as raw text (markup inside shows as characters); html.parser read their
# content as markup, and dropped what sat in an explicit <head>. Renamed, they are ordinary
# (and x-head is dropped). Only a post where the walk meets one is read twice.
_RAW_TEXT_TAGS = frozenset(
    {"head", "iframe", "noembed", "noframes", "plaintext", "textarea", "title", "xmp"}
)
_SPECIAL_TAGS = _DROPPED_TAGS | _RAW_TEXT_TAGS
_RENAMED = re.compile(
    r"<(/?)(head|iframe|noembed|noframes|plaintext|textarea|title|xmp)(?=[\s/>]|$)", re.IGNORECASE
)
# A tag, end tag, comment or declaration opening after the last ">" is never closed: html.parser
# showed it, and everything after it, as text.
_CONSTRUCT = re.compile(r"<[a-zA-Z/!?]")
_COMMENT_CLOSE = re.compile(r"--\s*>")
_EVENTS: tuple[Literal["start", "end", "comment", "pi"], ...] = ("start", "end", "comment", "pi")
_MAX_DEPTH = 2048  # libxml2's limit on nesting, even with huge_tree
_FLAT_DEPTH = 256
_TAG = re.compile(rb"<(/?)([a-zA-Z][^\s/>]*)[^>]*>")
_VOID_TAGS = frozenset({b"br", b"img", b"hr", b"wbr", b"input", b"meta", b"link", b"base", b"col"})
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def html_to_text(html: str) -> str:
    """Turn a Mastodon status' HTML `content` into the plain text the participant wrote."""
    return read_html(html).text


def read_html(html: str) -> PostText:
    """The visible text of a status' HTML `content`, with the spans that quote someone else."""
    if "<" in html:
        html = _as_html_parser_read(html)
    root = _parse(html)
    if root is None:
        return PostText("")
    text = _Text()
    if not text.render(root, renamed=False):
        # A title, textarea or <head>: read again with them renamed (see _RENAMED).
        root = _parse(_RENAMED.sub(r"<\1x-\2", html))
        if root is None:
            return PostText("")
        text = _Text()
        text.render(root, renamed=True)
    return text.finish()


def _parse(html: str) -> etree._Element | None:
    try:
        data = html.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (JSON allows "\ud800")
        data = _SURROGATE.sub("\ufffd", html).encode("utf-8")
    if not data.strip():
        return None
    parser = _parser()
    root = etree.fromstring(data, parser)
    if data.count(b"<") >= _MAX_DEPTH and any(
        error.type == etree.ErrorTypes.ERR_RESOURCE_LIMIT for error in parser.error_log
    ):
        # libxml2 stops at 2,048 levels and drops the rest; no server nests like that, so the
        # deepest tags are left out and the words kept.
        root = etree.fromstring(_flatten(data), parser)
    return root


def _parser() -> etree.HTMLParser:
    parser: etree.HTMLParser | None = getattr(_PARSERS, "parser", None)
    if parser is None:
        parser = etree.HTMLParser(
            encoding="utf-8",
            recover=True,
            no_network=True,
            huge_tree=True,  # text nodes of any size; the walk below is iterative
            default_doctype=False,
        )
        _PARSERS.parser = parser
    return parser


def _flatten(data: bytes) -> bytes:
    """The post with the tags nested deeper than _FLAT_DEPTH left out (words kept)."""
    depth = 0
    pieces: list[bytes] = []
    done = 0
    for tag in _TAG.finditer(data):
        closing = tag.group(1) == b"/"
        void = tag.group(2).lower() in _VOID_TAGS or tag.group().endswith(b"/>")
        keep = depth <= _FLAT_DEPTH if closing else depth < _FLAT_DEPTH or void
        if not keep:
            pieces.append(data[done : tag.start()])
            done = tag.end()
        if closing:
            depth = max(depth - 1, 0)
        elif not void:
            depth += 1
    return b"".join(pieces) + data[done:]


def _as_html_parser_read(html: str) -> str:
    """Escape the constructs html.parser showed as text (never closed)."""
    if "<!--" in html:
        html = _unclosed_comments(html)
    tail = _CONSTRUCT.search(html, html.rfind(">") + 1)
    if tail is not None:
        html = html[: tail.start()] + html[tail.start() :].replace("<", "&lt;")
    return html


def _unclosed_comments(html: str) -> str:
    """'<!--' with no '-->' after it: html.parser showed it as text up to the next '>'."""
    last_close = -1
    for match in _COMMENT_CLOSE.finditer(html):
        last_close = match.start()
    pieces: list[str] = []
    done = 0
    start = html.find("<!--", max(0, last_close - 3))
    while start >= 0:
        end = html.find(">", start + 1) + 1
        if end == 0:
            end = html.find("<", start + 1)
            end = end if end >= 0 else start + 1
        pieces += [html[done:start], html[start:end].replace("<", "&lt;")]
        done = end
        start = html.find("<!--", end)
    return "".join(pieces) + html[done:]


def _space(text: str) -> str:
    if not _UNUSUAL_SPACE.search(text):
        return text  # the common case, checked first: single spaces only
    return _HTML_SPACE.sub(" ", text.replace("\xa0", " "))


class _Text:
    """The text of a tree, written as it is walked. A block boundary is a pending line break
    (a blank line if a paragraph is among them), written before the next words: adjacent blocks
    ("</li><li>") make one break, and spaces next to a boundary fall away."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.pending = ""  # "", "\n" or "\n\n"
        self.marks = ""  # quote marks to write at the start of the next line
        self.quoted = False

    def add(self, chunk: str) -> None:
        if self.pending:
            if not chunk.strip(" "):
                return  # only spaces between blocks
            self.out.append(self.pending + self.marks)
            self.pending = self.marks = ""
        self.out.append(chunk)

    def boundary(self, tag: str) -> None:
        if tag in _PARAGRAPH_TAGS:
            self.pending = "\n\n"
        elif not self.pending:
            self.pending = "\n"

    def render(self, root: etree._Element, *, renamed: bool) -> bool:
        """Write the text of the tree; False if it holds an element html.parser read otherwise
        and the raw-text tags are not `renamed` yet (a <head> libxml2 implied is dropped)."""
        add = self.add
        skipping: etree._Element | None = None  # a subtree left out (dropped, quote fallback, link)
        silent = 0  # inside this many ruby annotations
        for event, element in etree.iterwalk(root, events=_EVENTS):
            if skipping is not None:
                if element is skipping and event == "end":
                    skipping = None
                    if element.tail and not silent:
                        add(_space(element.tail))
                continue
            if event == "start":
                tag = element.tag
                if tag in _SPECIAL_TAGS:
                    if tag in _RAW_TEXT_TAGS and not renamed:
                        return False
                    skipping = element
                    continue
                classes = element.get("class")
                if classes and "quote-inline" in classes.split():
                    # Mastodon (4.4+) appends "RE: <link>" in a .quote-inline element as a
                    # fallback for servers that cannot show quotes; the quote is in the context.
                    skipping = element
                    continue
                if tag == "a":
                    add(_link_text(element))
                    skipping = element
                    continue
                if tag in _SILENT_TAGS:
                    silent += 1
                elif tag == "br":
                    add("\n")
                elif tag in _BLOCK_TAGS:
                    self.boundary(tag)
                    if tag == "blockquote":
                        self.marks += _QUOTE_OPEN
                        self.quoted = True
                if element.text and not silent:
                    add(_space(element.text))
                continue
            if event == "end":
                tag = element.tag
                if tag in _SILENT_TAGS:
                    silent -= 1
                elif tag in _BLOCK_TAGS:
                    if tag == "blockquote":
                        self.marks += _QUOTE_CLOSE
                    self.boundary(tag)
            # the end of an element, a comment or a processing instruction: then its tail
            if element.tail and not silent:
                add(_space(element.tail))
        return True

    def finish(self) -> PostText:
        """Trim the lines, merge runs of blank lines, and find the quoted lines."""
        raw = "".join(self.out)
        if not self.quoted:
            if " \n" in raw or "\n " in raw:
                raw = "\n".join([line.strip(" ") for line in raw.split("\n")])
            else:
                raw = raw.strip(" ")
            if "\n\n\n" in raw:
                raw = _BLANK_LINES.sub("\n\n", raw)
            return PostText(raw.strip("\n"))
        return _quoted_text(raw.split("\n"))


def _link_text(link: etree._Element) -> str:
    classes = (link.get("class") or "").split()
    visible = _space("".join(_strings(link)))
    if "mention" in classes or "hashtag" in classes:
        return visible.strip()  # "@alice", "#edchat"
    href = link.get("href")
    if href and any(
        {"invisible", "ellipsis"} & set((span.get("class") or "").split())
        for span in link.iter("span")
    ):
        # Mastodon shortens long URLs with invisible/ellipsis spans; the href is what was typed.
        return href
    return visible


def _strings(link: etree._Element) -> list[str]:
    """The words inside a link (not scripts, styles, templates, comments or ruby annotations)."""
    found = [link.text or ""]
    hidden: list[etree._Element] = []  # open elements whose words are not read
    for event, element in etree.iterwalk(link, events=_EVENTS):
        if element is link:
            continue
        if event in ("comment", "pi"):
            if not hidden and element.tail:
                found.append(element.tail)
            continue
        tag = element.tag
        quiet = tag in _DROPPED_TAGS or tag in _SILENT_TAGS
        if event == "start":
            if quiet:
                hidden.append(element)
            elif not hidden and element.text:
                found.append(element.text)
            continue
        if hidden and hidden[-1] is element:
            hidden.pop()
        if not hidden and element.tail:
            found.append(element.tail)
    return found


def _quoted_text(raw_lines: list[str]) -> PostText:
    """The text line by line (as `finish`), where each line starts with the quote marks met
    since the line before: count them, drop them, and mark the lines inside a quote."""
    kept: list[tuple[str, bool]] = []
    depth = 0
    blank = False
    for raw in raw_lines:
        line = raw.strip(" ")
        marks = _QUOTE_MARKS.match(line)
        if marks:
            depth += marks.group().count(_QUOTE_OPEN) - marks.group().count(_QUOTE_CLOSE)
            line = line[marks.end() :].lstrip(" ")
        if not line:
            blank = bool(kept)
            continue
        if blank:
            kept.append(("", False))
            blank = False
        kept.append((line, depth > 0))
    spans: list[tuple[int, int]] = []
    position = 0
    for line, quoted in kept:
        if quoted and spans and spans[-1][1] >= position - 2:
            spans[-1] = (spans[-1][0], position + len(line))
        elif quoted:
            spans.append((position, position + len(line)))
        position += len(line) + 1
    return PostText("\n".join(line for line, _ in kept), tuple(spans))
