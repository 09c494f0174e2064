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

Metrics are computed by :mod:`.metrics`; reports are written by :mod:`.reports`.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from ..config import Config
from ..embedding import canonical_model_name
from ..indexing.changes import BuildReport
from ..indexing.indexer import Indexer
from ..pipeline import RAG
from ..retrieval.fusion import Mode
from ..schema import Answer
from ..store.layout import FORMAT_VERSION, index_exists, now_iso
from .metrics import (
    DEPTH,
    contains_answer,
    exact_match,
    first_gold_rank,
    hit_curve,
    mean,
    percentiles,
    retrieval_metrics,
    token_f1,
)
from .qasets import QASet


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
    short: str | None = None                                          # the short answer's text, if any
    short_exact: bool | None = None
    short_f1: float | None = None
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
    res.short = ans.short.text if ans.short is not None else None  # no short answer scores 0
    res.short_exact = res.short is not None and exact_match(res.short, res.answers)
    res.short_f1 = round(token_f1(res.short, res.answers), 4) if res.short is not None else 0.0
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


def evaluate(qa: QASet, rag: RAG, run: EvalRun) -> list[QuestionResult]:
    """Ask every question through ``rag`` and record what happened.

    For each question the query embedding is computed once and timed; each retrieval mode's
    latency and the answer's latency include it when they use it. One warm-up question (not
    counted) loads the model first.
    """
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
        report["answer"] = {"contains": mean([bool(r.contains) for r in answerable]),
                            "f1": mean([r.f1 or 0.0 for r in answerable]),
                            "short_exact": mean([bool(r.short_exact) for r in answerable]),
                            "short_f1": mean([r.short_f1 or 0.0 for r in answerable]),
                            "citation_precision": round(sum(r.citations_ok for r in answerable) / cits, 4) if cits else None}
        report["abstention"] = {"unanswerable": len(unanswerable),
                                "abstained": mean([bool(r.abstained) for r in unanswerable]),
                                "false_abstention": mean([bool(r.abstained) for r in answerable])}
        report["latency_ms"] = percentiles([r.latency_ms["answer"] for r in results])
    else:
        report["answer"] = {"contains": None, "f1": None, "citation_precision": None, "short_exact": None,
                            "short_f1": None}
        report["abstention"] = {"unanswerable": len(unanswerable), "abstained": None, "false_abstention": None}
        report["latency_ms"] = modes[main.value]["latency_ms"]
    report.update({"modes": modes, "k": run.k, "limit": run.limit, "index": index,
                   "config": config.as_dict(), "created": now_iso()})
    return report


# -- the corpus of a run ---------------------------------------------------------------------
def docs_index(paths: Sequence[str], config: Config, progress: bool = True,
               folder: Path | str | None = None) -> tuple[Path | str, bool, BuildReport]:
    """Bring the index of ``paths`` up to date and return (its folder, whether it existed, the build's report).

    ``folder`` may be a ``postgresql://`` address: the documents are indexed in that database.

    Without ``folder``, the index lives in the cache (``config.cache_path``), in a folder named by
    the paths and the model, chunking and index format, so a run on the same corpus encodes only
    what changed since the last one.
    """
    resolved = sorted(str(Path(p).resolve()) for p in paths)
    if folder is None:
        key = json.dumps([resolved, canonical_model_name(config.model), config.chunk_tokens, config.chunk_overlap,
                          config.title_tokens, FORMAT_VERSION])
        folder = config.cache_path / "eval-index" / hashlib.sha256(key.encode()).hexdigest()[:16]
    reused = index_exists(folder)
    report = Indexer(config).build(paths, index_dir=folder, wait=600, progress=progress)
    if isinstance(folder, Path):  # a folder (not a database): what it was built from, beside it
        (folder / "eval-paths.json").write_text(json.dumps({"paths": resolved}, indent=1), encoding="utf-8")
    return folder, reused, report


def result_rows(results: list[QuestionResult]) -> list[dict[str, Any]]:
    """Per-question details as JSON-able dicts (answers cut to 500 characters)."""
    rows = []
    for r in results:
        row = asdict(r)
        if row["answer"] and len(row["answer"]) > 500:
            row["answer"] = row["answer"][:500] + "…"
        rows.append(row)
    return rows
