"""`rag index build --ray ADDRESS`: encoding on a 2-node Ray cluster (head and worker processes,
tests/servers/ray_cluster.py), written into PostgreSQL, against a local build of the same files."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT

from bench.ray_build import records
from rag.config import Config
from rag.indexing import Indexer
from rag.store.factory import open_store
from tests.system.test_crash import synthetic_corpus

pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]'")
pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[postgres]'")


def build_command(corpus, url: str, address: str) -> list[str]:
    return [sys.executable, "-m", "rag", "index", "build", str(corpus), "--index", url, "--ray", address]


def driver_env(ray_cluster) -> dict[str, str]:
    return {**ray_cluster.env, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def assert_same_index(ray_built: str, local: str) -> None:
    docs, chunks, vectors = records(ray_built)
    want_docs, want_chunks, want_vectors = records(local)
    assert docs == want_docs and chunks == want_chunks
    diff = max(float(np.abs(vectors[k] - want_vectors[k]).max()) for k in want_vectors)
    assert diff < 1e-3, diff  # the same int8 encoder: equal, or within its rounding


@pytest.mark.slow
def test_a_build_on_a_two_node_ray_cluster_equals_a_local_build(ray_cluster, pg_database, corpus, embedder, tmp_path):
    res = subprocess.run(build_command(corpus, pg_database, ray_cluster.address), env=driver_env(ray_cluster),
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "encoding on the Ray cluster" in res.stdout and "(2 nodes)" in res.stdout
    assert "3 added" in res.stdout
    local = str(tmp_path / "index")
    Indexer(Config(index_dir=local), embedder).build([corpus], progress=False)
    assert_same_index(pg_database, local)
    assert open_store(pg_database).verify() == []


@pytest.mark.slow
def test_a_ray_worker_killed_during_a_build_leaves_the_build_complete(ray_cluster, pg_database, embedder, tmp_path):
    corpus = synthetic_corpus(tmp_path / "corpus", 120)
    proc = subprocess.Popen(build_command(corpus, pg_database, ray_cluster.address),
                            env={**driver_env(ray_cluster), "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    assert "encoding on the Ray cluster" in first and "(2 nodes)" in first, first + proc.stderr.read()[-3000:]
    time.sleep(12)  # the driver loads the model and chunks, then the actors encode
    running = proc.poll() is None
    ray_cluster.kill_worker()
    out, err = proc.communicate(timeout=900)
    assert running, "the build ended before the worker was killed: make the corpus larger"
    assert proc.returncode == 0, err[-3000:]
    assert "120 added" in out
    local = str(tmp_path / "index")
    Indexer(Config(index_dir=local), embedder).build([corpus], progress=False)
    assert_same_index(pg_database, local)
    assert open_store(pg_database).verify() == []
    assert os.path.basename(next(iter(open_store(pg_database).documents()))["source"]).startswith("art")
