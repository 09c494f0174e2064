"""Vector index: exact search up to the limit, IVF beyond, removal and filters on both, through the indexer too."""

import json

import numpy as np
import pytest
from conftest import ARTICLE_FR_2

from rag.indexing import Indexer
from rag.retrieval import Retriever
from rag.search.vectors import Kind, VectorIndex, ivf_shape
from rag.store import Store

DIM = 32


def unit(n: int, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors (like text embeddings, unlike uniform noise)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, DIM))
    x = centres[rng.integers(0, 8, n)] + 0.5 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_search_is_exact_up_to_the_limit_and_ivf_past_it():
    x = unit(601)
    index = VectorIndex(DIM, exact_limit=600)
    index.add(np.arange(600), x[:600])
    assert index.kind is Kind.FLAT
    ids, scores = index.search(x[3], 5)
    assert ids[0] == 3 and scores[0] == pytest.approx(1.0, abs=1e-5) and (np.diff(scores) <= 1e-6).all()
    index.add(np.array([600]), x[600:])
    assert index.kind is Kind.IVF and len(index) == 601
    nlist, nprobe = ivf_shape(601)
    assert (index.index.nlist, index.index.nprobe) == (nlist, nprobe)
    assert index.search(x[600], 1)[0].tolist() == [600]


def test_ivf_finds_what_exact_search_finds_on_clustered_vectors():
    x = unit(3000, seed=1)
    exact, ivf = VectorIndex(DIM), VectorIndex(DIM, exact_limit=1000)
    exact.add(np.arange(3000), x)
    ivf.add(np.arange(3000), x)
    assert ivf.kind is Kind.IVF
    queries = unit(50, seed=2)
    found = [len(set(exact.search(q, 10)[0]) & set(ivf.search(q, 10)[0])) / 10 for q in queries]
    assert np.mean(found) >= 0.9


def test_removal_works_on_ivf_and_shrinking_returns_to_exact_search():
    x = unit(2000)
    index = VectorIndex(DIM, exact_limit=1000)
    index.add(np.arange(2000), x)
    assert index.kind is Kind.IVF
    assert index.remove(np.arange(0, 400)) == 400
    assert index.kind is Kind.IVF and len(index) == 1600
    assert not set(index.search(x[10], 50)[0].tolist()) & set(range(400))
    index.remove(np.arange(400, 1600))
    assert index.kind is Kind.FLAT and len(index) == 400
    assert index.search(x[1700], 1)[0].tolist() == [1700]
    assert sorted(index.contents()[0].tolist()) == list(range(1600, 2000))


def test_a_filter_on_ivf_returns_allowed_ids_even_in_cells_far_from_the_query():
    x = unit(2000)
    index = VectorIndex(DIM, exact_limit=500)
    index.add(np.arange(2000), x)
    far = np.argsort(x @ x[0])[:3]  # the three least similar vectors
    ids, _ = index.search(x[0], 10, allowed=far)
    assert sorted(ids.tolist()) == sorted(far.tolist())


def test_ivf_is_saved_with_its_settings_and_described(tmp_path):
    x = unit(1500)
    index = VectorIndex(DIM, exact_limit=1000)
    index.add(np.arange(1500), x)
    index.save(tmp_path / "vectors.faiss")
    again = VectorIndex.load(tmp_path / "vectors.faiss", exact_limit=1000)
    assert again.kind is Kind.IVF and again.index.nprobe == index.index.nprobe
    assert again.search(x[7], 3)[0].tolist() == index.search(x[7], 3)[0].tolist()
    described = json.loads((tmp_path / "vectors.json").read_text())
    assert described == {"kind": "ivf", "vectors": 1500, "dimensions": DIM, "nlist": index.index.nlist,
                         "nprobe": index.index.nprobe}


def test_an_index_growing_past_the_limit_switches_to_ivf_and_keeps_removing(config, corpus, embedder):
    config = config.replace(exact_search_limit=8)
    indexer = Indexer(config, embedder)
    first = indexer.build([corpus], progress=False)
    store = Store(config.index_dir)
    kind = "approximate" if first.chunks_total > 8 else "exact"
    assert store.status()["vector_search"].startswith(kind)
    (corpus / "greve.txt").write_text(ARTICLE_FR_2, encoding="utf-8")
    indexer.build([corpus], progress=False)
    assert store.status()["vector_search"].startswith("approximate (IVF")
    retriever = Retriever(config, embedder=embedder)
    assert retriever.vectors.kind is Kind.IVF
    assert retriever.search("grève des contrôleurs aériens", 1, mode="dense")[0].source.endswith("greve.txt")
    (corpus / "greve.txt").unlink()
    indexer.build([corpus], progress=False)
    hits = Retriever(config, embedder=embedder).search("grève des contrôleurs aériens", 10, mode="dense")
    assert hits and not any(h.source.endswith("greve.txt") for h in hits)
