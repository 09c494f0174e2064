"""The metrics of the evaluation contract, on one question and over a set.

Text is compared with :func:`rag.text.normalize.normalize_answer`. A metric with nothing to
measure (no unanswerable question, say) is ``None``.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from ..schema import CITATION_MARKER
from ..text.normalize import normalize_answer

DEPTH = 10                      # ranks looked at for hit@k and MRR@10
HIT_KS = (1, 3, 5, 10)


def answer_text(text: str) -> str:
    """An answer normalised for comparison, its ``[n]`` markers removed."""
    return normalize_answer(CITATION_MARKER.sub(" ", text))


def contains_answer(text: str, golds: Sequence[str]) -> bool:
    """True when ``text`` contains one of ``golds`` as whole words, after normalisation."""
    padded = f" {answer_text(text)} "
    return any(g and f" {g} " in padded for g in (normalize_answer(x) for x in golds))


def token_f1(text: str, golds: Sequence[str]) -> float:
    """The best SQuAD-style token F1 of ``text`` against one of ``golds`` (0 without golds)."""
    pred = answer_text(text).split()
    best = 0.0
    for gold in golds:
        ref = normalize_answer(gold).split()
        common = sum((Counter(pred) & Counter(ref)).values())
        if common:
            p, r = common / len(pred), common / len(ref)
            best = max(best, 2 * p * r / (p + r))
    return best


def exact_match(text: str, golds: Sequence[str]) -> bool:
    """SQuAD exact match: ``text`` equals one of ``golds`` after normalisation (False without golds)."""
    pred = answer_text(text)
    return bool(pred) and any(pred == normalize_answer(g) for g in golds)


def first_gold_rank(doc_ids: Sequence[str], gold: Sequence[str]) -> int | None:
    """0-based rank of the first result from a gold document, or None."""
    wanted = set(gold)
    return next((i for i, d in enumerate(doc_ids) if d in wanted), None)


def retrieval_metrics(ranks: Sequence[int | None]) -> dict[str, float | None]:
    """hit@1/3/5/10 and mrr@10 over the ranks of the gold document (None = not retrieved)."""
    if not ranks:
        return {**{f"hit@{k}": None for k in HIT_KS}, "mrr@10": None}
    out: dict[str, float | None] = {f"hit@{k}": mean([r is not None and r < k for r in ranks]) for k in HIT_KS}
    out["mrr@10"] = mean([1.0 / (r + 1) if r is not None and r < DEPTH else 0.0 for r in ranks])
    return out


def hit_curve(ranks: Sequence[int | None]) -> list[float]:
    """hit@k for k = 1..10."""
    return [mean([r is not None and r < k for r in ranks]) or 0.0 for k in range(1, DEPTH + 1)]


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50 and p95 in milliseconds (None for no values)."""
    if not values:
        return {"p50": None, "p95": None}
    return {"p50": round(float(np.percentile(values, 50)), 1), "p95": round(float(np.percentile(values, 95)), 1)}


def mean(values: Sequence[float | bool]) -> float | None:
    return round(float(np.mean(values)), 4) if len(values) else None
