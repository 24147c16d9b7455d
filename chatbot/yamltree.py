"""YAML text -> plain data with the position of every value, within fixed bounds.

Nesting and aliases are bounded on the parser's flat event stream, before any
tree is built or walked; every value that cannot be read (``!!int nine``, a tag
from another program, a key that is not a word) becomes a located problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from chatbot.errors import Problem, Severity

Path_ = tuple[str | int, ...]

# A chat script is a few kilobytes; the cap leaves room for a long series of
# long posts and keeps every check on one file well under a second.
MAX_SCRIPT_BYTES = 256 * 1024
# Top level > questions > a question > its image is 4 levels; nothing needs 10.
MAX_DEPTH = 10
# Values repeated through aliases (*name). A shared moderator or two is a few
# dozen; a "billion laughs" file asks for billions.
MAX_ALIAS_VALUES = 1000
_SCALAR_TAGS = {
    "tag:yaml.org,2002:str": "text",
    "tag:yaml.org,2002:int": "a whole number",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "true or false",
    "tag:yaml.org,2002:null": "empty",
    "tag:yaml.org,2002:timestamp": "a date",
}
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_COMMENT_AFTER = re.compile(r"\s*#\S")
# Control characters a quoted value can hold through escapes (\0, \a, \x07 ...).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass
class SourceDoc:
    """A parsed YAML document and the position of each of its values."""

    file: str
    data: Any
    text: str = ""  # the YAML text the data was read from
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    # Paths whose value was unusable and left out of ``data`` (already reported).
    invalid: set[Path_] = field(default_factory=set)
    # A misspelt key read under its right name: right path -> path as written.
    renamed: dict[Path_, Path_] = field(default_factory=dict)
    # A value cut short by a "#" that YAML took for a comment: path -> the comment.
    comments: dict[Path_, str] = field(default_factory=dict)
    # How a value that is not text was written (``Yes``, ``2027``): for "put it in quotes".
    raw: dict[Path_, str] = field(default_factory=dict)

    def as_written(self, path: Path_) -> Path_:
        """The path as the file spells it (a misspelt key keeps its spelling)."""
        for right, written in self.renamed.items():
            if path[: len(right)] == right:
                return (*written, *path[len(right) :])
        return path

    def where(self, path: Path_, *, key: bool = False) -> tuple[int | None, int | None]:
        """Line and column (1-based) of the value at ``path`` or its closest parent."""
        table = self.key_positions if key else self.positions
        probe = self.as_written(tuple(path))
        while probe:
            if probe in table:
                return table[probe]
            if not key and probe in self.key_positions:
                return self.key_positions[probe]
            probe = probe[:-1]
        return self.positions.get((), (1, 1))

    def problem(
        self,
        path: Path_,
        message: str,
        hint: str = "",
        *,
        key: bool = False,
        severity: Severity = Severity.ERROR,
    ) -> Problem:
        line, column = self.where(path, key=key)
        return Problem(
            self.file, line, column, dotted(self.as_written(path)), message, hint, severity
        )

    def is_invalid(self, path: Path_) -> bool:
        """Whether ``path`` is, or lies inside, a value already reported and left out."""
        return any(path[: len(bad)] == bad for bad in self.invalid)


def dotted(path: Path_) -> str:
    """``("questions", 2, "text")`` -> ``questions[2].text`` (1-based list items)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            out += ("." if out else "") + part
    return out


_BASE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Loader(_BASE_LOADER):  # type: ignore[valid-type,misc]
    """SafeLoader (libyaml's when installed) without YAML 1.1's base-60 numbers.

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
    Loader.yaml_implicit_resolvers = resolvers
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:int",
        re.compile(
            r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"
        ),
        list("-+0123456789"),
    )
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(
            r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
            r"|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+0123456789."),
    )


_without_sexagesimal()


def syntax_problem(exc: yaml.MarkedYAMLError, name: str, lines: list[str]) -> Problem:
    """A YAML syntax error in plain words, on the line to fix."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    column = mark.column + 1 if mark else None
    what = exc.problem or "invalid YAML"
    text = lines[mark.line] if mark and mark.line < len(lines) else ""
    hint = "check the indentation and quoting on this line and the one above"
    hashtag_list = _hashtag_list_line(lines, mark.line if mark else 0)
    if "\t" in text[: len(text) - len(text.lstrip())] or "\\t" in what:
        hint = "YAML indentation must use spaces, not tabs"
    elif "mapping values are not allowed" in what:
        hint = 'put text that contains ": " in quotes, e.g. text: "Q1: ..."'
    elif hashtag_list is not None:
        line, column = hashtag_list + 1, None
        hint = 'a # starts a comment in YAML: put hashtags in quotes, e.g. ["#edchat", "#k12"]'
    elif "maximum nesting depth" in what:  # libyaml's own limit, met before ours
        return Problem(name, line, column, "", *_too_deep())
    elif "single document" in what or "another document" in what:
        what = "the file holds more than one YAML document (a second ---)"
        hint = "keep one chat per file: remove the --- line or move the second chat to its own file"
    return Problem(name, line, column, "", f"YAML syntax error: {what}", hint)


