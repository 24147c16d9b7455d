"""The script's shape: pydantic's errors in plain words, and every one of them at once.

Pydantic stops at the first level that fails: a misspelt key or a wrong type
would hide every check of the rest of the script. So the data is repaired and
validated again: a misspelt key is read under the key it was meant to be, a
value that cannot be used is left out (or, where the script needs one, stands in
as a placeholder), and the path is recorded in ``doc.invalid`` so that nothing
else is reported about a value already reported.
"""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from chatbot.errors import Problem
from chatbot.script import FieldError, Recurrence
from chatbot.scriptvalues import Fixable
from chatbot.source import Path_, SourceDoc, dotted

M = TypeVar("M", bound=BaseModel)
MAX_ROUNDS = 8
# Words people write for an ordinal that the list does not have.
_ORDINAL_WORDS = {
    "1": "first",
    "1st": "first",
    "one": "first",
    "2": "second",
    "2nd": "second",
    "two": "second",
    "3": "third",
    "3rd": "third",
    "three": "third",
    "4": "fourth",
    "4th": "fourth",
    "four": "fourth",
    "5": "last",
    "5th": "last",
    "fifth": "last",
    "five": "last",
    "final": "last",
}
_PLAIN = {
    "string_type": (
        "this should be text",
        'write text here (in quotes if it looks like a number: "2027")',
    ),
    "int_type": ("this should be a whole number", "write a whole number here, e.g. 3"),
    "int_parsing": ("this should be a whole number", "write a whole number here, e.g. 3"),
    "int_from_float": ("this should be a whole number", "write a whole number here, e.g. 3"),
    "bool_type": ("this should be true or false", "write true or false"),
    "bool_parsing": ("this should be true or false", "write true or false"),
    "list_type": ("this should be a list", "write a list here, one item per line starting with - "),
    "missing_argument": ("a value is missing here", "see the examples in schedules/"),
}


def validate_every_part(model: type[M], doc: SourceDoc) -> tuple[M | None, list[Problem]]:
    """Validate ``doc.data`` as ``model``, reporting the problems of every part at once.

    Returns the model (built from repaired data when something was wrong, see the
    module docstring) and the problems. The model is None only when the data
    cannot be repaired at all.
    """
    data = copy.deepcopy(doc.data)
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for _round in range(MAX_ROUNDS):
        try:
            return model.model_validate(data), problems
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
        repaired = False
        for problem in pydantic_problems_of(errors, doc, model):
            if (problem.field, problem.message) not in seen:
                seen.add((problem.field, problem.message))
                problems.append(problem)
        # Misspelt keys first (read under the right name), then later list items
        # before earlier ones (a removal shifts no other).
        order = sorted(reversed(errors), key=lambda e: e["type"] != "extra_forbidden")
        for error in order:
            repaired |= _repair(data, error, doc, model)
        if not repaired:
            break
    return None, problems


def pydantic_problems(exc: ValidationError, doc: SourceDoc, root: type[BaseModel]) -> list[Problem]:
    """Turn pydantic's errors into problems with lines, plain words and a fix."""
    return pydantic_problems_of(exc.errors(include_url=False), doc, root)


def pydantic_problems_of(
    errors: list[ErrorDetails], doc: SourceDoc, root: type[BaseModel]
) -> list[Problem]:
    """:func:`pydantic_problems` for a list of pydantic's error details."""
    problems = []
    # A misspelt key ("questons") also leaves the real one missing; the "did you
    # mean" on the misspelt key's line says it all, so the second problem is dropped.
    misspelt: set[Path_] = set()
    for error in errors:
        if error["type"] == "extra_forbidden":
            loc: Path_ = tuple(error["loc"])
            close = _close_key(str(loc[-1]), _fields_at(root, loc[:-1]))
            if close:
                misspelt.add((*loc[:-1], close))
    for error in errors:
        path = error_path(error)
        if doc.is_invalid(path) or (path in misspelt and error["type"] == "missing"):
            continue
        if _checked_stand_ins(error, path, doc):
            continue
        problems.append(_problem(error, path, doc, root))
    return problems


def _checked_stand_ins(error: ErrorDetails, path: Path_, doc: SourceDoc) -> bool:
    """Whether a check across fields ran on a section where a value was left out."""
    if not isinstance(error.get("ctx", {}).get("error"), FieldError) or len(path) < 2:
        return False
    section = path[:-1]
    return any(bad[: len(section)] == section for bad in doc.invalid)


