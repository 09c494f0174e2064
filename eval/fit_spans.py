"""Fit the span finder (short answers) on PIAF-dev, end to end, and check it on held-out questions.

Usage (from the project root; a few minutes on 2 cores, the indexes come from the embedding cache)::

    python eval/fit_spans.py ../shared/data/piaf-dev.json            # fit, print the check tables
    python eval/fit_spans.py ../shared/data/piaf-dev.json --write    # ... and write rag/span_weights.json
    python eval/fit_spans.py ../shared/data/piaf-dev.json --reuse    # skip retrieval: the last run's answers

Every PIAF-dev question is asked of the index of all 360 contexts (built by
``eval/fit_answerer.py``'s :func:`build_indexes`, default configuration) and answered by the real
extractive answerer; the sentences its answer quotes are what the span finder sees. Questions of
the even-numbered articles fit, those of the odd-numbered ones check (as for the answerer's
weights). Scores are SQuAD exact match and token F1 of the span against the gold answers
(``rag.evaluation``); a question without a span (abstained, or under the confidence threshold)
scores 0. The seed set (``eval/seed_qa.jsonl`` over seeds/ and PIAF-dev's contexts, as in the
README's ``rag eval`` command) is a check only: nothing is fitted on it.

The span model is a softmax regression over each question's candidates, fitted to put its mass
on the candidates of best F1; the confidence model a logistic regression on the chosen span's
F1; the threshold the lowest confidence at which the spans shown are right (F1) more often than
not on the fitting half. The ablation refits the span model without each feature group.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fit_answerer import article_of, build_indexes  # noqa: E402

from rag.answering import extractive as ex  # noqa: E402
from rag.answering import spans as sp  # noqa: E402
from rag.answering import syntax  # noqa: E402
from rag.config import load_config  # noqa: E402
from rag.embedding import canonical_model_name  # noqa: E402
from rag.evaluation import docs_index, load_qa, token_f1  # noqa: E402
from rag.evaluation.metrics import exact_match  # noqa: E402
from rag.ingest import load_paths  # noqa: E402
from rag.pipeline import RAG  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEED_QA = ROOT / "eval" / "seed_qa.jsonl"
L2 = 1e-3
GAMMA = 8.0  # sharpness of the fitting targets (see fit_spans)
PENALTY = 0.5  # what a shown span sharing no word with the answer costs, against 1 for a right one


@dataclass
class Record:
    """One question and the sentences its extractive answer quotes (empty when it abstained)."""

    question: str
    lang: str
    answers: list[str]
    half: str                     # "fit", "check" (PIAF halves) or "seed"
    sentences: list[sp.Sentence] = field(default_factory=list)
    idf: dict[str, float] = field(default_factory=dict)  # the question's stems' inverse document frequency


def ask_all(rag: RAG, items, half_of) -> list[Record]:
    """Answer every item with the real extractive answerer and keep the sentences it quotes."""
    answerer = ex.ExtractiveAnswerer.from_config(rag.config)
    out = []
    for n, item in enumerate(items):
        request = rag.retrieve(item.question)
        rec = Record(item.question, request.lang if request else "fr", list(item.answers), half_of(item))
        choice = ex.choose(answerer.rank(request), request.hits) if request else None
        if choice is not None and choice.evidence >= answerer.threshold:
            answer = ex.compose(request.question, request.lang, request.hits, choice.sentences)
            rec.sentences = ex.answer_sentences(request, choice, answer)
        if request is not None and request.stats is not None:
            rec.idf = {t: request.stats.idf(t) for t in sp.analyse_question(item.question, rec.lang).terms}
        out.append(rec)
        if n % 300 == 0:
            print(f"  {n}/{len(items)} questions", file=sys.stderr)
    return out


def collect(piaf: str, root: Path) -> list[Record]:
    """PIAF-dev's questions over its full index, then the seed set's over seeds/ and PIAF's contexts."""
    config = load_config()
    folder = build_indexes(piaf, names=("full",), root=root)["full"][0]
    where = {d.id: article_of(d.key) for d in load_paths([piaf]).documents}
    records = ask_all(RAG(config, folder), load_qa(piaf).items,
                      lambda item: "fit" if where[item.squad_id][0] % 2 == 0 else "check")
    seed_index, *_ = docs_index([str(ROOT / "seeds"), piaf], config, progress=False)
    seed_items = [item for item in load_qa(SEED_QA).items if item.answers]
    return records + ask_all(RAG(config, seed_index), seed_items, lambda item: "seed")


