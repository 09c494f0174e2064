"""Fusion: BM25 and dense candidates combined by normalised, weighted scores, then de-duplicated.

Plain reciprocal rank fusion of a strong retriever and a weak one is worse than the strong one
alone; a convex combination of min-max-normalised scores keeps the stronger side in charge and
lets the other break ties and rescue paraphrases. The default weight comes from measurements on
PIAF-dev (``docs/evaluation.md``).
"""

from __future__ import annotations

import enum
from typing import Iterable

import numpy as np

from ..schema import Hit
from ..text.normalize import normalize_answer


class Mode(str, enum.Enum):
    """Which retrievers are used."""

    HYBRID = "hybrid"
    BM25 = "bm25"
    DENSE = "dense"


def minmax(scores: np.ndarray) -> np.ndarray:
    """Scale scores to [0, 1] (all equal -> all 1)."""
    if not len(scores):
        return scores.astype(np.float32)
    lo, hi = float(scores.min()), float(scores.max())
    if hi - lo < 1e-9:
        return np.ones_like(scores, dtype=np.float32)
    return ((scores - lo) / (hi - lo)).astype(np.float32)


def fuse(bm25: tuple[np.ndarray, np.ndarray], dense: tuple[np.ndarray, np.ndarray],
         weight: float, foreign: set[int] | None = None,
         foreign_weight: float | None = None) -> list[tuple[int, float, float, float]]:
    """Convex fusion of two (ids, scores) lists: ``weight * bm25 + (1 - weight) * dense``.

    Scores are min-max normalised within each list; an id missing from a list gets 0 there.
    Ids in ``foreign`` (chunks in another language than the question's, where words rarely
    match) are fused with ``foreign_weight`` instead.

    Returns
    -------
    list of (id, fused, bm25 raw, dense raw), best first.
    """
    table: dict[int, list[float]] = {}
    for i, (ids, raw) in enumerate((bm25, dense)):
        for cid, n, r in zip(ids.tolist(), minmax(raw).tolist(), raw.tolist()):
            row = table.setdefault(cid, [0.0, 0.0, 0.0, 0.0])
            row[i], row[2 + i] = n, r
    foreign = foreign or set()
    other = weight if foreign_weight is None else foreign_weight
    fused = [(cid, (other if cid in foreign else weight) * b + (1 - (other if cid in foreign else weight)) * d, rb, rd)
             for cid, (b, d, rb, rd) in table.items()]
    fused.sort(key=lambda x: (-x[1], x[0]))
    return fused


def _overlaps(a: Hit, b: Hit) -> bool:
    return a.doc_id == b.doc_id and a.start < b.end and b.start < a.end


def _words(hit: Hit) -> frozenset[str]:
    return frozenset(normalize_answer(hit.text).split())


def _near_duplicate(a: frozenset[str], b: frozenset[str], threshold: float = 0.9) -> bool:
    if not a or not b:
        return False
    return len(a & b) / len(a | b) >= threshold


def collapse(hits: Iterable[Hit], k: int) -> list[Hit]:
    """Keep the best of overlapping chunks of a document and of near-duplicate texts, up to ``k``.

    Near-duplicates share at least 90% of their normalised words (Jaccard), e.g. the same
    wire story published twice.
    """
    kept: list[tuple[Hit, frozenset[str]]] = []
    for h in hits:
        words = _words(h)
        if any(_overlaps(h, o) or _near_duplicate(words, w) for o, w in kept):
            continue
        kept.append((h, words))
        if len(kept) == k:
            break
    return [h for h, _ in kept]
