"""Integration tests against the real servers in tests/servers."""
