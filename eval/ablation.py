"""How each retrieval choice was measured: PIAF-dev, tuning half, held-out half and all questions.

Usage (from the project root; about 3 minutes on 2 cores)::

    python -m rag index build ../shared/data/piaf-dev.json --index /tmp/piaf-eval -q
    python eval/ablation.py ../shared/data/piaf-dev.json /tmp/piaf-eval

It reads the chunks and their vectors from the index, encodes the questions once, then scores
every variant with numpy: BM25 variants over the same chunks, fused with the same dense scores
the way :class:`rag.retrieval.Retriever` fuses them (min-max over the top 100 of each side,
missing = 0, overlapping chunks of a document collapsed). Articles with an even index form
the tuning half (A), odd ones the held-out half (B). Each row adds one change to the row
above it; "instead" rows replace the last change and were not kept.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import bm25s  # the BM25 variants measured here are not the product's, so bm25s itself computes them
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rag.embedding import get_embedder  # noqa: E402
from rag.ingest.loading import doc_id_for, squad_key  # noqa: E402
from rag.store import Store, layout  # noqa: E402
from rag.text.analysis import QUESTION_WORDS, STOPWORDS, content_words, stems  # noqa: E402
from rag.text.normalize import strip_accents  # noqa: E402


def terms(text: str, forms: bool, drop: frozenset[str] = frozenset(), prefix: int = 5) -> list[str]:
    """French analysis: stems, plus the exact form and prefix when ``forms``."""
    words = content_words(text, "fr", STOPWORDS["fr"] | drop, elide=True)
    if not forms:
        return stems(words, "fr")
    return stems(words, "fr") + ["=" + strip_accents(w) for w in words] + ["~" + strip_accents(w)[:prefix] for w in words]


def bm25_matrix(rows: list[list[str]], queries: list[list[str]], k1: float, b: float) -> np.ndarray:
    bm = bm25s.BM25(k1=k1, b=b)
    bm.index([r or ["\u2205"] for r in rows], show_progress=False)
    out = np.zeros((len(queries), len(rows)), dtype=np.float32)
    for i, q in enumerate(queries):
        known = [t for t in q if t in bm.vocab_dict]
        if known:
            out[i] = bm.get_scores(known)
    return out


def unit(m: np.ndarray) -> np.ndarray:
    return m / np.maximum(m.max(axis=1, keepdims=True), 1e-9)


def norm(s: np.ndarray, how: str) -> np.ndarray:
    if not len(s):
        return s
    if how == "zscore":
        return (s - s.mean()) / (s.std() or 1.0)
    if how == "max":
        return s / (s.max() or 1.0)
    lo, hi = s.min(), s.max()
    return np.ones_like(s) if hi - lo < 1e-9 else (s - lo) / (hi - lo)


def ranks(lex: np.ndarray, dense: np.ndarray, w: float, chunks: list[dict], gold: list[str],
          how: str = "minmax", rrf: bool = False, n: int = 100) -> list[int | None]:
    """Rank (0-based, first 10) of the gold document per question, fused like the Retriever."""
    doc = [c["doc"] for c in chunks]
    out = []
    for i in range(len(gold)):
        table: dict[int, list[float]] = {}
        for j, (m, wt) in enumerate(((lex, w), (dense, 1 - w))):
            if wt == 0:
                continue
            top = np.argsort(-m[i], kind="stable")[:n]
            if j == 0:
                top = top[m[i][top] > 0]
            vals = 1.0 / (60 + np.arange(1, len(top) + 1)) if rrf else norm(m[i][top], how)
            for c, v in zip(top.tolist(), vals.tolist()):
                table.setdefault(c, [0.0, 0.0])[j] = v
        score = {c: (b + d if rrf else w * b + (1 - w) * d) for c, (b, d) in table.items()}
        kept: list[int] = []
        for c in sorted(score, key=lambda c: (-score[c], c)):
            if any(doc[o] == doc[c] and chunks[c]["start"] < chunks[o]["end"] and chunks[o]["start"] < chunks[c]["end"]
                   for o in kept):
                continue
            kept.append(c)
            if len(kept) == 10:
                break
        out.append(next((r for r, c in enumerate(kept) if doc[c] == gold[i]), None))
    return out


def metrics(rk: list[int | None]) -> tuple[float, float, float, float, float]:
    hit = [np.mean([r is not None and r < k for r in rk]) for k in (1, 3, 5, 10)]
    return (*hit, float(np.mean([1 / (r + 1) if r is not None else 0.0 for r in rk])))


def main(squad: str, index: str) -> None:
    store = Store(index)
    rows = store.chunk_rows(store.chunk_ids())
    chunks = [{"rowid": r, "doc": c["doc_id"], "start": c["start"], "end": c["end"], "text": c["text"],
               "title": c["title"]} for r, c in sorted(rows.items())]
    ids, held = layout.load_vectors(store.folder, store.manifest()).contents()
    pos = {int(r): i for i, r in enumerate(ids)}
    vectors = np.vstack([held[pos[c["rowid"]]] for c in chunks])
    data = json.loads(Path(squad).read_text(encoding="utf-8"))
    qs = [(qa["question"], doc_id_for(squad_key(squad, ai, pi)), ai) for ai, a in enumerate(data["data"])
          for pi, p in enumerate(a["paragraphs"]) for qa in p["qas"]]
    gold = [g for _, g, _ in qs]
    halves = {"A": [a % 2 == 0 for _, _, a in qs], "B": [a % 2 == 1 for _, _, a in qs]}
    dense = get_embedder().encode([q for q, _, _ in qs]) @ vectors.T
    docs = sorted({c["doc"] for c in chunks})
    group = np.array([docs.index(c["doc"]) for c in chunks])
    qwords = QUESTION_WORDS["fr"]

    def lexical(forms: bool, drop: bool, k1: float, b: float, doc_weight: float, title_times: int = 1) -> np.ndarray:
        rows = [terms((c["title"] + "\n") * title_times + c["text"], forms) for c in chunks]
        queries = [terms(q, forms, qwords if drop else frozenset()) for q, _, _ in qs]
        chunk = bm25_matrix(rows, queries, k1, b)
        if not doc_weight:
            return chunk
        per_doc = [[] for _ in docs]
        for g, r in zip(group, rows):
            per_doc[g].extend(r)
        return (1 - doc_weight) * unit(chunk) + doc_weight * unit(bm25_matrix(per_doc, queries, k1, b)[:, group])

    print("| variant | retriever | A: MRR@10 | A: hit@5 | B: MRR@10 | B: hit@5 | hit@1 | hit@3 | hit@5 | hit@10 | MRR@10 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")

    def row(name: str, lex: np.ndarray, w: float, **kw) -> None:
        rk = ranks(lex, dense, w, chunks, gold, **kw)
        part = {h: metrics([r for r, m in zip(rk, mask) if m]) for h, mask in halves.items()}
        label = "bm25" if w == 1 else "dense" if w == 0 else ("rrf" if kw.get("rrf") else f"hybrid {w}")
        cells = [f"{part['A'][4]:.3f}", f"{part['A'][2]:.3f}", f"{part['B'][4]:.3f}", f"{part['B'][2]:.3f}",
                 *(f"{x:.3f}" for x in metrics(rk))]
        print(f"| {name} | {label} | " + " | ".join(cells) + " |", flush=True)

    base = lexical(False, False, 1.2, 0.75, 0.0)
    row("dense (MiniLM)", base, 0.0)
    row("stems, k1 1.2, b 0.75 (before)", base, 1.0)
    row("stems, k1 1.2, b 0.75 (before)", base, 0.8)
    row("instead: reciprocal rank fusion, k=60", base, 0.5, rrf=True)
    step = lexical(False, True, 1.2, 0.75, 0.0)
    row("+ question words dropped", step, 1.0)
    row("+ question words dropped", step, 0.8)
    step = lexical(False, True, 0.9, 0.5, 0.0)
    row("+ k1 0.9, b 0.5", step, 1.0)
    row("+ k1 0.9, b 0.5", step, 0.8)
    row("instead: title counted twice", lexical(False, True, 0.9, 0.5, 0.0, title_times=2), 0.8)
    step = lexical(True, True, 0.9, 0.5, 0.0)
    row("+ exact form and 5-letter prefix terms", step, 1.0)
    row("+ exact form and 5-letter prefix terms", step, 0.8)
    final = lexical(True, True, 0.9, 0.5, 0.3)
    row("+ document BM25, weight 0.3 (default)", final, 1.0)
    for w in (0.7, 0.8, 0.9):
        row("+ document BM25, weight 0.3 (default)", final, w)
    row("instead: z-score normalisation", final, 0.8, how="zscore")
    row("instead: divide by the best score", final, 0.8, how="max")
    row("instead: 50 candidates a side", final, 0.8, n=50)
    row("instead: document weight 0.5", lexical(True, True, 0.9, 0.5, 0.5), 0.8)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python eval/ablation.py PIAF.json INDEX_DIR")
    main(sys.argv[1], sys.argv[2])
