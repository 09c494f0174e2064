"""Fit the fusion weight (``bm25_weight``) on PIAF-dev: even-numbered articles fit, odd-numbered ones check.

Usage (from the project root; builds, or brings up to date, the index ``rag eval`` uses for PIAF-dev)::

    python eval/fit_fusion.py ../shared/data/piaf-dev.json
    RAG_CHUNK_TOKENS=256 python eval/fit_fusion.py ../shared/data/piaf-dev.json   # another chunk length
    python eval/fit_fusion.py ~/.cache/rag/crosslingual/piaf-dev-en.json          # English questions (after
                                                                               # eval/crosslingual.py): the
                                                                               # crosslingual_bm25_weight

Every question is encoded once; BM25 and dense candidates are fused at each weight of
:data:`WEIGHTS`, exactly as :meth:`rag.retrieval.Retriever.search` does. Prints MRR@10 and
hit@5 per weight and half; the weight with the best MRR@10 on the fit half is the one to take.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rag.config import load_config  # noqa: E402
from rag.embedding import QUERY  # noqa: E402
from rag.evaluation.runner import docs_index  # noqa: E402
from rag.retrieval import Retriever  # noqa: E402

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("piaf", type=Path)
    parser.add_argument("--weights", type=float, nargs="+", default=WEIGHTS, help="the weights tried")
    args = parser.parse_args(argv)
    config = load_config()
    folder, _, _ = docs_index([str(args.piaf)], config, progress=False)
    data = json.loads(args.piaf.read_text(encoding="utf-8"))["data"]
    questions = [(ai % 2, f"#{ai}-{pi}", q["question"]) for ai, a in enumerate(data)
                 for pi, p in enumerate(a["paragraphs"]) for q in p["qas"]]
    retriever = Retriever(config, folder)
    vectors = retriever.embedder.encode([q for *_, q in questions], prompt=QUERY)
    table = dict(zip((q for *_, q in questions), vectors))
    retriever.query_vector = table.__getitem__  # each question encoded once, above
    print(f"model {retriever.embedder.name}, chunk_tokens {retriever.manifest.chunk_tokens}, "
          f"{retriever.store.counts()[1]} chunks")
    print("| bm25_weight | fit MRR@10 | fit hit@5 | check MRR@10 | check hit@5 |")
    print("| --- | --- | --- | --- | --- |")
    for weight in args.weights:
        # both weights: chunks in the question's language use the first, the others the second
        retriever.config = config.replace(bm25_weight=weight, crosslingual_bm25_weight=weight)
        ranks = []
        for half, gold, q in questions:
            hits = retriever.search(q, k=10)
            ranks.append(next((i for i, h in enumerate(hits) if h.source.endswith(gold)), 99))
        ranks = np.array(ranks)
        halves = np.array([h for h, *_ in questions])
        row = []
        for h in (0, 1):
            r = ranks[halves == h]
            row += [np.where(r < 10, 1 / (r + 1), 0).mean(), (r < 5).mean()]
        print(f"| {weight:.1f} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