def error_path(error: ErrorDetails) -> Path_:
    """Where an error is: a check across fields points at the key it names."""
    path: Path_ = tuple(error["loc"])
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, FieldError):
        path = (*path, cause.key)
    return path


def _problem(error: ErrorDetails, path: Path_, doc: SourceDoc, root: type[BaseModel]) -> Problem:
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    hint = ""
    if kind == "extra_forbidden":
        key = str(path[-1])
        allowed = _fields_at(root, path[:-1])
        close = _close_key(key, allowed)
        hint = (
            f'did you mean "{close}"?'
            if close
            else f"remove it; allowed here: {', '.join(sorted(allowed))}"
        )
        return doc.problem(path, f'unknown key "{key}"', hint, key=True)
    if kind == "missing":
        message = f'"{path[-1]}" is required'
        hint = f"add {path[-1]}: to {dotted(path[:-1]) if path[:-1] else 'the top level'}"
        comment = doc.comments.get(path)
    else:
        comment = doc.comments.get(path)
    if kind in ("enum", "literal_error"):
        expected = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
        written = str(error["input"])
        message = f'"{written}" is not one of: {", ".join(expected)}'
        hint = _closest_value(written, expected)
    elif kind in ("model_type", "dict_type", "model_attributes_type"):
        message = "this should be a section of key: value lines, not a single value"
        keys = _fields_at(root, path)
        hint = f"write key: value lines indented under it ({', '.join(keys)})"
    elif kind in _PLAIN:
        message, hint = _PLAIN[kind]
        raw = doc.raw.get(path)
        if kind == "string_type" and raw is not None:
            message = f"{raw} is read as {_read_as(error['input'])}, not as text"
            hint = f'put it in quotes: "{raw}"'
    elif kind == "too_short" and path and path[-1] == "questions":
        message = "the chat has no questions"
        hint = "add at least one question under questions:"
    elif kind == "too_short":
        message = "this list is empty"
        hint = "add at least one item, or remove the key"
    elif kind == "too_long":
        most = error.get("ctx", {}).get("max_length")
        message = f"this list has more than {most} items"
        hint = f"keep at most {most}"
    elif kind == "string_too_short":
        message = "this is empty"
        hint = "write some text here, or remove the key"
    elif kind == "string_pattern_mismatch":
        message = f'"{error["input"]}" is not a valid id'
        hint = "use lowercase letters, digits and dashes, e.g. blended-learning"
    elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(error.get("ctx", {}).values()), "")
        word = "at least" if kind.startswith("greater") else "at most"
        message = f"{error['input']} is too {'small' if word == 'at least' else 'big'}"
        hint = f"write a number {word} {bound}"
    elif kind == "value_error":
        message, hint = _split_fix(message, error)
    if not hint:
        hint = "see the examples in schedules/ and the README"
    if comment and error["input"] is None:
        message = f"this is empty: YAML read {comment} as a comment"
        hint = f'a # starts a comment in YAML: put the value in quotes, e.g. "{comment}"'
    return doc.problem(path, message, hint)


def _split_fix(message: str, error: ErrorDetails) -> tuple[str, str]:
    """A validator's "what: how to fix it" as a message and a hint."""
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, Fixable) and cause.hint:
        return message, cause.hint
    for marker in (": write ", ": use ", ": remove "):
        if marker in message:
            what, how = message.split(marker, 1)
            return what, marker[2:] + how
    return message, ""


def _read_as(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, datetime | date):
        return "a date"
    return "something else"


def _closest_value(written: str, expected: list[str]) -> str:
    word = _ORDINAL_WORDS.get(written.strip().lower())
    if word == "last" and "last" in expected:
        return 'there is no fifth in every month: use "last" for the last one of the month'
    if word in expected:
        return f'did you mean "{word}"?'
    close = difflib.get_close_matches(written.lower(), expected, n=1)
    return f'did you mean "{close[0]}"?' if close else "use one of the values listed"


def _close_key(key: str, allowed: list[str]) -> str | None:
    """The allowed key that ``key`` is most likely a misspelling of."""
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    return close[0] if close else None


