"""The PostgreSQL backend against the local one, on the same PIAF-dev index: retrieval latency, one
changed article, rank agreement.

    python -m bench.pg_backend LOCAL_INDEX postgresql://… [--questions 300] [--out bench/results/pg_backend.json]

Both indexes must hold the same documents (``rag eval piaf-dev.json`` builds the local one in the
cache, ``rag eval piaf-dev.json --docs piaf-dev.json --index postgresql://…`` the other, or
``rag index copy``). Each question is asked once to warm up, then timed on a second pass, on both
backends in turn; the load average is printed beside the figures (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.measure import emit, percentiles_ms
from rag.config import Config
from rag.embedding import get_embedder
from rag.evaluation.qasets import load_qa
from rag.indexing import Indexer
from rag.retrieval.retriever import Retriever
from rag.store.factory import open_store

PIAF = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "piaf-dev.json"


def latency(local: Retriever, pg: Retriever, questions: list[str]) -> dict:
    """Each backend's retrieval time per question (hybrid, the product's k), and how often their top 10 differ."""
    times: dict[str, list[float]] = {"local": [], "postgres": []}
    differ = 0
    for q in questions:
        local.search(q), pg.search(q)  # warm: the query vector is cached, pages are in memory
    for q in questions:
        t0 = time.perf_counter()
        a = local.search(q, 10)
        t1 = time.perf_counter()
        b = pg.search(q, 10)
        t2 = time.perf_counter()
        times["local"].append(t1 - t0)
        times["postgres"].append(t2 - t1)
        differ += [h.chunk_id for h in a] != [h.chunk_id for h in b]
    return {**{k: percentiles_ms(v) for k, v in times.items()}, "top10_lists_differing": differ,
            "questions": len(questions)}


def scratch_database(url: str, name: str) -> str:
    """A new, empty database ``name`` (with pgvector) on the server of ``url``; its address."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(url)
    other = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    with psycopg.connect(other, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return other


def one_changed_article(server_url: str, embedder) -> dict:
    """Seconds for a build that finds one PIAF-dev article changed (the file read, one document replaced),
    in a database of its own on the same server."""
    url = scratch_database(server_url, "rag_bench_update")
    data = json.loads(PIAF.read_text(encoding="utf-8"))
    folder = Path(tempfile.mkdtemp(prefix="rag-pgb-"))
    try:
        copy = folder / "piaf-dev.json"
        paragraph = data["data"][0]["paragraphs"][0]
        out = []
        for i in range(3):
            paragraph["context"] += f" Mise à jour {i}."
            copy.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
            if i == 0:  # index the copy once, then change one article
                Indexer(Config(index_dir=url), embedder).build([copy], progress=False)
                continue
            t0 = time.perf_counter()
            report = Indexer(Config(index_dir=url), embedder).build([copy], progress=False, prune=False)
            out.append({"seconds": round(time.perf_counter() - t0, 2), "updated": len(report.updated),
                        "encoded": report.encoded, "encode_seconds": round(report.encode_seconds, 2)})
        return {"runs": out, "documents": open_store(url).counts()[0]}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    """Run the measures and print (and write) them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("local")
    parser.add_argument("url")
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    embedder = get_embedder()
    questions = [q.question for q in load_qa(PIAF).items][: args.questions]
    out = {"load_before": os.getloadavg()}
    out["latency"] = latency(Retriever(Config(index_dir=args.local), embedder=embedder),
                             Retriever(Config(index_dir=args.url), embedder=embedder), questions)
    out["load_after_latency"] = os.getloadavg()
    out["one_changed_article"] = one_changed_article(args.url, embedder)
    out["load_after"] = os.getloadavg()
    emit(out, args.out)


if __name__ == "__main__":
    main()
