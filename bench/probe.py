"""Query latency and memory of one index, measured in a fresh process (as ``rag serve`` would hold it).

``python -m bench.probe --index DIR --questions FILE.json [--encoder E] [--lexical ram|mmap]``
prints one JSON object. The baseline memory is taken with the encoder loaded and warm, so the
difference is what the index costs: SQLite connection, FAISS vectors, BM25 postings, and the
pages the queries touch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from .measure import latencies, percentiles_ms, rss_mb


def _lexical_only(index: str, mmap: bool, questions: list[str]) -> dict:
    """Load only the BM25 postings, with or without memory mapping; memory and search time."""
    from rag.store import Store, layout

    store = Store(index)
    before = rss_mb()
    lexical = layout.load_lexical(store.folder, store.manifest(), mmap=mmap)
    loaded = rss_mb()
    times = []
    for q in questions:
        t0 = time.perf_counter()
        lexical.search(q, 100, lang="fr")
        times.append(time.perf_counter() - t0)
    return {"lexical": "mmap" if mmap else "ram", "rss_load_mb": round(loaded - before, 1),
            "rss_after_queries_mb": round(rss_mb() - before, 1), "search_ms": percentiles_ms(times)}


def probe(index: str, encoder: str, questions: list[str]) -> dict:
    """Latency of retrieval alone and of the full answer, query-encoding and per-retriever times, memory."""
    from rag.config import Config
    from rag.embedding import get_embedder
    from rag.pipeline import RAG
    from rag.store import Store

    embedder = get_embedder(encoder=encoder)
    embedder.encode(["Préchauffage du modèle."])
    base = rss_mb()
    t0 = time.perf_counter()
    config = Config(index_dir=index, encoder=encoder)
    rag = RAG(config, index)
    load_s = time.perf_counter() - t0
    loaded = rss_mb()
    retriever = rag.retriever
    encode = latencies(lambda q: embedder.encode([q]), questions)
    vectors = embedder.encode(questions)
    dense = latencies(lambda i: retriever.vectors.search(vectors[i], config.candidates), range(len(questions)))
    bm25 = latencies(lambda q: retriever.lexical.search(q, config.candidates, lang="fr",
                                                        doc_weight=config.doc_weight), questions)
    for q in questions:  # one untimed pass: pages of SQLite, FAISS and BM25 that queries touch
        rag.ask(q)
    retrieval, answer = [], []
    for q in questions:  # taking turns, so both see the same conditions
        retrieval += latencies(lambda x: retriever.search(x), [q], warmup=0)
        answer += latencies(lambda x: rag.ask(x), [q], warmup=0)
    after = rss_mb()
    chunks = Store(index).counts()[1]
    return {
        "chunks": chunks, "encoder": encoder, "vectors": retriever.vectors.describe(),
        "load_s": round(load_s, 2), "questions": len(questions),
        "retrieval_ms": percentiles_ms(retrieval), "answer_ms": percentiles_ms(answer),
        "encode_query_ms": percentiles_ms(encode), "dense_search_ms": percentiles_ms(dense),
        "bm25_search_ms": percentiles_ms(bm25),
        "rss_base_mb": round(base, 1), "rss_index_loaded_mb": round(loaded - base, 1),
        "rss_after_queries_mb": round(after - base, 1),
        "memory_per_chunk_kb": round((after - base) * 1024 / max(chunks, 1), 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: print the probe's JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.probe", description=__doc__.splitlines()[0])
    parser.add_argument("--index", required=True)
    parser.add_argument("--questions", required=True, help="JSON list of question strings")
    parser.add_argument("--encoder", default="onnx-int8")
    parser.add_argument("--lexical", choices=["ram", "mmap"], help="only load BM25, with or without mmap")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["RAG_ENCODER"] = args.encoder
    questions = json.loads(Path(args.questions).read_text(encoding="utf-8"))
    if args.lexical:
        result = _lexical_only(args.index, args.lexical == "mmap", questions)
    else:
        result = probe(args.index, args.encoder, questions)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
