"""Short answers, the second stage: the first scorer's best candidates re-ranked by what they agree on.

The first stage (:func:`rag.answering.spans.probabilities`) scores each candidate on its own. Its
:data:`TOP` best are then described by how they sit among all the candidates: their first-stage
score and rank, the probability mass of the candidates they hold, that hold them or overlap them,
the mass on their words and on the words just outside them (much mass next to a span: its edges
are likely wrong), their length against the best one's. A second linear model
(``span_weights.json``'s ``rerank``, fitted by ``eval/fit_spans.py`` on first-stage scores of
held-out folds) re-scores them; a softmax over the :data:`TOP` gives the final probabilities.
"""

from __future__ import annotations

import numpy as np

from ..text.questions import Asked
from .span_candidates import Candidates
from .span_features import COL

TOP = 10  # candidates the second stage re-ranks
RERANK_FEATURES = ("score_gap", "log_prob", "first", "log_rank", "mass_inside", "mass_around", "mass_overlap",
                   "word_mass_mean", "word_mass_min", "edge_mass_left", "edge_mass_right", "log_len_ratio",
                   "holds_best", "inside_best", "overlaps_best", "log_len", "sentence_mass", "share")
# Features also crossed with what the question asks for: the length against the best one's matters by kind.
RERANK_CROSSED = ("log_len_ratio", "holds_best", "inside_best", "edge_mass_left", "edge_mass_right")
RERANK_ALL = RERANK_FEATURES + tuple(f"{a.value}*{f}" for a in Asked for f in RERANK_CROSSED)
_RCOL = {f: k for k, f in enumerate(RERANK_ALL)}


def top_candidates(scores: np.ndarray, top: int = TOP) -> np.ndarray:
    """Indices of the ``top`` highest ``scores``, best first."""
    k = min(top, len(scores))
    best = np.argpartition(-scores, k - 1)[:k]
    return best[np.argsort(-scores[best], kind="stable")]


def rerank_features(cands: Candidates, scores: np.ndarray, asked: Asked,
                    top: int = TOP) -> tuple[np.ndarray, np.ndarray]:
    """The :data:`TOP` best candidates under the first-stage ``scores`` and their :data:`RERANK_ALL` features.

    Parameters
    ----------
    cands : Candidates
        One question's candidates.
    scores : numpy.ndarray
        Their first-stage linear scores.
    asked : Asked
        What the question asks for.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The chosen candidates' indices (best first) and their features, one row each.
    """
    z = scores - scores.max()
    p = np.exp(z)
    p /= p.sum()
    best = top_candidates(scores, top)
    a, b = cands.first, cands.last
    words = int(b.max()) + 2
    # probability mass on each word (the candidates covering it), through a difference array
    diff = np.zeros(words + 1)
    np.add.at(diff, a, p)
    np.add.at(diff, b + 1, -p)
    word_mass = np.cumsum(diff)[:words]
    # the sentence of each covered word (an edge word of another sentence is not next to a span)
    count, sid = np.zeros(words + 1), np.zeros(words + 1)
    np.add.at(count, a, 1.0)
    np.add.at(count, b + 1, -1.0)
    np.add.at(sid, a, cands.sentence.astype(np.float64))
    np.add.at(sid, b + 1, -cands.sentence.astype(np.float64))
    count, sid = np.cumsum(count)[:words], np.cumsum(sid)[:words]
    word_sentence = np.where(count > 0.5, np.rint(sid / np.maximum(count, 1.0)), -1).astype(np.int64)
    before = np.maximum(a - 1, 0)
    word_mass_left = np.where(word_sentence[before] == cands.sentence, word_mass[before], 0.0)
    word_mass_left[a == 0] = 0.0
    word_mass_right = np.where(word_sentence[b + 1] == cands.sentence, word_mass[b + 1], 0.0)
    cum_mass = np.concatenate([[0.0], np.cumsum(word_mass)])
    sentence_mass = np.bincount(cands.sentence, weights=p)
    x = np.zeros((len(best), len(RERANK_ALL)), dtype=np.float32)
    ab, bb = a[best], b[best]
    a0, b0 = a[best[0]], b[best[0]]
    length = (bb - ab + 1).astype(np.float64)
    inside = (a[None, :] >= ab[:, None]) & (b[None, :] <= bb[:, None])
    around = (a[None, :] <= ab[:, None]) & (b[None, :] >= bb[:, None])
    overlap = (a[None, :] <= bb[:, None]) & (b[None, :] >= ab[:, None])
    same = cands.sentence[None, :] == cands.sentence[best][:, None]
    values = {
        "score_gap": z[best], "log_prob": np.log(p[best] + 1e-9), "first": np.arange(len(best)) == 0,
        "log_rank": np.log1p(np.arange(len(best))),
        "mass_inside": (inside & same) @ p, "mass_around": (around & same) @ p, "mass_overlap": (overlap & same) @ p,
        "word_mass_mean": (cum_mass[bb + 1] - cum_mass[ab]) / length,
        "word_mass_min": np.array([word_mass[i:j + 1].min() for i, j in zip(ab.tolist(), bb.tolist())]),
        "edge_mass_left": word_mass_left[best], "edge_mass_right": word_mass_right[best],
        "log_len_ratio": np.log(length / (b0 - a0 + 1)),
        "holds_best": (ab <= a0) & (bb >= b0) & ((ab != a0) | (bb != b0)),
        "inside_best": (ab >= a0) & (bb <= b0) & ((ab != a0) | (bb != b0)),
        "overlaps_best": (ab <= b0) & (bb >= a0) & ~((ab <= a0) & (bb >= b0)) & ~((ab >= a0) & (bb <= b0)),
        "log_len": np.log(length), "sentence_mass": sentence_mass[cands.sentence[best]],
        "share": cands.features[best, COL["share"]],
    }
    for name, v in values.items():
        x[:, _RCOL[name]] = v
    for name in RERANK_CROSSED:
        x[:, _RCOL[f"{asked.value}*{name}"]] = values[name]
    return best, x


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax of a vector of scores."""
    e = np.exp(z - z.max())
    return e / e.sum()


__all__ = ["TOP", "RERANK_FEATURES", "RERANK_CROSSED", "RERANK_ALL", "top_candidates", "rerank_features", "softmax"]
