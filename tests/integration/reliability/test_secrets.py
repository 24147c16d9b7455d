"""Security, and hostile replies through the whole bot, on real servers.

One real ``chatbot run`` (every logger at DEBUG, see ``verbose.py``) holds a Mastodon
account on mastodon-mock and a Bluesky account (app password) on the AT Protocol
network, and runs a real-time chat on both. On mastodon-mock, participants under a
hostile display name answer with markup, bidi overrides, zero-width characters,
terminal escapes and a mention of a third person, quote the bot, and reply to a post
that is then deleted; on the AT Protocol network, an answer carries a real mention facet.

Then: the account's token, the app password and the Bluesky session's tokens are
searched for in every byte the bot wrote (its logs at DEBUG, the outputs of
``status``, ``answers``, ``archive`` and of ``check`` with refused credentials, the
database, the data folder) and are never found; the database and the sessions are
owner-only; the recap mentions no one; the terminal outputs carry no control
character; the HTML transcript runs and fetches nothing in headless Chromium. YAML with
a ``!!python/object`` tag is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import stat
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from atproto import client_utils, models

from chatbot.config import load_config
from chatbot.errors import ChatbotError
from chatbot.facets import detect_mentions
from chatbot.networks.connect import connect_accounts
from chatbot.public import contain_bidi
from tests.integration.botrun import (
    ROOT,
    BotFolder,
    BotProcess,
    BotRunner,
    bot_folder,
    chat_script,
    wait_until,
)
from tests.integration.collecting import chat_id_of, wait_for_posted
from tests.integration.reliability import summary
from tests.integration.venues import (
    BlueskyPerson,
    BlueskyVenue,
    MastodonPerson,
    MastodonVenue,
    Ref,
)
from tests.servers import AtprotoNetwork, MastodonServer
from tests.test_archive_browser import DevTools, browser  # noqa: F401 (a fixture)

SPEED = "20"  # one minute of the script is three seconds
HOSTILE_NAME = "<img src=x onerror=window.__pwned=1> \u202eRLO @victim@elsewhere.example"
ANSWERS = {
    "markup": "A1: <script>window.__pwned=1</script><b>bold</b> ask @victim@elsewhere.example",
    "controls": "A1: \u202eright to left \x1b[2J\x1b]8;;https://evil.example\x07zero\u200bwidth",
    "deep": "A2: " + "<div>" * 60 + "deep (a+)+$ " + "a" * 100,
}
TERMINAL_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
MASTODON_MENTION = re.compile(r"(?<![=/\w])@(\w+(?:@[\w.-]+\w+)?)")


@dataclass
class Run:
    """What the one run left: its folder, its chat, the secrets it held, its outputs."""

    folder: BotFolder
    chat_id: str
    planted: dict[str, str]  # what each secret is -> its value
    outputs: dict[str, str]  # command -> what it printed


def _secrets_of_session(folder: BotFolder) -> dict[str, str]:
    """The Bluesky session's tokens (the JWTs in the session file the bot keeps)."""
    found: dict[str, str] = {}
    for path in folder.sessions.glob("*"):
        for part in re.findall(r"ey[\w-]+\.[\w-]+\.[\w-]+", path.read_text(encoding="utf-8")):
            found[f"session token {len(found) + 1} ({path.name})"] = part
    return found


