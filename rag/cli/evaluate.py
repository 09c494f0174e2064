"""``rag eval``: retrieval and answers measured on a Q&A set, with reports."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import BadInput
from ..evaluation import reports
from ..evaluation.qasets import load_qa, resolve_gold
from ..evaluation.runner import EvalRun, docs_index, evaluate, summarize
from ..pipeline import RAG
from ..retrieval.fusion import Mode
from ..store.factory import is_database_url, open_store
from ..store.layout import index_exists
from .common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, config_of, index_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``rag eval``."""
    e = sub.add_parser("eval", help="measure retrieval and answers on a Q&A set",
                       description="Evaluate on a Q&A set: JSONL (id, question, answers, doc) or SQuAD-format JSON.")
    e.add_argument("qa_file", metavar="QA_FILE")
    e.add_argument("--docs", nargs="+", metavar="PATH",
                   help="index these for the run (a SQuAD .json adds its paragraphs); kept in a cache folder, "
                        "or in --index DIR if given, so later runs encode only what changed")
    index_arg(e)
    e.add_argument("--out", metavar="REPORT.json", help="write the JSON report")
    e.add_argument("--markdown", metavar="REPORT.md", help="write a Markdown report with plots")
    e.add_argument("-k", type=int, default=None, metavar="N", help="passages per question for the answer (default: top_k)")
    e.add_argument("--limit", type=int, metavar="N", help="only the first N questions")
    e.add_argument("--mode", choices=[m.value for m in Mode] + ["all"], default=Mode.HYBRID.value,
                   help="retriever to evaluate; 'all' reports them side by side")
    e.add_argument("--compare", metavar="OLD.json", help="print the difference per metric against an older report")
    e.add_argument("--fail-under", action="append", default=[], metavar="METRIC=VALUE",
                   help="exit 1 if METRIC (e.g. retrieval.mrr@10) is below VALUE; repeatable")
    e.add_argument("--retrieval-only", action="store_true", help="measure retrieval only, do not answer")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    e.set_defaults(handler=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    """``rag eval``: evaluate, print a summary, write the reports; the exit code.

    0 when done (and every ``--fail-under`` holds), 1 when a threshold is not met, 2 for bad
    input (unreadable Q&A file, unknown metric, gold document not in the index).
    """
    config = config_of(args)
    progress = not getattr(args, "quiet", False)
    try:
        thresholds = reports.parse_thresholds(args.fail_under)
        old = reports.load_report(args.compare) if args.compare else None
        qa = load_qa(args.qa_file)
    except BadInput as exc:
        print(f"rag eval: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.limit is not None and args.limit < 1 or args.k is not None and args.k < 1:
        print("rag eval: --limit and -k must be at least 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    docs = args.docs or ([str(qa.path)] if qa.kind == "squad" and not args.index else None)
    if docs:  # with --index too, the documents are indexed there instead of in the cache
        index_dir, cached, built = docs_index(docs, config, progress, _location(args.index) if args.index else None)
        for s in built.skipped:
            print(f"rag eval: skipped {s.path}: {s.reason}", file=sys.stderr)
    else:
        index_dir, cached = _location(config.index_dir), False
        if not is_database_url(index_dir) and not index_exists(index_dir):
            print(f"rag eval: no index in {index_dir}/: give --docs PATH ... or --index DIR "
                  f"(or build one: rag index build --index {index_dir})", file=sys.stderr)
            return EXIT_BAD_INPUT
    store = open_store(index_dir)
    missing = resolve_gold(qa, store)
    if missing:
        shown = "; ".join(f"{m.where}: {m.doc or m.question!r}" for m in missing[:3])
        print(f"rag eval: {len(missing)} gold document(s) are not in the index {index_dir}/, e.g. {shown}. "
              f"Index them too (--docs ...)", file=sys.stderr)
        return EXIT_BAD_INPUT
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
    return EXIT_FAILED if failed else EXIT_OK


def _location(index: str) -> Path | str:
    """An index folder as a path, a database address as it is."""
    return index if is_database_url(index) else Path(index)


def command_line(args: argparse.Namespace) -> str:
    """The ``rag eval`` command that reproduces a run (outputs and thresholds left out)."""
    parts = ["rag", "eval", args.qa_file]
    if args.docs:
        parts += ["--docs", *args.docs]
    if args.index:
        parts += ["--index", args.index]
    if args.mode != Mode.HYBRID.value:
        parts += ["--mode", args.mode]
    if args.k:
        parts += ["-k", str(args.k)]
    if args.limit:
        parts += ["--limit", str(args.limit)]
    if getattr(args, "retrieval_only", False):
        parts.append("--retrieval-only")
    return " ".join(parts)