def _fields_at(model: type[BaseModel], path: Path_) -> list[str]:
    """The keys allowed at ``path`` inside ``model`` (for "did you mean")."""
    current = _unwrap(annotation_at(model, path))
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def annotation_at(model: type[BaseModel], path: Path_) -> Any:
    """The type annotation of the value at ``path`` inside ``model`` (None if unknown)."""
    current: Any = model
    for part in path:
        current = _unwrap(current)
        if isinstance(part, int):
            args = typing.get_args(current)
            if not args:
                return None
            current = args[0]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(part)
            if info is None:
                return None
            current = info.annotation
        else:
            return None
    return current


def _unwrap(annotation: Any) -> Any:
    """``Post | None`` -> ``Post``; ``Annotated[X, ...]`` -> ``X``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(members[0]) if len(members) == 1 else annotation
    return annotation


# --- repair: so that one part's mistake does not hide the checks of the others -----------


def _repair(data: Any, error: ErrorDetails, doc: SourceDoc, model: type[BaseModel]) -> bool:
    """Change ``data`` so that ``error`` does not come back; False when it cannot."""
    path = error_path(error)
    if not path:
        return False
    parent = _container(data, path[:-1])
    key = path[-1]
    if error["type"] == "extra_forbidden" and isinstance(parent, dict) and key in parent:
        value = parent.pop(key)
        close = _close_key(str(key), _fields_at(model, path[:-1]))
        if close and close not in parent:
            parent[close] = value
            doc.renamed[(*path[:-1], close)] = path
        return True
    if error["type"] == "missing" and isinstance(parent, dict) and key in parent:
        return True  # a misspelt key now read under this name
    if isinstance(error.get("ctx", {}).get("error"), FieldError) and len(path) > 1:
        # A section whose fields do not fit together: it stands in as a whole.
        return _replace(data, path[:-1], doc, model)
    doc.invalid.add(path)
    if isinstance(parent, list) and isinstance(key, int) and key < len(parent):
        item = _unwrap(annotation_at(model, path))
        if isinstance(item, type) and issubclass(item, Enum):
            del parent[key]  # a stand-in network would be a second copy of a real one
        else:
            parent[key] = placeholder(annotation_at(model, path))
        return True
    if not isinstance(parent, dict):
        return False
    if _required(model, path) or key not in parent:
        parent[key] = placeholder(annotation_at(model, path))
    else:
        del parent[key]
    return True


def _replace(data: Any, path: Path_, doc: SourceDoc, model: type[BaseModel]) -> bool:
    parent = _container(data, path[:-1])
    key = path[-1]
    if path in doc.invalid:
        return False
    if not isinstance(parent, dict | list) or (isinstance(parent, list) and isinstance(key, str)):
        return False
    parent[key] = placeholder(annotation_at(model, path))  # type: ignore[index]
    doc.invalid.add(path)
    return True


def _required(model: type[BaseModel], path: Path_) -> bool:
    owner = _unwrap(annotation_at(model, path[:-1]))
    key = path[-1]
    return (
        isinstance(owner, type)
        and issubclass(owner, BaseModel)
        and isinstance(key, str)
        and key in owner.model_fields
        and owner.model_fields[key].is_required()
    )


def _container(data: Any, path: Path_) -> Any:
    current = data
    for part in path:
        if isinstance(current, list) and isinstance(part, int) and part < len(current):
            current = current[part]
        elif not isinstance(current, dict) or part not in current:
            return None
        else:
            current = current[part]
    return current


def placeholder(annotation: Any) -> Any:
    """A value that validates as ``annotation``, standing in for one already reported."""
    target = _unwrap(annotation)
    origin = typing.get_origin(target)
    if target in _MODEL_PLACEHOLDERS:
        return dict(_MODEL_PLACEHOLDERS[target])
    if isinstance(target, type) and issubclass(target, BaseModel):
        return {
            name: placeholder(info.annotation)
            for name, info in target.model_fields.items()
            if info.is_required()
        }
    if origin is list:
        return [placeholder(typing.get_args(target)[0])]
    if origin is Literal:
        return typing.get_args(target)[0]
    if isinstance(target, type) and issubclass(target, Enum):
        return next(iter(target)).value
    return _SIMPLE.get(target, "x")


_SIMPLE: dict[Any, Any] = {
    str: "x",
    int: 1,
    bool: True,
    timedelta: "1m",
    time: "20:00",
    date: "2027-01-07",
    datetime: "2027-01-07 20:00",
}
# Sections whose fields must fit together, whole.
_MODEL_PLACEHOLDERS: dict[Any, dict[str, Any]] = {
    Recurrence: {"every": "week", "weekday": "thursday", "time": "20:00", "starting": "2027-01-07"},
}