@pytest.fixture(scope="module")
def run(
    mastodon_server: MastodonServer,
    atproto_network: AtprotoNetwork,
    tmp_path_factory: pytest.TempPathFactory,
    cli_env: dict[str, str],
) -> Iterator[Run]:
    """The bot on both networks, at DEBUG, through a chat with hostile replies."""
    root = tmp_path_factory.mktemp("secrets")
    env = {**cli_env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), sys.path[0]]))}
    bots = BotRunner([sys.executable, "-m", "tests.integration.reliability.verbose"], env)
    with contextlib.ExitStack() as closing:
        mastodon = MastodonVenue("mastodon-mock", mastodon_server, closing)
        bluesky = BlueskyVenue(atproto_network, closing)
        token = mastodon.bot(root / "m").env["CHATBOT_IT_MASTODON_TOKEN"]
        app_password = bluesky.bot(root / "b").env["CHATBOT_IT_BLUESKY_PASSWORD"]
        folder = bot_folder(
            root / "bot",
            mastodon=(mastodon_server.api_base_url, token),
            bluesky=(atproto_network.pds_url, bluesky.bot_handle, app_password),
        )
        tag = f"Sec{secrets.token_hex(3)}"
        folder.write_script(
            "chat.yaml",
            chat_script(
                chat_id="secchat",
                hashtag=tag,
                networks=["mastodon", "bluesky"],
                reminder=False,
                image_question=None,
                closing_at="5m",
                recap=True,
                recap_after="2m",
            ),
        )
        process = bots.start(folder, "run", "--speed", SPEED, "--config", str(folder.config))
        try:
            _hostile_chat(mastodon, folder, tag, process)
            _hostile_bluesky_answer(bluesky, folder, process)
            wait_until(
                lambda: any(
                    u["kind"] == "recap" and u["state"] == "posted" for u in folder.units()
                ),
                90,
                "the recap",
                process=process,
            )
            assert process.wait(120) == 0, process.tail()
            chat_id = chat_id_of(folder)
            outputs = {
                "status": bots.call(folder, "status", "--config", str(folder.config))[1],
                "answers": bots.call(folder, "answers", chat_id, "--config", str(folder.config))[1],
                "archive": bots.call(
                    folder, "archive", chat_id, "--format", "md", "--config", str(folder.config)
                )[1],
            }
            refused = bot_folder(
                root / "refused",
                mastodon=(mastodon_server.api_base_url, "planted" + secrets.token_hex(16)),
                bluesky=(atproto_network.pds_url, bluesky.bot_handle, "planted-app-password-x"),
                env_prefix="CHATBOT_REFUSED",
            )
            outputs["check refused"] = bots.call(refused, "check", "--config", str(refused.config))[
                1
            ]
            planted = {
                "Mastodon token": token,
                "Bluesky app password": app_password,
                "refused token": refused.env["CHATBOT_REFUSED_MASTODON_TOKEN"],
                "refused app password": refused.env["CHATBOT_REFUSED_BLUESKY_PASSWORD"],
                **_secrets_of_session(folder),
            }
            yield Run(folder, chat_id, planted, outputs)
        finally:
            bots.close()


def _hostile_chat(venue: MastodonVenue, folder: BotFolder, tag: str, process: BotProcess) -> None:
    """Participants answer with hostile text, quote the bot and reply to a deleted post."""
    units = wait_for_posted(folder, "mastodon", {"welcome", "q1", "q2", "q3"}, process, 60)
    q = {n: venue.ref(units[f"q{n}"], units["welcome"]) for n in (1, 2, 3)}
    ana, ben, cleo = (venue.person(role) for role in ("ana", "ben", "cleo"))
    assert isinstance(ana, MastodonPerson)
    ana.api.account_update_credentials(display_name=HOSTILE_NAME)
    ana.post(ANSWERS["markup"], reply_to=q[1])
    ana.post(ANSWERS["controls"], tag=tag)
    ben.post(ANSWERS["deep"], reply_to=q[2])
    cleo.post("A2: quoting the bot's own question", quote=q[2], tag=tag)
    gone = ben.post("A3: soon deleted", reply_to=q[3])
    cleo.post("A3: a reply to a post about to vanish", reply_to=Ref(gone.id, gone.url))
    ben.delete(gone)


