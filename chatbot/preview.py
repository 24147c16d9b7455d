"""What will be posted, when and where: the timeline a co-moderator reviews."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from chatbot import localtime
from chatbot.errors import Problem
from chatbot.loader import LoadedScript
from chatbot.plan import ChatPlan, occurrences, plan_upcoming
from chatbot.text import Limits


@dataclass(frozen=True)
class Preview:
    """A script's next chat, fully planned, and the dates of the ones after it."""

    loaded: LoadedScript
    plan: ChatPlan | None
    later: list[datetime]


def build_preview(loaded: LoadedScript, now: datetime, limits: Limits, dates: int = 6) -> Preview:
    plans = plan_upcoming(loaded.script, loaded.script_id, now, count=1, limits=limits)
    plan = plans[0] if plans else None
    later: list[datetime] = []
    if plan is not None and loaded.script.is_series:
        later = occurrences(loaded.script, plan.start, dates + 1)[1:]
    return Preview(loaded, plan, later)


def too_long(preview: Preview) -> list[Problem]:
    """Each post of the previewed chat that does not fit its network, as a problem."""
    if preview.plan is None:
        return []
    problems = []
    for step in preview.plan.steps:
        for network, post in step.posts.items():
            if not post.measure.fits:
                problems.append(
                    preview.loaded.doc.problem(
                        _step_path(step.key),
                        f"{step.key} is too long for {network.value} in chat "
                        f"{preview.plan.chat_id}: {post.measure.describe()}",
                        f"shorten it, or add a shorter {network.value}: text for this step",
                    )
                )
    return problems


def _step_path(key: str) -> tuple[str | int, ...]:
    """Where the step ``key`` (q3, reminder-1, format-note ...) is written in the script."""
    if key.startswith("q") and key[1:].isdigit():
        return ("questions", int(key[1:]) - 1)
    if key.startswith("reminder-") and key[9:].isdigit():
        return ("reminders", int(key[9:]) - 1)
    return (key.replace("-", "_"),)


def preview_failed(loaded: LoadedScript, exc: Exception) -> Problem:
    """The problem shown when a script that passed its checks cannot be previewed."""
    return Problem(
        str(loaded.path),
        None,
        None,
        "",
        f"chatbot could not preview this chat (internal error: {type(exc).__name__})",
        "this is a bug in chatbot: please report it with the file attached",
    )


def render_plain(preview: Preview) -> str:
    """Plain text for pipes and files: every step, every network, every length."""
    script = preview.loaded.script
    lines = [
        f"{preview.loaded.path}: {script.title} (#{script.hashtag}, id {preview.loaded.script_id})"
    ]
    plan = preview.plan
    if plan is None:
        lines.append("  no upcoming chat")
        return "\n".join(lines)
    tz = localtime.zone(plan.timezone)
    lines.append(
        f"  chat {plan.chat_id}: {localtime.format_local(plan.start, tz)} "
        f"({plan.start:%Y-%m-%d %H:%M} UTC), time zone {plan.timezone}"
    )
    for step in plan.steps:
        lines.append("")
        lines.append(
            f"  {localtime.format_local(step.at, tz, '%a %d %b %H:%M %Z')}  "
            f"{step.at:%H:%M} UTC  {step.key}"
        )
        if not step.posts:
            lines.append("    (the recap thread is built from the answers when the chat ends)")
        for network, post in step.posts.items():
            mark = "ok" if post.measure.fits else "TOO LONG"
            lines.append(f"    [{network.value}] {post.measure.describe()} {mark}")
            lines.extend(f"      {line}" for line in post.text.splitlines())
            if post.image_path:
                lines.append(f"      image: {post.image_path} (alt: {post.image_alt})")
    if preview.later:
        lines.append("")
        lines.append("  next dates:")
        lines.extend(
            f"    {localtime.format_local(at, tz)}  ({at:%Y-%m-%d %H:%M} UTC, "
            f"{localtime.utc_offset_text(at, tz)})"
            for at in preview.later
        )
    return "\n".join(lines)


def render_rich(preview: Preview, console: Console) -> None:
    """The same timeline as a table, for a terminal."""
    script = preview.loaded.script
    plan = preview.plan
    console.rule(f"[bold]{script.title}[/] #{script.hashtag}")
    if plan is None:
        console.print("no upcoming chat")
        return
    tz = localtime.zone(plan.timezone)
    console.print(
        f"chat [bold]{plan.chat_id}[/]: {localtime.format_local(plan.start, tz)} "
        f"({plan.start:%Y-%m-%d %H:%M} UTC) · {plan.timezone}"
    )
    table = Table(show_lines=True, expand=True)
    table.add_column("local", no_wrap=True)
    table.add_column("UTC", no_wrap=True)
    table.add_column("step", no_wrap=True)
    table.add_column("network", no_wrap=True)
    table.add_column("text", ratio=1)
    table.add_column("length", no_wrap=True, justify="right")
    for step in plan.steps:
        local = localtime.format_local(step.at, tz, "%a %d %b %H:%M")
        utc = f"{step.at:%H:%M}"
        if not step.posts:
            table.add_row(
                local,
                utc,
                step.key,
                "",
                Text("recap thread built from the answers", style="italic"),
                "",
            )
        for network, post in step.posts.items():
            body = Text(post.text)
            if post.image_path:
                body.append(f"\n🖼 {post.image_path}: {post.image_alt}", style="dim")
            style = "green" if post.measure.fits else "bold red"
            table.add_row(
                local,
                utc,
                step.key,
                network.value,
                body,
                Text(post.measure.describe(), style=style),
            )
            local = utc = ""
    console.print(table)
    if preview.later:
        console.print("[bold]next dates[/]")
        for at in preview.later:
            console.print(
                f"  {localtime.format_local(at, tz)}  ({at:%Y-%m-%d %H:%M} UTC, "
                f"{localtime.utc_offset_text(at, tz)})"
            )
