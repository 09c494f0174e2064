"""Fit the extractive answerer's weights on PIAF-dev, check them on held-out questions.

Usage (from the project root; a few minutes on 2 cores, the indexes come from the embedding cache)::

    python eval/fit_answerer.py ../shared/data/piaf-dev.json            # fit and print the check table
    python eval/fit_answerer.py ../shared/data/piaf-dev.json --write    # ... and write rag/extractive_weights.json

Questions of the even-numbered PIAF articles tune; those of the odd-numbered ones check. Each
question is asked of three indexes, so the answerer learns both to pick the sentence and to know
when none answers:

- ``full``: every context. The question is answerable.
- ``para``: the even-numbered paragraphs of every article. A question about an odd-numbered
  paragraph is a *near miss*: its article is indexed, its paragraph is not (as when a user asks
  about a detail the article leaves out).
- ``half``: the contexts of the other half's articles. The question is a *far miss*.

The sentence model (a softmax over the features of :data:`rag.extractive.FEATURES`) is fitted on
answerable questions, each sentence labelled by whether it holds a gold answer. The evidence and
support models (logistic) are then fitted on the answers the sentence model chooses, labelled by
whether the answer holds a gold answer: a wrong answer should be refused like a miss. A near or
far miss counts as answered right when the chosen sentence happens to hold the answer anyway.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rag.answering import extractive as ex  # noqa: E402
from rag.config import load_config  # noqa: E402
from rag.evaluation import (
    contains_answer,  # noqa: E402
    load_qa,  # noqa: E402
)
from rag.indexing import Indexer  # noqa: E402
from rag.ingest import load_paths  # noqa: E402
from rag.pipeline import RAG  # noqa: E402

K = 5
THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)


@dataclass
class Example:
    """One question asked of one index: its sentences' features and what a right answer is."""

    half: str        # "tune" or "check"
    role: str        # "answerable", "near" or "far"
    features: np.ndarray  # (sentences, len(FEATURES))
    holds: np.ndarray     # (sentences,) bool: the sentence holds a gold answer
    docs: list[str]       # document id of each sentence
    gold: str


def article_of(key: str) -> tuple[int, int]:
    """(article, paragraph) of a SQuAD document key ``path#a-p``."""
    a, p = key.rsplit("#", 1)[1].split("-")
    return int(a), int(p)


SUBSETS = ("full", "para", "even", "odd")


def build_indexes(piaf: str, names: Sequence[str] = SUBSETS,
                  root: Path | None = None) -> dict[str, tuple[Path, set[str]]]:
    """The three kinds of index (four folders), each with the ids of its documents.

    ``names``: the subsets to build (of :data:`SUBSETS`; "full" is always built, the others start
    from its embedding cache); ``root``: their parent folder (default: the cache's ``fit-index``).
    """
    config = load_config()
    # one set per model and chunking: an index keeps its own model, so another one's would be reused as is
    root = root or config.cache_path / "fit-index" / f"{config.model.replace('/', '--')}-{config.chunk_tokens}"
    docs = load_paths([piaf]).documents
    where = {d.id: article_of(d.key) for d in docs}
    subsets = {
        "full": docs,
        "para": [d for d in docs if where[d.id][1] % 2 == 0],
        "even": [d for d in docs if where[d.id][0] % 2 == 0],
        "odd": [d for d in docs if where[d.id][0] % 2 == 1],
    }
    out = {}
    for name, subset in subsets.items():  # "full" first: the others start from its embedding cache
        if name != "full" and name not in names:
            continue
        folder = root / name
        if not folder.exists() and name != "full":
            shutil.copytree(out["full"][0], folder)
        Indexer(config).reindex(subset, index_dir=folder, progress=False)
        out[name] = (folder, {d.id for d in subset})
    return out


def collect(piaf: str) -> list[Example]:
    """Ask every question of its indexes and keep the features of the sentences it gets."""
    qa = load_qa(piaf)
    indexes = build_indexes(piaf)
    where = {d.id: article_of(d.key) for d in load_paths([piaf]).documents}
    rags = {name: RAG(load_config(), folder) for name, (folder, _) in indexes.items()}
    answerer = ex.ExtractiveAnswerer.from_config(load_config())
    examples: list[Example] = []
    for n, item in enumerate(qa.items):
        gold = item.squad_id
        article, paragraph = where[gold]
        half = "tune" if article % 2 == 0 else "check"
        asks = [("full", "answerable"), ("odd" if article % 2 == 0 else "even", "far")]
        if paragraph % 2 == 1:
            asks.append(("para", "near"))
        for name, role in asks:
            request = rags[name].retrieve(item.question, K)
            cands = answerer.rank(request)
            if not cands:
                examples.append(Example(half, role, np.zeros((0, len(ex.FEATURES)), np.float32),
                                        np.zeros(0, bool), [], gold))
                continue
            examples.append(Example(half, role, np.stack([c.features for c in cands]),
                                    np.array([contains_answer(c.text, item.answers) for c in cands]),
                                    [request.hits[c.hit].doc_id for c in cands], gold))
        if n % 200 == 0:
            print(f"  {n}/{len(qa.items)} questions", file=sys.stderr)
    return examples


