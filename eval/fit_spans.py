"""Fit the span finder (short answers) on PIAF-dev, end to end, and check it on held-out questions.

Usage (from the project root; a few minutes on 2 cores, the indexes come from the embedding cache)::

    python eval/fit_spans.py ../shared/data/piaf-dev.json            # fit, print the check tables
    python eval/fit_spans.py ../shared/data/piaf-dev.json --write    # ... and write rag/answering/span_weights.json
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
on the candidates of best F1 (``--cv``: its L2 penalty and the targets' sharpness chosen by
cross-validation over the fit half's articles, 4 folds); the second stage re-ranks the first
stage's 10 best, fitted on first-stage scores of held-out folds (:mod:`rag.answering.span_rerank`);
the confidence model is a logistic regression on the chosen span's F1 over the fit half's held-out
picks, and the threshold the one of highest utility there (a span shown counts its F1, one
sharing no word with the answer -0.5). The fit with the parse scores only the sentences the fit
without it believes in (``--parse-mass``). The ablation refits both stages without each feature
group, and with other candidate rules (:class:`rag.answering.spans.Rules`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fit_answerer import article_of, build_indexes  # noqa: E402
from span_recall import recall_table  # noqa: E402

from rag.answering import extractive as ex  # noqa: E402
from rag.answering import spans as sp  # noqa: E402
from rag.answering import syntax  # noqa: E402
from rag.answering.span_rerank import rerank_features  # noqa: E402
from rag.config import load_config  # noqa: E402
from rag.embedding import canonical_model_name  # noqa: E402
from rag.evaluation import docs_index, load_qa, token_f1  # noqa: E402
from rag.evaluation.metrics import exact_match  # noqa: E402
from rag.ingest import load_paths  # noqa: E402
from rag.pipeline import RAG  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEED_QA = ROOT / "eval" / "seed_qa.jsonl"
L2 = 3e-3  # the first stage's L2 penalty (the cross-validation's grid: GRID)
FOLDS = 4  # cross-validation folds of the fit half (by article)
# What --cv chose, per fit: (the first stage's L2 penalty, gamma, the second stage's L2 penalty or None for none).
CHOSEN = {"without syntax": (3e-3, 16.0, 0.1), "with syntax": (3e-3, 4.0, None)}
PARSE_MASS = 1.0  # the share of the belief (fit without the parse) the parsed sentences hold
GAMMA = 4.0  # sharpness of the fitting targets (see fit_softmax)
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
    article: int = -1             # PIAF-dev's article (the cross-validation folds of the fit half split them)


def ask_all(rag: RAG, items, half_of, article_of_item=lambda item: -1) -> list[Record]:
    """Answer every item with the real extractive answerer and keep the sentences it quotes."""
    answerer = ex.ExtractiveAnswerer.from_config(rag.config)
    out = []
    for n, item in enumerate(items):
        request = rag.retrieve(item.question)
        rec = Record(item.question, request.lang if request else "fr", list(item.answers), half_of(item),
                     article=article_of_item(item))
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
                      lambda item: "fit" if where[item.squad_id][0] % 2 == 0 else "check",
                      lambda item: where[item.squad_id][0])
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


def examples(records: list[Record], rules: sp.Rules = sp.RULES, use_syntax: bool = False,
             select: np.ndarray | None = None, parse_mass: float = 1.0) -> list[Example]:
    """Generate every record's candidates and score each against the gold answers.

    ``rules``, ``use_syntax``, ``select``, ``parse_mass``: as in :func:`rag.answering.spans.candidates`
    (the ablation measures other rules; ``use_syntax`` fills the syntax group when spaCy is installed).
    """
    out = []
    for r in records:
        q = sp.analyse_question(r.question, r.lang, lambda t, r=r: r.idf.get(t, 1.0))
        cands = sp.candidates(q, r.sentences, rules, use_syntax, r.question, select, parse_mass)
        texts = [r.sentences[s].text[a - r.sentences[s].start:b - r.sentences[s].start]
                 for s, a, b in zip(cands.sentence.tolist(), cands.start.tolist(), cands.end.tolist())]
        out.append(Example(r, q.asked, cands, np.array([token_f1(t, r.answers) for t in texts], dtype=np.float32),
                           np.array([exact_match(t, r.answers) for t in texts], dtype=bool), texts))
    return out


# -- the span model: softmax regression towards the best candidates -------------------------------
def fit_softmax(xs: list[np.ndarray], f1s: list[np.ndarray], l2: float, gamma: float) -> np.ndarray:
    """Softmax-regression weights over groups of rows (one group per question): cross-entropy towards
    targets ∝ F1 ** ``gamma`` within each group, plus ``l2`` times the squared weights.

    Each question's target spreads over its rows by their F1 against the gold answers, raised to
    ``gamma`` (large: the best candidates only; 1: partial overlaps count in proportion); questions
    without a row of positive F1 teach nothing and are left out.
    """
    keep = [k for k, f in enumerate(f1s) if len(f) and f.max() > 0]
    x = sparse.csr_matrix(np.concatenate([xs[k] for k in keep]).astype(np.float32))
    xt = x.T.tocsr()
    sizes = np.array([len(f1s[k]) for k in keep])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    seg = np.repeat(np.arange(len(keep)), sizes)
    target = np.concatenate([(f1s[k] / f1s[k].max()) ** gamma for k in keep]).astype(np.float64)
    target /= np.add.reduceat(target, starts)[seg]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = (x @ w.astype(np.float32)).astype(np.float64)
        z -= np.maximum.reduceat(z, starts)[seg]
        e = np.exp(z)
        sums = np.add.reduceat(e, starts)
        p = e / sums[seg]
        total = -(target * (z - np.log(sums)[seg])).sum() / len(keep) + l2 * w @ w
        grad = (xt @ (p - target).astype(np.float32)).astype(np.float64) / len(keep) + 2 * l2 * w
        return total, grad

    res = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 400})
    return res.x.astype(np.float32)


def fit_spans(exs: list[Example], mask: np.ndarray | None = None, l2: float = L2, gamma: float = GAMMA) -> np.ndarray:
    """The first stage's weights (features in ``mask`` only): :func:`fit_softmax` over each question's candidates."""
    xs = [e.cands.features if mask is None else e.cands.features * mask for e in exs]
    return fit_softmax(xs, [e.f1 for e in exs], l2, gamma)


def out_of_fold(exs: list[Example], mask: np.ndarray | None, l2: float, gamma: float,
                k: int = FOLDS) -> list[np.ndarray]:
    """Each example's first-stage weights fitted without its fold (what the second stage learns from)."""
    fold = folds(exs, k)
    weights = [fit_spans([e for e, g in zip(exs, fold) if g != f], mask, l2, gamma) for f in range(k)]
    return [weights[g] for g in fold]


