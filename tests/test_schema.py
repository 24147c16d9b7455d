"""The JSON Schemas editors use: up to date, referenced by every example, and satisfied by it."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from chatbot.jsonschema import SCHEMA_DIR, generate
from chatbot.source import load_yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "schedules").glob("*.yaml"))
SCHEMA_COMMENT = re.compile(r"^# yaml-language-server: \$schema=(?P<target>\S+)$")


def _as_json(value: Any) -> Any:
    """YAML data as an editor's YAML server sees it: dates are strings (YAML 1.2 core)."""
    if isinstance(value, dict):
        return {str(key): _as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _schema_of(example: Path) -> Path:
    first = example.read_text(encoding="utf-8").splitlines()[0]
    match = SCHEMA_COMMENT.match(first)
    assert match, f"{example.name} must start with '# yaml-language-server: $schema=...'"
    return (example.parent / match["target"]).resolve()


def test_there_are_example_schedules() -> None:
    """schedules/ holds the examples the other tests check."""
    assert EXAMPLES


@pytest.mark.parametrize("name", sorted(generate()))
def test_committed_schema_matches_the_models(name: str) -> None:
    """The committed schema file equals what the models generate now."""
    committed = SCHEMA_DIR / name
    assert committed.is_file(), f"{committed} is missing: run python -m chatbot.jsonschema"
    assert committed.read_text(encoding="utf-8") == generate()[name], (
        f"{committed.name} is out of date with the models: run python -m chatbot.jsonschema"
    )


@pytest.mark.parametrize("name", sorted(generate()))
def test_committed_schema_is_a_valid_json_schema(name: str) -> None:
    """Each committed schema is itself a valid draft 2020-12 JSON Schema."""
    schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_example_names_an_existing_schema_on_its_first_line(example: Path) -> None:
    """Each example starts with the YAML language server comment pointing at a real schema."""
    target = _schema_of(example)
    assert target.is_file(), f"{example.name} points at {target}, which does not exist"
    assert target.parent == SCHEMA_DIR.resolve()


def test_example_config_names_the_config_schema() -> None:
    """config.example.yaml points the editor at the config schema."""
    target = _schema_of(ROOT / "config.example.yaml")
    assert target == (SCHEMA_DIR / "config.schema.json").resolve()


@pytest.mark.parametrize(
    "example", [*EXAMPLES, ROOT / "config.example.yaml"], ids=lambda path: path.name
)
def test_example_satisfies_its_schema(example: Path) -> None:
    """Each example validates against the schema it names, as an editor would check it."""
    schema = json.loads(_schema_of(example).read_text(encoding="utf-8"))
    doc, problems = load_yaml(example)
    assert not problems
    errors = [
        f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
        for error in jsonschema.Draft202012Validator(schema).iter_errors(_as_json(doc.data))
    ]
    assert errors == []


def test_schema_rejects_a_misspelt_key() -> None:
    """The schema forbids unknown keys, so an editor underlines "questons" as a person types."""
    schema = json.loads((SCHEMA_DIR / "chat-script.schema.json").read_text(encoding="utf-8"))
    doc, _ = load_yaml(ROOT / "schedules" / "family-literacy-night.yaml")
    data = _as_json(doc.data)
    data["questons"] = data.pop("questions")
    messages = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(data)]
    assert any("questons" in message for message in messages)
    assert any("'questions' is a required property" in message for message in messages)
