"""`rag index build --ray` on PIAF-dev against a local build: seconds, and whether the indexes are equal.

    python -m bench.ray_build [--out bench/results/ray_build.json]   (as root: the cluster gets its own network)

Starts, in a network namespace of their own, a PostgreSQL server and a Ray cluster (a head and a
worker node, 1 CPU each, tests/servers/); then times, each as a fresh ``rag index build`` process
with nothing cached: a local build into a folder, a Ray build on 2 nodes into a database, and a Ray
build on the head alone (the worker stopped) into another database. Each index is compared with
the local one: documents, chunk ids and texts, BM25 terms, vectors. The load average is printed
beside the figures (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.measure import emit
from rag.embedding import cache_key
from rag.store.factory import open_store
from tests.servers import postgres
from tests.servers.netns import NetNamespace
from tests.servers.ray_cluster import start_cluster

ROOT = Path(__file__).resolve().parents[1]
PIAF = ROOT.parent / "shared" / "data" / "piaf-dev.json"


def records(location: str) -> tuple[list, list, dict]:
    """(documents, chunks, vectors by chunk id) of an index."""
    store = open_store(location)
    manifest = store.manifest()
    key = cache_key(manifest.model, manifest.encoder, manifest.encoder_recipe)
    docs, chunks, vectors = [], [], {}
    for change in store.export(key, manifest.dimensions):
        docs.append((change.document.id, change.document.sha256))
        for c in change.chunks:
            chunks.append((c.id, c.text, tuple(c.terms)))
            vectors[c.id] = c.vector
    return sorted(docs), sorted(chunks), vectors


def compare(location: str, local: tuple) -> dict:
    """How the index at ``location`` differs from the local one."""
    docs, chunks, vectors = records(location)
    return {"same_documents": docs == local[0], "same_chunks": chunks == local[1],
            "max_vector_difference": max(float(np.abs(vectors[k] - local[2][k]).max()) for k in local[2])}


def build(location: str, env: dict, ray: str | None = None) -> dict:
    """One ``rag index build`` of PIAF-dev, timed."""
    cmd = [sys.executable, "-m", "rag", "index", "build", str(PIAF), "--index", location, "-q"]
    cmd += ["--ray", ray] if ray else []
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {res.stderr[-2000:]}")
    return {"seconds": round(seconds, 1), "load_1min_before": round(load, 1), "summary": res.stdout.strip()[-200:]}


def main() -> None:
    """Run the three builds and print (and write) the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rag-rb-"))
    pg_folder = Path(tempfile.mkdtemp(prefix="rag-rbpg-"))  # its own: the server's user must reach it
    ns = NetNamespace()
    out: dict = {"cpus_per_node": 1}
    try:
        with ns.entered():
            postgres.init_cluster(pg_folder, fast=True)
            server = postgres.start(pg_folder)
            cluster = start_cluster(folder / "ray")
            out["cluster_start_s"] = {k: round(v, 1) for k, v in cluster.seconds.items()}
            env = {**cluster.env, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
            try:
                out["local"] = build(str(folder / "local"), env)
                local = records(str(folder / "local"))
                two = postgres.create_database(server, "ray_two")
                out["ray_2_nodes"] = build(two, env, cluster.address)
                out["ray_2_nodes"].update(compare(two, local))
                cluster.kill_worker()
                time.sleep(8)  # the head sees the worker gone
                one = postgres.create_database(server, "ray_one")
                out["ray_1_node"] = build(one, env, cluster.address)
                out["ray_1_node"].update(compare(one, local))
                out["ray_1_node_over_local"] = round(out["ray_1_node"]["seconds"] / out["local"]["seconds"], 2)
                out["ray_2_nodes_over_local"] = round(out["ray_2_nodes"]["seconds"] / out["local"]["seconds"], 2)
            finally:
                cluster.stop()
                postgres.stop(server, "immediate")
    finally:
        ns.close()
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(pg_folder, ignore_errors=True)
    out["load_after"] = [round(x, 1) for x in os.getloadavg()]
    emit(out, args.out)


if __name__ == "__main__":
    main()
