"""Whatever a co-moderator writes, checking it gives a valid script or located problems.

Arbitrary YAML and text, and mutations of the example scripts (keys, types,
values, encodings, nesting, aliases), through the same function the CLI and the
running bot use. Never an exception, never an internal error, and each file is
checked within generous bounds of time and memory. Run alone with
``pytest -m property``; derandomized, so a run is the same every time.
"""

from __future__ import annotations

import codecs
import json
import shutil
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from chatbot.cli import app
from chatbot.loader import check_paths

pytestmark = pytest.mark.property

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "schedules").glob("*.yaml"))
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
# Far above what any file takes (tens of milliseconds, a few megabytes): these
# catch a runaway, not a slow machine.
MAX_SECONDS = 10.0
MAX_BYTES = 100 * 1024 * 1024
PROPERTY = settings(
    max_examples=80,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
KEYS = [
    "id",
    "title",
    "hashtag",
    "timezone",
    "start",
    "recurrence",
    "every",
    "ordinal",
    "weekday",
    "time",
    "starting",
    "until",
    "skip",
    "networks",
    "moderators",
    "name",
    "welcome",
    "text",
    "at",
    "before",
    "questions",
    "image",
    "alt",
    "closing",
    "recap",
    "after",
    "reminders",
    "question_spacing",
]
SNIPPETS = [
    "time: 2000",
    "  time: 2000",
    "starting: 2027-02-30",
    "  starting: 2027-02-30",
    "start: 9999-12-31 23:00",
    "question_spacing: .inf",
    "question_spacing: !!float nine",
    "recap: {after: 0}",
    "  at: -5",
    "  at: 99999999999 days",
    "  number: !!int nine",
    "timezone: EST",
    "timezone: Etc/GMT+5",
    "hashtag: #PC",
    "hashtag: '#2027'",
    "1: one",
    "yes: no",
    "? [a, b]\n: c",
    "base: &b {name: Host}",
    "guest: *b",
    "<<: *b",
    "x: &x [*x]",
    "\tbad: tab",
    "text: '{title!r}'",
    "text: '{date} {next_chat} {n}'",
    "---",
    "- item",
    "!!python/object:os.system x",
    "ordinal: fifth",
    "skip: [2027-13-01]",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder beside copies of the examples' images, so valid variants stay valid."""
    path = tmp_path_factory.mktemp("property")
    shutil.copytree(ROOT / "schedules" / "images", path / "images")
    return path


@pytest.fixture(scope="module", autouse=True)
def traced() -> Iterator[None]:
    """Memory is traced for the module, so each file's peak can be read."""
    tracemalloc.start()
    yield
    tracemalloc.stop()


def assert_checks_cleanly(folder: Path, content: bytes) -> None:
    """The file is a valid script or has located problems; no surprise, in bounded time."""
    path = folder / "chat.yaml"
    path.write_bytes(content)
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    report = check_paths([path], NOW)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] - before
    assert elapsed < MAX_SECONDS, f"{elapsed:.1f} s for one file"
    assert peak < MAX_BYTES, f"{peak / 1e6:.0f} MB for one file"
    found = [*report.problems, *report.warnings, *report.notes]
    assert report.scripts or report.problems
    json.dumps([problem.as_dict() for problem in found])  # what --format json prints
    for problem in found:
        assert problem.file == str(path)
        assert "could not finish checking" not in problem.message, problem.render()
        assert problem.message and problem.hint, problem.render()
        assert problem.line is not None or problem.field or problem.column is None


# --- arbitrary input ----------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.dates(),
    st.datetimes(),
    st.sampled_from(["20:00", "9m", "1 day", "2027-02-30", "#BLchat", "{date}", "EST"]),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), inner, max_size=6),
    ),
    max_leaves=40,
)


@PROPERTY
@given(text=st.text(max_size=400))
def test_any_text_is_a_script_or_located_problems(folder: Path, text: str) -> None:
    """Any text at all: a valid script or located problems, never an exception."""
    assert_checks_cleanly(folder, text.encode("utf-8", errors="surrogatepass"))


@PROPERTY
@given(text=st.text(alphabet=":-[]{}#&*!|>'\"%@ \n\t?,.019azAZ<", max_size=300))
def test_yaml_punctuation_soup_is_a_script_or_located_problems(folder: Path, text: str) -> None:
    """Text made of YAML's own punctuation (anchors, tags, flows, comments)."""
    assert_checks_cleanly(folder, text.encode("utf-8"))


@PROPERTY
@given(document=documents)
def test_any_yaml_document_is_a_script_or_located_problems(folder: Path, document: Any) -> None:
    """Any YAML document, of any shape, with keys a script uses and keys it does not."""
    assert_checks_cleanly(folder, yaml.safe_dump(document, allow_unicode=True).encode("utf-8"))


# --- mutations of the example scripts -------------------------------------------------------


def _example_lines(index: int) -> list[str]:
    return EXAMPLES[index % len(EXAMPLES)].read_text(encoding="utf-8").splitlines()


