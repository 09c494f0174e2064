"""A 2-node Ray cluster for the tests: a head and a worker, separate process trees, inside a private network.

Ray 2.60 listens on every interface and swaps 127.0.0.1 for the machine's routable address
(:mod:`tests.servers.netns`), so the nodes run in a network namespace of their own, where
loopback is the only interface: the cluster's address is ``127.0.0.1:PORT`` there, and nothing
in it can reach the outside. Token authentication is on (``RAY_AUTH_MODE=token``, a fresh
token file in the cluster folder: the head, the worker and every driver read the same one),
usage statistics off, the dashboard off, and the health check tightened so that a killed
node is seen dead in a few seconds instead of about 30.

:func:`start_cluster` starts ``ray start --head --block`` and then ``ray start --address ...
--block``, each in its own session (process group), and returns once both have said "Ray
runtime started". :meth:`RayCluster.kill_worker` SIGKILLs the worker node's whole process
tree at once (what a lost machine looks like); :meth:`RayCluster.stop` ends both. A driver
must run in the namespace with :meth:`RayCluster.env` (a subprocess started from a thread
inside :meth:`tests.servers.netns.NetNamespace.entered`).

Command line (as root)::

    python -m tests.servers.ray_cluster nodes ADDRESS [--expect N]   # alive nodes, as a driver sees them
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from . import ServerFailed, ServerUnavailable
from .postgres import free_port

INSTALL_HINT = "pip install -e '.[ray,server-test]'"
READY = "Ray runtime started"
# the GCS checks each node every 0.5 s and declares it dead after 3 missed checks
HEALTH = {"RAY_health_check_initial_delay_ms": "1000", "RAY_health_check_period_ms": "500",
          "RAY_health_check_timeout_ms": "500", "RAY_health_check_failure_threshold": "3"}


def ray_program() -> Path:
    """The ``ray`` command of this interpreter's environment.

    Raises
    ------
    ServerUnavailable
        When Ray is not installed.
    """
    if importlib.util.find_spec("ray") is None:
        raise ServerUnavailable(f"ray is not installed: {INSTALL_HINT}")
    program = Path(sys.executable).parent / "ray"
    if not program.is_file():
        found = shutil.which("ray")
        if found is None:
            raise ServerUnavailable(f"no `ray` command beside {sys.executable}: {INSTALL_HINT}")
        program = Path(found)
    return program


def cluster_env(folder: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the nodes and drivers: token auth with the cluster's token, no usage statistics."""
    env = dict(os.environ if base is None else base)
    env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(folder / "token"),
                "RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_IMPORT_WARNING": "1",
                "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "PYTHONUNBUFFERED": "1", **HEALTH})
    return env