def _hashtag_list_line(lines: list[str], at: int) -> int | None:
    """The line (0-based) at or up to 5 lines above ``at`` where "[#" or ", #" starts a comment."""
    for index in range(min(at, len(lines) - 1), max(at - 6, -1), -1):
        if re.search(r"[\[,]\s*#", lines[index]):
            return index
    return None


def scan(text: str, name: str) -> list[Problem]:
    """Refuse deep nesting and alias bombs on the event stream, before any tree is built.

    Each anchor's size is the number of values it holds, its own aliases
    expanded; each alias adds its anchor's size to the budget.
    """
    loader = Loader(text)
    try:
        frames: list[list[Any]] = []  # [anchor, size] of each open collection
        sizes: dict[str, int] = {}
        repeated = 0
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                frames.append([event.anchor, 1])
                if len(frames) > MAX_DEPTH:
                    return [_where(event, name, _too_deep())]
            elif isinstance(event, yaml.CollectionEndEvent):
                anchor, size = frames.pop()
                if anchor is not None:
                    sizes[anchor] = size
                if frames:
                    frames[-1][1] += size
            elif isinstance(event, yaml.ScalarEvent):
                if event.anchor is not None:
                    sizes[event.anchor] = 1
                if frames:
                    frames[-1][1] += 1
            elif isinstance(event, yaml.AliasEvent):
                anchor = str(event.anchor)
                if any(frame[0] == anchor for frame in frames):
                    return [_where(event, name, _self_alias(anchor))]
                size = sizes.get(anchor, 1)
                repeated += size
                if repeated > MAX_ALIAS_VALUES:
                    return [_where(event, name, _too_many_aliases())]
                if frames:
                    frames[-1][1] += size
    finally:
        loader.dispose()
    return []


def _where(event: yaml.Event, name: str, what: tuple[str, str]) -> Problem:
    mark = event.start_mark
    if mark is None:  # pragma: no cover - both parsers mark every event
        return Problem(name, None, None, "", what[0], what[1])
    return Problem(name, mark.line + 1, mark.column + 1, "", what[0], what[1])


def _too_deep() -> tuple[str, str]:
    return (
        f"the sections here are nested more than {MAX_DEPTH} levels deep; "
        "a chat script never needs more than 4",
        "check the indentation and the [ ] and { } brackets on this line",
    )


def _self_alias(anchor: str) -> tuple[str, str]:
    return (
        f"the alias *{anchor} is used inside &{anchor} itself, so it would repeat forever",
        f"write the values out instead of *{anchor}",
    )


def _too_many_aliases() -> tuple[str, str]:
    return (
        f"aliases (*name) in this file repeat more than {MAX_ALIAS_VALUES:,} values; "
        "a chat script needs few or none",
        "write the values out instead of repeating them with & and *",
    )