@PROPERTY
@given(
    example=st.integers(min_value=0, max_value=len(EXAMPLES) - 1),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["delete", "duplicate", "insert", "indent", "dedent", "swap"]),
            st.integers(min_value=0, max_value=200),
            st.sampled_from(SNIPPETS),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_edited_example_lines_give_a_script_or_located_problems(
    folder: Path, example: int, edits: list[tuple[str, int, str]]
) -> None:
    """An example with lines deleted, repeated, moved, re-indented or replaced by mistakes."""
    lines = _example_lines(example)
    for action, position, snippet in edits:
        at = position % (len(lines) or 1)
        if not lines:
            lines = [snippet]
        elif action == "delete":
            del lines[at]
        elif action == "duplicate":
            lines.insert(at, lines[at])
        elif action == "insert":
            lines.insert(at, snippet)
        elif action == "indent":
            lines[at] = "  " + lines[at]
        elif action == "dedent":
            lines[at] = lines[at].lstrip()
        else:
            lines[at], lines[-1] = lines[-1], lines[at]
    assert_checks_cleanly(folder, "\n".join(lines).encode("utf-8"))


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*prefix, index))
    return found


def _replace(data: Any, path: tuple[Any, ...], make: Any) -> Any:
    if not path:
        return make(data)
    head, *rest = path
    data[head] = _replace(data[head], tuple(rest), make)
    return data


@PROPERTY
@given(
    example=st.integers(min_value=0, max_value=len(EXAMPLES) - 1),
    choice=st.integers(min_value=0, max_value=10_000),
    change=st.sampled_from(["value", "delete", "rename", "nest", "list"]),
    value=documents,
    name=st.text(min_size=1, max_size=12),
)
def test_changed_example_values_give_a_script_or_located_problems(
    folder: Path, example: int, choice: int, change: str, value: Any, name: str
) -> None:
    """An example with one value of another type, a key deleted or renamed, or deep nesting."""
    data = yaml.safe_load(EXAMPLES[example].read_text(encoding="utf-8"))
    paths = _paths(data)[1:]
    path = paths[choice % len(paths)]
    if change == "value":
        data = _replace(data, path, lambda _old: value)
    elif change == "nest":
        data = _replace(data, path, lambda old: [[[[[[[[[[[[old]]]]]]]]]]]])
    elif change == "list":
        data = _replace(data, path, lambda old: [old, value])
    elif isinstance(path[-1], str):
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        old = parent.pop(path[-1])
        if change == "rename":
            parent[name] = old
    assert_checks_cleanly(folder, yaml.safe_dump(data, allow_unicode=True).encode("utf-8"))


@PROPERTY
@given(
    example=st.integers(min_value=0, max_value=len(EXAMPLES) - 1),
    encoding=st.sampled_from(["utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252", "utf-8-sig"]),
    noise=st.binary(max_size=8),
    where=st.integers(min_value=0, max_value=5000),
)
def test_re_encoded_example_gives_a_script_or_located_problems(
    folder: Path, example: int, encoding: str, noise: bytes, where: int
) -> None:
    """An example saved in another encoding, or with stray bytes in it."""
    text = EXAMPLES[example].read_text(encoding="utf-8")
    raw = codecs.encode(text, encoding, errors="replace")
    at = where % (len(raw) + 1)
    assert_checks_cleanly(folder, raw[:at] + noise + raw[at:])


@PROPERTY
@given(
    example=st.integers(min_value=0, max_value=len(EXAMPLES) - 1),
    fan_out=st.integers(min_value=1, max_value=12),
    depth=st.integers(min_value=1, max_value=12),
    nesting=st.integers(min_value=0, max_value=3000),
)
def test_aliases_and_nesting_are_bounded(
    folder: Path, example: int, fan_out: int, depth: int, nesting: int
) -> None:
    """Aliases that expand (up to a billion laughs) and deep nesting are refused quickly."""
    lines = [f'a0: &a0 ["lol"{", " + chr(34) + "lol" + chr(34) if fan_out > 1 else ""}]']
    for level in range(1, depth):
        refs = ", ".join([f"*a{level - 1}"] * fan_out)
        lines.append(f"a{level}: &a{level} [{refs}]")
    lines.append("deep: " + "[" * nesting + "]" * nesting)
    text = "\n".join(lines) + "\n" + EXAMPLES[example].read_text(encoding="utf-8")
    assert_checks_cleanly(folder, text.encode("utf-8"))


@settings(PROPERTY, max_examples=30)
@given(
    example=st.integers(min_value=0, max_value=len(EXAMPLES) - 1),
    position=st.integers(min_value=0, max_value=200),
    snippet=st.sampled_from(SNIPPETS),
)
def test_validate_in_json_mode_prints_only_json(
    folder: Path, example: int, position: int, snippet: str
) -> None:
    """The validate command itself, in JSON mode: JSON on stdout, exit 0 or 1, no exception."""
    lines = _example_lines(example)
    lines.insert(position % len(lines), snippet)
    path = folder / "chat.yaml"
    path.write_text("\n".join(lines), encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path), "--format", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    assert report["ok"] is (result.exit_code == 0)
