"""``python -m tests.integration.reliability.verbose ARGS``: the ``chatbot`` command with
every log at its most verbose level (the bot's own lines and every library's, the HTTP
clients' included: DEBUG), for the security suite to search for secrets in."""

from __future__ import annotations

import logging
from typing import Any

from chatbot import logs
from chatbot.cli import main

_configure = logs.configure


def _debug(*args: Any, **kwargs: Any) -> None:
    kwargs["level"] = logging.DEBUG
    _configure(*args, **kwargs)
    logging.getLogger().setLevel(logging.DEBUG)
    for name in ("apscheduler", "urllib3", "httpx", "httpcore", "atproto", "mastodon"):
        logging.getLogger(name).setLevel(logging.DEBUG)


logs.configure = _debug

if __name__ == "__main__":
    main()
