"""The real ``chatbot`` command, with every HTTP request it sends written to a file.

    python benchmarks/counting.py REQUESTS_FILE chatbot-args...

Wraps ``requests.Session.send`` (Mastodon.py) and ``httpx.Client.send`` (atproto) so
that each request appends one line, ``<unix time> <method> <host> <path>``, to
REQUESTS_FILE, then runs ``chatbot chatbot-args...``. The bot itself is unchanged:
the wrapping happens here, as tests/holding.py wraps its accounts. Query strings,
headers and bodies are never written (they may hold tokens).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def install(path: str) -> None:
    import httpx
    import requests

    lock = threading.Lock()
    out = Path(path).open("a", encoding="utf-8", buffering=1)  # noqa: SIM115 - for the process

    def record(method: str, url: str) -> None:
        parts = urlsplit(url)
        with lock:
            out.write(f"{time.time():.6f} {method} {parts.netloc} {parts.path}\n")

    requests_send = requests.Session.send
    httpx_send = httpx.Client.send

    def send_requests(self: requests.Session, request: Any, **kwargs: Any) -> Any:
        record(str(request.method), str(request.url))
        return requests_send(self, request, **kwargs)

    def send_httpx(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> Any:
        record(request.method, str(request.url))
        return httpx_send(self, request, **kwargs)

    requests.Session.send = send_requests  # type: ignore[method-assign]
    httpx.Client.send = send_httpx  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    install(argv[0])
    from chatbot.cli import main as chatbot

    sys.argv = ["chatbot", *argv[1:]]
    chatbot()


if __name__ == "__main__":
    main(sys.argv[1:])
