"""Real servers for the integration tests: started and stopped by the test run.

Install what they need with `tests/servers/install` (scripts/test runs it).
"""

from tests.servers.manage import (
    INSTALL_COMMAND,
    SNAC_VERSION,
    AtprotoNetwork,
    MastodonServer,
    PostgresServer,
    ServerError,
    ServerNotInstalled,
    SnacServer,
    atproto_tree,
    cache_root,
    postgres_bindir,
    snac_tree,
)

__all__ = [
    "INSTALL_COMMAND",
    "SNAC_VERSION",
    "AtprotoNetwork",
    "MastodonServer",
    "PostgresServer",
    "ServerError",
    "ServerNotInstalled",
    "SnacServer",
    "atproto_tree",
    "cache_root",
    "postgres_bindir",
    "snac_tree",
]
