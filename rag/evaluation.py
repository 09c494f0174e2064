"""Evaluation: retrieval and answer quality of the pipeline on a Q&A set (``rag eval``).

Metrics (the evaluation contract of the design):

- ``hit@k`` / ``mrr@10``: a retrieved chunk of the gold document within the first k (answerable
  questions with a gold document only);
- ``contains``: share of answerable questions whose answer contains a gold answer; ``f1``: the
  best token F1 against a gold answer (SQuAD style), averaged over answerable questions;
- ``citation_precision``: share of citations (of answerable questions) that point into a gold
  document or, without one, whose excerpt contains a gold answer;
- ``abstained``: share of unanswerable questions answered by abstaining; ``false_abstention``:
  share of answerable ones where it abstained;
- latency p50/p95 of an answer (query embedding included).

Text is compared with :func:`rag.text.normalize_answer`. A metric with nothing to measure
(no unanswerable question, say) is ``null``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .config import Config
from .embedding import canonical_model_name
from .qasets import QAFormatError, QAItem, QASet, load_qa, resolve_gold
from .retrieval import Mode
from .schema import Answer
from .store import FORMAT_VERSION, IndexMissing, Store, now_iso
from .text import normalize_answer

DEPTH = 10                      # ranks looked at for hit@k and MRR@10
HIT_KS = (1, 3, 5, 10)
_MARKER = re.compile(r"\[\d+\]")


# -- metrics on one question -----------------------------------------------------------------
def answer_text(text: str) -> str:
    """An answer normalised for comparison, its ``[n]`` markers removed."""
    return normalize_answer(_MARKER.sub(" ", text))


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
    out: dict[str, float | None] = {f"hit@{k}": _mean([r is not None and r < k for r in ranks]) for k in HIT_KS}
    out["mrr@10"] = _mean([1.0 / (r + 1) if r is not None and r < DEPTH else 0.0 for r in ranks])
    return out


def hit_curve(ranks: Sequence[int | None]) -> list[float]:
    """hit@k for k = 1..10."""
    return [_mean([r is not None and r < k for r in ranks]) or 0.0 for k in range(1, DEPTH + 1)]


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50 and p95 in milliseconds (None for no values)."""
    if not values:
        return {"p50": None, "p95": None}
    return {"p50": round(float(np.percentile(values, 50)), 1), "p95": round(float(np.percentile(values, 95)), 1)}


def _mean(values: Sequence[float | bool]) -> float | None:
    return round(float(np.mean(values)), 4) if len(values) else None


# -- one question's outcome ------------------------------------------------------------------
@dataclass
class QuestionResult:
    """What happened to one question (one line of the details file)."""

    id: str
    question: str
    answers: list[str]
    gold: list[str]
    ranks: dict[str, int | None] = field(default_factory=dict)        # mode -> rank of the gold document
    first: dict[str, str] = field(default_factory=dict)               # mode -> "title (source)" of the first hit
    latency_ms: dict[str, float] = field(default_factory=dict)        # mode or "answer" -> ms
    answer: str | None = None
    abstained: bool | None = None
    contains: bool | None = None
    f1: float | None = None
    citations: int = 0
    citations_ok: int = 0


def judge_answer(res: QuestionResult, ans: Answer) -> None:
    """Score an answer against the gold answers and documents."""
    res.answer, res.abstained = ans.answer, bool(ans.abstained)
    if not res.answers:
        return
    gold = set(res.gold)
    res.contains = not ans.abstained and contains_answer(ans.answer, res.answers)
    res.f1 = 0.0 if ans.abstained else round(token_f1(ans.answer, res.answers), 4)
    res.citations = len(ans.citations)
    res.citations_ok = sum(1 for c in ans.citations
                           if (c.doc_id in gold if gold else contains_answer(c.excerpt, res.answers)))


# -- the run ---------------------------------------------------------------------------------
@dataclass
class EvalRun:
    """Settings of one evaluation."""

    modes: list[Mode]
    k: int
    answers: bool = True
    limit: int | None = None
    progress: bool = True


