"""The servers the tests start themselves (tests/servers/): PostgreSQL primary and replica, a 2-node Ray cluster."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from tests.servers import netns

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[postgres]'")


def _wait_for(read, timeout: float = 15.0):
    """Call ``read`` until it returns something truthy (or raise after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def test_replica_serves_rows_and_vectors_written_on_the_primary(pg_dsn, pg_replica_dsn):
    with (psycopg.connect(pg_dsn, autocommit=True) as primary,
          psycopg.connect(pg_replica_dsn, autocommit=True) as replica):
        primary.execute("CREATE TABLE replica_probe (id int PRIMARY KEY, v halfvec(3))")
        primary.execute("INSERT INTO replica_probe VALUES (1, '[1,0,0]'), (2, '[0,1,0]')")

        def nearest():
            try:
                return replica.execute("SELECT id FROM replica_probe ORDER BY v <=> '[0.9,0.1,0]' LIMIT 1").fetchone()
            except psycopg.errors.UndefinedTable:
                return None

        assert _wait_for(nearest) == (1,)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            replica.execute("INSERT INTO replica_probe VALUES (3, '[0,0,1]')")
        assert replica.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        primary.execute("DROP TABLE replica_probe")


def test_postgres_listens_on_loopback_only_with_the_extensions_the_backend_needs(pg_dsn):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW server_version_num").fetchone()[0].startswith("18")
        version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
        assert tuple(int(x) for x in version.split(".")) >= (0, 8)
        conn.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
        assert conn.execute("SELECT unaccent('Négociations à Genève')").fetchone() == ("Negociations a Geneve",)


@pytest.mark.slow
def test_ray_cluster_is_reachable_only_inside_its_network(ray_cluster, server_namespace):
    assert netns.interfaces() == ["lo"]  # the test runs in the cluster's network: loopback alone
    host, port = ray_cluster.address.split(":")
    socket.create_connection((host, int(port)), timeout=5).close()
    assert _connect_from(server_namespace.home_path, host, int(port)) == "refused"


@pytest.mark.slow
def test_ray_cluster_has_two_nodes_and_a_killed_worker_is_seen_dead(ray_cluster):
    def nodes(expect: int) -> tuple[int, float]:
        out = subprocess.run([sys.executable, "-m", "tests.servers.ray_cluster", "nodes", ray_cluster.address,
                              "--expect", str(expect), "--wait", "30"], env=ray_cluster.env, capture_output=True,
                             text=True, timeout=120)
        assert out.stdout.strip(), out.stderr[-2000:]
        alive, waited = out.stdout.split()[-2:]
        return int(alive), float(waited)

    assert nodes(2)[0] == 2
    ray_cluster.kill_worker()
    alive, waited = nodes(1)
    assert alive == 1
    assert waited < 15  # the tightened health check: a few seconds, not Ray's default ~30


def _connect_from(network: str, host: str, port: int) -> str:
    """``connected`` or ``refused``: a connection to ``host:port`` from another network namespace (nsenter)."""
    code = ("import socket\ntry:\n    socket.create_connection((%r, %d), timeout=5).close()\n    print('connected')\n"
            "except ConnectionRefusedError:\n    print('refused')" % (host, port))
    proc = subprocess.run(["nsenter", f"--net={network}", sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()