def save_examples(examples: list[Example], path: Path) -> list[Example]:
    """Keep the collected features (plain arrays, no pickle) for ``--reuse``."""
    sizes = np.array([len(e.holds) for e in examples])
    np.savez(path, sizes=sizes, half=np.array([e.half for e in examples]), role=np.array([e.role for e in examples]),
             gold=np.array([e.gold for e in examples]), docs=np.array([d for e in examples for d in e.docs] or [""]),
             features=np.concatenate([e.features for e in examples]), holds=np.concatenate([e.holds for e in examples]))
    return examples


def load_examples(path: Path) -> list[Example]:
    """The examples :func:`save_examples` kept."""
    z = np.load(path, allow_pickle=False)
    ends = np.cumsum(z["sizes"])
    starts = ends - z["sizes"]
    return [Example(str(h), str(r), z["features"][a:b], z["holds"][a:b], [str(d) for d in z["docs"][a:b]], str(g))
            for h, r, g, a, b in zip(z["half"], z["role"], z["gold"], starts, ends)]


# -- the sentence model: softmax regression ----------------------------------------------------
def fit_sentences(examples: list[Example], l2: float = 1e-3) -> np.ndarray:
    """Weights maximising the share of the sentences that hold the answer."""
    data = [(e.features.astype(np.float64), e.holds) for e in examples if e.holds.any() and not e.holds.all()]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = l2 * w @ w, 2 * l2 * w
        for f, pos in data:
            z = f @ w
            p = np.exp(z - z.max())
            p /= p.sum()
            q = p * pos
            q /= q.sum()
            total -= np.log((p * pos).sum())
            grad += f.T @ (p - q)
        return total / len(data), grad / len(data)

    res = minimize(loss, ex.WEIGHTS.astype(np.float64), jac=True, method="L-BFGS-B")
    return res.x.astype(np.float32)


# -- evidence and support: logistic regression on the chosen answers -------------------------
@dataclass
class Outcome:
    """What the answerer does with one example under given sentence weights."""

    evidence_x: np.ndarray  # EVIDENCE_FEATURES of the best sentence
    right: bool             # the best sentence (the answer) holds a gold answer
    cited_gold: bool        # the answer cites the gold document
    answerable: bool


def outcomes(examples: list[Example], weights: np.ndarray) -> list[Outcome]:
    """Choose each example's best sentence as :func:`rag.extractive.choose` does."""
    out = []
    for e in examples:
        if not len(e.holds):
            out.append(Outcome(np.zeros(len(ex.EVIDENCE_FEATURES), np.float32), False, False, e.role == "answerable"))
            continue
        z = e.features @ weights
        p = np.exp(z - z.max())
        p /= p.sum()
        best = int(np.argmax(z))
        share = float(sum(pi for pi, d in zip(p, e.docs) if d == e.docs[best]))
        out.append(Outcome(ex.evidence_features(e.features[best], share), bool(e.holds[best]),
                           e.docs[best] == e.gold, e.role == "answerable"))
    return out


def fit_logistic(x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, l2: float = 1e-4) -> np.ndarray:
    """Weights then bias of a logistic model (L2 on the weights, not the bias)."""
    xb = np.hstack([x, np.ones((len(x), 1))]).astype(np.float64)
    sw = sample_weight / sample_weight.sum()

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = xb @ w
        p = 1 / (1 + np.exp(-z))
        eps = 1e-9
        nll = -(sw * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))).sum()
        reg = l2 * (w[:-1] @ w[:-1])
        grad = xb.T @ (sw * (p - y))
        grad[:-1] += 2 * l2 * w[:-1]
        return nll + reg, grad

    return minimize(loss, np.zeros(xb.shape[1]), jac=True, method="L-BFGS-B").x.astype(np.float32)


