"""Reading YAML files safely, within fixed bounds, remembering where every value came from.

Co-moderators need messages that name the line, so the loader keeps a map from
each value's path (``("questions", 2, "text")``) to its line and column.

Every bound is checked before the work it protects: the file's size before it
is read, its characters before it is parsed, and nesting and aliases on the
parser's flat event stream before any tree is built or walked. So a hostile
file (an alias bomb, ten thousand nested lists) costs a fraction of a second
and a few megabytes, and comes back as a located problem, never an exception.
"""

from __future__ import annotations

import codecs
import re
import stat
from pathlib import Path

import yaml

from chatbot.errors import Problem
from chatbot.yamltree import (
    MAX_SCRIPT_BYTES,
    Loader,
    Path_,
    SourceDoc,
    build_data,
    dotted,
    scan,
    syntax_problem,
)

__all__ = ["MAX_SCRIPT_BYTES", "Path_", "SourceDoc", "dotted", "load_yaml", "parse_yaml"]

# Characters YAML forbids (PyYAML's Reader.NON_PRINTABLE): control characters.
_FORBIDDEN = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# --- bytes -> text -------------------------------------------------------------------------


def read_text(
    path: Path, name: str, max_bytes: int = MAX_SCRIPT_BYTES
) -> tuple[str | None, Problem | None]:
    """The file's text, or the problem that keeps it from being read as a script."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return None, _file_problem(
                name, "this is not a regular file", "name a chat script file (.yaml)"
            )
        if info.st_size > max_bytes:
            return None, _too_big(name, info.st_size, max_bytes)
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        return None, _file_problem(
            name,
            f"cannot read the file: {exc.strerror or exc}",
            "check the path and its permissions",
        )
    if len(raw) > max_bytes:  # it grew while we looked
        return None, _too_big(name, len(raw), max_bytes)
    return decode(raw, name)


def _file_problem(name: str, message: str, hint: str) -> Problem:
    return Problem(name, None, None, "", message, hint)


def _too_big(name: str, size: int, max_bytes: int) -> Problem:
    return Problem(
        name,
        None,
        None,
        "",
        f"the file is {size:,} bytes; a chat script can be at most {max_bytes:,} bytes",
        "check that this is the right file; a chat script is usually a few kilobytes",
    )


def decode(raw: bytes, name: str) -> tuple[str | None, Problem | None]:
    """UTF-8 text (a byte-order mark is fine); other encodings are named in plain words."""
    if raw.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return None, _encoding_problem(name, "UTF-32")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or _looks_utf16(raw):
        return None, _encoding_problem(name, "UTF-16")
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        byte = raw[exc.start]
        if 0x91 <= byte <= 0x94:
            why = "a curly quote saved by a word processor in the old Windows encoding"
        elif byte >= 0x80:
            why = "an accented letter or symbol saved in an old encoding (Latin-1 or Windows)"
        else:
            why = "a character in an encoding other than UTF-8"
        return None, Problem(
            name,
            line,
            column,
            "",
            f"the file is not UTF-8 text: byte 0x{byte:02x} on this line is {why}",
            "save the file as UTF-8 (in most editors: Save as, Encoding: UTF-8)",
        )


def _looks_utf16(raw: bytes) -> bool:
    """UTF-16 without a byte-order mark: every other byte of ASCII text is zero."""
    sample = raw[:200]
    return len(sample) >= 4 and sample.count(0) * 3 >= len(sample)


def _encoding_problem(name: str, encoding: str) -> Problem:
    return Problem(
        name,
        1,
        1,
        "",
        f'the file is saved as {encoding} ("Unicode"), not UTF-8',
        "save it again as UTF-8 (in Notepad: Save as, Encoding: UTF-8)",
    )


# --- text -> data --------------------------------------------------------------------------


def load_yaml(
    path: Path, display: str | None = None, *, max_bytes: int = MAX_SCRIPT_BYTES
) -> tuple[SourceDoc, list[Problem]]:
    """Parse ``path`` with the safe loader; never raises for bad content, returns problems."""
    name = display or str(path)
    text, problem = read_text(path, name, max_bytes)
    if text is None:
        assert problem is not None
        return SourceDoc(name, None), [problem]
    return parse_yaml(text, name, max_bytes=max_bytes)


def parse_yaml(
    text: str, name: str, *, max_bytes: int = MAX_SCRIPT_BYTES
) -> tuple[SourceDoc, list[Problem]]:
    """Parse YAML text; every mistake becomes a problem with the line it is on.

    Problems that leave the document unusable (syntax, size, bombs) come back
    with ``doc.data`` None; a value that cannot be read (``!!int nine``) is left
    out of ``doc.data``, reported, and its path recorded in ``doc.invalid``.
    """
    doc = SourceDoc(name, None)
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > max_bytes:
        return doc, [_too_big(name, size, max_bytes)]
    text = text.removeprefix("\ufeff")
    doc.text = text
    forbidden = _forbidden_characters(text, name)
    if forbidden:
        return doc, forbidden
    lines = text.splitlines()
    try:
        problems = scan(text, name)
        if problems:
            return doc, problems
        node = yaml.compose(text, Loader=Loader)
    except yaml.MarkedYAMLError as exc:
        return doc, [syntax_problem(exc, name, lines)]
    except yaml.YAMLError as exc:  # a ReaderError: the characters were checked above
        return doc, [Problem(name, None, None, "", f"YAML error: {exc}", "fix the YAML syntax")]
    if node is None:
        return doc, []
    return doc, build_data(node, doc, lines)


def _forbidden_characters(text: str, name: str) -> list[Problem]:
    problems = []
    for match in _FORBIDDEN.finditer(text):
        before = text[: match.start()]
        line = before.count("\n") + 1
        column = match.start() - (before.rfind("\n") + 1) + 1
        code = ord(match.group())
        problems.append(
            Problem(
                name,
                line,
                column,
                "",
                f"an invisible control character (U+{code:04X}) is on this line",
                "delete it, or retype the line: such characters often come with text "
                "copied from a PDF or a chat app",
            )
        )
        if len(problems) >= 5:
            break
    return problems
