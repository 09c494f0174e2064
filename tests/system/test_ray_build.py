"""`rag index build --ray ADDRESS --index postgresql://…`: encoded on the 2-node Ray cluster (head and worker
processes, tests/servers/ray_cluster.py), written into PostgreSQL, equal to a local build of the same files."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from rag.config import Config
from rag.embedding import cache_key
from rag.indexing import Indexer
from rag.store.factory import open_store

pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]'")
pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[postgres]'")


def records(location: str) -> tuple[list, list, dict]:
    """(documents, chunks, vectors by chunk id) of an index, in a form both backends share."""
    store = open_store(location)
    manifest = store.manifest()
    key = cache_key(manifest.model, manifest.encoder, manifest.encoder_recipe)
    docs, chunks, vectors = [], [], {}
    for change in store.export(key, manifest.dimensions):
        docs.append((change.document.id, change.document.sha256))
        for c in change.chunks:
            chunks.append((c.id, c.text, c.start, c.end, tuple(c.terms)))
            vectors[c.id] = c.vector
    return sorted(docs), sorted(chunks), vectors


@pytest.mark.slow
def test_a_build_on_a_two_node_ray_cluster_into_postgres_equals_a_local_build(ray_cluster, pg_database, corpus,
                                                                                embedder, tmp_path):
    res = subprocess.run([sys.executable, "-m", "rag", "index", "build", str(corpus), "--index", pg_database,
                          "--ray", ray_cluster.address, "-q"],
                         env={**ray_cluster.env, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "3 added" in res.stdout
    local = str(tmp_path / "index")
    Indexer(Config(index_dir=local), embedder).build([corpus], progress=False)
    docs, chunks, vectors = records(pg_database)
    want_docs, want_chunks, want_vectors = records(local)
    assert docs == want_docs and chunks == want_chunks
    assert max(float(np.abs(vectors[k] - want_vectors[k]).max()) for k in want_vectors) < 1e-3
    assert open_store(pg_database).verify() == []
