"""Recall@10 of the approximate (IVF) vector search against exact search.

Two sets of vectors, queried with the real PIAF questions:

- *real*: every PIAF sentence, clause, run of 2 to 4 consecutive sentences and paragraph,
  encoded by the model (each text is real French; cached in ``bench/.cache``);
- *composed*: synthetic chunks at the scale the IVF index is meant for (100k and more),
  each the normalised mean of 3 to 9 real sentence vectors, as in :mod:`bench.corpus`.

The IVF index is the product's own (:class:`rag.vectors.VectorIndex` past its exact limit,
with the cell count and cells visited that :func:`rag.vectors.ivf_shape` picks for the size);
a sweep over the cells visited shows the margin.
"""

from __future__ import annotations

import re

import numpy as np

from rag.embedding import get_embedder
from rag.search.vectors import VectorIndex, ivf_shape

from .corpus import Piaf, cached_vectors, piece_vectors, split_pieces
from .measure import Timer

K = 10


def real_texts(piaf: Piaf) -> list[str]:
    """Sentences, clauses, runs of 2-4 sentences and paragraphs of PIAF, distinct."""
    out = []
    for doc in piaf.documents:
        sentences = split_pieces(doc.text)
        out.append(doc.text)
        for n in (1, 2, 3, 4):
            out.extend(" ".join(sentences[i:i + n]) for i in range(len(sentences) - n + 1))
        for s in sentences:
            out.extend(c.strip() for c in re.split(r"[,;:]\s+", s) if len(c.split()) >= 5)
    return list(dict.fromkeys(out))


def composed_vectors(sentences: np.ndarray, n: int, seed: int = 3) -> np.ndarray:
    """``n`` unit vectors, each the mean of 3 to 9 random rows of ``sentences``."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, sentences.shape[1]), dtype=np.float32)
    for start in range(0, n, 10_000):
        rows = min(10_000, n - start)
        k = rng.integers(3, 10, size=rows)
        picks = rng.integers(0, len(sentences), size=(rows, 9))
        weights = (np.arange(9)[None, :] < k[:, None]).astype(np.float32)
        block = np.einsum("rk,rkd->rd", weights, sentences[picks]) / k[:, None]
        out[start:start + rows] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def recall(vectors: np.ndarray, queries: np.ndarray, nprobes: list[int]) -> dict:
    """Recall@10 of the product's IVF index against exact search, at its own nprobe and a sweep."""
    ids = np.arange(len(vectors), dtype=np.int64)
    exact = VectorIndex(vectors.shape[1], exact_limit=len(vectors) + 1)
    exact.add(ids, vectors)
    with Timer() as train:
        ivf = VectorIndex(vectors.shape[1], exact_limit=len(vectors) - 1)
        ivf.add(ids, vectors)
    truth = [set(exact.search(q, K)[0].tolist()) for q in queries]
    own = int(ivf.index.nprobe)
    sweep = {}
    for nprobe in sorted(set(nprobes + [own])):
        if nprobe > ivf.index.nlist:
            continue
        ivf.index.nprobe = nprobe
        with Timer() as t:
            found = [set(ivf.search(q, K)[0].tolist()) for q in queries]
        hits = [len(f & g) / K for f, g in zip(found, truth)]
        sweep[nprobe] = {"recall@10": round(float(np.mean(hits)), 4), "ms_per_query": round(t.seconds * 1e3 / len(queries), 3)}
    with Timer() as t:
        for q in queries:
            exact.search(q, K)
    nlist, _ = ivf_shape(len(vectors))
    return {"vectors": len(vectors), "nlist": nlist, "nprobe": own, "recall@10": sweep[own]["recall@10"],
            "ivf_ms_per_query": sweep[own]["ms_per_query"], "exact_ms_per_query": round(t.seconds * 1e3 / len(queries), 3),
            "train_s": round(train.seconds, 2), "sweep": sweep}


def run(piaf: Piaf, encoder: str, composed_sizes: list[int], queries: int) -> dict:
    """Recall on the real set and on composed sets of the given sizes."""
    embedder = get_embedder(encoder=encoder)
    texts = real_texts(piaf)
    real = cached_vectors(embedder, texts, "ann-real")
    qs = cached_vectors(embedder, [q.text for q in piaf.questions], "questions")[:queries]
    sentences = piece_vectors(embedder, piaf)[1][:len(piaf.sentences)]
    out = {"encoder": encoder, "queries": len(qs), "real": recall(real, qs, [1, 2, 4, 8, 16, 32, 64])}
    for n in composed_sizes:
        out[f"composed_{n}"] = recall(composed_vectors(sentences, n), qs, [4, 8, 16, 32, 64, 128])
    return out