class Builder:
    """Builds plain data from the composed nodes, recording positions and problems."""

    def __init__(self, doc: SourceDoc, lines: list[str]) -> None:
        self.doc = doc
        self.lines = lines
        self.problems: list[Problem] = []
        self.constructor = Loader("")
        self.budget = MAX_ALIAS_VALUES * 4 + sum(len(line) for line in lines) + 16

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.budget -= 1
        if self.budget < 0:  # the scan bounds this; a second guard costs nothing
            raise Refused(_where_node(node, self.doc.file, _too_many_aliases()))
        self.doc.positions.setdefault(path, _mark(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                return self._bad_tag(node, path)
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        return self._scalar(node, path)

    def _mapping(
        self, node: yaml.MappingNode, path: Path_, skip: frozenset[str] = frozenset()
    ) -> Any:
        if node.tag != _MAP_TAG:
            return self._bad_tag(node, path)
        result: dict[str, Any] = {}
        seen: dict[str, int] = {}
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.append(value_node)
                continue
            key = self._key(key_node, path)
            if key is None or key in skip:
                continue
            line = key_node.start_mark.line + 1
            child = (*path, key)
            if key in seen:
                self.problems.append(
                    Problem(
                        self.doc.file,
                        line,
                        key_node.start_mark.column + 1,
                        dotted(child),
                        f'"{key}" appears twice in the same section (first on line {seen[key]})',
                        "keep one of them: YAML would silently use only the last",
                    )
                )
            seen[key] = line
            self.doc.key_positions[child] = _mark(key_node)
            self.doc.positions.pop(child, None)
            self.doc.invalid.discard(child)
            value = self.build(value_node, child)
            if child not in self.doc.invalid:
                result[key] = value
            if (
                isinstance(value_node, yaml.CollectionNode)
                and value_node.start_mark.line != key_node.start_mark.line
            ):
                # A block section starts on the line after its key; a problem with the
                # section as a whole (a missing key, a cross-field check) belongs on
                # the key's line, where the co-moderator wrote "image:".
                self.doc.positions[child] = self.doc.key_positions[child]
        for value_node in merged:
            self._merge(value_node, path, result)
        return result

    def _merge(self, node: yaml.Node, path: Path_, result: dict[str, Any]) -> None:
        """``<<: *base``: keys of the base section that this section does not set itself."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                self.problems.append(
                    _where_node(
                        source,
                        self.doc.file,
                        ("<< can only merge a section (key: value lines)", "merge a section"),
                    )
                )
                continue
            taken = frozenset(result)
            for key, value in self._mapping(source, path, taken).items():
                result.setdefault(key, value)

    def _key(self, node: yaml.Node, path: Path_) -> str | None:
        value: Any = None
        if isinstance(node, yaml.ScalarNode):
            try:
                value = self._construct(node)
            except _Unreadable:
                value = node.value
            if isinstance(value, str):
                return value
        if isinstance(node, yaml.ScalarNode) and isinstance(value, bool):
            message = f'the key "{node.value}" is read as {str(value).lower()}, not as a word'
            hint = f'put the key in quotes: "{node.value}":'
        elif isinstance(node, yaml.ScalarNode):
            message = f'"{node.value}" cannot be a key: keys are words such as title: or text:'
            hint = "check the indentation: this line may belong to the list or text above"
        else:
            message = "a key here is a list or a section; keys are words such as title:"
            hint = "remove the ? or the brackets before the colon"
        self.problems.append(Problem(self.doc.file, *_mark(node), dotted(path), message, hint))
        return None

    def _scalar(self, node: yaml.ScalarNode, path: Path_) -> Any:
        try:
            value = self._construct(node)
        except _Unreadable as exc:
            self.problems.append(
                Problem(self.doc.file, *_mark(node), dotted(path), exc.message, exc.hint)
            )
            self.doc.invalid.add(path)
            return None
        if not isinstance(value, str) and value is not None:
            self.doc.raw[path] = node.value
        elif isinstance(value, str) and (control := _CONTROL.search(value)):
            self.problems.append(
                Problem(
                    self.doc.file,
                    *_mark(node),
                    dotted(path),
                    f"this text holds an invisible control character "
                    f"(U+{ord(control.group()):04X}), written as an escape such as \\0 or \\x07",
                    "remove the escape from the text",
                )
            )
        if node.style in (None, ""):
            rest = self._rest_of_line(node)
            if _COMMENT_AFTER.match(rest):
                comment = rest.strip()
                if value is None:
                    self.doc.comments[path] = comment
                elif isinstance(value, str):
                    self.problems.append(
                        Problem(
                            self.doc.file,
                            *_mark(node),
                            dotted(path),
                            f'"{comment}" and what follows it on this line are a YAML comment, '
                            "not part of the text",
                            "put the whole text in quotes; or, for a comment, write a space "
                            "after the #",
                            Severity.WARNING,
                        )
                    )
        return value

    def _rest_of_line(self, node: yaml.Node) -> str:
        mark = node.end_mark
        if mark.line >= len(self.lines):
            return ""
        return self.lines[mark.line][mark.column :]

    def _construct(self, node: yaml.ScalarNode) -> Any:
        implicit = node.style in (None, "") and node.tag == self.constructor.resolve(
            yaml.ScalarNode, node.value, (True, False)
        )
        what = _SCALAR_TAGS.get(node.tag)
        if what is None:
            raise _Unreadable(
                f"the tag {_short(node.tag)} is not used in chat scripts",
                f"remove {_short(node.tag)} from this line",
            )
        try:
            return self.constructor.yaml_constructors[node.tag](self.constructor, node)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, yaml.YAMLError):
            if implicit and node.tag == _TIMESTAMP_TAG:
                return node.value  # not a real date: the script's checks say why in words
            raise _Unreadable(
                f'{_short(node.tag)} {node.value}: "{node.value}" is not {what}',
                f"remove {_short(node.tag)}, or write {what} here",
            ) from None

    def _bad_tag(self, node: yaml.Node, path: Path_) -> None:
        self.problems.append(
            Problem(
                self.doc.file,
                *_mark(node),
                dotted(path),
                f"the tag {_short(node.tag)} is not used in chat scripts",
                f"remove {_short(node.tag)} from this line",
            )
        )
        self.doc.invalid.add(path)
        return None


class _Unreadable(Exception):
    """A scalar that cannot be read as its tag says."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class Refused(Exception):
    """The file is beyond the loader's bounds."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _where_node(node: yaml.Node, name: str, what: tuple[str, str]) -> Problem:
    return Problem(name, *_mark(node), "", what[0], what[1])


def _short(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def build_data(node: yaml.Node, doc: SourceDoc, lines: list[str]) -> list[Problem]:
    """Fill ``doc.data`` and its positions from the composed ``node``; returns the problems."""
    builder = Builder(doc, lines)
    try:
        doc.data = builder.build(node, ())
    except Refused as exc:
        doc.data = None
        return [exc.problem]
    return builder.problems