def _hostile_bluesky_answer(venue: BlueskyVenue, folder: BotFolder, process: BotProcess) -> None:
    """Under the bot's Q3 on the AT Protocol network, an answer with a real mention facet of
    a third person (the only answer to Q3, so the recap quotes it)."""
    units = wait_for_posted(folder, "bluesky", {"welcome", "q3"}, process, 60)
    q3 = venue.ref(units["q3"], units["welcome"])
    victim, dana = venue.person("victim"), venue.person("dana")
    assert isinstance(victim, BlueskyPerson) and isinstance(dana, BlueskyPerson)
    content = (
        client_utils.TextBuilder()
        .text("A3: ask ")
        .mention(f"@{victim.name}.test", victim.did)
        .text(" \u202e<b>reversed</b> \x1b[2J")
    )
    assert q3.root is not None
    reply = models.AppBskyFeedPost.ReplyRef(
        root=models.ComAtprotoRepoStrongRef.Main(uri=q3.root.id, cid=q3.root.cid),
        parent=models.ComAtprotoRepoStrongRef.Main(uri=q3.id, cid=q3.cid),
    )
    dana.client.send_post(content, profile_identify=dana.did, reply_to=reply)
    venue.settle()


def _everything_written(run: Run) -> dict[str, bytes]:
    """Every byte the bot wrote: files under its folder (the sessions aside: they are the
    one place a session must be kept), and what its commands printed."""
    written = {
        str(path.relative_to(run.folder.root.parent)): path.read_bytes()
        for path in run.folder.root.parent.rglob("*")
        if path.is_file() and run.folder.sessions not in path.parents
    }
    written.update({f"`chatbot {name}`": text.encode() for name, text in run.outputs.items()})
    return written


def test_no_secret_appears_in_anything_the_bot_wrote(run: Run) -> None:
    """Tokens, app passwords and session tokens are in no log line (DEBUG), no output, no
    error, no database or data file, in the clear or URL-encoded."""
    assert len(run.planted) >= 5, "the session file holds its tokens"
    written = _everything_written(run)
    assert any(name.endswith(".log") for name in written) and any(
        name.endswith("chatbot.db") for name in written
    )
    found = [
        f"{what} in {name}"
        for what, value in run.planted.items()
        for name, data in written.items()
        if value.encode() in data or quote(value, safe="").encode() in data
    ]
    summary.tally("secrets", len(found))
    assert found == []


def test_private_files_are_owner_only(run: Run) -> None:
    """The database (with its journal files) and the sessions are for the owner alone."""
    private = [
        *run.folder.database.parent.glob("chatbot.db*"),
        run.folder.sessions,
        *run.folder.sessions.iterdir(),
    ]
    assert len(private) >= 3
    shared = {
        str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in private if p.stat().st_mode & 0o077
    }
    assert shared == {}


def test_the_recap_mentions_no_participant_and_no_third_person(run: Run) -> None:
    """What participants wrote (a mention of @victim, a hostile display name) is quoted in the
    recap on both networks without a mention Mastodon would notify or a Bluesky facet."""
    recap = [u["text"] for u in run.folder.units() if u["kind"] == "recap"]
    assert recap and any("bold" in text for text in recap), recap
    assert any("reversed" in u["text"] for u in run.folder.units("bluesky") if u["kind"] == "recap")
    for text in recap:
        assert TERMINAL_CONTROL.search(text) is None, text
        assert all(contain_bidi(line) == line for line in text.splitlines()), text
    for text in recap:
        assert MASTODON_MENTION.search(text) is None, text
        assert detect_mentions(text) == [], text


def test_no_hostile_post_made_the_bot_fail(run: Run) -> None:
    """Markup, controls, a quote of the bot and a reply to a deleted post: no error logged,
    none recorded, and the hostile answers collected (the deleted one not)."""
    log = (run.folder.root / "bot-1.log").read_text(encoding="utf-8")
    # raw_decode: at DEBUG a library's line may follow a record on its line (both write to
    # stderr, each under a lock of its own).
    decode = json.JSONDecoder().raw_decode
    records = [decode(line)[0] for line in log.splitlines() if line.startswith("{")]
    assert records and [r for r in records if r.get("level") in ("error", "critical")] == []
    assert [e for e in run.folder.events() if "failed" in e] == []
    assert "quoting the bot" in run.outputs["answers"]
    assert "soon deleted" not in run.outputs["answers"] + run.outputs["archive"]


