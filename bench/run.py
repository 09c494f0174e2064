"""Run the benchmarks of issue 6 (speed and scale), print a table, write JSON, Markdown and a plot.

    python -m bench.run                       # everything, about 15 minutes on 2 cores
    python -m bench.run --quick               # small sizes, a minute or two: checks the benchmark works
    python -m bench.run --sections scale ann  # some sections only

Sections: ``build`` (throughput, rebuild, int8 vs torch quality), ``langchain`` (side by side),
``update`` (one changed article in 10,000), ``scale`` (latency and memory at 1k/10k/100k
chunks), ``ann`` (IVF recall). Work files (indexes, encoded vectors) go to ``bench/.cache/``
and are reused by the next run where they can be.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("build", "langchain", "update", "scale", "ann")


@dataclass
class Plan:
    """Sizes of one run."""

    piaf_docs: int | None = None
    questions: int = 2000
    probe_questions: int = 200
    update_docs: int = 10_000
    sizes: list[int] = field(default_factory=lambda: [1_000, 10_000, 100_000])
    ann_sizes: list[int] = field(default_factory=lambda: [100_000, 300_000])
    ann_queries: int = 500
    rounds: int = 4  # raw encodes and builds per encoder in 'build': the best of each is compared


QUICK = Plan(piaf_docs=24, questions=30, probe_questions=20, update_docs=150, sizes=[100, 400],
             ann_sizes=[5_000], ann_queries=50, rounds=2)


def build_parser() -> argparse.ArgumentParser:
    """Options of ``python -m bench.run``."""
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--out", default=str(ROOT / "bench" / "results.json"), metavar="FILE.json",
                   help="JSON results (a .md table and a .png plot are written beside it)")
    p.add_argument("--piaf", default=str(ROOT.parent / "shared" / "data" / "piaf-dev.json"), metavar="FILE",
                   help="PIAF-dev (SQuAD format)")
    p.add_argument("--workdir", default=str(ROOT / "bench" / ".cache" / "work"), metavar="DIR")
    p.add_argument("--quick", action="store_true", help="tiny sizes, to check that everything runs")
    p.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--encoders", nargs="+", default=["onnx-int8", "torch"], choices=["onnx-int8", "torch"],
                   help="encoders compared in 'build' (the first one is used everywhere else)")
    p.add_argument("--sizes", nargs="+", type=int, metavar="N", help="chunk counts for 'scale'")
    p.add_argument("--update-docs", type=int, metavar="N", help="articles in the 'update' index")
    p.add_argument("--no-cli", action="store_true", help="skip the new-process timings of 'build'")
    return p


def _subset(piaf_path: Path, docs: int, workdir: Path) -> Path:
    """The first ``docs`` paragraphs of a SQuAD file, as a new file (quick runs)."""
    data = json.loads(piaf_path.read_text(encoding="utf-8"))
    out, left = [], docs
    for article in data["data"]:
        if left <= 0:
            break
        paragraphs = article["paragraphs"][:left]
        left -= len(paragraphs)
        out.append({**article, "paragraphs": paragraphs})
    path = workdir / f"piaf-first-{docs}.json"
    path.write_text(json.dumps({"data": out}, ensure_ascii=False), encoding="utf-8")
    return path


def run(args: argparse.Namespace) -> dict:
    """Run the chosen sections; returns the results (without the summary)."""
    from . import ann, build, langchain_side, scale, update
    from .corpus import load_piaf
    from .measure import machine

    plan = dataclasses.replace(QUICK if args.quick else Plan())
    if args.sizes:
        plan.sizes = sorted(args.sizes)
    if args.update_docs:
        plan.update_docs = args.update_docs
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    piaf_path = Path(args.piaf)
    if not piaf_path.is_file():
        raise FileNotFoundError(f"{piaf_path}: PIAF-dev not found (give its path with --piaf)")
    if plan.piaf_docs:
        piaf_path = _subset(piaf_path, plan.piaf_docs, workdir)
    piaf = load_piaf(piaf_path)
    encoder = args.encoders[0]
    results: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine(), "quick": args.quick,
                     "piaf": {"file": str(piaf_path), "documents": len(piaf.documents), "questions": len(piaf.questions)},
                     "default_encoder": encoder}
    timings = {}
    for name in SECTIONS:
        if name not in args.sections:
            continue
        t0 = time.perf_counter()
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        if name == "build":
            results["build"] = build.run(piaf, workdir, args.encoders, plan.questions, cli=not args.no_cli,
                                         rounds=plan.rounds)
        elif name == "langchain":
            results["langchain"] = langchain_side.run(piaf, workdir, encoder, plan.questions)
        elif name == "update":
            results["update"] = update.run(piaf, workdir, plan.update_docs, encoder)
        elif name == "scale":
            results["scale"] = scale.run(piaf, workdir, plan.sizes, encoder, plan.probe_questions)
        elif name == "ann":
            results["ann"] = ann.run(piaf, encoder, plan.ann_sizes, plan.ann_queries)
        timings[name] = round(time.perf_counter() - t0, 1)
    results["section_seconds"] = timings
    results["machine_after"] = machine()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="bench: %(levelname)s: %(message)s")
    import bm25s  # noqa: F401 - it sets its own logger to DEBUG when imported: import it before quietening it

    for noisy in ("sentence_transformers", "transformers", "faiss", "bm25s", "langchain_community"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    from .report import as_json, markdown, plot, summary_rows

    results = run(args)
    rows = summary_rows(results)
    results["summary"] = as_json(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    table = markdown(rows)
    out.with_suffix(".md").write_text(table, encoding="utf-8")
    plot(results, out.with_suffix(".png"))
    print(table)
    print(f"bench: wrote {out}, {out.with_suffix('.md')}, {out.with_suffix('.png')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
