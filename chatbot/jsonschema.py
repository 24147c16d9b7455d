"""JSON Schemas of the chat script and the config, generated from the models.

Editors (the YAML language server in VS Code and others) use them to complete
and check scripts as people type. ``python -m chatbot.jsonschema`` rewrites the
committed files; a test fails when they are out of date.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from chatbot.config import Config
from chatbot.script import ChatScript

SCHEMA_DIR = Path(__file__).parent / "schema"
SCHEMAS: dict[str, type[BaseModel]] = {
    "chat-script.schema.json": ChatScript,
    "config.schema.json": Config,
}


def generate() -> dict[str, str]:
    """File name -> schema text, exactly as committed."""
    out = {}
    for name, model in SCHEMAS.items():
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        out[name] = json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    return out


def write() -> list[Path]:
    """Rewrite the schema files; returns the paths written."""
    SCHEMA_DIR.mkdir(exist_ok=True)
    written = []
    for name, text in generate().items():
        path = SCHEMA_DIR / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write():
        print(f"wrote {path}")  # noqa: T201 - a developer's script
