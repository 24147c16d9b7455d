"""The reliability summary: what each suite tried and what it found, as one table.

Suites add to it as they run (``tally`` counts, ``worst`` keeps a maximum); at the end
of the session the table is printed and written to ``.reports/reliability.json`` (which
git ignores). A figure that no suite reported is shown as "not run", never as 0.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

REPORT = Path(__file__).resolve().parents[3] / ".reports" / "reliability.json"

# The rows of the table, in order: (key, what it says).
ROWS: tuple[tuple[str, str], ...] = (
    ("crash_points", "crash points survived (SIGKILL, then a restart)"),
    ("requests", "requests made through the fault injectors"),
    ("faults", "faults injected (all kinds)"),
    ("hostile_inputs", "hostile inputs tried"),
    ("worst_attribution_ms", "worst attribution time of one post (ms)"),
    ("month_steps", "steps of the simulated month posted at their local time"),
    ("duplicates", "duplicates found"),
    ("losses", "losses found (missing steps or answers)"),
    ("secrets", "secrets found in what the bot wrote"),
)

_lock = threading.Lock()
_counts: Counter[str] = Counter()
_worst: dict[str, float] = {}
_faults: Counter[str] = Counter()


def tally(key: str, n: int = 1) -> None:
    """Add ``n`` to a counted figure (``crash_points``, ``duplicates``, ...)."""
    with _lock:
        _counts[key] += n


def worst(key: str, value: float) -> None:
    """Keep the largest value seen for a figure (``worst_attribution_ms``)."""
    with _lock:
        _worst[key] = max(value, _worst.get(key, value))


def fault(kind: str, n: int = 1) -> None:
    """Count an injected fault by kind (``5xx``, ``429``, ``timeout``, ``truncated`` ...)."""
    with _lock:
        _faults[kind] += n
        _counts["faults"] += n


def figures() -> dict[str, Any]:
    """Everything reported so far, as the JSON report holds it."""
    with _lock:
        values: dict[str, Any] = {**_counts, **_worst}
        values["faults_by_kind"] = dict(sorted(_faults.items()))
        if _counts.get("requests"):
            values["faulted_share"] = round(_counts["faults"] / _counts["requests"], 3)
        return values


def reported() -> bool:
    with _lock:
        return bool(_counts or _worst or _faults)


def table() -> str:
    """The summary as aligned text lines."""
    values = figures()
    width = max(len(label) for _key, label in ROWS)
    lines = ["Reliability summary"]
    for key, label in ROWS:
        value = values.get(key)
        shown = (
            "not run" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
        )
        lines.append(f"  {label:<{width}}  {shown}")
    if "faulted_share" in values:
        lines.append(f"  {'share of requests faulted':<{width}}  {values['faulted_share']:.1%}")
    for kind, n in values["faults_by_kind"].items():
        lines.append(f"    {kind:<{width - 2}}  {n}")
    return "\n".join(lines)


def write() -> Path:
    """Write the JSON report; returns its path."""
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(figures(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return REPORT