def save(records: list[Record], path: Path) -> None:
    """The collected answers as JSON (no pickle), for ``--reuse``."""
    path.write_text(json.dumps([{**r.__dict__, "sentences": [s._asdict() for s in r.sentences]} for r in records],
                               ensure_ascii=False), encoding="utf-8")


def load(path: Path) -> list[Record]:
    """The answers :func:`save` kept."""
    fields = set(sp.Sentence._fields)
    return [Record(**{**r, "sentences": [sp.Sentence(**{k: v for k, v in s.items() if k in fields})
                                         for s in r["sentences"]]})
            for r in json.loads(path.read_text(encoding="utf-8"))]


# -- candidates with their labels ----------------------------------------------------------------
@dataclass
class Example:
    """A question's candidates, with the F1 and exact match of each against the gold answers."""

    record: Record
    asked: sp.Asked
    cands: sp.Candidates
    f1: np.ndarray
    exact: np.ndarray
    texts: list[str]


def examples(records: list[Record], echo: bool = False, gate: bool = True, use_syntax: bool = False) -> list[Example]:
    """Generate every record's candidates and score each against the gold answers.

    ``echo``, ``gate``, ``use_syntax``: as in :func:`rag.spans.candidates` (the first two are what
    the ablation turns off; the last fills the syntax group when spaCy is installed).
    """
    out = []
    for r in records:
        q = sp.analyse_question(r.question, r.lang, lambda t, r=r: r.idf.get(t, 1.0))
        cands = sp.candidates(q, r.sentences, echo, gate, use_syntax, r.question)
        texts = [r.sentences[s].text[a - r.sentences[s].start:b - r.sentences[s].start]
                 for s, a, b in zip(cands.sentence.tolist(), cands.start.tolist(), cands.end.tolist())]
        out.append(Example(r, q.asked, cands, np.array([token_f1(t, r.answers) for t in texts], dtype=np.float32),
                           np.array([exact_match(t, r.answers) for t in texts], dtype=bool), texts))
    return out


# -- the span model: softmax regression towards the best candidates -------------------------------
def fit_spans(exs: list[Example], mask: np.ndarray | None = None, l2: float = L2, gamma: float = GAMMA) -> np.ndarray:
    """Softmax-regression weights (features in ``mask`` only): cross-entropy towards targets ∝ F1 ** ``gamma``.

    Each question's target spreads over its candidates by their F1 against the gold answers, raised
    to ``gamma`` (large: the best candidates only; 1: partial overlaps count in proportion).
    """
    data = [e for e in exs if len(e.f1) and e.f1.max() > 0]
    x = np.concatenate([e.cands.features for e in data]).astype(np.float32)
    if mask is not None:
        x = x * mask
    sizes = np.array([len(e.f1) for e in data])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    seg = np.repeat(np.arange(len(data)), sizes)
    target = np.concatenate([(e.f1 / e.f1.max()) ** gamma for e in data]).astype(np.float64)
    target /= np.add.reduceat(target, starts)[seg]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = (x @ w.astype(np.float32)).astype(np.float64)
        z -= np.maximum.reduceat(z, starts)[seg]
        e = np.exp(z)
        sums = np.add.reduceat(e, starts)
        p = e / sums[seg]
        total = -(target * (z - np.log(sums)[seg])).sum() / len(data) + l2 * w @ w
        grad = (x.T @ (p - target).astype(np.float32)).astype(np.float64) / len(data) + 2 * l2 * w
        return total, grad

    res = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 400})
    return res.x.astype(np.float32)