def evaluate(qa: QASet, rag: Any, run: EvalRun) -> list[QuestionResult]:
    """Ask every question (through ``rag``, a :class:`rag.pipeline.RAG`) and record what happened.

    For each question the query embedding is computed once and timed; each retrieval mode's
    latency and the answer's latency include it when they use it. One warm-up question (not
    counted) loads the model first.
    """
    from tqdm import tqdm

    retriever = rag.retriever
    items = qa.items[: run.limit] if run.limit else qa.items
    dense_needed = run.answers or any(m is not Mode.BM25 for m in run.modes)
    if items:  # first calls load the model and warm caches: a one-time cost, not a question's latency
        warm = items[0].question + " ?"
        for mode in run.modes:
            retriever.search(warm, DEPTH, mode=mode)
        if run.answers:
            rag.ask(warm, k=run.k)
    out = []
    for item in tqdm(items, desc="rag eval", unit="q", disable=None if run.progress else True, file=sys.stderr):
        res = QuestionResult(item.id, item.question, item.answers, item.gold)
        t0 = time.perf_counter()
        if dense_needed:
            retriever.query_vector(item.question)
        encode_ms = (time.perf_counter() - t0) * 1000
        for mode in run.modes:
            t0 = time.perf_counter()
            hits = retriever.search(item.question, DEPTH, mode=mode)
            ms = (time.perf_counter() - t0) * 1000 + (encode_ms if mode is not Mode.BM25 else 0.0)
            res.latency_ms[mode.value] = round(ms, 2)
            res.ranks[mode.value] = first_gold_rank([h.doc_id for h in hits], item.gold) if item.gold else None
            res.first[mode.value] = f"{hits[0].title} ({hits[0].source})" if hits else ""
        if run.answers:
            ans = rag.ask(item.question, k=run.k)
            res.latency_ms["answer"] = round(ans.latency_ms + encode_ms, 2)
            judge_answer(res, ans)
        out.append(res)
    return out


def summarize(qa: QASet, results: list[QuestionResult], run: EvalRun, config: Config,
              index: dict[str, Any]) -> dict[str, Any]:
    """The JSON report: the contract's keys, per-mode tables, the dataset, index and config."""
    answerable = [r for r in results if r.answers]
    unanswerable = [r for r in results if not r.answers]
    scored = [r for r in answerable if r.gold]
    main = run.modes[0] if len(run.modes) == 1 else Mode.HYBRID
    modes = {}
    for mode in run.modes:
        ranks = [r.ranks[mode.value] for r in scored]
        modes[mode.value] = {**retrieval_metrics(ranks), "latency_ms": percentiles([r.latency_ms[mode.value] for r in results]),
                             "hit_curve": hit_curve(ranks)}
    report: dict[str, Any] = {
        "dataset": qa.name, "qa_file": str(qa.path), "format": qa.kind,
        "questions": len(results), "answerable": len(answerable), "with_gold_document": len(scored),
        "retrieval": {k: v for k, v in modes[main.value].items() if k not in ("latency_ms", "hit_curve")},
        "retrieval_mode": main.value,
    }
    if run.answers:
        cits = sum(r.citations for r in answerable)
        report["answer"] = {"contains": _mean([bool(r.contains) for r in answerable]),
                            "f1": _mean([r.f1 or 0.0 for r in answerable]),
                            "citation_precision": round(sum(r.citations_ok for r in answerable) / cits, 4) if cits else None}
        report["abstention"] = {"unanswerable": len(unanswerable),
                                "abstained": _mean([bool(r.abstained) for r in unanswerable]),
                                "false_abstention": _mean([bool(r.abstained) for r in answerable])}
        report["latency_ms"] = percentiles([r.latency_ms["answer"] for r in results])
    else:
        report["answer"] = {"contains": None, "f1": None, "citation_precision": None}
        report["abstention"] = {"unanswerable": len(unanswerable), "abstained": None, "false_abstention": None}
        report["latency_ms"] = modes[main.value]["latency_ms"]
    report.update({"modes": modes, "k": run.k, "limit": run.limit, "index": index,
                   "config": config.as_dict(), "created": now_iso()})
    return report


# -- the corpus of a run ---------------------------------------------------------------------
def cache_root(config: Config) -> Path:
    """Where evaluation indexes are kept: ``cache_dir``, else ``$XDG_CACHE_HOME/rag`` or ``~/.cache/rag``."""
    if config.cache_dir:
        return Path(config.cache_dir)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag"


def docs_index(paths: Sequence[str], config: Config, progress: bool = True,
               folder: Path | None = None) -> tuple[Path, bool]:
    """Bring the index of ``paths`` up to date and return (its folder, whether it existed).

    Without ``folder``, the index lives in the cache (:func:`cache_root`), in a folder named by
    the paths and the model, chunking and index format, so a run on the same corpus encodes only
    what changed since the last one.
    """
    from .indexer import Indexer

    resolved = sorted(str(Path(p).resolve()) for p in paths)
    if folder is None:
        key = json.dumps([resolved, canonical_model_name(config.model), config.chunk_tokens, config.chunk_overlap,
                          config.title_tokens, FORMAT_VERSION])
        folder = cache_root(config) / "eval-index" / hashlib.sha256(key.encode()).hexdigest()[:16]
    reused = (folder / "rag.sqlite").exists()
    report = Indexer(config).build(paths, index_dir=folder, wait=600, progress=progress)
    (folder / "eval-paths.json").write_text(json.dumps({"paths": resolved}, indent=1), encoding="utf-8")
    for s in report.skipped:
        print(f"rag eval: skipped {s.path}: {s.reason}", file=sys.stderr)
    return folder, reused