def test_terminal_outputs_carry_no_control_character(run: Run) -> None:
    """`status` and `answers` show the hostile answers as inert text."""
    assert "bold" in run.outputs["answers"]
    summary.tally("hostile_inputs", len(ANSWERS) + 3)
    for name in ("status", "answers"):
        assert TERMINAL_CONTROL.search(run.outputs[name]) is None, name
        for line in run.outputs[name].splitlines():
            assert contain_bidi(line) == line, (name, line)


def test_the_html_transcript_of_the_hostile_chat_runs_and_fetches_nothing(
    run: Run,
    browser: DevTools,  # noqa: F811 (the fixture imported above)
) -> None:
    """The transcript the bot wrote, opened in headless Chromium: no script ran, no active
    element, no request but the page itself."""
    page = next((run.folder.root / "data" / "archives").glob("*.html"))
    target = browser.call("Target.createTarget", url="about:blank")["targetId"]
    session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Network"):
        browser.call(f"{domain}.enable", session)
    browser.events.clear()
    browser.call("Page.navigate", session, url=page.as_uri())
    browser.wait_for("Page.loadEventFired")
    browser.evaluate(session, "new Promise(r => requestAnimationFrame(() => r(1)))")
    assert browser.evaluate(session, "typeof window.__pwned") == "undefined"
    active = browser.evaluate(
        session,
        "document.querySelectorAll('script, iframe, object, embed, img, svg, base').length"
        " + Array.from(document.querySelectorAll('*')).filter(e => Array.from(e.attributes)"
        ".some(a => a.name.startsWith('on'))).length",
    )
    assert active == 0
    assert "bold" in browser.evaluate(session, "document.body.innerText")
    requested = [
        e["params"]["request"]["url"]
        for e in browser.events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert requested == [page.as_uri()]


@pytest.mark.parametrize("command", ["validate", "check --config"])
def test_yaml_with_a_python_object_tag_is_refused(
    tmp_path: Path, run_chatbot: Any, command: str
) -> None:
    """`!!python/object/apply` in a chat script or a config is an error naming the tag;
    nothing runs."""
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.yaml"
    evil.write_text(
        f"id: !!python/object/apply:os.system ['touch {marker}']\ntitle: x\n", encoding="utf-8"
    )
    result = run_chatbot(*command.split(), str(evil))
    assert result.returncode != 0
    assert "python/object" in result.stdout + result.stderr
    assert not marker.exists()


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_no_secret_in_an_exception_or_a_repr(
    mastodon_server: MastodonServer,
    atproto_network: AtprotoNetwork,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Refused credentials and an unreachable server raise errors whose repr, message and
    whole traceback (causes included) hold no token or password; nor do the config's and
    the clients' reprs."""
    token, password = "planted" + secrets.token_hex(16), "plnt-" + secrets.token_hex(8)
    monkeypatch.setenv("CHATBOT_PLANTED_TOKEN", token)
    monkeypatch.setenv("CHATBOT_PLANTED_PASSWORD", password)
    shown: list[str] = []
    for mastodon_url in (mastodon_server.api_base_url, f"http://127.0.0.1:{_unused_port()}"):
        (tmp_path / "config.yaml").write_text(
            "data_dir: data\naccounts:\n"
            f"  mastodon:\n    instance: {mastodon_url}\n"
            "    access_token: {env: CHATBOT_PLANTED_TOKEN}\n"
            f"  bluesky:\n    service: {atproto_network.pds_url}\n    handle: nobody.test\n"
            "    app_password: {env: CHATBOT_PLANTED_PASSWORD}\n",
            encoding="utf-8",
        )
        loaded = load_config(tmp_path / "config.yaml")
        networks = connect_accounts(loaded)
        shown += [repr(loaded), repr(loaded.config), *map(repr, networks.values())]
        for network in networks.values():
            with pytest.raises(ChatbotError) as raised:
                network.account()
            error = raised.value
            shown += [repr(error), str(error), "".join(traceback.format_exception(error))]
            network.close()
    assert len(shown) == 2 * (2 + 2 + 2 * 3)  # per config: it, 2 clients, 2 errors
    found = [text[:200] for text in shown if token in text or password in text]
    summary.tally("secrets", len(found))
    assert found == []
