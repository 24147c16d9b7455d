"""Structured logs: one line per action, JSON when not a terminal; secrets never appear."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

_SECRET_KEY = re.compile(r"token|password|secret|session|authorization|cookie", re.IGNORECASE)


def redact_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace the value of any field whose name looks like a secret."""
    for key in list(event):
        if _SECRET_KEY.search(key):
            event[key] = "[redacted]"
    return event


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler every line goes through (ours and the libraries'), writing to
    whatever ``sys.stderr`` is at the time: one lock, so lines never interleave."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure(fmt: Literal["auto", "json", "text"] = "auto", level: int = logging.INFO) -> None:
    """Set up structlog and the stdlib loggers of the libraries for a command: one renderer
    for both, so that in JSON mode every line is JSON (a library's warning included)."""
    json_lines = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    stamped: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    structlog.configure(
        processors=[*stamped, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = _Stderr()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # A library's line: its logger's name, level and time, then the same renderer.
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *stamped],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.WARNING)  # the libraries say only what went wrong
    logging.getLogger("chatbot").setLevel(level)
    # APScheduler logs every job run at INFO; our own lines say what happened.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
