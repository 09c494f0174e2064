"""Speed of the int8 encoder: one question at a time, and PIAF-dev paragraphs in one call.

    python -m bench.encoders [--piaf ../shared/data/piaf-dev.json] [--questions 300] [--out FILE.json]

For each model (multilingual-e5-small, the default, and all-MiniLM-L6-v2) and each way the int8
products can run here (uint8 weights, and int8 weights where the CPU has VNNI), taking turns:
the p50 and p95 of encoding one question (query prompt) over ``--questions`` PIAF-dev questions,
and paragraphs a second for every PIAF-dev paragraph encoded in one call (passage prompt), with
the batches on one session per core. Checks on the way that both ways give the same vectors.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.corpus import load_piaf
from bench.measure import Timer, emit, latencies, machine, percentiles_ms
from rag.config import DEFAULT_MODEL, MINILM_MODEL
from rag.embedding.base import PASSAGE, QUERY
from rag.embedding.onnx import OnnxEmbedder, cpu_has_vnni

PIAF = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "piaf-dev.json"


def measure(embedders: dict[str, OnnxEmbedder], questions: list[str], paragraphs: list[str], rounds: int) -> dict:
    """Per embedder: question latency (first round) and the best paragraphs a second of ``rounds``."""
    out: dict = {name: {"paragraphs_per_s": []} for name in embedders}
    vectors = {}
    for name, embedder in embedders.items():
        out[name]["question_ms"] = percentiles_ms(latencies(lambda q: embedder.encode([q], prompt=QUERY), questions))
    for _ in range(rounds):
        for name, embedder in embedders.items():
            with Timer() as t:
                vectors[name] = embedder.encode(paragraphs, prompt=PASSAGE)
            out[name]["paragraphs_per_s"].append(round(len(paragraphs) / t.seconds, 1))
    first = next(iter(vectors.values()))
    out["same_vectors"] = all(np.array_equal(first, v) for v in vectors.values())
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the measurements; print (and with ``--out`` write) their figures as JSON."""
    p = argparse.ArgumentParser(prog="python -m bench.encoders", description=__doc__.split("\n\n")[0])
    p.add_argument("--piaf", type=Path, default=PIAF, help="PIAF-dev (SQuAD format)")
    p.add_argument("--questions", type=int, default=300, help="questions encoded one at a time")
    p.add_argument("--rounds", type=int, default=2, help="encodings of all the paragraphs, per way")
    p.add_argument("--out", type=Path, help="write the figures there as JSON")
    args = p.parse_args(argv)
    if not args.piaf.is_file():
        p.error(f"{args.piaf}: PIAF-dev not found (give its path with --piaf)")
    piaf = load_piaf(args.piaf)
    questions = list(dict.fromkeys(q.text for q in piaf.questions))[:args.questions]
    paragraphs = [d.text for d in piaf.documents]
    ways = {"uint8 weights": False, **({"int8 weights (VNNI)": True} if cpu_has_vnni() else {})}
    result = {"machine": machine(), "vnni": cpu_has_vnni(), "questions": len(questions), "paragraphs": len(paragraphs)}
    for model in (DEFAULT_MODEL, MINILM_MODEL):
        embedders = {way: OnnxEmbedder(model, signed=signed) for way, signed in ways.items()}
        result[model] = measure(embedders, questions, paragraphs, args.rounds)
    result["machine_after"] = machine()
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