def run_cli(args: argparse.Namespace, config: Config) -> int:
    """``rag eval``: evaluate, print a summary, write the reports; the exit code.

    0 when done (and every ``--fail-under`` holds), 1 when a threshold is not met, 2 for bad
    input (unreadable Q&A file, unknown metric, gold document not in the index).
    """
    from . import reports
    from .pipeline import RAG

    progress = not getattr(args, "quiet", False)
    try:
        thresholds = reports.parse_thresholds(args.fail_under)
        old = reports.load_report(args.compare) if args.compare else None
        qa = load_qa(args.qa_file)
    except (QAFormatError, ValueError) as exc:
        print(f"rag eval: {exc}", file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 1 or args.k is not None and args.k < 1:
        print("rag eval: --limit and -k must be at least 1", file=sys.stderr)
        return 2
    docs = args.docs or ([str(qa.path)] if qa.kind == "squad" and not args.index else None)
    if docs:  # with --index too, the documents are indexed there instead of in the cache
        index_dir, cached = docs_index(docs, config, progress, Path(args.index) if args.index else None)
    else:
        index_dir, cached = Path(config.index_dir), False
        if not (index_dir / "rag.sqlite").exists():
            raise IndexMissing(f"no index in {index_dir}/: give --docs PATH ... or --index DIR "
                               f"(or build one: rag index build --index {index_dir})")
    store = Store(index_dir)
    missing = resolve_gold(qa, store)
    if missing:
        shown = "; ".join(f"{m.where}: {m.doc or m.question!r}" for m in missing[:3])
        print(f"rag eval: {len(missing)} gold document(s) are not in the index {index_dir}/, e.g. {shown}. "
              f"Index them too (--docs ...)", file=sys.stderr)
        return 2
    modes = list(Mode) if args.mode == "all" else [Mode(args.mode)]  # hybrid first
    run = EvalRun(modes, args.k or config.top_k, not getattr(args, "retrieval_only", False), args.limit, progress)
    rag = RAG(config, index_dir)
    t0 = time.perf_counter()
    results = evaluate(qa, rag, run)
    status = store.status()
    index = {"folder": str(index_dir), "cached": cached, "documents": status["documents"], "chunks": status["chunks"],
             "docs": [str(p) for p in docs] if docs else None}
    report = summarize(qa, results, run, config, index)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["command"] = command_line(args)
    print(reports.summary_table(report))
    if old is not None:
        print(reports.compare_table(old, report))
    if args.out:
        reports.write_json(report, results, Path(args.out))
    if args.markdown:
        reports.write_markdown(report, results, Path(args.markdown), old)
    failed = reports.check_thresholds(report, thresholds)
    for line in failed:
        print(f"rag eval: {line}", file=sys.stderr)
    return 1 if failed else 0


def command_line(args: argparse.Namespace) -> str:
    """The ``rag eval`` command that reproduces a run (outputs and thresholds left out)."""
    parts = ["rag", "eval", args.qa_file]
    if args.docs:
        parts += ["--docs", *args.docs]
    if args.index:
        parts += ["--index", args.index]
    if args.mode != "hybrid":
        parts += ["--mode", args.mode]
    if args.k:
        parts += ["-k", str(args.k)]
    if args.limit:
        parts += ["--limit", str(args.limit)]
    if getattr(args, "retrieval_only", False):
        parts.append("--retrieval-only")
    return " ".join(parts)


def result_rows(results: list[QuestionResult]) -> list[dict[str, Any]]:
    """Per-question details as JSON-able dicts (answers cut to 500 characters)."""
    rows = []
    for r in results:
        row = asdict(r)
        if row["answer"] and len(row["answer"]) > 500:
            row["answer"] = row["answer"][:500] + "…"
        rows.append(row)
    return rows


__all__ = ["EvalRun", "QAItem", "QuestionResult", "answer_text", "contains_answer", "docs_index", "evaluate",
           "first_gold_rank", "hit_curve", "judge_answer", "percentiles", "retrieval_metrics", "run_cli",
           "summarize", "token_f1"]
