"""Start the test servers by hand and keep them up until Ctrl-C.

    python -m tests.servers [atproto] [mastodon] [snac]

Prints one JSON line per server with its URLs.
"""

import contextlib
import json
import signal
import sys

from tests.servers.manage import AtprotoNetwork, MastodonServer, SnacServer


def main(argv: list[str] | None = None) -> int:
    """Start servers by hand: python -m tests.servers [atproto] [mastodon] [snac]."""
    names = (argv if argv is not None else sys.argv[1:]) or ["atproto", "mastodon", "snac"]
    with contextlib.ExitStack() as stack:
        for name in names:
            if name == "atproto":
                net = stack.enter_context(AtprotoNetwork())
                info = {"pds_url": net.pds_url, "control_url": net.control_url}
            elif name == "mastodon":
                info = {"api_base_url": stack.enter_context(MastodonServer()).api_base_url}
            elif name == "snac":
                snac = stack.enter_context(SnacServer())
                info = {"api_base_url": snac.api_base_url, "data": str(snac.data)}
            else:
                sys.stderr.write(f"unknown server {name!r}: use atproto, mastodon and/or snac\n")
                return 2
            sys.stdout.write(json.dumps({name: info}) + "\n")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                signal.pause()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    # SIGTERM stops the servers like Ctrl-C does. (Not a blocked signal mask:
    # the servers would inherit it and ignore their own stop signals.)
    signal.signal(signal.SIGTERM, _interrupt)
    raise SystemExit(main())
