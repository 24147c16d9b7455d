"""The reference for chatbot.markup: post HTML -> text as the project read it until issue 14,
with BeautifulSoup and Python's html.parser (kept verbatim; slow, and recursive)."""

from __future__ import annotations

import re
import warnings

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning
from bs4.element import Comment, NavigableString, Tag

_BLOCK_TAGS = frozenset(
    {"p", "div", "blockquote", "li", "ul", "ol", "pre", "h1", "h2", "h3", "h4", "h5", "h6"}
)
_PARAGRAPH_TAGS = frozenset({"p", "blockquote", "pre", "ul", "ol"})
_DROPPED_TAGS = frozenset({"script", "style", "template", "head"})
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")
_BLOCK = "\x00b"
_PARAGRAPH = "\x00p"
_BOUNDARIES = re.compile(r"(?:[ ]*\x00[bp])+[ ]*")


def html_to_text(html: str) -> str:
    """Turn a Mastodon status' HTML `content` into the plain text the participant wrote."""
    with warnings.catch_warnings():
        # A post that is only a link "looks like a URL" to BeautifulSoup; it is a post.
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(html, "html.parser")
    for fallback in soup.select(".quote-inline"):
        fallback.decompose()
    chunks: list[str] = []
    _render(soup, chunks)
    raw = _BOUNDARIES.sub(lambda m: "\n\n" if _PARAGRAPH in m.group() else "\n", "".join(chunks))
    lines = [line.strip(" ") for line in raw.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def _render(node: Tag, out: list[str]) -> None:
    for child in node.children:
        if isinstance(child, Comment):
            continue
        if isinstance(child, NavigableString):
            if type(child) is NavigableString:  # not a CDATA / doctype / processing instruction
                out.append(_HTML_SPACE.sub(" ", str(child).replace("\xa0", " ")))
            continue
        if not isinstance(child, Tag) or child.name in _DROPPED_TAGS:
            continue
        name = child.name
        if name == "br":
            out.append("\n")
        elif name == "a":
            out.append(_link_text(child))
        elif name in _BLOCK_TAGS:
            boundary = _PARAGRAPH if name in _PARAGRAPH_TAGS else _BLOCK
            out.append(boundary)
            _render(child, out)
            out.append(boundary)
        else:
            _render(child, out)


def _link_text(link: Tag) -> str:
    classes: str | list[str] = link.get("class") or []
    visible = _HTML_SPACE.sub(" ", link.get_text().replace("\xa0", " "))
    if "mention" in classes or "hashtag" in classes:
        return visible.strip()
    href = link.get("href")
    shortened = link.find("span", class_=["invisible", "ellipsis"]) is not None
    if shortened and isinstance(href, str) and href:
        return href
    return visible
