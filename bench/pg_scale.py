"""Retrieval latency of the PostgreSQL backend at 100,000 or 1,000,000 composed chunks.

    python -m bench.pg_scale postgresql://… --chunks 100000 [--questions 200] [--out bench/results/pg_scale.json]

The database must be empty (a scratch database: its tables are dropped at the end unless
``--keep``). Articles are composed of 3 to 9 PIAF-dev sentences drawn at random under a PIAF title,
cut into chunks at sentence ends at about 150 words; each chunk gets the BM25 terms of its text
(:func:`rag.text.analysis.index_terms`, computed once per sentence and title: the analysis goes word
by word, which the run checks on the first chunks) and a random unit vector of the model's
dimension (latency does not depend on the vectors' values; HNSW recall does, and is not measured
here), which also goes in the embedding cache, as a build puts it there. They are loaded by the
product's own first-load path (:meth:`rag.store.postgres.PgStore.apply`: COPY in batches, then the
HNSW index and the postings' keys, then VACUUM ANALYZE, then the packed postings) under a manifest
of the real model.

Then ``--questions`` PIAF-dev questions go through the real retriever (:class:`rag.retrieval.retriever.
Retriever`, hybrid, k = 10, the product's settings: HNSW with ``pg_ef_search`` above
``exact_search_limit``): one untimed pass encodes each question with the real model (the retriever
keeps its vectors) and warms the caches, and a second pass is timed, so the figures are retrieval
without the question's encoding; the lexical and the dense search are also timed alone, and the
lexical search over the row postings alone (in SQL) on 50 of the questions, which must find the same
chunks with the same scores. The load average is written beside the figures (the machine is shared).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from bench.measure import emit, latencies, percentiles_ms
from rag.config import Config
from rag.embedding import cache_key, encoder_recipe, get_embedder
from rag.evaluation.qasets import load_qa
from rag.retrieval.retriever import Retriever
from rag.schema import Document
from rag.store.base import DocumentChange, StoredChunk
from rag.store.layout import FORMAT_VERSION, Manifest, now_iso
from rag.store.postgres import PgStore
from rag.text.analysis import index_terms, query_terms
from rag.text.normalize import detect_language

PIAF = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "piaf-dev.json"
WORDS = 150  # words per chunk, about


class Composer:
    """Articles of PIAF-dev sentences, chunked at sentence ends, with their terms and random unit vectors."""

    def __init__(self, dim: int, seed: int = 0):
        data = json.loads(PIAF.read_text(encoding="utf-8"))
        self.titles = list(dict.fromkeys(a["title"] for a in data["data"]))
        self.sentences = list(dict.fromkeys(s.strip().rstrip(".") + "." for a in data["data"]
                                            for p in a["paragraphs"] for s in p["context"].split(". ")
                                            if len(s.strip()) > 20))
        self.terms = {p: index_terms(p, "fr") for p in self.titles + self.sentences}
        self.words = {p: len(p.split()) for p in self.sentences}
        self.dim, self.seed = dim, seed

    def changes(self, n_chunks: int, batch: int = 1000):
        """Documents (as a build hands them to the store) until ``n_chunks`` chunks are made."""
        rng = np.random.default_rng(self.seed)
        made, i = 0, 0
        while made < n_chunks:
            title = self.titles[int(rng.integers(len(self.titles)))]
            picks = [self.sentences[j] for j in rng.choice(len(self.sentences), int(rng.integers(3, 10)),
                                                           replace=False)]
            groups, cur, words = [], [], 0
            for s in picks:
                if cur and words + self.words[s] > WORDS:
                    groups.append(cur)
                    cur, words = [], 0
                cur.append(s)
                words += self.words[s]
            groups.append(cur)
            groups = groups[:n_chunks - made]
            text = " ".join(s for g in groups for s in g)
            key = f"synthetic://{i}"
            doc_id = hashlib.sha1(key.encode()).hexdigest()[:16]
            vectors = rng.standard_normal((len(groups), self.dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            chunks, pos = [], 0
            for o, (g, v) in enumerate(zip(groups, vectors)):
                body = " ".join(g)
                terms = [t for p in (title, *g) for t in self.terms[p]]
                chunks.append(StoredChunk(None, f"{doc_id}:{o}", o, pos, pos + len(body), body,
                                          hashlib.sha256(f"{title}\n{body}".encode()).hexdigest(), terms, v))
                pos += len(body) + 1
            doc = Document(doc_id, key, f"synthetic/{i:07d}", title, text, "fr",
                           hashlib.sha256(text.encode()).hexdigest())
            yield DocumentChange(None, doc, chunks)
            made += len(chunks)
            i += 1


def cached(changes, store: PgStore, key: str, every: int = 5000):
    """The changes, their chunks' vectors put in the embedding cache ``every`` chunks (as a build's encoding does)."""
    pending = []
    for change in changes:
        pending += [(c.hash, c.vector) for c in change.chunks]
        if len(pending) >= every:
            store.cache_vectors(key, pending)
            pending = []
        yield change
    store.cache_vectors(key, pending)


def check_terms(composer: Composer, n: int = 200) -> None:
    """The composed terms of the first ``n`` chunks are those of their text (the analysis is word by word)."""
    for change in composer.changes(n):
        for c in change.chunks:
            want = index_terms(f"{change.document.title}\n{c.text}", "fr")
            if list(c.terms) != want:
                raise SystemExit(f"composed terms differ from index_terms for chunk {c.id}: the shortcut is wrong")


def main() -> None:
    """Compose, load, time; print (and write) the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000, help="documents per transaction of the load")
    parser.add_argument("--keep", action="store_true", help="leave the index in the database")
    parser.add_argument("--reuse", action="store_true", help="time an index a --keep run left, without loading")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    embedder = get_embedder()
    config = Config(index_dir=args.url)
    out: dict = {"chunks_asked": args.chunks, "load_before": [round(x, 1) for x in os.getloadavg()]}
    store = PgStore(args.url, create=True)
    if not args.reuse:
        if store.manifest() is not None or store.counts()[0]:
            raise SystemExit(f"{store.folder} already holds an index: give an empty (scratch) database")
        composer = Composer(embedder.dim)
        check_terms(composer)
        manifest = Manifest(FORMAT_VERSION, embedder.name, embedder.dim, config.chunk_tokens, config.chunk_overlap,
                            config.title_tokens, 1, now_iso(), embedder.encoder.value,
                            encoder_recipe(embedder.encoder), query_prompt=embedder.prompts.get("query", ""),
                            passage_prompt=embedder.prompts.get("passage", ""))
        commits: list[float] = []
        key = cache_key(embedder.name, embedder.encoder)
        t0 = time.perf_counter()
        store.apply(cached(composer.changes(args.chunks), store, key), manifest, batch=args.batch,
                    committed=lambda: commits.append(time.perf_counter()))
        t1 = time.perf_counter()
        out["load"] = {"seconds": round(t1 - t0, 1), "includes": "composing, analysing, caching the vectors",
                       "batches": len(commits), "documents_per_batch": args.batch,
                       "rows_s": round(commits[-1] - t0, 1),
                       "indexes_manifest_vacuum_packing_s": round(t1 - commits[-1], 1),
                       "load_after": [round(x, 1) for x in os.getloadavg()]}
        out["cache_key"] = key
    docs, chunks = store.counts()
    out.update(documents=docs, chunks=chunks)
    sizes = store.query("SELECT pg_database_size(current_database()), pg_relation_size('chunks_hnsw'), "
                        "pg_total_relation_size('chunk_postings'), pg_total_relation_size('chunks')")[0]
    out["mb"] = dict(zip(("database", "hnsw", "chunk_postings", "chunks"), (round(s / 2**20) for s in sizes)))
    questions = [q.question for q in load_qa(PIAF).items]
    rng = np.random.default_rng(5)
    sample = [questions[i] for i in rng.choice(len(questions), min(args.questions, len(questions)), replace=False)]
    retriever = Retriever(config, embedder=embedder)
    search = retriever.index
    lang_of = {q: detect_language(q, config.default_lang) for q in sample}
    n = config.candidates

    def lexical(q):
        return search.lexical_search(q, n, None, lang_of[q], config.doc_weight)

    def dense(q):
        return search.dense_search(retriever.query_vector(q), n, None)

    for q in sample:  # encodes each question once (kept by the retriever), warms the server's caches
        retriever.search(q, 10)
    out["load_timed"] = [round(x, 1) for x in os.getloadavg()]
    def timed(fn):  # the untimed pass above warmed up every question
        return latencies(fn, sample, warmup=0)

    trips = timed(lambda q: store.query("SELECT 1"))
    out["retrieval_ms"] = {"hybrid_k10": percentiles_ms(timed(lambda q: retriever.search(q, 10))),
                           "lexical": percentiles_ms(timed(lexical)),
                           "dense": percentiles_ms(timed(dense)),
                           "select_1": percentiles_ms(trips)}
    check = sample[:50]  # the same BM25 over the row postings alone (in SQL): the same chunks and scores, slower
    rows = {q: search.lexical_search(q, n, None, lang_of[q], config.doc_weight, packed=False) for q in check}
    out["lexical_rows_sql_ms"] = percentiles_ms(latencies(
        lambda q: search.lexical_search(q, n, None, lang_of[q], config.doc_weight, packed=False), check, warmup=0))
    packed = {q: lexical(q) for q in check}
    same = [np.array_equal(rows[q][0], packed[q][0]) and np.allclose(rows[q][1], packed[q][1], atol=1e-6)
            for q in check]
    out["lexical_packed_equals_rows"] = f"{sum(same)} of {len(check)} questions (top {n}: chunks, order, scores)"
    out["query_terms_median"] = float(np.median([len(query_terms(q, "fr", lang_of[q])) for q in sample]))
    out["questions"] = len(sample)
    out["settings"] = {"exact_search_limit": config.exact_search_limit, "pg_ef_search": config.pg_ef_search,
                       "candidates": n, "question_encoding": "excluded (encoded in the untimed pass)"}
    out["load_after"] = [round(x, 1) for x in os.getloadavg()]
    if not args.keep:
        store.drop()
    emit(out, args.out)


if __name__ == "__main__":
    main()
