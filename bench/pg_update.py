"""One changed article in 10,000 documents, in PostgreSQL: a whole `rag index build` of the file.

    python -m bench.pg_update postgresql://… [--documents 10000] [--profile] [--out bench/results/pg_update.json]

Writes a JSONL file of ``--documents`` articles composed from PIAF-dev's sentences, and fills the
database's embedding cache with a random unit vector for each of their chunks (chunked by the
real model's tokenizer), so that the first build, which commits every document one by one,
encodes nothing; the vectors' values do not matter to what is timed. The first build writes into
an empty index: the bulk path (batches of ``pg_bulk_batch`` documents, search indexes made after).
Then one article is changed and the build run again three times: it reads the file again (each
record whose bytes are unchanged is passed over unanalysed), encodes the changed article's chunks
with the real model and replaces that document in one transaction. ``--profile`` prints where the
first of these builds spends its time (cProfile, to stderr). The database must be empty (a
scratch database: its tables are dropped at the end).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.measure import emit
from rag.config import Config
from rag.embedding import get_embedder
from rag.indexing import Indexer
from rag.ingest.loading import load_paths
from rag.store.factory import open_store
from rag.text.normalize import text_hash

PIAF = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "piaf-dev.json"


def compose(path: Path, n: int) -> None:
    """``n`` JSONL articles of 6 PIAF-dev sentences each (distinct texts)."""
    data = json.loads(PIAF.read_text(encoding="utf-8"))
    sentences = [s.strip() + "." for a in data["data"] for p in a["paragraphs"] for s in p["context"].split(". ")
                 if len(s) > 40]
    rng = random.Random(n)
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            text = " ".join(rng.sample(sentences, 6)) + f" Dépêche numéro {i}."
            out.write(json.dumps({"title": f"Dépêche {i}", "text": text}, ensure_ascii=False) + "\n")


def main() -> None:
    """Fill, change one article, time the builds; print (and write) the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--profile", action="store_true", help="profile the first one-article build (stderr)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rag-pgu-"))
    embedder = get_embedder()
    config = Config(index_dir=args.url)
    indexer = Indexer(config, embedder)
    out: dict = {"documents": args.documents, "load_before": [round(x, 1) for x in os.getloadavg()]}
    try:
        path = folder / "articles.jsonl"
        compose(path, args.documents)
        t0 = time.perf_counter()
        hashes = {text_hash(t) for _, _, t in indexer.chunk(load_paths([path]).documents)}
        rng = np.random.default_rng(0)
        vectors = rng.standard_normal((len(hashes), embedder.dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store = open_store(args.url, create=True)
        store.cache_vectors(indexer.cache_key, zip(sorted(hashes), vectors))
        out["chunks"] = len(hashes)
        out["chunk_and_cache_s"] = round(time.perf_counter() - t0, 1)
        first = indexer.build([path], progress=False)
        out["first_build"] = {"seconds": round(first.seconds, 1), "encoded": first.encoded,
                              "per_document_ms": round(first.seconds / args.documents * 1000, 2)}
        lines = path.read_text(encoding="utf-8").splitlines()
        runs = []
        for i in range(3):
            record = json.loads(lines[4321 % len(lines)])
            record["text"] += f" Mise à jour {i} : le ministère a confirmé l'information dans la soirée."
            lines[4321 % len(lines)] = json.dumps(record, ensure_ascii=False)
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            profile = cProfile.Profile() if args.profile and i == 0 else None
            if profile:
                profile.enable()
            report = indexer.build([path], progress=False)
            if profile:
                profile.disable()
                text = io.StringIO()
                pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(30)
                print(text.getvalue(), file=sys.stderr)
            runs.append({"seconds": round(report.seconds, 2), "updated": len(report.updated),
                         "encoded": report.encoded, "encode_s": round(report.encode_seconds, 2)})
        out["one_changed_article"] = runs
        out["verify"] = store.verify()
        store.drop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    out["load_after"] = [round(x, 1) for x in os.getloadavg()]
    emit(out, args.out)


if __name__ == "__main__":
    main()
