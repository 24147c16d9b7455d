"""``chatbot demo``: a whole chat on the embedded local network, about a minute long."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from chatbot.archive import archive_folder, write_archives
from chatbot.config import LatePolicy
from chatbot.kinds import PARTICIPANT_KINDS, PostKind
from chatbot.loader import load_script
from chatbot.networks.local import LocalNetwork
from chatbot.run.runner import Runner
from chatbot.script import NetworkName
from chatbot.store import BOT_AUTHOR, ChatState, LocalPost, Store, UnitState

DEMO_SCRIPT = "demo-chat.yaml"
POLL = 0.2


def demo_script_path() -> Path:
    return Path(str(resources.files("chatbot") / "demo" / DEMO_SCRIPT))


def run_demo(data_dir: Path, speed: float, say: Callable[[str], None], timeout: float = 600) -> int:
    """Run the demo chat; print every post as it appears. Returns the exit code."""
    store = Store.open(f"sqlite:///{data_dir / 'chatbot.db'}", now=datetime.now(UTC))
    loaded = load_script(demo_script_path(), None)
    local = LocalNetwork(store, time_scale=speed)
    runner = Runner(
        store=store,
        networks={NetworkName.LOCAL: local},
        schedules=None,
        late=LatePolicy(),
        speed=speed,
        scripts=[loaded],
    )
    done = threading.Event()
    runner.start()
    chat_ids = runner.planned_chats()
    say(
        f"demo chat {', '.join(chat_ids)}: a one-hour chat at {speed:g}x speed on the local network"
    )
    seen = {p.id for p in local.posts()}  # posts of an earlier demo in this folder
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    try:
        while not done.is_set() and datetime.now(UTC) < deadline:
            for post in local.posts():
                if post.id not in seen:
                    seen.add(post.id)
                    say(_line(post))
            chats = [store.chats.get(c) for c in chat_ids]
            over = all(
                c is not None and c.state in (ChatState.DONE, ChatState.MISSED) for c in chats
            )
            if over and len(local.posts(include_future=True)) == len(seen):
                done.set()
            done.wait(POLL)
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
    return 0 if done.is_set() else 1


def summary(store: Store, chat_id: str) -> str:
    """What the chat produced: steps posted, people, answers per question."""
    units = store.units.of_chat(chat_id)
    posted = sum(1 for u in units if u.state is UnitState.POSTED)
    posts = store.conversation.posts(chat_id)
    answers = store.reports.answers(chat_id)
    people = {p.author_id for p in posts if p.kind in PARTICIPANT_KINDS}
    per_question: dict[int, int] = {}
    for answer in answers:
        per_question[answer.question] = per_question.get(answer.question, 0) + 1
    counts = ", ".join(f"Q{n}: {c}" for n, c in sorted(per_question.items()))
    intros = sum(1 for p in posts if p.kind == PostKind.INTRODUCTION)
    return (
        f"{chat_id}: {posted} of {len(units)} steps posted, each exactly once. "
        f"{len(people)} participants, {intros} introductions, {len(answers)} answers ({counts})."
    )


def _line(post: LocalPost) -> str:
    clock = f"{post.created_at:%H:%M:%S}"
    if post.author == BOT_AUTHOR:
        return f"{clock}  @chatbot: {post.text}"
    where = " (reply)" if post.reply_to else ""
    return f"{clock}    @{post.author}{where}: {post.text}"
