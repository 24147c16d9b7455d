"""The house rules that a newcomer relies on: what docs/architecture.md names exists, SDKs and
SQL stay in their rooms, and no module or class grows past what one person can hold."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "chatbot"
DOC = ROOT / "docs" / "architecture.md"
MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 300
# Where each third-party package may be imported (a prefix of the module's path).
ROOMS = {
    "mastodon": ("chatbot/networks/mastodon/", "chatbot/text.py"),
    "atproto": ("chatbot/networks/bluesky/",),
    "atproto_client": ("chatbot/networks/bluesky/",),
    "sqlalchemy": ("chatbot/store/",),
}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _cited_names() -> list[str]:
    return sorted(set(re.findall(r"`(chatbot(?:\.\w+)+)`", DOC.read_text(encoding="utf-8"))))


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    raise ModuleNotFoundError(dotted)


def test_the_architecture_doc_cites_functions() -> None:
    """The doc walks through real code: it cites at least twenty names."""
    assert len(_cited_names()) >= 20


@pytest.mark.parametrize("dotted", _cited_names())
def test_every_name_the_architecture_doc_cites_exists(dotted: str) -> None:
    """Each ``chatbot...`` name in docs/architecture.md imports."""
    assert _resolve(dotted) is not None


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


@pytest.mark.parametrize("package", sorted(ROOMS))
def test_each_sdk_and_sql_is_imported_only_in_its_room(package: str) -> None:
    """Mastodon.py, atproto and SQLAlchemy are each imported only where the layout says."""
    outside = [
        str(path.relative_to(ROOT))
        for path in _modules()
        if any(name.split(".")[0] == package for name in _imports(path))
        and not str(path.relative_to(ROOT)).startswith(ROOMS[package])
    ]
    assert outside == []


def test_no_private_attribute_of_an_sdk_object_is_read() -> None:
    """No ``client._session``-style reach into an SDK's private state."""
    private = re.compile(r"\b(?:_?client|_?api|session|request)\._[a-z]\w*")
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _modules()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if private.search(line) and not line.strip().startswith("#")
    ]
    assert hits == []


def test_no_module_is_longer_than_one_person_can_hold() -> None:
    """No module in chatbot/ passes 600 lines."""
    long = {
        str(path.relative_to(ROOT)): count
        for path in _modules()
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_class_is_longer_than_300_lines() -> None:
    """No class in chatbot/ passes 300 lines."""
    long = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_CLASS_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.name}"] = lines
    assert long == {}


def _environment_reads(path: Path) -> set[str]:
    """Names of environment variables a module reads by a constant name (or a constant)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = {
        node.targets[0].id: node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        key: ast.expr | None = None
        if isinstance(node, ast.Call) and node.args:
            func = ast.unparse(node.func)
            if func in ("os.environ.get", "os.getenv", "environ.get", "getenv"):
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) in ("os.environ",):
            key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            names.add(key.value)
        elif isinstance(key, ast.Name) and key.id in constants:
            names.add(constants[key.id])
        elif key is not None:
            names.add(f"<{ast.unparse(key)}>")
    return names


def test_the_environment_variables_the_package_reads_are_the_documented_ones() -> None:
    """No environment variable changes what the bot does unless the README documents it:
    the config's location, and the variables a config names for its secrets."""
    read = set().union(*(_environment_reads(path) for path in _modules()))
    assert read == {"CHATBOT_CONFIG", "<self.env>"}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Environment variables", 1)[1].split("\n## ", 1)[0]
    assert "`CHATBOT_CONFIG`" in section
    assert "{env: NAME}" in section
