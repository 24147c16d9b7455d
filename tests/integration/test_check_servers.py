"""``chatbot check`` against each real server: every read a chat needs, in whole sentences.

The real ``chatbot check`` process, on snac2, mastodon-mock and the AT Protocol
network (the ``venue`` fixture): it signs in, names the server and where each
fact came from, reads the notifications, a thread and the hashtag, posts
nothing, and fails when a read fails. Every line it prints, and every fix, is
a whole sentence.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.botrun import BotFolder, BotRunner, chat_script
from tests.integration.venues import MastodonVenue, Venue
from tests.servers import MastodonServer, SnacServer

# A sentence cut off mid-clause ends on one of these ("... ask automated accounts to be").
DANGLING = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "if", "in", "is",
    "of", "on", "or", "so", "than", "that", "the", "their", "to", "was", "were", "which", "who",
    "with",
})  # fmt: skip
_FINDING = re.compile(r"^\s+(?:ok|note|warning|problem)\s+(.*)$|^\s+fix: (.*)$")


def sentences(output: str) -> list[str]:
    """Every message and fix ``chatbot check`` printed."""
    found = []
    for line in output.splitlines():
        match = _FINDING.match(line)
        if match:
            found.append(match.group(1) or match.group(2))
    return found


def cut_off(sentence: str) -> bool:
    """Whether a line does not end as a whole sentence does."""
    if not sentence.endswith(".") or sentence.endswith(".."):
        return True
    last = re.findall(r"[\w']+", sentence.lower())
    return not last or last[-1] in DANGLING


def _check(bots: BotRunner, folder: BotFolder) -> tuple[int, str]:
    return bots.call(folder, "check", "--config", str(folder.config))


def test_check_reads_what_a_chat_needs_in_whole_sentences(
    venue: Venue, tmp_path: Path, bots: BotRunner
) -> None:
    """On each server: ready (exit 0), the account, its mark, the thread and the hashtag
    named, nothing posted, and every line and fix a whole sentence; refused credentials
    fail (exit 1) without printing them."""
    folder = venue.bot(tmp_path / "bot")
    tag = venue.tag()
    folder.write_script("chat.yaml", chat_script(chat_id="check", hashtag=tag,
                                                 networks=[venue.network]))  # fmt: skip
    venue.mark_bot(False)
    code, out = _check(bots, folder)
    assert code == 0, out
    assert "Signed in as @" in out or "Signed in as " in out
    assert "The bot has not posted yet, so reading a thread's replies was not checked" in out
    assert "fix: " in out  # the missing mark, with what to do
    lines = sentences(out)
    assert lines and [s for s in lines if cut_off(s)] == [], out

    venue.mark_bot(True)
    venue.bot_post("Warming up", tag=tag)
    venue.settle()
    code, out = _check(bots, folder)
    assert code == 0, out
    assert "The account carries the" in out
    assert "The replies under the bot's newest post (" in out
    assert f"The #{tag} timeline can be read (1 recent post(s))." in out
    assert "The notifications can be read" in out
    assert [s for s in sentences(out) if cut_off(s)] == [], out
    assert len(venue.bot_posts()) == 1  # check posted nothing

    refused = venue.refused(tmp_path / "refused")
    code, out = _check(bots, refused)
    assert code == 1, out
    assert "problem  The credentials were refused" in out
    assert "not-a-token" not in out and "xxxx-xxxx-xxxx-xxxx" not in out
    assert [s for s in sentences(out) if cut_off(s)] == [], out


def test_check_on_snac_names_it_and_its_real_limit(
    snac_server: SnacServer, tmp_path: Path, bots: BotRunner
) -> None:
    """snac 2.75 from its nodeinfo, 100,000 characters from /api/v1/instance (it serves no
    v2), its domain, and its unlisted posted as public named against the recap."""
    import contextlib

    with contextlib.ExitStack() as closing:
        venue = MastodonVenue("snac2", snac_server, closing)
        folder = venue.bot(tmp_path / "bot")
        folder.write_script("chat.yaml", chat_script(chat_id="check", hashtag=venue.tag(),
                                                     networks=["mastodon"]))  # fmt: skip
        code, out = _check(bots, folder)
    assert code == 0, out
    assert f"The server runs snac {snac_server.version} (read from its nodeinfo)." in out
    assert "Posts may be up to 100,000 characters (read from /api/v1/instance)." in out
    assert f"Local handles end in @{snac_server.domain} (read from /api/v1/instance)." in out
    assert (
        "This server posts unlisted statuses as public, so the posts recap_visibility sets to "
        "unlisted will be public, in the hashtag timeline." in out
    )
    assert "as the instance says" not in out


def test_check_fails_when_the_notifications_cannot_be_read(
    mastodon_server: MastodonServer, tmp_path: Path, bots: BotRunner
) -> None:
    """A read a chat needs that fails (403 on the notifications) is a problem: exit 1."""
    import contextlib

    with contextlib.ExitStack() as closing:
        venue = MastodonVenue("mastodon-mock", mastodon_server, closing)
        folder = venue.bot(tmp_path / "bot")
        folder.write_script("chat.yaml", chat_script(chat_id="check", hashtag=venue.tag(),
                                                     networks=["mastodon"]))  # fmt: skip
        mastodon_server.inject_fault("/api/v1/notifications", status=403, count=None)
        try:
            code, out = _check(bots, folder)
        finally:
            mastodon_server.clear_faults()
    assert code == 1, out
    assert "problem  The notifications cannot be read, so answers that only mention" in out
    assert "Not ready: 1 problem(s)" in out
