"""The HTML transcript in a real browser: hostile answers show as text, nothing runs or
loads, and the page keeps a phone's width.

Chromium runs headless and is driven over the DevTools protocol (a websocket on
127.0.0.1): the page is loaded at a 390-pixel phone viewport, then its live DOM,
its layout and every request it made are read back. ``scripts/test`` installs
Chromium (Debian's ``chromium`` package); without it these tests fail, never skip.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from chatdata import Hostile, add_chat, add_post, hostile_answers, open_store, person
from PIL import Image
from websockets.sync.client import ClientConnection, connect

from chatbot.archive import archive_folder, write_archives
from chatbot.public import BIDI_CONTROLS, clean_name

CHAT = "blchat-2030-01-02"
QUESTIONS = (
    "Q1: What does station rotation look like in your room? #BLchat",
    "Q2: How do you pick the teacher-led group? #BLchat",
    "Q3: What would you tell a first-year teacher? #BLchat",
)
PHONE_WIDTH = 390
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
TIMEOUT = 60.0


def find_chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    if found is None:
        pytest.fail(
            "Chromium is not installed: run scripts/test, which installs it "
            "(apt-get install chromium), then run the tests again"
        )
    return found


@dataclass
class DevTools:
    """A minimal DevTools-protocol client: commands, and the events seen meanwhile."""

    socket: ClientConnection
    events: list[dict[str, Any]] = field(default_factory=list)
    last_id: int = 0

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        message: dict[str, Any] = {"id": self.last_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv(timeout=TIMEOUT))
            if reply.get("id") != self.last_id:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise AssertionError(f"{method} failed: {reply['error']}")
            result: dict[str, Any] = reply.get("result", {})
            return result

    def wait_for(self, method: str) -> dict[str, Any]:
        """The first event ``method`` (already seen, or the next to come)."""
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = json.loads(self.socket.recv(timeout=TIMEOUT))
            self.events.append(event)
            if event.get("method") == method:
                return event

    def evaluate(self, session: str, expression: str) -> Any:
        """Run ``expression`` in the page (DevTools runs it whatever the page's CSP says)."""
        result = self.call("Runtime.evaluate", session, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    """Headless Chromium with a fresh profile, driven over its DevTools websocket."""
    chromium = find_chromium()
    profile = tmp_path_factory.mktemp("chromium-profile")
    process = subprocess.Popen(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HOME": str(profile)},
    )
    assert process.stderr is not None
    url, seen = "", []
    deadline = time.monotonic() + TIMEOUT
    while not url:
        ready, _, _ = select.select([process.stderr], [], [], deadline - time.monotonic())
        line = process.stderr.readline() if ready else ""
        if not line:
            process.kill()
            pytest.fail("Chromium did not start its DevTools server:\n" + "".join(seen[-20:]))
        seen.append(line)
        if line.startswith("DevTools listening on "):
            url = line.removeprefix("DevTools listening on ").strip()
    # Chromium keeps logging; read its stderr to the end so that it never blocks on a pipe.
    drain = threading.Thread(target=process.stderr.read, daemon=True)
    drain.start()
    try:
        with connect(url, max_size=None, open_timeout=TIMEOUT) as socket:
            yield DevTools(socket)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        drain.join(timeout=10)
        process.stderr.close()


@dataclass(frozen=True)
class LoadedPage:
    devtools: DevTools
    session: str
    url: str
    events: list[dict[str, Any]]
    hostile: list[Hostile]


@pytest.fixture(scope="module")
def page(browser: DevTools, tmp_path_factory: pytest.TempPathFactory) -> LoadedPage:
    """The transcript of a chat whose answers are the hostile corpus, open at phone width."""
    data_dir = tmp_path_factory.mktemp("transcript")
    store = open_store(data_dir)
    add_chat(store, CHAT, questions=QUESTIONS)
    hostile = hostile_answers()
    for i, item in enumerate(hostile):
        author = person(f"teacher{i}@school.example", item.author)
        question = i % len(QUESTIONS) + 1
        add_post(
            store,
            CHAT,
            author,
            str(i),
            item.text,
            answers=[(question, "", item.text)],
            minutes=12 + i,
        )
    hidden = person("hidden@school.example", "Hidden Person", opt_out="#nobot")
    add_post(store, CHAT, hidden, "hidden", "HIDDENTOKEN", answers=[(1, "", "HIDDENTOKEN")])
    html = next(
        p for p in write_archives(store, CHAT, archive_folder(data_dir)) if p.suffix == ".html"
    )
    store.close()

    target = browser.call("Target.createTarget", url="about:blank")["targetId"]
    session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Network", "Log"):
        browser.call(f"{domain}.enable", session)
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        session,
        width=PHONE_WIDTH,
        height=844,
        deviceScaleFactor=1,
        mobile=True,
    )
    browser.events.clear()
    browser.call("Page.navigate", session, url=html.as_uri())
    browser.wait_for("Page.loadEventFired")
    # Anything still pending when the load event fired is in once the page has painted.
    browser.evaluate(session, "new Promise(r => requestAnimationFrame(() => r(1)))")
    return LoadedPage(browser, session, html.as_uri(), list(browser.events), hostile)


def test_no_script_ran(page: LoadedPage) -> None:
    """No hostile answer ran script: the marker it would set is missing, the title is ours."""
    assert page.devtools.evaluate(page.session, "typeof window.__pwned") == "undefined"
    title = page.devtools.evaluate(page.session, "document.title")
    assert title == "Blended learning: station rotation · #BLchat"
    consoled = [e for e in page.events if e.get("method") == "Runtime.consoleAPICalled"]
    thrown = [e for e in page.events if e.get("method") == "Runtime.exceptionThrown"]
    assert consoled == [] and thrown == []


def test_the_page_has_no_active_content(page: LoadedPage) -> None:
    """The live DOM holds no script, handler, frame, image, svg, form, base or refresh."""
    found = page.devtools.evaluate(
        page.session,
        """(() => {
          const all = Array.from(document.querySelectorAll('*'));
          return {
            active: document.querySelectorAll(
              'script, iframe, frame, object, embed, img, svg, math, form, base, link, video,'
              + ' audio, meta[http-equiv="refresh"], [style]').length,
            handlers: all.filter(e => Array.from(e.attributes).some(
              a => a.name.startsWith('on'))).length,
            styles: document.querySelectorAll('style').length,
            hrefs: Array.from(document.querySelectorAll('a[href]'), a => a.getAttribute('href')),
            csp: document.querySelector('meta[http-equiv="Content-Security-Policy"]').content,
          };
        })()""",
    )
    assert found["active"] == 0 and found["handlers"] == 0
    assert found["styles"] == 1  # the page's own
    assert all(h.startswith(("#", "https://", "http://")) for h in found["hrefs"])
    assert "default-src 'none'" in found["csp"]


def test_the_page_fetched_nothing(page: LoadedPage) -> None:
    """The only request the page made was for the file itself: no tracker, no redirect."""
    requested = [
        e["params"]["request"]["url"]
        for e in page.events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert requested == [page.url]
    assert page.devtools.evaluate(page.session, "location.href") == page.url


def test_every_hostile_answer_shows_verbatim_in_its_own_element(page: LoadedPage) -> None:
    """Each answer's text node reads exactly what the participant wrote, one answer each."""
    bodies = page.devtools.evaluate(
        page.session,
        "Array.from(document.querySelectorAll('li.entry .text')).map(e => e.textContent)",
    )
    expected = [h.text for h in page.hostile]
    assert sorted(bodies) == sorted(expected)
    names = page.devtools.evaluate(
        page.session,
        "Array.from(document.querySelectorAll('li.entry .name')).map(e => e.textContent)",
    )
    assert sorted(names) == sorted(clean_name(h.author) for h in page.hostile)
    assert not any(c in BIDI_CONTROLS for name in names for c in name)


def test_every_question_renders_with_its_answers(page: LoadedPage) -> None:
    """Each question heads its own section, holding the answers given to it."""
    sections = page.devtools.evaluate(
        page.session,
        """Array.from(document.querySelectorAll('section.question-section')).map(s => ({
             heading: s.querySelector('h2').textContent,
             answers: s.querySelectorAll('li.entry').length}))""",
    )
    assert [s["heading"] for s in sections] == list(QUESTIONS)
    per_question = [
        sum(1 for i in range(len(page.hostile)) if i % len(QUESTIONS) == q) for q in range(3)
    ]
    assert [s["answers"] for s in sections] == per_question


def test_the_opted_out_answer_is_only_counted(page: LoadedPage) -> None:
    """The opted-out person's answer is a note in Q1, never its text or name."""
    text = page.devtools.evaluate(page.session, "document.body.innerText")
    assert "1 answer from someone who opted out of bots" in text
    assert "HIDDENTOKEN" not in text and "Hidden Person" not in text


def test_the_page_keeps_a_phones_width(page: LoadedPage) -> None:
    """At 390 px nothing overflows sideways: long words and links wrap, nothing widens it."""
    layout = page.devtools.evaluate(
        page.session,
        """({
          viewport: window.innerWidth,
          scroll: document.documentElement.scrollWidth,
          widest: Math.max(...Array.from(document.querySelectorAll('body *')).map(
            e => e.getBoundingClientRect().right)),
        })""",
    )
    assert layout["viewport"] == PHONE_WIDTH
    assert layout["scroll"] <= PHONE_WIDTH
    assert layout["widest"] <= PHONE_WIDTH


def test_answer_texts_are_bidi_isolated(page: LoadedPage) -> None:
    """Each answer's text takes its own direction and keeps overrides inside itself."""
    styles = page.devtools.evaluate(
        page.session,
        """Array.from(document.querySelectorAll('li.entry .text')).map(e =>
             [e.getAttribute('dir'), getComputedStyle(e).unicodeBidi])""",
    )
    assert styles and all(s == ["auto", "plaintext"] for s in styles)
    rtl = page.devtools.evaluate(
        page.session,
        """Array.from(document.querySelectorAll('li.entry .text'))
             .filter(e => e.textContent.includes('أعتقد'))
             .map(e => getComputedStyle(e).direction)""",
    )
    assert rtl == ["rtl"]


def test_the_page_prints_without_navigation(page: LoadedPage) -> None:
    """In print, the question list is hidden and the page still fits its width."""
    devtools, session = page.devtools, page.session
    devtools.call("Emulation.setEmulatedMedia", session, media="print")
    try:
        shown = devtools.evaluate(
            session, "getComputedStyle(document.querySelector('nav')).display"
        )
        scroll = devtools.evaluate(session, "document.documentElement.scrollWidth")
    finally:
        devtools.call("Emulation.setEmulatedMedia", session, media="")
    assert shown == "none"
    assert scroll <= PHONE_WIDTH


def test_a_screenshot_is_a_phone_wide_picture(page: LoadedPage, tmp_path: Path) -> None:
    """The rendered page captures as a 390-pixel-wide PNG (kept for a person to look at)."""
    shot = page.devtools.call("Page.captureScreenshot", page.session, format="png")
    path = tmp_path / "transcript.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    with Image.open(path) as image:
        assert image.width == PHONE_WIDTH
