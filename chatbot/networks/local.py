"""The embedded ``local`` network: a small microblog inside the state database.

It needs no account anywhere, so the demo and fast tests run the real runner
against it. Simulated participants answer the bot's posts the way teachers do:
"A1: ...", "a1) ...", "A 2 - ...", replies under a question with no number, two
answers in one post, introductions, latecomers, the odd post without a number.
Their posts are written with future timestamps and become visible when their
time comes, so the simulation is deterministic and survives restarts.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chatbot.kinds import INTRODUCTION_STEPS, StepKind
from chatbot.networks.base import ChatThread, Collected, PostRequest
from chatbot.posts import Author, PostRef, SeenPost
from chatbot.script import NetworkName
from chatbot.store import BOT_AUTHOR, LocalPost, Store
from chatbot.text import Limits

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Persona:
    handle: str
    name: str
    role: str
    eagerness: float  # chance to answer a question
    joins_at: int = 1  # the question a latecomer first sees
    bio: str = ""
    # Which chats of a series the person comes to, by the chat's number on this network
    # (cycling): people join, skip a month and come back, as in real chats.
    attends: str = "1"

    def comes_to(self, chat_number: int) -> bool:
        return self.attends[chat_number % len(self.attends)] == "1"


PERSONAS: tuple[Persona, ...] = (
    Persona("msrivera", "Ana Rivera", "4th grade teacher at Lincoln Elementary", 0.95),
    Persona("coachdavis", "Marcus Davis", "instructional coach, district office", 0.9),
    Persona(
        "principal_lee", "Grace Lee", "principal at Oak Ridge Middle School", 0.7, attends="1101"
    ),
    Persona("mr_okafor", "Chidi Okafor", "high school science teacher", 0.85, attends="11101"),
    Persona("librarian_jo", "Jo Martinez", "school librarian", 0.6, bio="Librarian. #nobot"),
    Persona(
        "newteacher_sam", "Sam Patel", "first-year math teacher", 0.8, joins_at=3, attends="011"
    ),
    Persona("techcoach_kim", "Hana Kim", "edtech coach", 0.75, joins_at=2, attends="1011"),
    Persona("ms_chen", "Mei Chen", "kindergarten teacher", 0.85, attends="001111"),
    Persona("mr_brooks", "Dan Brooks", "middle school ELA teacher", 0.7, attends="000111"),
    Persona("counselor_osei", "Ama Osei", "school counselor", 0.6, attends="0010110"),
)

_ANSWERS = (
    "we rotate three stations: teacher table, independent practice and a tech station",
    "small groups every day, and the data from exit tickets decides who comes to my table",
    "I give students a checklist so they know what to do when they get stuck",
    "honestly it is still messy, but the kids love having choices",
    "short videos let students rewind the mini-lesson as often as they need",
    "we tried it school-wide this year and the planning time made all the difference",
    "clear routines first: two weeks of practising transitions before any content",
    "peer tutors at one station freed me up for the kids who needed me most",
    "a quick Google Form at each station shows me who needs a re-teach tomorrow",
    "I am going to try a must-do / may-do board next week",
    "timers on the board keep every group moving",
    "colour-coded folders so everyone knows their station",
)
_CHATTER = (
    "Great question!",
    "Love this idea, stealing it for Monday 🙌",
    "So many good ideas tonight.",
    "Thanks for hosting, this is my favourite hour of the month!",
    "+1 to everything said above",
)


# In the demo, a co-moderator gives the bot more time for this question.
COMMAND_AFTER = 3


class LocalNetwork:
    """The local microblog, shared by the bot and the simulated participants."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        time_scale: float = 1.0,
        participants: bool = True,
        seed: int = 2027,
        delay_before_post: timedelta = timedelta(0),
        delay_after_post: timedelta = timedelta(0),
        name: NetworkName = NetworkName.LOCAL,
        co_moderator: str | None = None,
    ) -> None:
        """``name``: a rehearsal plays a script's Mastodon and Bluesky posts here, each
        network's thread apart, with that network's text."""
        self.name = name
        self._co_moderator = co_moderator  # a persona who gives the bot a command (the demo)
        self._store = store
        self._clock = clock or (lambda: datetime.now(UTC))
        self._time_scale = time_scale
        self._participants = participants
        self._seed = seed
        self._delay_before = delay_before_post.total_seconds()
        self._delay_after = delay_after_post.total_seconds()

    def limits(self) -> Limits:
        return Limits()

    def close(self) -> None:
        """Nothing to release: the store belongs to the runner."""

    # --- the bot's side -----------------------------------------------------------------

    def post(self, request: PostRequest) -> PostRef:
        existing = self.find(request)
        if existing is not None:
            return existing
        if self._delay_before:
            time.sleep(self._delay_before)  # a slow network, as configured
        now = self._clock()
        parent = int(request.parent.id) if request.parent else None
        root = int(request.root.id) if request.root else None
        post = LocalPost(
            id=0,
            author=BOT_AUTHOR,
            author_name="chatbot",
            text=request.text,
            reply_to=parent,
            root=root,
            created_at=now,
            image_alt="; ".join(a.alt for a in request.attachments) or None,
            idempotency_key=request.idempotency_key,
            network=self.name.value,
        )
        # The participants' answers are written with it, in one transaction, with the
        # times they will appear: a restart cannot lose them or write them twice.
        answers = self._simulate(root, request, now) if self._participants else []
        new_id = self._store.local_posts.publish(post, answers)
        if self._delay_after:
            time.sleep(self._delay_after)  # the answer is slow to come back, as configured
        return PostRef(self.name, str(new_id), f"local:/posts/{new_id}")

    def find(self, request: PostRequest) -> PostRef | None:
        found = self._store.local_posts.find(request.idempotency_key)
        return PostRef(self.name, str(found), f"local:/posts/{found}") if found else None

    # --- reading ------------------------------------------------------------------------

    def posts(self, *, include_future: bool = False) -> list[LocalPost]:
        """This network's posts visible now (or all of them, future ones too), oldest first."""
        return self._store.local_posts.visible(
            until=None if include_future else self._clock(), network=self.name.value
        )

    def collect(self, thread: ChatThread, cursors: dict[str, str]) -> Collected:
        """The chat's posts that are visible now: with the hashtag or in the chat's thread."""
        after_time, _, after_id = cursors.get("posts", "").partition("|")
        since = datetime.fromisoformat(after_time) if after_time else thread.since
        ids = {int(ref.id) for ref in thread.bot_posts}
        tag = f"#{thread.hashtag}".casefold()
        posts, to_bot = [], []
        cursor = cursors.get("posts", "")
        for post in self._store.local_posts.visible(
            until=self._clock(), after=(since, int(after_id or 0)), network=self.name.value
        ):
            if post.author == BOT_AUTHOR:
                continue
            cursor = f"{post.created_at.isoformat()}|{post.id}"
            in_thread = post.root in ids or post.reply_to in ids
            if in_thread or tag in post.text.casefold():
                posts.append(self._seen(post))
            if f"@{BOT_AUTHOR}" in post.text.casefold():
                to_bot.append(self._seen(post))
        return Collected(
            posts=tuple(posts),
            cursors={"posts": cursor} if cursor else {},
            to_bot=tuple(to_bot),
        )

    def post_as(
        self,
        author: str,
        text: str,
        *,
        reply_to: PostRef | None = None,
        name: str = "",
        at: datetime | None = None,
    ) -> PostRef:
        """Someone else posts on the local network (a test, a rehearsal's co-moderator)."""
        parent = int(reply_to.id) if reply_to else None
        root = None
        if parent is not None:
            above = next((p for p in self.posts(include_future=True) if p.id == parent), None)
            root = (above.root or above.id) if above else parent
        post = LocalPost(
            0,
            author,
            name or author,
            text,
            parent,
            root,
            at or self._clock(),
            network=self.name.value,
        )
        new_id = self._store.local_posts.add(post)
        return PostRef(self.name, str(new_id), f"local:/posts/{new_id}")

    # --- likes and identities ---------------------------------------------------------

    def like(self, post: PostRef) -> PostRef:
        """Likes are not kept on the local network: the post stays as it is."""
        return post

    def resolve(self, handle: str) -> str | None:
        """On the local network an account's id is its handle."""
        return handle.strip().removeprefix("@").lower() or None

    def _seen(self, post: LocalPost) -> SeenPost:
        persona = _PERSONAS_BY_HANDLE.get(post.author)
        opt_out = "#nobot in the profile" if persona and "#nobot" in persona.bio.lower() else ""
        author = Author(
            network=self.name,
            id=post.author,
            handle=post.author,
            display_name=post.author_name,
            url=f"local:/@{post.author}",
            opt_out=opt_out,
        )
        return SeenPost(
            network=self.name,
            uri=post.url,
            id=str(post.id),
            url=post.url,
            author=author,
            text=post.text,
            created_at=post.created_at,
            reply_to=str(post.reply_to) if post.reply_to else None,
            root=str(post.root) if post.root and post.root != post.id else None,
            tags=tuple(t.lower() for t in re.findall(r"#(\w+)", post.text)),
        )

    # --- simulated participants ---------------------------------------------------------

    def _later(self, now: datetime, rng: random.Random, low: float, high: float) -> datetime:
        return now + timedelta(seconds=rng.uniform(low, high) / self._time_scale)

    def _simulate(self, root: int | None, request: PostRequest, now: datetime) -> list[LocalPost]:
        """Participants react to the chat's prompts: introductions and questions.

        Their posts refer to the prompt by the id 0 (it has none yet; the store
        gives it one). ``root`` is the chat's first post (None: this one).
        """
        text = request.text
        # Simulated people, not security: a seeded generator keeps runs reproducible.
        rng = random.Random(f"{self._seed}/{request.idempotency_key}/{text}")  # noqa: S311
        hashtag = _hashtag(text)
        chat_number = self._store.local_posts.threads_before(root, self.name.value)
        present = [p for p in PERSONAS if p.comes_to(chat_number) or p.handle == self._co_moderator]
        post_id = 0
        root = root or 0
        rows: list[LocalPost] = []
        if request.kind in INTRODUCTION_STEPS and re.search(
            r"introduce yourself|say hi", text, re.IGNORECASE
        ):
            for persona in present:
                if persona.joins_at == 1 and rng.random() < 0.85:
                    rows.append(
                        self._row(
                            persona,
                            f"Hi! {persona.name}, {persona.role}. Happy to be here {hashtag}",
                            post_id,
                            root,
                            self._later(now, rng, 10, 100),
                        )
                    )
        elif request.kind == StepKind.QUESTION and request.number is not None:
            number = request.number
            for persona in present:
                if persona.joins_at > number or rng.random() > persona.eagerness:
                    continue
                rows.append(self._answer(persona, number, hashtag, post_id, root, now, rng))
            if number == COMMAND_AFTER and self._co_moderator is not None:
                rows.append(
                    self._row(
                        _PERSONAS_BY_HANDLE[self._co_moderator],
                        f"@{BOT_AUTHOR} extend 2 {hashtag}",
                        post_id,
                        root,
                        self._later(now, rng, 60, 90),
                    )
                )
            if rng.random() < 0.5:
                persona = rng.choice(present)
                rows.append(
                    self._row(
                        persona,
                        f"{rng.choice(_CHATTER)} {hashtag}",
                        None,
                        None,
                        self._later(now, rng, 30, 400),
                    )
                )
        return rows

    def _answer(
        self,
        persona: Persona,
        number: int,
        hashtag: str,
        question_id: int,
        root: int,
        now: datetime,
        rng: random.Random,
    ) -> LocalPost:
        body = rng.choice(_ANSWERS)
        style = rng.randrange(7)
        reply_to: int | None = None
        if persona.joins_at == number and number > 1:
            # A latecomer catches up: two answers in one post.
            text = f"A{number - 1}: {rng.choice(_ANSWERS)} A{number}: {body} {hashtag}"
        elif style == 0:
            text = f"A{number}: {body.capitalize()} {hashtag}"
        elif style == 1:
            text = f"a{number}) {body} {hashtag}"
        elif style == 2:
            text = f"A {number} - {body} {hashtag}"
        elif style == 3:
            text, reply_to = body.capitalize(), question_id  # under the question, no number, no tag
        elif style == 4:
            text = f"{hashtag} A{number}. {body.capitalize()}"
        elif style == 5:
            text, reply_to = f"A{number}: {body}", question_id
        else:
            text = f"{body.capitalize()} {hashtag}"  # forgot the number: conversation
        return self._row(
            persona, text, reply_to, root if reply_to else None, self._later(now, rng, 15, 420)
        )

    @staticmethod
    def _row(
        persona: Persona, text: str, reply_to: int | None, root: int | None, at: datetime
    ) -> LocalPost:
        return LocalPost(0, persona.handle, persona.name, text, reply_to, root, at)


_PERSONAS_BY_HANDLE = {p.handle: p for p in PERSONAS}


def _hashtag(text: str) -> str:
    match = re.search(r"#\w+", text)
    return match.group(0) if match else ""
