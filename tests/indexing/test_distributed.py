"""`rag index build --ray`: encoding on a 2-node Ray cluster gives the index a local build gives, and a node
lost in the middle does not lose the build."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rag.config import Config
from rag.indexing import Indexer
from rag.store import Store
from tests.conftest import ARTICLE_EN, ARTICLE_FR, ARTICLE_FR_2, ROOT

pytestmark = pytest.mark.slow  # a Ray cluster and two builds of a few hundred chunks
ARTICLES = 240


def write_corpus(folder: Path, n: int = ARTICLES) -> Path:
    """``n`` distinct articles (the test articles with other figures and places): one chunk each."""
    folder.mkdir(parents=True, exist_ok=True)
    towns = ["Lyon", "Nantes", "Rennes", "Brest", "Lille", "Dijon", "Metz", "Pau", "Caen", "Tours"]
    for i in range(n):
        base = (ARTICLE_FR, ARTICLE_FR_2, ARTICLE_EN)[i % 3]
        text = (base.replace("180", str(100 + i)).replace("25 millions", f"{20 + i % 40} millions")
                .replace("Lyon", towns[i % 10]).replace("Nantes", towns[(i + 3) % 10])
                .replace("120,000", f"{100 + i},000").replace("three years", f"{2 + i % 5} years"))
        (folder / f"article-{i:04d}.txt").write_text(text + f"\nNuméro {i}.\n", encoding="utf-8")
    return folder


def index_contents(index: Path) -> tuple[list[tuple], np.ndarray]:
    """Every chunk (document, chunk id, text), ordered, and its vector from the index's embedding cache."""
    cfg = Config(index_dir=str(index))
    with sqlite3.connect(index / "rag.sqlite") as db:
        rows = db.execute("SELECT c.doc_id, c.id, c.text, c.hash FROM chunks c ORDER BY c.doc_id, c.id").fetchall()
    store = Store(index)
    key = Indexer(cfg).cache_key
    vectors = store.cached_vectors(key, [r[3] for r in rows], int(store.status()["dimensions"]))
    store.close()
    return [r[:3] for r in rows], np.stack([vectors[r[3]] for r in rows])


@pytest.fixture(scope="module")
def local_build(tmp_path_factory) -> tuple[Path, list[tuple], np.ndarray]:
    """The corpus and what a local build of it holds."""
    root = tmp_path_factory.mktemp("ray-local")
    corpus = write_corpus(root / "articles")
    Indexer(Config(index_dir=str(root / "index"))).build([corpus], progress=False)
    return (corpus, *index_contents(root / "index"))


def ray_build(cluster, corpus: Path, index: Path, *extra: str) -> subprocess.Popen:
    """``rag index build --ray ADDRESS`` as a driver of the cluster; stderr piped (its progress bar)."""
    env = {**cluster.env, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "rag", "index", "build", str(corpus), "--index", str(index),
                             "--ray", cluster.address, *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def assert_same_index(index: Path, rows: list[tuple], vectors: np.ndarray) -> None:
    got_rows, got_vectors = index_contents(index)
    assert got_rows == rows  # same documents, chunk ids and texts
    cosines = np.sum(got_vectors * vectors, axis=1)
    assert cosines.min() > 0.9999, f"lowest cosine to the local build's vectors: {cosines.min():.6f}"


def test_a_ray_build_holds_what_a_local_build_of_the_same_files_holds(ray_cluster, local_build, tmp_path):
    corpus, rows, vectors = local_build
    proc = ray_build(ray_cluster, corpus, tmp_path / "index")
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    assert f"{ARTICLES} added" in out and f"{len(rows)} encoded" in out, out
    # one encoder per CPU, each keeping only its own CPU busy: 2 nodes of 1 CPU are 2 cores, not 4
    assert "encoding on 2 Ray actors over 2 nodes, 2 cores" in err, err[-2000:]
    assert_same_index(tmp_path / "index", rows, vectors)
    again = ray_build(ray_cluster, corpus, tmp_path / "index")  # nothing changed: nothing to encode
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0 and "0 added" in out and f"{ARTICLES} unchanged" in out, out + err[-2000:]


def test_a_worker_node_killed_mid_build_leaves_its_batches_to_the_head(ray_cluster, local_build, tmp_path):
    corpus, rows, vectors = local_build
    proc = ray_build(ray_cluster, corpus, tmp_path / "index")
    seen = ""
    deadline = time.monotonic() + 600
    while "encoding" not in seen or "%" not in seen.rsplit("encoding", 1)[1]:  # the progress bar has started
        assert time.monotonic() < deadline and proc.poll() is None, seen[-2000:]
        seen += os.read(proc.stderr.fileno(), 4096).decode("utf-8", "replace")
    ray_cluster.kill_worker()
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, (seen + err)[-3000:]
    assert "a Ray encoder died" in seen + err  # it was lost while encoding, and the head took its batches
    assert_same_index(tmp_path / "index", rows, vectors)