@dataclass
class Outcome:
    """The span chosen for one example: its F1, exact match and confidence features."""

    f1: float
    exact: bool
    x: np.ndarray | None  # CONFIDENCE_FEATURES (None: no candidate)


def outcomes(exs: list[Example], weights: np.ndarray, mask: np.ndarray | None = None) -> list[Outcome]:
    """Pick each example's best candidate under ``weights``."""
    out = []
    for e in exs:
        if not len(e.f1):
            out.append(Outcome(0.0, False, None))
            continue
        feats = e.cands.features if mask is None else e.cands.features * mask
        p = sp.probabilities(feats, weights)
        best = int(np.argmax(p))
        out.append(Outcome(float(e.f1[best]), bool(e.exact[best]), sp.confidence_features(e.cands, p, best, e.asked)))
    return out


def fit_confidence(outs: list[Outcome], l2: float = 1e-3) -> np.ndarray:
    """Logistic regression of the chosen span's F1 (a soft label) on its confidence features; bias last."""
    xs = [o for o in outs if o.x is not None]
    x = np.hstack([np.stack([o.x for o in xs]), np.ones((len(xs), 1))]).astype(np.float64)
    y = np.array([o.f1 for o in xs])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        p = 1 / (1 + np.exp(-(x @ w)))
        nll = -(y * np.log(p + 1e-9) + (1 - y) * np.log(1 - p + 1e-9)).mean() + l2 * w[:-1] @ w[:-1]
        grad = x.T @ (p - y) / len(y)
        grad[:-1] += 2 * l2 * w[:-1]
        return nll, grad

    return minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B").x.astype(np.float32)


def confidences(outs: list[Outcome], conf: np.ndarray) -> np.ndarray:
    """The confidence of each outcome's span (-1 without one)."""
    return np.array([-1.0 if o.x is None else 1 / (1 + np.exp(-(o.x @ conf[:-1] + conf[-1]))) for o in outs])


def utility(outs: list[Outcome], shown: np.ndarray, penalty: float = PENALTY) -> float:
    """Mean over the questions of what the spans shown are worth: their F1, minus ``penalty`` for one sharing no word."""
    f1 = np.array([o.f1 for o in outs])
    return float(np.mean(np.where(shown, f1 - penalty * (f1 == 0), 0.0)))


def choose_threshold(outs: list[Outcome], conf: np.ndarray, penalty: float = PENALTY) -> float:
    """The confidence threshold of highest :func:`utility` on the fitting half (the lowest of ties).

    A span is shown when its confidence is at least the threshold. With ``penalty`` 0 this is the
    threshold of highest expected short_f1 (0: every span shown); a positive ``penalty`` weighs a
    wrong answer shown in bold against a right one.
    """
    c = confidences(outs, conf)
    grid = np.round(np.arange(0.0, 1.0, 0.01), 2)
    values = [utility(outs, c >= t, penalty) for t in grid]
    return float(grid[int(np.argmax(values))])


def losses(exs: list[Example], outs: list[Outcome], conf: np.ndarray, threshold: float, half: str) -> dict:
    """Where a half's short_f1 goes: no answer, no span shown, gold not a candidate, the model's pick."""
    rows = [(e, o, c) for e, o, c in zip(exs, outs, confidences(outs, conf)) if e.record.half == half]
    gold = [(e, o) for e, o, _ in rows if len(e.f1) and e.exact.any()]
    return {"half": half, "no answer": round(float(np.mean([not e.record.sentences for e, _, _ in rows])), 3),
            "no candidate": round(float(np.mean([bool(e.record.sentences) and not len(e.f1) for e, _, _ in rows])), 3),
            "under threshold": round(float(np.mean([o.x is not None and c < threshold for _, o, c in rows])), 3),
            "gold is a candidate": round(len(gold) / max(len(rows), 1), 3),
            "oracle f1": round(float(np.mean([e.f1.max() if len(e.f1) else 0.0 for e, _, _ in rows])), 3),
            "picked exact (gold a candidate)": round(float(np.mean([o.exact for _, o in gold] or [0])), 3),
            "picked f1 (gold a candidate)": round(float(np.mean([o.f1 for _, o in gold] or [0])), 3)}


