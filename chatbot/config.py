"""The bot's configuration: accounts, folders and policies. Secrets stay outside it.

Credentials are referenced, never written inline: ``{env: NAME}`` reads an
environment variable, ``{file: PATH}`` reads a file (Docker/Kubernetes secrets).
"""

from __future__ import annotations

import os
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from chatbot.errors import ConfigError, Problem, ScriptError
from chatbot.kinds import Visibility
from chatbot.script import Moderation
from chatbot.scriptvalues import Duration
from chatbot.source import load_yaml

CONFIG_ENV = "CHATBOT_CONFIG"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Secret(Model):
    """Where a secret is read from: an environment variable or a file, never the config."""

    env: str | None = Field(default=None, description="Environment variable holding the secret.")
    file: str | None = Field(
        default=None, description="File holding the secret (e.g. /run/secrets/x)."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_inline(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError(
                "secrets are never written in the config: use {env: VARIABLE_NAME} "
                "or {file: /path/to/secret}"
            )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Secret:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env: or file:")
        return self

    def describe(self) -> str:
        return f"environment variable {self.env}" if self.env else f"file {self.file}"

    def resolve(self, base_dir: Path) -> SecretStr:
        """The secret's value; ConfigError names where it was looked for (never the value)."""
        if self.env is not None:
            value = os.environ.get(self.env, "")
            if not value:
                raise ConfigError(f"the {self.describe()} is not set: export it before starting")
            return SecretStr(value.strip())
        assert self.file is not None
        path = Path(self.file)
        path = path if path.is_absolute() else base_dir / path
        try:
            return SecretStr(path.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise ConfigError(f"cannot read the secret file {path}: {exc.strerror}") from exc


# What a community may choose for the bot's public steps: private and direct
# posts would leave the chat's participants out.
PublicVisibility = Literal[Visibility.PUBLIC, Visibility.UNLISTED]


class MastodonAccount(Model):
    """The bot's Mastodon account."""

    instance: str = Field(description="The instance's address: https://mastodon.example")
    access_token: Secret
    max_characters: int | None = Field(
        default=None, ge=1, description="Override the instance's limit (normally read from it)."
    )
    reminders_visibility: PublicVisibility = Visibility.PUBLIC
    chat_visibility: PublicVisibility = Field(
        default=Visibility.PUBLIC,
        description="Welcome, introductions, format note and closing. Questions are always "
        "public: unlisted posts never reach hashtag timelines.",
    )
    recap_visibility: PublicVisibility = Visibility.UNLISTED
    extra_instances: list[str] = Field(
        default_factory=list,
        description="Other instances whose public hashtag timelines are read too (one instance "
        "only sees the posts that reach it): https://mastodon.social",
    )
    indexable_opt_out: bool = Field(
        default=False,
        description="Also treat indexable: false (the person's posts are not in full-text "
        "search) as an opt-out from every public output. Off by default: it is Mastodon's "
        "default for most accounts and concerns search, not being quoted; with this on, "
        "most Mastodon participants are counted but not shown.",
    )
    streaming: bool = Field(
        default=True,
        description="Be woken by the instance's streams (the chat's hashtag, the bot's "
        "notifications) where it has them: answers are read within seconds, and polling "
        "slows to a quarter of collect_every's pace while the streams are up. Off: polled only.",
    )


class BlueskyAccount(Model):
    """The bot's Bluesky account (use an app password, not the main password)."""

    service: str = Field(default="https://bsky.social", description="The PDS address.")
    handle: str = Field(description="The bot's handle: district-chat.bsky.social")
    app_password: Secret
    web: str = Field(
        default="https://bsky.app",
        description="The web app that links to posts and profiles point at (another "
        "network's, or a self-hosted one's); links name accounts by handle.",
    )


class LocalNetworkSettings(Model):
    """The embedded local network (demo, rehearsals, tests): no account needed."""

    participants: bool = Field(default=True, description="Simulated teachers answer the questions.")
    delay_before_post: Duration = Field(
        default=timedelta(0), description="Simulate a slow network: wait this long before posting."
    )
    delay_after_post: Duration = Field(
        default=timedelta(0),
        description="Simulate a slow answer: wait this long after posting, before replying.",
    )


class Accounts(Model):
    mastodon: MastodonAccount | None = None
    bluesky: BlueskyAccount | None = None
    local: LocalNetworkSettings = Field(default_factory=LocalNetworkSettings)


class MissedStart(StrEnum):
    """What happens to a chat whose start was missed (the bot was down)."""

    SKIP = "skip"  # record the chat as missed; post nothing
    SHIFT = "shift"  # start it now, every step moved by the delay


class LatePolicy(Model):
    """How late a step may still be posted; what happens to a missed chat."""

    step_grace: Duration = Field(
        default=timedelta(minutes=5),
        description="A step more late than this is skipped and reported, not posted.",
    )
    missed_start: MissedStart = MissedStart.SKIP
    max_shift: Duration = Field(
        default=timedelta(minutes=30),
        description="With missed_start: shift, a chat starts late only within this delay.",
    )


class Identity(Model):
    """One person's accounts on several networks, counted once in participation figures."""

    name: str = Field(min_length=1)
    accounts: list[str] = Field(
        min_length=2, description="@user@instance for Mastodon, handle or DID for Bluesky."
    )


class Metrics(Model):
    """An optional Prometheus endpoint (off unless a port is given)."""

    port: int | None = Field(
        default=None, ge=1, le=65535, description="Serve /metrics on this port; off if unset."
    )
    address: str = Field(
        default="127.0.0.1",
        description="The address to listen on: 0.0.0.0 in a container that is scraped.",
    )


class Config(Model):
    """chatbot's configuration file."""

    data_dir: str = Field(default="data", description="Where the state database and archives live.")
    schedules: str = Field(default="schedules", description="Folder of chat scripts.")
    database_url: str | Secret | None = Field(
        default=None,
        description="The database: an SQLAlchemy URL (sqlite:///... or "
        "postgresql://user@host/db), or, when it holds a password, {env: NAME} or "
        "{file: /run/secrets/...} naming where the URL is; default: SQLite in data_dir.",
    )
    accounts: Accounts = Field(default_factory=Accounts)
    late: LatePolicy = Field(default_factory=LatePolicy)
    answer_tail: Duration = Field(
        default=timedelta(minutes=30),
        description="How long after the closing answers are collected.",
    )
    collect_every: Duration = Field(
        default=timedelta(seconds=15),
        description="How often a running chat's answers are read (each read costs a few "
        "requests on each network; 15s keeps well inside every server's limits).",
    )
    log_format: Literal["auto", "json", "text"] = "auto"
    transcript_url: str = Field(
        default="",
        description="Where transcripts are published, linked from the recap: "
        "https://district.example/chats/{chat_id}.html",
    )
    moderation: Moderation = Field(default_factory=Moderation)
    identities: list[Identity] = Field(
        default_factory=list, description="Link one person's Mastodon and Bluesky accounts."
    )
    metrics: Metrics = Field(default_factory=Metrics)
    lease: Duration = Field(
        default=timedelta(seconds=30),
        description="With several replicas on one database: how long a replica's hold on a "
        "chat lasts unless renewed (another takes over that long after it dies).",
    )


class LoadedConfig:
    """A config and the folder its relative paths are resolved against."""

    def __init__(self, config: Config, base_dir: Path, path: Path | None) -> None:
        self.config = config
        self.base_dir = base_dir
        self.path = path

    def with_data_dir(self, data_dir: Path) -> LoadedConfig:
        """The same config with another data folder (and its default database)."""
        config = self.config.model_copy(update={"data_dir": str(data_dir.resolve())})
        return LoadedConfig(config, self.base_dir, self.path)

    def resolve(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @property
    def data_dir(self) -> Path:
        return self.resolve(self.config.data_dir)

    @property
    def schedules_dir(self) -> Path:
        return self.resolve(self.config.schedules)

    def check_secrets(self) -> None:
        """Read every secret the config names; one ConfigError lists each that is missing
        (a missing variable does not hide a missing file)."""
        named: list[Secret] = []
        accounts = self.config.accounts
        if accounts.mastodon is not None:
            named.append(accounts.mastodon.access_token)
        if accounts.bluesky is not None:
            named.append(accounts.bluesky.app_password)
        if isinstance(self.config.database_url, Secret):
            named.append(self.config.database_url)
        missing: list[str] = []
        for secret in named:
            try:
                secret.resolve(self.base_dir)
            except ConfigError as exc:
                missing.append(str(exc))
        if len(missing) == 1:
            raise ConfigError(missing[0])
        if missing:
            raise ConfigError(
                f"{len(missing)} secrets are missing:\n" + "\n".join(f"- {m}" for m in missing)
            )

    @property
    def database_url(self) -> str:
        url = self.config.database_url
        if isinstance(url, Secret):
            return url.resolve(self.base_dir).get_secret_value()
        return url or f"sqlite:///{self.data_dir / 'chatbot.db'}"


def load_config(path: Path | None) -> LoadedConfig:
    """Read ``path`` (or $CHATBOT_CONFIG); no file at all means the defaults in this folder."""
    if path is None and os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
    if path is None:
        return LoadedConfig(Config(), Path.cwd(), None)
    problems = check_config(path)
    if problems:
        raise ScriptError(problems)
    doc, _ = load_yaml(path)
    return LoadedConfig(Config.model_validate(doc.data or {}), path.parent.resolve(), path)


def check_config(path: Path) -> list[Problem]:
    """Every problem in a config file, with lines, like a chat script's."""
    from chatbot.loader import pydantic_problems

    doc, problems = load_yaml(path)
    if problems:
        return problems
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        return [
            doc.problem((), "a config must be a set of key: value lines", "see config.example.yaml")
        ]
    try:
        Config.model_validate(data)
    except ValidationError as exc:
        return pydantic_problems(exc, doc, Config)
    return []
