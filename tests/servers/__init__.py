"""Servers that the tests start themselves, on 127.0.0.1 only: PostgreSQL (+ pgvector) and a Ray cluster.

Each module is usable from the command line too (``python -m tests.servers.postgres --help``,
``python -m tests.servers.ray_cluster --help``); :mod:`tests.servers.fixtures` turns them into
session-scoped pytest fixtures.
"""


class ServerUnavailable(RuntimeError):
    """What a server needs is not installed here (the fixtures skip, saying which package is missing)."""


class ServerFailed(RuntimeError):
    """A server did not start or stop as asked; the message names the command and its log."""