def scores(exs: list[Example], outs: list[Outcome], conf: np.ndarray | None, threshold: float, half: str) -> dict:
    """short_exact, short_f1 (0 for a question without a span) and the share given a span, on one half."""
    rows = [(e, o, c) for e, o, c in zip(exs, outs, confidences(outs, conf) if conf is not None
                                         else [1.0] * len(outs)) if e.record.half == half]
    shown = [o.x is not None and c >= threshold for _, o, c in rows]
    return {"half": half, "questions": len(rows),
            "answered": round(float(np.mean([bool(e.record.sentences) for e, _, _ in rows])), 3),
            "short_given": round(float(np.mean(shown)), 3),
            "short_exact": round(float(np.mean([o.exact and s for (_, o, _), s in zip(rows, shown)])), 3),
            "short_f1": round(float(np.mean([o.f1 if s else 0.0 for (_, o, _), s in zip(rows, shown)])), 3),
            "f1_when_given": round(float(np.mean([o.f1 for (_, o, _), s in zip(rows, shown) if s] or [0])), 3),
            "best_candidate_f1": round(float(np.mean([e.f1.max() if len(e.f1) else 0.0 for e, _, _ in rows])), 3)}


def print_table(rows: list[dict]) -> None:
    """Rows of dicts as a Markdown table."""
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("| " + " | ".join("---" for _ in keys) + " |")
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")


def timing(records: list[Record], model: sp.SpanModel) -> dict:
    """Milliseconds :func:`rag.spans.find_span` takes per answered question, warm: wall clock and CPU time.

    The CPU time (this process only) is the figure to read on a machine other jobs share.
    """
    answered = [r for r in records if r.sentences]
    for r in answered[:50]:
        sp.find_span(r.question, r.lang, r.sentences, model, idf=r.idf.get)
    wall, cpu = [], []
    for r in answered:
        t0, c0 = time.perf_counter(), time.process_time()
        sp.find_span(r.question, r.lang, r.sentences, model, idf=r.idf.get)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return {"answers": len(wall), "wall_p50_ms": round(float(np.percentile(wall, 50)), 2),
            "wall_p95_ms": round(float(np.percentile(wall, 95)), 2),
            "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 2),
            "cpu_p95_ms": round(float(np.percentile(cpu, 95)), 2)}


