"""Rehearsals: a chat script played at speed on the embedded local network, never in public.

Each network the script posts to is played by a local network of that name, so
the rehearsal shows the real text of every post on every network, in threads of
their own. Simulated teachers introduce themselves and answer the real
questions; the recap and the transcript are made as on the night. No account
anywhere is used. ``chatbot demo`` is a rehearsal of the embedded demo script.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from chatbot.archive import archive_folder, write_archives
from chatbot.config import LatePolicy
from chatbot.kinds import PARTICIPANT_KINDS, PostKind
from chatbot.loader import LoadedScript, load_script
from chatbot.networks.base import Network
from chatbot.networks.local import LocalNetwork
from chatbot.run.runner import Runner
from chatbot.script import NetworkName
from chatbot.store import BOT_AUTHOR, OVER_STATES, LocalPost, Store, UnitState

DEMO_SCRIPT = "demo-chat.yaml"
POLL = 0.2
Say = Callable[[str], None]


def demo_script_path() -> Path:
    return Path(str(resources.files("chatbot") / "demo" / DEMO_SCRIPT))


def run_demo(data_dir: Path, speed: float, say: Say, timeout: float = 600) -> int:
    """The demo: the embedded demo script, rehearsed. Returns the exit code."""
    # A co-moderator of the demo asks for more time during Q3 (see the demo script).
    script = load_script(demo_script_path(), None)
    return rehearse([script], data_dir, speed, say, timeout, co_moderator="coachdavis")


def rehearse(
    scripts: Sequence[LoadedScript],
    data_dir: Path,
    speed: float,
    say: Say,
    timeout: float = 600,
    *,
    co_moderator: str | None = None,
) -> int:
    """Play ``scripts`` now, ``speed`` times faster, printing every post as it appears.

    Returns 0 when every chat ran to its end, 1 if ``timeout`` seconds passed first.
    """
    store = Store.open(f"sqlite:///{data_dir / 'chatbot.db'}", now=datetime.now(UTC))
    names = list(dict.fromkeys(n for loaded in scripts for n in loaded.script.networks))
    locals_ = {
        name: LocalNetwork(store, time_scale=speed, name=name, co_moderator=co_moderator)
        for name in names
    }
    networks: dict[NetworkName, Network] = dict(locals_)
    runner = Runner(
        store=store,
        networks=networks,
        schedules=None,
        late=LatePolicy(),
        speed=speed,
        scripts=list(scripts),
        watch=False,
        data_dir=data_dir,
    )
    runner.start()
    chat_ids = runner.planned_chats()
    played = ", ".join(n.value for n in names)
    say(f"rehearsing {', '.join(chat_ids)} at {speed:g}x speed, on the local network ({played})")
    tagged = len(names) > 1
    seen = {p.id for p in store.local_posts.visible(until=None)}  # an earlier run's posts
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    finished = threading.Event()
    try:
        while not finished.is_set() and datetime.now(UTC) < deadline:
            for post in store.local_posts.visible(until=datetime.now(UTC)):
                if post.id not in seen:
                    seen.add(post.id)
                    say(_line(post, tagged))
            over = all(
                (chat := store.chats.get(c)) is not None and chat.state in OVER_STATES
                for c in chat_ids
            )
            if over and len(store.local_posts.visible(until=None)) == len(seen):
                finished.set()
            finished.wait(POLL)
        for chat_id in chat_ids:
            runner.collect(chat_id)  # a last round: every answer is in before the summary
    finally:
        runner.stop()
    for chat_id in chat_ids:
        say("")
        say(summary(store, chat_id))
        paths = write_archives(store, chat_id, archive_folder(data_dir))
        say(f"Answers by question: chatbot answers {chat_id} --data-dir {data_dir}")
        say(f"The transcript: {' '.join(str(p) for p in paths)}")
    store.close()
    say(f"Everything that was posted: chatbot status --data-dir {data_dir}")
    return 0 if finished.is_set() else 1


def summary(store: Store, chat_id: str) -> str:
    """What the chat produced: steps posted, people, answers per question."""
    units = store.units.of_chat(chat_id)
    posted = sum(1 for u in units if u.state is UnitState.POSTED)
    posts = store.conversation.posts(chat_id)
    answers = store.reports.answers(chat_id)
    people = {(p.network, p.author_id) for p in posts if p.kind in PARTICIPANT_KINDS}
    per_question: dict[int, int] = {}
    for answer in answers:
        per_question[answer.question] = per_question.get(answer.question, 0) + 1
    counts = ", ".join(f"Q{n}: {c}" for n, c in sorted(per_question.items()))
    intros = sum(1 for p in posts if p.kind == PostKind.INTRODUCTION)
    return (
        f"{chat_id}: {posted} of {len(units)} steps posted, each exactly once. "
        f"{len(people)} participants, {intros} introductions, {len(answers)} answers ({counts})."
    )


def _line(post: LocalPost, tagged: bool) -> str:
    clock = f"{post.created_at:%H:%M:%S}"
    where = f"[{post.network}] " if tagged else ""
    if post.author == BOT_AUTHOR:
        return f"{clock}  {where}@chatbot: {post.text}"
    reply = " (reply)" if post.reply_to else ""
    return f"{clock}    {where}@{post.author}{reply}: {post.text}"