@dataclass
class RayCluster:
    """A running head (and worker) node: the cluster's folder, address and processes."""

    folder: Path
    address: str
    head: subprocess.Popen
    worker: subprocess.Popen | None
    cpus: int = 1
    object_store_mb: int = 256
    seconds: dict[str, float] = field(default_factory=dict)  # how long each start took

    @property
    def env(self) -> dict[str, str]:
        """The environment a driver needs (token, no usage statistics)."""
        return cluster_env(self.folder)

    def start_worker(self, timeout: float = 120) -> None:
        """Start (or start again, after :meth:`kill_worker`) the worker node; returns once it has joined."""
        t0 = time.monotonic()
        log = self.folder / "worker.log"
        with open(log, "wb") as out:
            self.worker = subprocess.Popen(
                _node_command(self.folder, "worker", None, self.address, self.cpus, self.object_store_mb),
                env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_ready(self.worker, log, time.monotonic() + timeout)
        self.seconds["worker"] = time.monotonic() - t0

    def kill_worker(self) -> None:
        """SIGKILL the worker node's whole process tree at once (the worker machine lost)."""
        if self.worker is not None:
            _kill_tree(self.worker, signal.SIGKILL)
            self.worker.wait(timeout=10)

    def stop(self, grace: float = 3.0) -> None:
        """Stop both nodes: SIGTERM their trees, SIGKILL what is left after ``grace`` seconds."""
        procs = [p for p in (self.worker, self.head) if p is not None]
        trees = {p.pid: _tree(p.pid) for p in procs}
        for proc in procs:
            _kill_tree(proc, signal.SIGTERM, trees[proc.pid])
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in procs:  # what SIGTERM left (raylet workers have process groups of their own)
            _kill_tree(proc, signal.SIGKILL, trees[proc.pid] + _tree(proc.pid))
            proc.wait(timeout=10)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc (children first found by their parent id)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def _kill_tree(proc: subprocess.Popen, sig: int, pids: list[int] | None = None) -> None:
    """Send ``sig`` to the process group of ``proc`` and to every descendant (some have their own groups).

    ``pids`` (default: the tree as it is now) may name processes found earlier, whose parent
    died since; a pid that is gone is skipped.
    """
    pids = _tree(proc.pid) if pids is None else pids
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _node_command(folder: Path, name: str, head_port: int | None, address: str | None, cpus: int,
                  object_store_mb: int) -> list[str]:
    cmd = [str(ray_program()), "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus),
           "--temp-dir", str(folder / name), "--object-store-memory", str(object_store_mb * 2**20),
           "--dashboard-agent-listen-port", str(free_port()), "--metrics-export-port", str(free_port()),
           "--include-log-monitor=false"]
    if head_port is not None:
        cmd += ["--head", "--port", str(head_port), "--include-dashboard=false", "--disable-usage-stats"]
    else:
        cmd += ["--address", str(address)]
    return cmd


def _wait_ready(proc: subprocess.Popen, log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if READY in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise ServerFailed(f"{log.stem} exited {proc.returncode} before it started:\n{_tail(log)}")
        time.sleep(0.1)
    raise ServerFailed(f"{log.stem} did not start in time:\n{_tail(log)}")


def start_cluster(folder: str | os.PathLike, workers: int = 1, cpus: int = 1, object_store_mb: int = 256,
                  timeout: float = 120) -> RayCluster:
    """Start a head and (``workers`` = 1) a worker node in ``folder``, from the calling thread's network.

    Call it inside :meth:`tests.servers.netns.NetNamespace.entered`: outside one, Ray listens on
    every interface.

    Parameters
    ----------
    folder : path-like
        Holds the token, each node's temporary folder and log (keep the path short: Ray puts Unix
        sockets under it).
    workers : int
        0 or 1 worker nodes.
    cpus : int
        CPUs each node offers.
    object_store_mb : int
        Object store of each node.
    timeout : float
        Seconds to wait for the nodes.
    """
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    token = folder / "token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = cluster_env(folder)
    port = free_port()
    t0 = time.monotonic()
    deadline = t0 + timeout
    head_log = folder / "head.log"
    with open(head_log, "wb") as out:
        head = subprocess.Popen(_node_command(folder, "head", port, None, cpus, object_store_mb), env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    cluster = RayCluster(folder, f"127.0.0.1:{port}", head, None, cpus, object_store_mb)
    try:
        _wait_ready(head, head_log, deadline)
        cluster.seconds["head"] = time.monotonic() - t0
        if workers:
            cluster.start_worker(max(1.0, deadline - time.monotonic()))
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def count_nodes(address: str, expect: int | None = None, wait: float = 30.0) -> tuple[int, float]:
    """Alive nodes of the cluster at ``address`` as a driver sees them (``ray.init`` + ``ray.nodes()``).

    With ``expect``, ask again every 0.1 s until that many are alive or ``wait`` seconds have
    passed. Returns (alive nodes, seconds waited).
    """
    import ray  # only a driver process imports Ray

    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    try:
        t0 = time.monotonic()
        while True:
            n = sum(1 for node in ray.nodes() if node["Alive"])
            waited = time.monotonic() - t0
            if expect is None or n == expect or waited > wait:
                return n, waited
            time.sleep(0.1)
    finally:
        ray.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``nodes ADDRESS [--expect N]`` prints the alive nodes and the seconds waited for them."""
    parser = argparse.ArgumentParser(prog="python -m tests.servers.ray_cluster",
                                     description="Ray test cluster helpers (run inside the cluster's namespace).")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("nodes", help="print how many nodes are alive, and the seconds waited")
    p.add_argument("address")
    p.add_argument("--expect", type=int, help="wait (up to --wait s) until exactly this many are alive")
    p.add_argument("--wait", type=float, default=30.0)
    args = parser.parse_args(argv)
    n, waited = count_nodes(args.address, args.expect, args.wait)
    print(n, f"{waited:.2f}")
    return 0 if args.expect is None or n == args.expect else 1


if __name__ == "__main__":
    sys.exit(main())