def balance(outs: list[Outcome]) -> np.ndarray:
    """Sample weights giving answerable and unanswerable examples equal total weight."""
    answerable = np.array([o.answerable for o in outs])
    return np.where(answerable, 0.5 / max(answerable.sum(), 1), 0.5 / max((~answerable).sum(), 1))


# -- the check --------------------------------------------------------------------------------
def table(examples: list[Example], outs: list[Outcome], fitted: dict, thresholds=THRESHOLDS) -> list[dict]:
    """Contains, citation precision and abstention per half and threshold."""
    rows = []
    for half in ("tune", "check"):
        for t in thresholds:
            by_role: dict[str, list[tuple[Outcome, bool]]] = {"answerable": [], "near": [], "far": []}
            for e, o in zip(examples, outs):
                if e.half == half:
                    answered = ex.evidence(o.evidence_x, fitted["evidence"], fitted["support"],
                                           fitted["support_min"]) >= t
                    by_role[e.role].append((o, answered and bool(len(e.holds))))
            ans = by_role["answerable"]
            answered = [o for o, a in ans if a]
            rows.append({
                "half": half, "threshold": t,
                "contains": round(np.mean([o.right and a for o, a in ans]), 3),
                "citation_precision": round(np.mean([o.cited_gold for o in answered]), 3) if answered else None,
                "false_abstention": round(np.mean([not a for _, a in ans]), 3),
                "near_abstained": round(np.mean([not a or o.right for o, a in by_role["near"]]), 3),
                "far_abstained": round(np.mean([not a or o.right for o, a in by_role["far"]]), 3),
            })
    return rows


def print_table(rows: list[dict]) -> None:
    """The check table, Markdown."""
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("| " + " | ".join("---" for _ in keys) + " |")
    for r in rows:
        print("| " + " | ".join("" if r[k] is None else str(r[k]) for k in keys) + " |")


def main(argv: list[str] | None = None) -> int:
    """Collect, fit, check; with ``--write``, save the weights for :mod:`rag.extractive`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("piaf", help="PIAF-dev (SQuAD-format JSON)")
    parser.add_argument("--write", action="store_true", help=f"write {ex.WEIGHTS_FILE}")
    parser.add_argument("--reuse", action="store_true", help="reuse the features of the last run (same code only)")
    parser.add_argument("--support-min", type=float, default=0.1, help="floor of the support model (default 0.1)")
    args = parser.parse_args(argv)
    cache = load_config().cache_path / "fit-index" / "examples.npz"
    examples = load_examples(cache) if args.reuse and cache.exists() else save_examples(collect(args.piaf), cache)
    tune = [e for e in examples if e.half == "tune"]
    print(f"{len(examples)} examples ({len(tune)} to tune)", file=sys.stderr)
    weights = fit_sentences([e for e in tune if e.role == "answerable"])
    outs = outcomes(examples, weights)
    tune_outs = [o for e, o in zip(examples, outs) if e.half == "tune"]
    x = np.stack([o.evidence_x for o in tune_outs])
    y = np.array([o.right for o in tune_outs], dtype=np.float64)
    w = balance(tune_outs)
    fitted = {"sentence": weights, "evidence": fit_logistic(x, y, w), "support": fit_logistic(x[:, 1:], y, w),
              "support_min": args.support_min}
    print("\nbefore (the weights in use):")
    before = {"evidence": ex.EVIDENCE, "support": ex.SUPPORT, "support_min": ex.SUPPORT_MIN}
    print_table(table(examples, outcomes(examples, ex.WEIGHTS), before, (load_config().abstain_threshold,)))
    print("\nafter:")
    print_table(table(examples, outs, fitted))
    if args.write:
        data = {
            "fitted": f"eval/fit_answerer.py {Path(args.piaf).name}: even-numbered articles, k={K}",
            "sentence": {"features": list(ex.FEATURES), "weights": [round(float(v), 3) for v in weights]},
            "evidence": {"features": list(ex.EVIDENCE_FEATURES),
                         "weights": [round(float(v), 3) for v in fitted["evidence"][:-1]],
                         "bias": round(float(fitted["evidence"][-1]), 3)},
            "support": {"features": list(ex.SUPPORT_FEATURES),
                        "weights": [round(float(v), 3) for v in fitted["support"][:-1]],
                        "bias": round(float(fitted["support"][-1]), 3)},
            "support_min": args.support_min,
            # written by eval/fit_crosslingual.py, kept as it is
            "crosslingual": json.loads(ex.WEIGHTS_FILE.read_text(encoding="utf-8"))["crosslingual"],
        }
        ex.WEIGHTS_FILE.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote {ex.WEIGHTS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