def fit_rerank(exs: list[Example], weights: list[np.ndarray], mask: np.ndarray | None,
               l2: float = 0.1, gamma: float = GAMMA) -> np.ndarray:
    """The second stage's weights: :func:`fit_softmax` over each question's first-stage top candidates."""
    xs, f1s = [], []
    for e, w in zip(exs, weights):
        if not len(e.f1):
            continue
        feats = e.cands.features if mask is None else e.cands.features * mask
        top, x = rerank_features(e.cands, feats @ w, e.asked)
        xs.append(x)
        f1s.append(e.f1[top])
    return fit_softmax(xs, f1s, l2, gamma)


def folds(exs: list[Example], k: int = FOLDS) -> np.ndarray:
    """The cross-validation fold of each example: its article, modulo ``k`` (articles never straddle folds)."""
    return np.array([(e.record.article // 2) % k for e in exs])


def cross_validate(exs: list[Example], grid: list[tuple[float, float]], rerank_grid: list[float],
                   k: int = FOLDS) -> tuple[tuple[float, float, float | None], list[dict]]:
    """(l2, gamma, the second stage's l2) whose held-out folds' picks have the best F1 + exact match (fit half).

    The first stage's (l2, gamma) come first, without the second stage; then each second-stage l2
    of ``rerank_grid`` with them (None: no second stage, when it does no better). For a held-out
    fold the second stage learns from first-stage scores of inner folds of the other ones.
    """
    fold = folds(exs, k)

    def held_out(l2: float, gamma: float, rerank_l2: float | None) -> dict:
        f1, exact = [], []
        for f in range(k):
            train = [e for e, g in zip(exs, fold) if g != f]
            w = fit_spans(train, None, l2, gamma)
            rerank = None if rerank_l2 is None else fit_rerank(train, out_of_fold(train, None, l2, gamma, k - 1),
                                                               None, rerank_l2, gamma)
            outs = outcomes([e for e, g in zip(exs, fold) if g == f], w, None, rerank)
            f1 += [o.f1 for o in outs]
            exact += [o.exact for o in outs]
        return {"l2": l2, "gamma": gamma, "rerank l2": rerank_l2, "cv f1": round(float(np.mean(f1)), 4),
                "cv exact": round(float(np.mean(exact)), 4)}

    rows = [held_out(l2, gamma, None) for l2, gamma in grid]
    best = max(rows, key=lambda r: r["cv f1"] + r["cv exact"])
    rows += [held_out(best["l2"], best["gamma"], r) for r in rerank_grid]
    best = max(rows, key=lambda r: r["cv f1"] + r["cv exact"])
    return (best["l2"], best["gamma"], best["rerank l2"]), rows


@dataclass
class Outcome:
    """The span chosen for one example: its F1, exact match and confidence features."""

    f1: float
    exact: bool
    x: np.ndarray | None  # CONFIDENCE_FEATURES (None: no candidate)


def outcomes(exs: list[Example], weights: np.ndarray | list[np.ndarray], mask: np.ndarray | None = None,
             rerank: np.ndarray | None = None) -> list[Outcome]:
    """Pick each example's best candidate under ``weights`` (one vector, or one per example) and ``rerank``."""
    out = []
    for k, e in enumerate(exs):
        if not len(e.f1):
            out.append(Outcome(0.0, False, None))
            continue
        feats = e.cands.features if mask is None else e.cands.features * mask
        w = weights[k] if isinstance(weights, list) else weights
        p = sp.final_probabilities(e.cands._replace(features=feats), sp.SpanModel(w, np.zeros(1), 0.0, rerank=rerank),
                                   e.asked)
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
    """Mean over the questions of what the spans shown are worth: their F1, minus ``penalty`` for one
    sharing no word."""
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

    The CPU time (this process only) is the figure to read on a machine other jobs share; the
    load average (1 minute) is read before and after. The parse cache is emptied before each
    answer (:func:`rag.answering.syntax.clear_cache`), so no sentence's parse is reused.
    """
    answered = [r for r in records if r.sentences]
    for r in answered[:50]:
        sp.find_span(r.question, r.lang, r.sentences, model, idf=r.idf.get)
    wall, cpu = [], []
    load = os.getloadavg()[0]
    for r in answered:
        syntax.clear_cache()
        t0, c0 = time.perf_counter(), time.process_time()
        sp.find_span(r.question, r.lang, r.sentences, model, idf=r.idf.get)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return {"answers": len(wall), "wall_p50_ms": round(float(np.percentile(wall, 50)), 2),
            "wall_p95_ms": round(float(np.percentile(wall, 95)), 2),
            "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 2),
            "cpu_p95_ms": round(float(np.percentile(cpu, 95)), 2),
            "load_1min_before_after": (round(load, 2), round(os.getloadavg()[0], 2))}


# Candidate rules the ablation compares with sp.RULES (each one change, then the rules before them all).
OTHER_RULES = {
    "no question word in a candidate": lambda r: r._replace(echo="none"),
    "10 words at most for every question": lambda r: r._replace(longest={None: sp.SHORT}),
    "the type gate on": lambda r: r._replace(gate=True),
    "all three (10 words, no question word, the gate)": lambda r: sp.Rules({None: sp.SHORT}, "none", True),
}
GRID = [(l2, gamma) for l2 in (3e-4, 1e-3, 3e-3) for gamma in (2.0, 4.0, 8.0, 16.0)]
RERANK_GRID = [1e-2, 1e-1, 3e-1, 1.0]


def main(argv: list[str] | None = None) -> int:
    """Collect, fit, check, ablate; with ``--write``, save the weights for :mod:`rag.spans`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("piaf", help="PIAF-dev (SQuAD-format JSON)")
    parser.add_argument("--write", action="store_true", help=f"write {sp.WEIGHTS_FILE}")
    parser.add_argument("--reuse", action="store_true", help="reuse the answers of the last run (same model only)")
    parser.add_argument("--no-ablation", action="store_true", help="skip the refits without each feature group")
    parser.add_argument("--no-syntax", action="store_true", help="fit only the weights without spaCy's features")
    parser.add_argument("--parse-mass", type=float, default=PARSE_MASS,
                        help="parse only the sentences holding this share of the fit without the parse (1: all)")
    parser.add_argument("--cv", action="store_true",
                        help="choose l2, gamma and the second stage by cross-validation over the fit half's articles "
                             "(else CHOSEN, what it chose)")
    args = parser.parse_args(argv)
    config = load_config()
    root = config.cache_path / "fit-spans" / canonical_model_name(config.model).replace("/", "--")
    cache = root / "answers.json"
    if args.reuse and cache.exists():
        records = load(cache)
    else:
        records = collect(args.piaf, root)
        save(records, cache)
    rules = sp.RULES
    print("\nthe gold answer among the candidates (shares of the questions; a question may break several rules):")
    print_table([{"rules": label, **row} for label, r in (("before", OTHER_RULES[list(OTHER_RULES)[-1]](rules)),
                                                             ("now", rules))
                 for row in recall_table(records, r)])
    with_syntax = syntax.available("fr") and not args.no_syntax
    fitted, l2s, exs, fit = {}, {}, [], []
    for label in ("without syntax", "with syntax")[:2 if with_syntax else 1]:
        t0 = time.perf_counter()
        select = fitted["without syntax"].weights if label == "with syntax" and args.parse_mass < 1 else None
        exs = examples(records, rules, label == "with syntax", select, args.parse_mass)
        print(f"{len(exs)} questions, {sum(len(e.f1) for e in exs)} candidates, {label} "
              f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
        fit = [e for e in exs if e.record.half == "fit"]
        l2, gamma, rerank_l2 = CHOSEN[label]
        if args.cv:
            (l2, gamma, rerank_l2), rows = cross_validate(fit, GRID, RERANK_GRID)
            print(f"\ncross-validation {label} on the fit half ({FOLDS} folds of its articles; the highest F1 + "
                  f"exact): l2 {l2}, gamma {gamma}, second stage's l2 {rerank_l2}")
            print_table(rows)
        l2s[label] = (l2, gamma, rerank_l2)
        weights = fit_spans(fit, None, l2, gamma)
        oof = out_of_fold(fit, None, l2, gamma)  # the fit half's picks as held out: what the later stages learn
        rerank = None if rerank_l2 is None else fit_rerank(fit, oof, None, rerank_l2, gamma)
        outs = outcomes(exs, weights, None, rerank)
        fit_outs = outcomes(fit, oof, None, rerank)
        conf = fit_confidence(fit_outs)
        threshold = choose_threshold(fit_outs, conf)
        model = sp.SpanModel(weights, conf, threshold, label == "with syntax", rules, rerank, select,
                             args.parse_mass if select is not None else 1.0)
        fitted[label] = model
        first_stage = {label: scores(exs, outcomes(exs, weights), None, 0.0, "check")}
        print(f"\n## {label}\n\nspans (confidence threshold {threshold}, the highest utility on the fit half with "
              f"a penalty of {PENALTY} for a span sharing no word with the answer; 'seed' is a check, never "
              "fitted on):")
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
        print("\nthe first stage alone (check half, threshold 0):", first_stage[label])
        print("\ntime of find_span per answer:", timing(records, model))

    if not args.no_ablation:
        best = fitted["with syntax" if with_syntax else "without syntax"]
        full = scores(exs, outcomes(exs, best.weights), None, 0.0, "check")  # the first stage's
        rows = []

        def refit(exs: list[Example], mask: np.ndarray | None) -> dict:  # the first stage refitted, check half scores
            weights = fit_spans([e for e in exs if e.record.half == "fit"], mask, l2, gamma)
            return scores(exs, outcomes(exs, weights, mask), None, 0.0, "check")

        def row(label: str, features: int, s: dict) -> dict:
            return {"without": label, "features": features, "short_exact": s["short_exact"], "short_f1": s["short_f1"],
                    "f1 added": round(full["short_f1"] - s["short_f1"], 3),
                    "exact added": round(full["short_exact"] - s["short_exact"], 3)}

        for group, names in sp.GROUPS.items():
            if group == "syntax" and not with_syntax:
                continue
            mask = np.array([f not in names and (with_syntax or f not in sp.GROUPS["syntax"]) for f in sp.FEATURES],
                            dtype=np.float32)
            rows.append(row(group, len(names), refit(exs, mask)))
        if best.rerank is not None:  # the second stage adds to the first stage's figures (negative: it adds)
            both = scores(exs, outcomes(exs, best.weights, None, best.rerank), None, 0.0, "check")
            rows.append(row("the second stage (re-ranking): with it", 0, both))
        for label, change in OTHER_RULES.items():
            other = examples(records, change(rules), with_syntax, best.select, best.parse_mass)
            rows.append(row(f"rules: {label}", 0, refit(other, None)))
        print("\nablation (check half, a span for every answer, the first stage alone; each group removed, or other "
              "candidate rules, and the first stage refitted; the second stage's row: what adding it changes, "
              "negative when it adds):")
        print_table(rows)

    if args.write:
        def part(model: sp.SpanModel) -> dict:
            return {"span": {"features": list(sp.FEATURES), "weights": [round(float(v), 4) for v in model.weights]},
                    "confidence": {"features": list(sp.CONFIDENCE_FEATURES),
                                   "weights": [round(float(v), 4) for v in model.confidence[:-1]],
                                   "bias": round(float(model.confidence[-1]), 4)},
                    "threshold": model.threshold, "parse_mass": model.parse_mass,
                    **({"rerank": {"features": list(sp.RERANK_ALL),
                                   "weights": [round(float(v), 4) for v in model.rerank]}}
                       if model.rerank is not None else {})}
        data = {"fitted": f"eval/fit_spans.py {Path(args.piaf).name}: even-numbered articles, model {config.model}; "
                          f"(l2, gamma, second stage l2) {l2s}; threshold of highest utility (penalty {PENALTY})",
                "rules": sp.rules_json(rules), **part(fitted["without syntax"])}
        if with_syntax:
            data["with_syntax"] = part(fitted["with syntax"])
        sp.WEIGHTS_FILE.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote {sp.WEIGHTS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