def main(argv: list[str] | None = None) -> int:
    """Collect, fit, check, ablate; with ``--write``, save the weights for :mod:`rag.spans`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("piaf", help="PIAF-dev (SQuAD-format JSON)")
    parser.add_argument("--write", action="store_true", help=f"write {sp.WEIGHTS_FILE}")
    parser.add_argument("--reuse", action="store_true", help="reuse the answers of the last run (same model only)")
    parser.add_argument("--no-ablation", action="store_true", help="skip the refits without each feature group")
    parser.add_argument("--no-syntax", action="store_true", help="fit only the weights without spaCy's features")
    args = parser.parse_args(argv)
    config = load_config()
    root = config.cache_path / "fit-spans" / canonical_model_name(config.model).replace("/", "--")
    cache = root / "answers.json"
    if args.reuse and cache.exists():
        records = load(cache)
    else:
        records = collect(args.piaf, root)
        save(records, cache)
    with_syntax = syntax.available("fr") and not args.no_syntax
    t0 = time.perf_counter()
    exs = examples(records, use_syntax=with_syntax)
    print(f"{len(exs)} questions, {sum(len(e.f1) for e in exs)} candidates, syntax {with_syntax} "
          f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    fit = [e for e in exs if e.record.half == "fit"]
    plain = np.array([f not in sp.GROUPS["syntax"] for f in sp.FEATURES], dtype=np.float32)
    fitted = {}
    for label, mask in (("without syntax", plain), ("with syntax", None))[:2 if with_syntax else 1]:
        weights = fit_spans(fit, mask)
        outs = outcomes(exs, weights, mask)
        fit_outs = [o for e, o in zip(exs, outs) if e.record.half == "fit"]
        conf = fit_confidence(fit_outs)
        threshold = choose_threshold(fit_outs, conf)
        model = sp.SpanModel(weights, conf, threshold, mask is None)
        fitted[label] = model
        print(f"\n## {label}\n\nspans (confidence threshold {threshold}, the highest utility on the fit half with "
              f"a penalty of {PENALTY} for a span sharing no word with the answer; 'seed' is a check, never fitted on):")
        print_table([scores(exs, outs, conf, threshold, h) for h in ("fit", "check", "seed")])
        print("\nthe same with a span for every answer (threshold 0):")
        print_table([scores(exs, outs, None, 0.0, h) for h in ("fit", "check", "seed")])
        print("\nwhere the short answers are lost (shares of the questions; the last two among those whose gold "
              "answer is a candidate):")
        print_table([losses(exs, outs, conf, threshold, h) for h in ("fit", "check", "seed")])
        print("\nthreshold trade-off (utility and short_f1 on the fit half, short_f1 on the check half):")
        fit_c = confidences(fit_outs, conf)
        print_table([{"threshold": t, "fit utility": round(utility(fit_outs, fit_c >= t), 3),
                      "fit short_f1": scores(exs, outs, conf, t, "fit")["short_f1"],
                      **{k: v for k, v in scores(exs, outs, conf, t, "check").items()
                         if k in ("short_given", "short_exact", "short_f1", "f1_when_given")}}
                     for t in sorted({0.0, 0.1, 0.2, 0.3, 0.4, threshold, 0.5, 0.6})])
        print("\ntime of find_span per answer:", timing(records, model))

    if not args.no_ablation:
        full = scores(exs, outcomes(exs, fitted["with syntax" if with_syntax else "without syntax"].weights),
                      None, 0.0, "check")
        rows = []
        for group, names in sp.GROUPS.items():
            if group == "syntax" and not with_syntax:
                continue
            mask = np.array([f not in names and (with_syntax or f not in sp.GROUPS["syntax"]) for f in sp.FEATURES],
                            dtype=np.float32)
            s = scores(exs, outcomes(exs, fit_spans(fit, mask), mask), None, 0.0, "check")
            rows.append({"without": group, "features": len(names), "short_exact": s["short_exact"],
                         "short_f1": s["short_f1"], "f1 added by the group": round(full["short_f1"] - s["short_f1"], 3),
                         "exact added": round(full["short_exact"] - s["short_exact"], 3)})
        for label, other in (("the filter: spans holding question words", examples(records, True, True, with_syntax)),
                             ("the type gate: candidates of the asked shape", examples(records, False, False,
                                                                                       with_syntax))):
            s = scores(other, outcomes(other, fit_spans([e for e in other if e.record.half == "fit"])), None, 0.0,
                       "check")
            rows.append({"without": label, "features": 0, "short_exact": s["short_exact"], "short_f1": s["short_f1"],
                         "f1 added by the group": round(full["short_f1"] - s["short_f1"], 3),
                         "exact added": round(full["short_exact"] - s["short_exact"], 3)})
        print("\nablation (check half, a span for every answer; each group removed and the model refitted):")
        print_table(rows)

    if args.write:
        def part(model: sp.SpanModel) -> dict:
            return {"span": {"features": list(sp.FEATURES), "weights": [round(float(v), 4) for v in model.weights]},
                    "confidence": {"features": list(sp.CONFIDENCE_FEATURES),
                                   "weights": [round(float(v), 4) for v in model.confidence[:-1]],
                                   "bias": round(float(model.confidence[-1]), 4)},
                    "threshold": model.threshold}
        data = {"fitted": f"eval/fit_spans.py {Path(args.piaf).name}: even-numbered articles, model {config.model}; "
                          f"threshold of highest utility (penalty {PENALTY})",
                **part(fitted["without syntax"])}
        if with_syntax:
            data["with_syntax"] = part(fitted["with syntax"])
        sp.WEIGHTS_FILE.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote {sp.WEIGHTS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
