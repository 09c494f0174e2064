"""Latency of ``RAG.ask`` for one question on a warm index (the default configuration).

Builds (or reuses) an index of the seed articles plus the PIAF-dev contexts, warms it up with a
few questions, then times ``RAG.ask`` on N questions (the seed questions, then PIAF questions)
and, separately, the answering stage alone on the same passages. Prints p50/p95 in ms and writes
them as JSON.

    python bench/ask_latency.py                       # index in ~/.cache/rag-bench/ask-index
    python bench/ask_latency.py --index index/ -n 200 --out bench/ask_latency.json

The machine's load shows in the figures: say how loaded it was when you report them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag.config import load_config  # noqa: E402
from rag.indexing import Indexer  # noqa: E402
from rag.pipeline import RAG  # noqa: E402
from rag.store import layout  # noqa: E402

PIAF = ROOT.parent / "shared" / "data" / "piaf-dev.json"


def questions(n: int) -> list[str]:
    """The seed questions, then PIAF questions, ``n`` in all."""
    out = [json.loads(line)["question"] for line in (ROOT / "eval" / "seed_qa.jsonl").read_text("utf-8").splitlines()
           if line.strip()]
    if PIAF.exists():
        data = json.loads(PIAF.read_text(encoding="utf-8"))
        out += [qa["question"] for art in data["data"] for p in art["paragraphs"] for qa in p["qas"]]
    return out[:n]


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default=str(Path.home() / ".cache" / "rag-bench" / "ask-index"),
                        help="index folder (built from seeds/ and the PIAF-dev contexts when missing)")
    parser.add_argument("-n", type=int, default=100, help="questions to time (default 100)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed questions first (default 5)")
    parser.add_argument("--out", help="write the figures as JSON here")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own choice); on a "
                        "loaded 2-core machine, 1 thread encodes a question far faster than 2")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    config = load_config().replace(index_dir=args.index)
    if not layout.index_exists(Path(args.index)):
        paths = [ROOT / "seeds"] + ([PIAF] if PIAF.exists() else [])
        print(f"building {args.index} from {', '.join(map(str, paths))} …", file=sys.stderr)
        Indexer(config).build(paths, progress=False)
    rag = RAG(config)
    qs = questions(args.n + args.warmup)
    for q in qs[:args.warmup]:
        rag.ask(q)
    total, answering = [], []
    answerer = rag.answerer()
    for q in qs[args.warmup:]:
        t0 = time.perf_counter()
        rag.ask(q)
        total.append((time.perf_counter() - t0) * 1000)
        request = rag.retrieve(q)
        t0 = time.perf_counter()
        answerer.answer(request)
        answering.append((time.perf_counter() - t0) * 1000)
    status = rag.retriever.store.status()
    report = {
        "questions": len(total), "index": args.index, "documents": status["documents"], "chunks": status["chunks"],
        "ask_ms": {"p50": round(statistics.median(total), 1), "p95": round(percentile(total, 0.95), 1)},
        "answering_ms": {"p50": round(statistics.median(answering), 1), "p95": round(percentile(answering, 0.95), 1)},
        "mode": answerer.mode.value, "top_k": config.top_k, "cpus": os.cpu_count(), "torch_threads": _threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
    }
    print(f"RAG.ask, {report['questions']} questions, {status['documents']} documents / {status['chunks']} chunks:")
    print(f"  ask        p50 {report['ask_ms']['p50']:7.1f} ms   p95 {report['ask_ms']['p95']:7.1f} ms")
    print(f"  answering  p50 {report['answering_ms']['p50']:7.1f} ms   p95 {report['answering_ms']['p95']:7.1f} ms "
          f"(the {report['mode']} answerer alone, retrieval excluded)")
    print(f"  load average {report['load_average']} on {report['cpus']} CPUs, torch threads {report['torch_threads']}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
