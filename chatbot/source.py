"""Reading YAML files safely while remembering where every value came from.

Co-moderators need messages that name the line, so the loader keeps a map from
each value's path (``("questions", 2, "text")``) to its line and column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chatbot.errors import Problem

Path_ = tuple[str | int, ...]


@dataclass
class SourceDoc:
    """A parsed YAML document and the position of each of its values."""

    file: str
    data: Any
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path_, *, key: bool = False) -> tuple[int | None, int | None]:
        """Line and column (1-based) of the value at ``path`` or its closest parent."""
        table = self.key_positions if key else self.positions
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if not key and probe in self.key_positions:
                return self.key_positions[probe]
            probe = probe[:-1]
        return self.positions.get((), (1, 1))

    def problem(self, path: Path_, message: str, hint: str = "", *, key: bool = False) -> Problem:
        line, column = self.where(path, key=key)
        return Problem(self.file, line, column, dotted(path), message, hint)


def dotted(path: Path_) -> str:
    """``("questions", 2, "text")`` -> ``questions[2].text`` (1-based list items)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            out += ("." if out else "") + part
    return out


class _PositionLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1's base-60 numbers.

    PyYAML reads ``20:00`` as the integer 1200 and ``0:05`` as 5 (YAML 1.1
    sexagesimal); a chat script means a time of day or a duration, so such
    scalars stay strings. Everything else resolves as in SafeLoader.
    """


def _without_sexagesimal() -> None:
    resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}
    for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items():
        resolvers[first] = [
            (tag, regexp)
            for tag, regexp in entries
            if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
        ]
    _PositionLoader.yaml_implicit_resolvers = resolvers
    _PositionLoader.add_implicit_resolver(
        "tag:yaml.org,2002:int",
        re.compile(
            r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"
        ),
        list("-+0123456789"),
    )
    _PositionLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(
            r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
            r"|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+0123456789."),
    )


_without_sexagesimal()


def _walk(
    node: yaml.Node,
    path: Path_,
    doc: SourceDoc,
    problems: list[Problem],
) -> None:
    doc.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                problems.append(
                    Problem(
                        doc.file,
                        key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                        dotted((*path, key)),
                        f'"{key}" appears twice in the same section (first on line {seen[key]})',
                        "keep one of them: YAML would silently use only the last",
                    )
                )
            seen[key] = key_node.start_mark.line + 1
            child = (*path, key)
            doc.key_positions[child] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            _walk(value_node, child, doc, problems)
            if (
                isinstance(value_node, yaml.CollectionNode)
                and value_node.start_mark.line != key_node.start_mark.line
            ):
                # A block section starts on the line after its key; a problem with the
                # section as a whole (a missing key, a cross-field check) belongs on
                # the key's line, where the co-moderator wrote "image:".
                doc.positions[child] = doc.key_positions[child]
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), doc, problems)


def load_yaml(path: Path, display: str | None = None) -> tuple[SourceDoc, list[Problem]]:
    """Parse ``path`` with the safe loader; never raises for bad content, returns problems."""
    name = display or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return SourceDoc(name, None), [
            Problem(name, None, None, "", f"cannot read the file: {exc.strerror}", "check the path")
        ]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        return SourceDoc(name, None), [
            Problem(
                name,
                line,
                column,
                "",
                f"not UTF-8 text: byte 0x{raw[exc.start]:02x} on this line ({exc.reason})",
                "save the file as UTF-8 (a word processor's curly quote is a common cause)",
            )
        ]
    return parse_yaml(text, name)


def parse_yaml(text: str, name: str) -> tuple[SourceDoc, list[Problem]]:
    """Parse YAML text; syntax errors become problems with the line of the mistake."""
    doc = SourceDoc(name, None)
    problems: list[Problem] = []
    try:
        node = yaml.compose(text, Loader=_PositionLoader)
        data = yaml.load(text, Loader=_PositionLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        what = exc.problem or "invalid YAML"
        hint = "check the indentation and quoting on this line and the one above"
        # PyYAML names a tab as "found character '\\t' that cannot start any token".
        if exc.problem and ("tab" in exc.problem or "\\t" in exc.problem):
            hint = "YAML indentation must use spaces, not tabs"
        elif exc.problem and "mapping values are not allowed" in exc.problem:
            hint = 'put text that contains ": " in quotes, e.g. text: "Q1: ..."'
        return doc, [Problem(name, line, column, "", f"YAML syntax error: {what}", hint)]
    except yaml.YAMLError as exc:
        return doc, [Problem(name, None, None, "", f"YAML error: {exc}", "fix the YAML syntax")]
    doc.data = data
    if node is not None:
        _walk(node, (), doc, problems)
    return doc, problems
