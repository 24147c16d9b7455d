"""The project's exceptions: one base, translated into messages at the CLI boundary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ChatbotError(Exception):
    """Base of every error the bot raises on purpose."""


class Severity(StrEnum):
    """How much a problem matters.

    An error keeps the script from running; a warning lets it run but fails
    ``chatbot validate`` (it is almost certainly a mistake); a note only informs.
    """

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a script or config: where, what, and how to fix it."""

    file: str
    line: int | None
    column: int | None
    field: str
    message: str
    hint: str = ""
    severity: Severity = Severity.ERROR

    def location(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where

    @property
    def fails(self) -> bool:
        """Whether this makes ``chatbot validate`` fail (errors and warnings do, notes do not)."""
        return self.severity is not Severity.NOTE

    def render(self) -> str:
        label = "" if self.severity is Severity.ERROR else f"{self.severity.value}: "
        text = f"{self.location()}: {self.field or '(file)'}: {label}{self.message}"
        if self.hint:
            text += f"\n    fix: {self.hint}"
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "field": self.field,
            "message": self.message,
            "hint": self.hint,
            "severity": self.severity.value,
        }


class ScriptError(ChatbotError):
    """A chat script or config file has one or more problems."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(p.render() for p in problems))


class ConfigError(ChatbotError):
    """The bot's configuration is missing, invalid or names a secret that is not there."""


class NetworkError(ChatbotError):
    """A network call failed; subclasses say whether and when to retry."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RateLimited(NetworkError):
    """The network asked us to wait until ``retry_at`` (aware UTC)."""

    def __init__(self, message: str, *, retry_at: datetime, status: int | None = 429) -> None:
        super().__init__(message, status=status)
        self.retry_at = retry_at


class AuthFailed(NetworkError):
    """Credentials were refused; retrying will not help until someone fixes them."""


class Transient(NetworkError):
    """A timeout, 5xx or dropped connection: safe to retry with the same idempotency key."""


class Rejected(NetworkError):
    """The network refused the post itself (too long, invalid): retrying will not help."""
