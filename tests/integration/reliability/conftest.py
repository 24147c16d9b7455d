"""Every test under tests/integration/reliability/ is marked ``reliability`` (and
``integration``); the summary table is printed and written at the end of the session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.reliability import summary

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.resolve().is_relative_to(_HERE):
            item.add_marker(pytest.mark.reliability)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not summary.reported():
        return
    path = summary.write()
    terminalreporter.write_line("")
    for line in summary.table().splitlines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(written to {path})")
