"""pytest fixtures for the test servers (a plugin: ``pytest_plugins = ["tests.servers.fixtures"]``).

Session-scoped servers, started on first use and stopped at the end of the session:

- ``pg_primary``: PostgreSQL 18 + pgvector, database ``rag_test`` with the ``vector`` extension;
- ``pg_replica``: a streaming read replica of it (``pg_basebackup -R``);
- ``ray_cluster``: a Ray head and a worker node, separate process trees.

As root they all run in one private network namespace (:mod:`tests.servers.netns`), so that
Ray's servers, which listen on every interface, are reachable from it alone, and the Ray nodes
reach PostgreSQL on 127.0.0.1. A test reaches them through the function-scoped fixtures
``pg_dsn``, ``pg_database`` (a fresh database), ``pg_replica_dsn`` and ``ray_cluster``, which run
the test in that namespace (with every process it starts); ``servers_network`` does that alone. Not root: PostgreSQL runs
without a namespace (it listens on 127.0.0.1 only) and the Ray fixtures skip.

Each fixture skips, saying what to install, when its package is missing; the start times are
printed at the end of the run.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Iterator

import pytest

from . import ServerUnavailable, netns, postgres
from . import ray_cluster as rayc

DATABASE = "rag_test"
_DATABASES = itertools.count()  # numbers of the databases made by pg_database
STARTS: dict[str, float] = {}  # seconds each server took to start, shown at the end of the run


def pytest_terminal_summary(terminalreporter) -> None:
    """One line with the start time of each test server started in this session."""
    if STARTS:
        starts = ", ".join(f"{k} {v:.1f} s" for k, v in STARTS.items())
        terminalreporter.write_line(f"test servers started in: {starts}")


def _skip_unavailable(exc: ServerUnavailable) -> None:
    pytest.skip(str(exc))


@pytest.fixture(scope="session")
def server_namespace() -> Iterator[netns.NetNamespace | None]:
    """The private network namespace of the test servers (None when not root: no namespace)."""
    if netns.available() is not None:
        yield None
        return
    ns = netns.NetNamespace()
    yield ns
    ns.close()


def _inside(ns: netns.NetNamespace | None):
    return ns.entered() if ns is not None else nullcontext()


@pytest.fixture
def servers_network(server_namespace) -> Iterator[None]:
    """Run the test (and the processes it starts) in the test servers' network."""
    with _inside(server_namespace):
        yield


@pytest.fixture(scope="session")
def pg_primary(server_namespace) -> Iterator[postgres.PgServer]:
    """A PostgreSQL 18 server on 127.0.0.1 with database ``rag_test`` (extension ``vector``), no fsync."""
    try:
        postgres.bin_dir()
    except ServerUnavailable as exc:
        _skip_unavailable(exc)
    folder = Path(tempfile.mkdtemp(prefix="rag-pg-"))
    t0 = time.perf_counter()
    with _inside(server_namespace):
        postgres.init_cluster(folder, fast=True)
        server = postgres.start(folder)
        postgres.create_database(server, DATABASE)
    STARTS["PostgreSQL primary"] = time.perf_counter() - t0
    try:
        yield server
    finally:
        with _inside(server_namespace):
            postgres.stop(server, "immediate")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_replica(pg_primary, server_namespace) -> Iterator[postgres.PgServer]:
    """A streaming read replica of ``pg_primary`` on another loopback port."""
    folder = Path(tempfile.mkdtemp(prefix="rag-pgr-"))
    t0 = time.perf_counter()
    with _inside(server_namespace):
        server = postgres.start_replica(pg_primary, folder)
    STARTS["PostgreSQL replica"] = time.perf_counter() - t0
    try:
        yield server
    finally:
        with _inside(server_namespace):
            postgres.stop(server, "immediate")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_dsn(pg_primary, servers_network) -> str:
    """DSN of the primary's ``rag_test`` database; the test runs in the servers' network."""
    return pg_primary.dsn(DATABASE)


@pytest.fixture
def pg_database(pg_primary, servers_network) -> str:
    """DSN of a new, empty database (with ``vector``) on the primary, this test's own."""
    return postgres.create_database(pg_primary, f"rag_{next(_DATABASES)}_{int(time.time() * 1000) % 10**9}")


@pytest.fixture
def pg_replica_dsn(pg_replica, servers_network) -> str:
    """DSN of the replica's ``rag_test`` database (read-only); the test runs in the servers' network."""
    return pg_replica.dsn(DATABASE)


@pytest.fixture(scope="session")
def ray_cluster_session(server_namespace) -> Iterator[rayc.RayCluster]:
    """A Ray head and worker node (1 CPU each) in the servers' network."""
    try:
        rayc.ray_program()
    except ServerUnavailable as exc:
        _skip_unavailable(exc)
    if server_namespace is None:
        pytest.skip(netns.available() or "no private network namespace")
    folder = Path(tempfile.mkdtemp(prefix="rag-ray-"))
    with server_namespace.entered():
        cluster = rayc.start_cluster(folder)
    STARTS.update({f"Ray {name}": seconds for name, seconds in cluster.seconds.items()})
    try:
        yield cluster
    finally:
        with server_namespace.entered():
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def ray_cluster(ray_cluster_session, servers_network) -> rayc.RayCluster:
    """The 2-node Ray cluster; the test runs in its network (start drivers with ``env=ray_cluster.env``).

    A worker killed by an earlier test is started again first.
    """
    if ray_cluster_session.worker is not None and ray_cluster_session.worker.poll() is not None:
        ray_cluster_session.start_worker()
    return ray_cluster_session
