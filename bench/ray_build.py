"""Builds with ``--ray`` against a local build: PIAF-dev's paragraphs encoded on a Ray cluster on this machine.

Starts the test servers' Ray cluster (a head and a worker node, one CPU each, in a private
network namespace: needs root) and times, from an empty index each time, ``rag index build``
of PIAF-dev locally and with ``--ray`` on the head node alone (``--ray-actors 1``) and on both
nodes; then on a cluster of one node offering the machine's 2 CPUs. Prints the times, the
encoding rates (the build's own "chunks/s") and their ratios.

    sudo python -m bench.ray_build                     # ../shared/data/piaf-dev.json
    sudo python -m bench.ray_build --piaf FILE --out bench/results/ray_build.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rag.config import load_config
from tests.servers import netns
from tests.servers import ray_cluster as rayc

from .measure import machine

ROOT = Path(__file__).resolve().parents[1]


def build(corpus: Path, index: Path, env: dict[str, str], *extra: str) -> dict:
    """Time one ``rag index build`` from an empty index; its wall time and encoding rate."""
    shutil.rmtree(index, ignore_errors=True)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "rag", "index", "build", str(corpus), "--index", str(index), "-q",
                           *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=7200)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"build {' '.join(extra)} failed: {proc.stderr[-2000:]}")
    rate = re.search(r"([\d.]+) chunks/s", proc.stdout)
    chunks = re.search(r"(\d+) new chunks", proc.stdout)
    return {"args": " ".join(extra) or "local", "seconds": round(seconds, 1),
            "chunks": int(chunks.group(1)) if chunks else 0,
            "encode_chunks_per_s": float(rate.group(1)) if rate else 0.0}


def main() -> None:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--piaf", default=str(ROOT.parent / "shared" / "data" / "piaf-dev.json"))
    p.add_argument("--out", help="write the figures as JSON")
    args = p.parse_args()
    if netns.available() is not None:
        raise SystemExit(f"needs a private network namespace: {netns.available()}")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    ns = netns.NetNamespace()
    folder = Path(tempfile.mkdtemp(prefix="rag-ray-bench-"))
    runs = []
    try:
        with ns.entered():
            cluster = rayc.start_cluster(folder)
            try:
                ray_env = {**cluster.env, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
                build(Path(args.piaf), folder / "warm", env)  # the int8 export and file caches, once
                runs.append(build(Path(args.piaf), folder / "index", env))
                runs.append(build(Path(args.piaf), folder / "index", ray_env, "--ray", cluster.address,
                                  "--ray-actors", "1"))
                runs.append(build(Path(args.piaf), folder / "index", ray_env, "--ray", cluster.address))
            finally:
                cluster.stop()
            one = rayc.start_cluster(folder / "one", workers=0, cpus=2)  # one node, the local build's 2 cores
            try:
                ray_env = {**one.env, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
                runs.append(build(Path(args.piaf), folder / "index", ray_env, "--ray", one.address))
                runs[-1]["args"] += " (one node of 2 CPUs)"
            finally:
                one.stop()
    finally:
        ns.close()
        shutil.rmtree(folder, ignore_errors=True)
    local = runs[0]["seconds"]
    print(f"{'build':<52} {'seconds':>8} {'x local':>8} {'chunks':>7} {'encode chunks/s':>16}")
    for r in runs:
        print(f"{r['args'][:52]:<52} {r['seconds']:>8.1f} {r['seconds'] / local:>8.2f} {r['chunks']:>7} "
              f"{r['encode_chunks_per_s']:>16.1f}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (2 Ray nodes of 1 CPU each, then 1 of 2)")
    if args.out:
        Path(args.out).write_text(json.dumps({"runs": runs, "machine": machine(), "model": load_config().model},
                                             indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
