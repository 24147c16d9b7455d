"""``chatbot check`` on the hosts a script names: each moderator's, co-moderator's and
guest's handle must name an account on each configured network, or their commands would
be refused during the chat.

The fake accounts of ``test_check`` stand at the network Protocol, with ``resolve`` added.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from test_check import NOW, FakeAccount, _loaded, _networks

from chatbot.check import run_check
from chatbot.errors import Transient
from chatbot.networks.base import Interacting
from chatbot.script import NetworkName

HOSTS = """\
moderators:
  - name: Host
    mastodon: "@host@mastodon.example"
    bluesky: host.bsky.social
co_moderators:
  - name: Marcus Davis
    mastodon: "@coach@school.example"
    bluesky: coach.bsky.social
guest:
  name: Grace Lee
  bluesky: did:plc:grace
"""


@dataclass
class LookingUp(FakeAccount):
    """A fake account that also looks handles up, from a fixed directory."""

    directory: dict[str, str] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)

    def like(self, post: object) -> object:  # pragma: no cover - not used by check
        return post

    def resolve(self, handle: str) -> str | None:
        self.asked.append(handle)
        if handle in self.failing:
            raise Transient("Mastodon answered 503")
        return handle if handle.startswith("did:") else self.directory.get(handle)


def _script(tmp_path: Path, name: str = "comod.yaml", hosts: str = HOSTS) -> None:
    (tmp_path / "schedules" / name).write_text(
        f"""title: Co-moderated
hashtag: "#CoMod"
timezone: UTC
start: 2027-03-04 19:00
networks: [mastodon, bluesky]
{hosts}welcome:
  text: "Welcome to {{hashtag}}!"
questions:
  - text: "What works?"
closing:
  text: "Thanks!"
""",
        encoding="utf-8",
    )


def _accounts(**missing: str) -> tuple[LookingUp, LookingUp]:
    mastodon = LookingUp(
        NetworkName.MASTODON,
        directory={"@host@mastodon.example": "1", "@coach@school.example": "2"},
    )
    bluesky = LookingUp(
        NetworkName.BLUESKY,
        directory={"host.bsky.social": "did:plc:host", "coach.bsky.social": "did:plc:coach"},
    )
    for handle in missing.values():
        mastodon.directory.pop(handle, None)
        bluesky.directory.pop(handle, None)
    return mastodon, bluesky


def test_the_fake_looks_handles_up_as_the_adapters_do() -> None:
    """The check asks networks that are Interacting."""
    assert isinstance(LookingUp(NetworkName.MASTODON), Interacting)


def test_every_host_on_every_network_is_looked_up(tmp_path: Path) -> None:
    """Moderators, co-moderators and the guest, each on the networks they have a handle on:
    all found, ready, one line per account."""
    loaded = _loaded(tmp_path)
    _script(tmp_path)
    mastodon, bluesky = _accounts()
    report = run_check(loaded, _networks(mastodon, bluesky), NOW)
    assert report.ok, report.render()
    assert mastodon.asked == ["@host@mastodon.example", "@coach@school.example"]
    assert bluesky.asked == ["host.bsky.social", "coach.bsky.social", "did:plc:grace"]
    text = report.render()
    assert "2 host(s) named in the chat scripts have an account here." in text
    assert "3 host(s) named in the chat scripts have an account here." in text


def test_a_handle_that_names_no_account_is_a_problem_with_a_fix(tmp_path: Path) -> None:
    """One whole sentence naming the person, the handle and the script; a fix to match."""
    loaded = _loaded(tmp_path)
    _script(tmp_path)
    mastodon, bluesky = _accounts(gone="@coach@school.example")
    report = run_check(loaded, _networks(mastodon, bluesky), NOW)
    assert not report.ok
    [problem] = report.problems
    assert problem.section == "Mastodon (https://mastodon.example)"
    assert problem.message == (
        "The co-moderator Marcus Davis (@coach@school.example) of comod.yaml names no account "
        "on Mastodon, so their commands to the bot would be refused."
    )
    assert problem.hint == (
        "Check the handle against the person's profile page: it is @user@instance.example, "
        "with the server their account is on, and correct it in comod.yaml."
    )


def test_an_unknown_bluesky_handle_suggests_the_did(tmp_path: Path) -> None:
    """On Bluesky the fix names the DID, which survives a change of handle."""
    loaded = _loaded(tmp_path)
    _script(tmp_path)
    mastodon, bluesky = _accounts(gone="host.bsky.social")
    report = run_check(loaded, _networks(mastodon, bluesky), NOW)
    [problem] = report.problems
    assert problem.message.startswith("The moderator Host (host.bsky.social) of comod.yaml")
    assert "did:plc:" in problem.hint


def test_a_failed_look_up_is_a_problem_that_says_why(tmp_path: Path) -> None:
    """The server did not answer: the check cannot vouch for the host."""
    loaded = _loaded(tmp_path)
    _script(tmp_path)
    mastodon, bluesky = _accounts()
    mastodon.failing.add("@host@mastodon.example")
    report = run_check(loaded, _networks(mastodon, bluesky), NOW)
    [problem] = report.problems
    assert problem.message == (
        "The moderator Host (@host@mastodon.example) of comod.yaml could not be looked up, so "
        "their commands may be refused: Mastodon answered 503."
    )


def test_a_handle_named_in_two_scripts_is_looked_up_once(tmp_path: Path) -> None:
    """Each handle once per account, and each script that names it is reported."""
    loaded = _loaded(tmp_path)
    _script(tmp_path, "a.yaml")
    _script(tmp_path, "b.yaml")
    mastodon, bluesky = _accounts(gone="@coach@school.example")
    report = run_check(loaded, _networks(mastodon, bluesky), NOW)
    assert mastodon.asked.count("@coach@school.example") == 1
    assert [p.message.split(" of ")[1][:6] for p in report.problems] == ["a.yaml", "b.yaml"]


def test_an_account_that_does_not_work_is_not_asked(tmp_path: Path) -> None:
    """Refused credentials are the problem reported; no look-up is tried through them."""
    loaded = _loaded(tmp_path)
    _script(tmp_path)
    mastodon, bluesky = _accounts()
    mastodon.refuse = Transient("could not reach Mastodon")
    run_check(loaded, _networks(mastodon, bluesky), NOW)
    assert mastodon.asked == []
