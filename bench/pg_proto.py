"""Prototype of the PostgreSQL backend (issue 17): schema, bulk load, one-document updates, and search in SQL.

Not product code: :mod:`bench.pg_probe` measures it, so that the store and search interfaces can
be shaped to fit before the backend is written behind them.

Lexical side. The project's own analysis (:func:`rag.lexical.index_terms`) gives each chunk its
terms; the database keeps them as postings with raw counts, and the statistics BM25 needs: per
term its chunk and document frequencies, per chunk and document its length, and the totals
(chunks, documents, their summed lengths). BM25 (Lucene's variant, as bm25s computes it:
``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``, ``tf / (tf + k1 (1 - b + b len / avglen))``) is
then computed in the query from those, so one document's change touches its own rows and a few
counters, never the whole collection. The document-level share is the same BM25 over
documents; the blend divides each side by its best value, as :meth:`rag.lexical.LexicalIndex.scores`.

Dense side: ``halfvec`` (or ``vector``) column with an HNSW index, inner product on unit
vectors (= cosine). Fusion stays in Python (:func:`rag.retrieval.fuse`): the database returns
each side's (ids, scores), as the local backend does.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from rag.retrieval.pg_lexical import LEXICAL_SQL  # the product's BM25 in SQL

K1, B = 0.9, 0.5

SCHEMA = """
CREATE TABLE manifest (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE langs (code smallint PRIMARY KEY, name text UNIQUE NOT NULL);
CREATE SEQUENCE doc_no;
CREATE TABLE documents (
    doc_no integer UNIQUE NOT NULL DEFAULT nextval('doc_no'),
    id text PRIMARY KEY, key text UNIQUE NOT NULL, source text NOT NULL, title text NOT NULL,
    lang smallint NOT NULL REFERENCES langs(code), sha256 text NOT NULL, text text NOT NULL,
    meta jsonb NOT NULL DEFAULT '{{}}', chunks integer NOT NULL DEFAULT 0, indexed timestamptz NOT NULL DEFAULT now(),
    n_terms integer NOT NULL DEFAULT 0);
CREATE TABLE chunks (
    rowid bigint PRIMARY KEY, id text UNIQUE NOT NULL,
    doc_no integer NOT NULL REFERENCES documents(doc_no) ON DELETE CASCADE,
    ordinal integer NOT NULL, start integer NOT NULL, "end" integer NOT NULL, text text NOT NULL,
    hash text NOT NULL, n_terms integer NOT NULL, embedding {vtype}({dim}) NOT NULL);
CREATE INDEX chunks_doc ON chunks(doc_no);
CREATE SEQUENCE chunk_rowid;
CREATE TABLE embedding_cache (model text NOT NULL, hash text NOT NULL, vector bytea NOT NULL,
                              PRIMARY KEY (model, hash));
CREATE TABLE files (path text PRIMARY KEY, size bigint NOT NULL, mtime_ns bigint NOT NULL, ctime_ns bigint NOT NULL,
                    inode bigint NOT NULL, reader text NOT NULL);
-- lexical: terms numbered once, their frequencies kept up to date by each document's transaction
CREATE TABLE terms (term_id integer PRIMARY KEY, term text UNIQUE NOT NULL,
                    df integer NOT NULL DEFAULT 0, doc_df integer NOT NULL DEFAULT 0);
CREATE SEQUENCE term_id;
CREATE TABLE chunk_postings (term_id integer NOT NULL, rowid bigint NOT NULL, doc_no integer NOT NULL,
                             lang smallint NOT NULL, tf smallint NOT NULL, len smallint NOT NULL);
CREATE TABLE doc_postings (term_id integer NOT NULL, doc_no integer NOT NULL, lang smallint NOT NULL,
                           tf integer NOT NULL, len integer NOT NULL);
-- the same postings packed per (term, language, segment): int32 arrays in bytea, one segment per bulk batch
CREATE TABLE chunk_segments (term_id integer NOT NULL, lang smallint NOT NULL, segment integer NOT NULL,
                             rowids bytea NOT NULL, docs bytea NOT NULL, tfs bytea NOT NULL, lens bytea NOT NULL,
                             PRIMARY KEY (term_id, lang, segment));
CREATE TABLE doc_segments (term_id integer NOT NULL, lang smallint NOT NULL, segment integer NOT NULL,
                           docs bytea NOT NULL, tfs bytea NOT NULL, lens bytea NOT NULL,
                           PRIMARY KEY (term_id, lang, segment));
ALTER TABLE chunk_segments ALTER COLUMN rowids SET STORAGE EXTERNAL, ALTER COLUMN docs SET STORAGE EXTERNAL,
    ALTER COLUMN tfs SET STORAGE EXTERNAL, ALTER COLUMN lens SET STORAGE EXTERNAL;
ALTER TABLE doc_segments ALTER COLUMN docs SET STORAGE EXTERNAL, ALTER COLUMN tfs SET STORAGE EXTERNAL,
    ALTER COLUMN lens SET STORAGE EXTERNAL;
CREATE TABLE lexical_stats (one boolean PRIMARY KEY DEFAULT true CHECK (one), chunks bigint NOT NULL,
                            chunk_terms bigint NOT NULL, docs bigint NOT NULL, doc_terms bigint NOT NULL);
"""
# made after a bulk load (faster than maintained row by row)
INDEXES = """
ALTER TABLE chunk_postings ADD PRIMARY KEY (term_id, rowid) INCLUDE (doc_no, lang, tf, len);
CREATE INDEX chunk_postings_doc ON chunk_postings(doc_no);
ALTER TABLE doc_postings ADD PRIMARY KEY (term_id, doc_no) INCLUDE (lang, tf, len);
"""
HNSW = "CREATE INDEX chunks_hnsw ON chunks USING hnsw (embedding {ops}) WITH (m = {m}, ef_construction = {efc})"

# the packed side in one statement: the query terms' segments and the totals.
# side 0: chunk segments, 1: document segments, 2: the totals (int8send: 8 bytes big-endian)
PACKED_SQL = """
WITH q AS (
    SELECT t.term_id, q.lang, count(*)::int AS mult, t.df, t.doc_df
    FROM unnest(%(langs)s::smallint[], %(terms)s::text[]) AS q(lang, term) JOIN terms t ON t.term = q.term
    GROUP BY t.term_id, q.lang, t.df, t.doc_df)
SELECT 0, q.term_id, q.lang, q.mult, q.df, s.rowids, s.docs, s.tfs, s.lens
FROM q JOIN chunk_segments s ON s.term_id = q.term_id AND s.lang = q.lang
UNION ALL
SELECT 1, q.term_id, q.lang, q.mult, q.doc_df, NULL, s.docs, s.tfs, s.lens
FROM q JOIN doc_segments s ON s.term_id = q.term_id AND s.lang = q.lang
UNION ALL
SELECT 2, NULL, NULL, NULL, NULL, int8send(chunks), int8send(chunk_terms), int8send(docs), int8send(doc_terms)
FROM lexical_stats
"""
# the raw chunk BM25 of every matching chunk (for comparing with bm25s)
CHUNK_BM25_SQL = LEXICAL_SQL.split("d AS (")[0].rstrip().rstrip(",") + "\nSELECT rowid, s FROM c"
DENSE_SQL = "SELECT rowid, -(embedding <#> %(q)s) AS score FROM chunks ORDER BY embedding <#> %(q)s LIMIT %(n)s"
DENSE_ALLOWED_SQL = ("SELECT rowid, score FROM (SELECT rowid, -(embedding <#> %(q)s) AS score FROM chunks "
                     "WHERE doc_no = ANY(%(allowed)s::int[]) OFFSET 0) s ORDER BY score DESC LIMIT %(n)s")


@dataclass
class ChunkRow:
    """One chunk to store: its record, terms and vector."""

    rowid: int
    chunk_id: str
    ordinal: int
    start: int
    end: int
    text: str
    hash: str
    terms: list[str]
    vector: np.ndarray


@dataclass
class DocRow:
    """One document to store with its chunks."""

    doc_id: str
    key: str
    source: str
    title: str
    lang: str
    sha256: str
    text: str
    meta: dict
    chunks: list[ChunkRow]


def binary_copy(cur, sql: str, columns: list[tuple[Sequence[int], str]]) -> None:
    """COPY integer columns in PostgreSQL's binary format, built whole with numpy (no per-row Python)."""
    n = len(columns[0][0])
    fields = [("count", ">i2")]
    for i, (_, kind) in enumerate(columns):
        fields += [(f"len{i}", ">i4"), (f"v{i}", kind)]
    rows = np.zeros(n, dtype=np.dtype(fields))
    rows["count"] = len(columns)
    for i, (values, kind) in enumerate(columns):
        rows[f"len{i}"] = np.dtype(kind).itemsize
        rows[f"v{i}"] = np.asarray(values)
    header = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
    with cur.copy(sql) as cp:
        cp.write(header)
        step = 1 << 20
        for i in range(0, n, step):
            cp.write(rows[i:i + step].tobytes())
        cp.write(b"\xff\xff")


def _pairs(ids: np.ndarray, rows: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (term, row) pairs of the occurrences and their counts."""
    keys = np.sort(ids * n_rows + rows)
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1]))) if len(keys) else np.zeros(0, np.int64)
    counts = np.diff(np.append(starts, len(keys)))
    term, row = np.divmod(keys[starts], n_rows)
    return term, row, counts


def _score_segments(rows, info: dict, n: float, avg: float, doc_col: bool):
    """Each posting's BM25 weight (bm25s's Lucene formula, in its float precision) from fetched segments.

    ``rows`` are (term_id, lang, ids, [docs,] tfs, lens); a query term counted twice is added
    twice, as bm25s does. Returns (ids, their documents, weights).
    """
    ids, docs, weights = [], [], []
    for r in rows:
        mult, df, _doc_df = info[(r[0], r[1])]
        df_here = df if doc_col else _doc_df
        arrays = [np.frombuffer(bytes(b), dtype="<i4") for b in r[2:]]
        if doc_col:
            rid, dno, tf, ln = arrays
        else:
            rid, tf, ln = arrays
            dno = rid
        idf = np.float32(math.log(1 + (n - df_here + 0.5) / (df_here + 0.5)))
        tf = tf.astype(np.float32)
        tfc = tf / (K1 * ((1 - B) + B * ln / avg) + tf)
        w = (idf * tfc).astype(np.float32)
        for _ in range(mult):
            ids.append(rid)
            docs.append(dno)
            weights.append(w)
    if not ids:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return (np.concatenate(ids).astype(np.int64), np.concatenate(docs).astype(np.int64),
            np.concatenate(weights))


def vec_literal(v: np.ndarray) -> str:
    """pgvector's text form of a vector."""
    return "[" + ",".join(f"{x:.8g}" for x in np.asarray(v, dtype=np.float32).tolist()) + "]"


class PgIndex:
    """The prototype backend over one psycopg connection.

    Parameters
    ----------
    conn : psycopg.Connection
        An open connection (autocommit; transactions are explicit).
    dim : int
        Vector dimension.
    vtype : str
        ``halfvec`` (16-bit floats) or ``vector`` (32-bit).
    """

    LOCK = 0x7261_6731  # pg_advisory_lock key of builds ("rag1")

    def __init__(self, conn, dim: int = 384, vtype: str = "halfvec"):
        self.conn, self.dim, self.vtype = conn, dim, vtype
        self._langs: dict[str, int] = {}
        self.last_postings = 0  # postings read by the last lexical_packed call (chunk and document side)

    # -- schema and bulk load ----------------------------------------------------------------
    def create(self) -> None:
        """Create the tables (the database must have the ``vector`` extension)."""
        with self.conn.transaction():
            self.conn.execute(SCHEMA.format(vtype=self.vtype, dim=self.dim))
            self.conn.execute("INSERT INTO lexical_stats VALUES (true, 0, 0, 0, 0)")

    def lang_code(self, name: str) -> int:
        """The code of a language name (added when new)."""
        if name not in self._langs:
            self._langs = dict(self.conn.execute("SELECT name, code FROM langs").fetchall())
            if name not in self._langs:
                code = len(self._langs)
                self.conn.execute("INSERT INTO langs VALUES (%s, %s) ON CONFLICT DO NOTHING", (code, name))
                self._langs = dict(self.conn.execute("SELECT name, code FROM langs").fetchall())
        return self._langs[name]

    def bulk_load(self, batches: Iterable[Sequence[DocRow]], progress=None, vocab: dict[str, int] | None = None,
                  rows: bool = True, segments: bool = True) -> None:
        """Load batches of documents into empty tables (binary COPY), then count frequencies and make the indexes.

        One transaction: a reader sees nothing, then everything. Chunk terms are strings, or
        arrays of ids of ``vocab`` (numbered from 1), which then names every term. ``rows``:
        one row per posting (:data:`LEXICAL_SQL` scores them); ``segments``: packed per batch
        (:meth:`lexical_packed` scores them).
        """
        self._write_rows, self._write_segments, self._segment = rows, segments, 0
        from pgvector.psycopg import register_vector

        register_vector(self.conn)
        vocab = {} if vocab is None else vocab
        df: list[int] = [0]
        doc_df: list[int] = [0]
        totals = np.zeros(4, dtype=np.int64)  # chunks, their terms, documents, their terms
        next_doc = 1
        with self.conn.transaction():
            cur = self.conn.cursor()
            for docs in batches:
                for name in sorted({d.lang for d in docs} - set(self._langs)):
                    self.lang_code(name)
                numbers = list(range(next_doc, next_doc + len(docs)))
                next_doc += len(docs)
                self._copy_records(cur, docs, numbers)
                self._copy_postings(cur, docs, numbers, vocab, df, doc_df, totals)
                if progress:
                    progress(len(docs))
            with cur.copy("COPY terms (term_id, term, df, doc_df) FROM STDIN") as cp:
                for term, tid in vocab.items():
                    cp.write_row((tid, term, df[tid], doc_df[tid]))
            ex = self.conn.execute
            ex("SELECT setval('term_id', %s)", (len(vocab) + 1,))
            ex("SELECT setval('doc_no', %s)", (next_doc,))
            ex("SELECT setval('chunk_rowid', (SELECT coalesce(max(rowid), 0) + 1 FROM chunks))")
            ex("UPDATE lexical_stats SET chunks = %s, chunk_terms = %s, docs = %s, doc_terms = %s",
               tuple(int(x) for x in totals))
            ex(INDEXES if rows else "")

    def _copy_records(self, cur, docs: Sequence[DocRow], numbers: Sequence[int]) -> None:
        """Documents and chunks of one batch (binary COPY: vectors go as pgvector's binary form)."""
        from pgvector import HalfVector, Vector

        wrap = HalfVector if self.vtype == "halfvec" else Vector
        with cur.copy("COPY documents (doc_no, id, key, source, title, lang, sha256, text, meta, chunks, n_terms) "
                      "FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["int4", "text", "text", "text", "text", "int2", "text", "text", "jsonb", "int4", "int4"])
            for dn, d in zip(numbers, docs):
                cp.write_row((dn, d.doc_id, d.key, d.source, d.title, self._langs[d.lang], d.sha256, d.text,
                              json.dumps(d.meta, ensure_ascii=False), len(d.chunks),
                              sum(len(c.terms) for c in d.chunks)))
        with cur.copy('COPY chunks (rowid, id, doc_no, ordinal, start, "end", text, hash, n_terms, embedding) '
                      "FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["int8", "text", "int4", "int4", "int4", "int4", "text", "text", "int4", self.vtype])
            for dn, d in zip(numbers, docs):
                for c in d.chunks:
                    cp.write_row((c.rowid, c.chunk_id, dn, c.ordinal, c.start, c.end, c.text, c.hash, len(c.terms),
                                  wrap(np.asarray(c.vector, dtype=np.float32))))

    def _copy_postings(self, cur, docs: Sequence[DocRow], numbers: Sequence[int], vocab: dict[str, int],
                       df: list[int], doc_df: list[int], totals: np.ndarray) -> None:
        """Chunk and document postings of one batch, numbered through ``vocab``, frequencies counted (numpy)."""
        ids, rows, lens, row_ids, row_docs, row_langs = [], [], [], [], [], []
        for dn, d in zip(numbers, docs):
            lang = self._langs[d.lang]
            for c in d.chunks:
                t = (c.terms if isinstance(c.terms, np.ndarray)
                     else np.fromiter((vocab.setdefault(x, len(vocab) + 1) for x in c.terms), np.int64, len(c.terms)))
                ids.append(t)
                rows.append(np.full(len(t), len(row_ids), dtype=np.int64))
                lens.append(max(len(t), 1))  # a chunk without terms counts 1, as bm25s's empty term
                row_ids.append(c.rowid)
                row_docs.append(dn)
                row_langs.append(lang)
        if not row_ids:
            return
        ids_a, rows_a = np.concatenate(ids).astype(np.int64), np.concatenate(rows)
        lens_a, rid_a = np.array(lens, dtype=np.int64), np.array(row_ids, dtype=np.int64)
        docs_a, langs_a = np.array(row_docs, dtype=np.int64), np.array(row_langs, dtype=np.int64)
        vocab_size = int(ids_a.max(initial=0)) + 1
        grow = max(vocab_size, len(vocab) + 1) - len(df)
        if grow > 0:
            df.extend([0] * grow)
            doc_df.extend([0] * grow)
        term, row, tf = _pairs(ids_a, rows_a, len(rid_a))
        df_add = np.bincount(term, minlength=len(df))
        if self._write_rows:
            binary_copy(cur, "COPY chunk_postings (term_id, rowid, doc_no, lang, tf, len) FROM STDIN (FORMAT BINARY)",
                        [(term, ">i4"), (rid_a[row], ">i8"), (docs_a[row], ">i4"), (langs_a[row], ">i2"),
                         (tf, ">i2"), (lens_a[row], ">i2")])
        # documents: the same occurrences, owned by the chunk's document (ordinal within the batch)
        doc_of_row = np.unique(docs_a, return_inverse=True)[1]
        n_docs = int(doc_of_row.max()) + 1
        dterm, dord, dtf = _pairs(ids_a, doc_of_row[rows_a], n_docs)
        dlen = np.maximum(np.bincount(doc_of_row, weights=lens_a * (np.bincount(rows_a, minlength=len(rid_a)) > 0),
                                      minlength=n_docs).astype(np.int64), 1)
        doc_no = np.zeros(n_docs, dtype=np.int64)
        doc_no[doc_of_row] = docs_a
        doc_lang = np.zeros(n_docs, dtype=np.int64)
        doc_lang[doc_of_row] = langs_a
        doc_df_add = np.bincount(dterm, minlength=len(df))
        if self._write_rows:
            binary_copy(cur, "COPY doc_postings (term_id, doc_no, lang, tf, len) FROM STDIN (FORMAT BINARY)",
                        [(dterm, ">i4"), (doc_no[dord], ">i4"), (doc_lang[dord], ">i2"), (dtf, ">i4"),
                         (dlen[dord], ">i4")])
        if self._write_segments:
            self._segment += 1
            self._copy_segments(cur, "chunk_segments", term, langs_a[row],
                                {"rowids": rid_a[row], "docs": docs_a[row], "tfs": tf, "lens": lens_a[row]})
            self._copy_segments(cur, "doc_segments", dterm, doc_lang[dord],
                                {"docs": doc_no[dord], "tfs": dtf, "lens": dlen[dord]})
        for i in np.flatnonzero(df_add).tolist():
            df[i] += int(df_add[i])
        for i in np.flatnonzero(doc_df_add).tolist():
            doc_df[i] += int(doc_df_add[i])
        totals += [len(rid_a), int(lens_a.sum()), n_docs, int(dlen.sum())]

    def _copy_segments(self, cur, table: str, term: np.ndarray, lang: np.ndarray, cols: dict[str, np.ndarray]) -> None:
        """One segment: for each (term, language), its postings' columns as little-endian int32 arrays."""
        key = term * 256 + lang
        order = np.argsort(key, kind="stable")
        key = key[order]
        starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
        ends = np.append(starts[1:], len(key))
        packed = {name: np.ascontiguousarray(v[order], dtype="<i4") for name, v in cols.items()}
        names = list(cols)
        with cur.copy(f"COPY {table} (term_id, lang, segment, {', '.join(names)}) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["int4", "int2", "int4"] + ["bytea"] * len(names))
            for a, b in zip(starts.tolist(), ends.tolist()):
                k = int(key[a])
                cp.write_row((k // 256, k % 256, self._segment, *(packed[n][a:b].tobytes() for n in names)))

    def lexical_packed(self, terms_by_lang: dict[str, list[str]], n: int, doc_weight: float = 0.3,
                       allowed: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The same as :meth:`lexical`, from the packed segments, scored with numpy in this process.

        One read-only REPEATABLE READ transaction reads the statistics, the query terms'
        frequencies and their segments: one snapshot, so a concurrent commit is seen whole or not at all.
        """
        langs, terms = self._query(terms_by_lang)
        if not terms:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        ex = self.conn.execute
        ex("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")  # one snapshot for both statements
        try:
            fetched = ex(PACKED_SQL, {"langs": langs, "terms": terms}, binary=True).fetchall()
            st = next((r[5:9] for r in fetched if r[0] == 2), None)
            n_chunks, chunk_terms, n_docs, doc_terms = (float(int.from_bytes(bytes(x), "big")) for x in st)
            if not n_chunks:
                return np.zeros(0, np.int64), np.zeros(0, np.float64)
            info: dict = {}
            for r in fetched:  # multiplicity, df, doc_df of each (term, language)
                if r[0] != 2:
                    m, df, ddf = info.get((r[1], r[2]), (r[3], 0, 0))
                    info[(r[1], r[2])] = (m, r[4], ddf) if r[0] == 0 else (m, df, r[4])
            chunk_rows = [(r[1], r[2], r[5], r[6], r[7], r[8]) for r in fetched if r[0] == 0]
            doc_rows = [(r[1], r[2], r[6], r[7], r[8]) for r in fetched if r[0] == 1]
            self.last_postings = sum(len(r[2]) for r in chunk_rows) // 4 + sum(len(r[2]) for r in doc_rows) // 4
            return self._blend_packed(chunk_rows, doc_rows, info, (n_chunks, chunk_terms, n_docs, doc_terms), n,
                                      doc_weight, allowed)
        finally:
            ex("COMMIT")

    def _blend_packed(self, chunk_rows, doc_rows, info, st, n, doc_weight, allowed) -> tuple[np.ndarray, np.ndarray]:
        """BM25 of the fetched segments, and the blend (the best documents' chunks read in the caller's snapshot)."""
        n_chunks, chunk_terms, n_docs, doc_terms = st
        c_rows, c_docs, c_w = _score_segments(chunk_rows, info, n_chunks, chunk_terms / n_chunks, doc_col=True)
        d_docs, _, d_w = _score_segments(doc_rows, info, n_docs, doc_terms / n_docs, doc_col=False)
        if allowed is not None:
            ok = np.asarray(list(allowed), dtype=np.int64)
            keep = np.isin(c_docs, ok)
            c_rows, c_docs, c_w = c_rows[keep], c_docs[keep], c_w[keep]
            keep = np.isin(d_docs, ok)
            d_docs, d_w = d_docs[keep], d_w[keep]
        # sums per chunk and per document (float32, as bm25s)
        # dense accumulators over ids (bincount sums in float64; bm25s in float32: differences ~1e-6)
        chunk_all = np.bincount(c_rows, weights=c_w)
        ur = np.flatnonzero(chunk_all)
        chunk = chunk_all[ur].astype(np.float32)
        doc_of = np.zeros(len(chunk_all), dtype=np.int64)
        doc_of[c_rows] = c_docs
        chunk_doc = doc_of[ur]
        doc_all = np.bincount(d_docs, weights=d_w)
        ud = np.flatnonzero(doc_all)
        doc = doc_all[ud].astype(np.float32)
        mc = float(chunk.max()) if len(chunk) else 0.0
        md = float(doc.max()) if len(doc) else 0.0
        # candidates: matching chunks, and the chunks of the best n documents
        top_docs = ud[np.argsort(-doc, kind="stable")[:n]]
        extra = self.conn.execute("SELECT rowid, doc_no FROM chunks WHERE doc_no = ANY(%s::int[])",
                                  (top_docs.tolist(),)).fetchall()
        seen = set(ur.tolist())
        extra = [(r, d) for r, d in extra if r not in seen]
        rows_all = np.concatenate([ur, np.array([r for r, _ in extra], dtype=np.int64)])
        docs_all = np.concatenate([chunk_doc, np.array([d for _, d in extra], dtype=np.int64)])
        cs = np.concatenate([chunk, np.zeros(len(extra), dtype=np.float32)])
        ds = np.zeros(len(rows_all), dtype=np.float32)
        pos = np.searchsorted(ud, docs_all)
        hit = (pos < len(ud)) & (ud[np.minimum(pos, len(ud) - 1)] == docs_all)
        ds[hit] = doc[pos[hit]]
        score = ((1 - doc_weight) * (cs / mc if mc > 0 else cs) + doc_weight * (ds / md if md > 0 else ds))
        order = np.lexsort((rows_all, -score))[:n]
        keep = score[order] > 0
        return rows_all[order][keep], score[order][keep].astype(np.float64)

    def make_hnsw(self, m: int = 16, ef_construction: int = 64) -> None:
        """Build the HNSW index over the chunk vectors (inner product)."""
        ops = f"{self.vtype}_ip_ops"
        self.conn.execute(HNSW.format(ops=ops, m=m, efc=ef_construction))

    def analyze(self) -> None:
        """VACUUM ANALYZE (visibility map for index-only scans, planner statistics)."""
        for table in ("terms", "chunk_postings", "doc_postings", "chunks", "documents", "lexical_stats"):
            self.conn.execute(f"VACUUM ANALYZE {table}")

    # -- search ------------------------------------------------------------------------------
    def lexical(self, terms_by_lang: dict[str, list[str]], n: int, doc_weight: float = 0.3,
                allowed: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Best ``n`` chunks for the query terms of each language: (rowids, blended scores), best first."""
        langs, terms = self._query(terms_by_lang)
        rows = self.conn.execute(LEXICAL_SQL, {"langs": langs, "terms": terms, "k1": K1, "b": B, "n": n,
                                               "w": doc_weight, "allowed": None if allowed is None else list(allowed)}
                                 ).fetchall()
        rows = [r for r in rows if r[1] > 0]
        return np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=np.float64)

    def chunk_bm25(self, terms_by_lang: dict[str, list[str]]) -> dict[int, float]:
        """Raw chunk BM25 of every chunk matching the query terms."""
        langs, terms = self._query(terms_by_lang)
        return dict(self.conn.execute(CHUNK_BM25_SQL, {"langs": langs, "terms": terms, "k1": K1, "b": B,
                                                       "allowed": None}).fetchall())

    def _query(self, terms_by_lang: dict[str, list[str]]) -> tuple[list[int], list[str]]:
        langs, terms = [], []
        for name, words in terms_by_lang.items():
            if name in self._langs or self._reload_langs(name):
                langs += [self._langs[name]] * len(words)
                terms += words
        return langs, terms

    def _reload_langs(self, name: str) -> bool:
        self._langs = dict(self.conn.execute("SELECT name, code FROM langs").fetchall())
        return name in self._langs

    def dense(self, query: np.ndarray, n: int, ef_search: int | None = None,
              allowed: Sequence[int] | None = None, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Best ``n`` chunks by inner product: HNSW (``ef_search``, default the session's), or exact
        (``exact``, or over the ``allowed`` documents)."""
        q = f"'{vec_literal(query)}'::{self.vtype}"
        if not exact and allowed is None and ef_search is None:  # the session's hnsw.ef_search: one round trip
            rows = self.conn.execute(DENSE_SQL.replace("%(q)s", q), {"n": n}).fetchall()
        else:
            with self.conn.transaction():
                if exact or allowed is not None:
                    self.conn.execute("SET LOCAL enable_indexscan = off")  # exact: every (allowed) vector is read
                else:
                    self.conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
                if allowed is None:
                    rows = self.conn.execute(DENSE_SQL.replace("%(q)s", q), {"n": n}).fetchall()
                else:
                    rows = self.conn.execute(DENSE_ALLOWED_SQL.replace("%(q)s", q),
                                             {"n": n, "allowed": list(allowed)}).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=np.float64)

    # -- one document's change ---------------------------------------------------------------
    def replace_document(self, doc: DocRow, gone_id: str | None = None) -> None:
        """Remove document ``gone_id`` (if any) and add ``doc``, in one transaction.

        Chunk rowids come from a sequence; term frequencies and the totals change by the
        document's own counts. The caller holds the build lock (:meth:`build_lock`).
        """
        with self.conn.transaction():
            if gone_id is not None:
                self._remove(gone_id)
            self._add(doc)

    def _remove(self, doc_id: str) -> None:
        ex = self.conn.execute
        row = ex("SELECT doc_no FROM documents WHERE id = %s", (doc_id,)).fetchone()
        if row is None:
            return
        dn = row[0]
        ex("UPDATE terms t SET df = t.df - x.n FROM (SELECT term_id, count(*) AS n FROM chunk_postings "
           "WHERE doc_no = %s GROUP BY term_id) x WHERE t.term_id = x.term_id", (dn,))
        ex("UPDATE terms t SET doc_df = t.doc_df - 1 FROM doc_postings p WHERE p.doc_no = %s AND t.term_id = p.term_id",
           (dn,))
        ex("UPDATE lexical_stats s SET chunks = s.chunks - x.n, chunk_terms = s.chunk_terms - x.len, "
           "docs = s.docs - x.d, doc_terms = s.doc_terms - x.dlen FROM ("
           "SELECT count(*) AS n, coalesce(sum(greatest(n_terms, 1)), 0) AS len, (count(*) > 0)::int AS d, "
           "greatest(coalesce(sum(n_terms), 0), 1) * (count(*) > 0)::int AS dlen FROM chunks WHERE doc_no = %s) x",
           (dn,))
        ex("DELETE FROM chunk_postings WHERE doc_no = %s", (dn,))
        ex("DELETE FROM doc_postings WHERE doc_no = %s", (dn,))
        ex("DELETE FROM documents WHERE doc_no = %s", (dn,))  # its chunks go with it (ON DELETE CASCADE)

    def _add(self, d: DocRow) -> None:
        ex = self.conn.execute
        lang = self.lang_code(d.lang)
        doc_terms = sum(len(c.terms) for c in d.chunks)
        dn = ex("INSERT INTO documents (id, key, source, title, lang, sha256, text, meta, chunks, n_terms) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING doc_no",
                (d.doc_id, d.key, d.source, d.title, lang, d.sha256, d.text, json.dumps(d.meta, ensure_ascii=False),
                 len(d.chunks), doc_terms)).fetchone()[0]
        if not d.chunks:
            return
        all_terms = sorted({t for c in d.chunks for t in c.terms})
        ex("INSERT INTO terms (term_id, term) SELECT nextval('term_id'), t FROM unnest(%s::text[]) AS t "
           "ON CONFLICT (term) DO NOTHING", (all_terms,))
        ids = dict(ex("SELECT term, term_id FROM terms WHERE term = ANY(%s::text[])", (all_terms,)).fetchall())
        rowids = [r[0] for r in ex("SELECT nextval('chunk_rowid') FROM generate_series(1, %s)",
                                   (len(d.chunks),)).fetchall()]
        cur = self.conn.cursor()
        with cur.copy('COPY chunks (rowid, id, doc_no, ordinal, start, "end", text, hash, n_terms, embedding) '
                      "FROM STDIN") as cp:
            for rid, c in zip(rowids, d.chunks):
                cp.write_row((rid, c.chunk_id, dn, c.ordinal, c.start, c.end, c.text, c.hash, len(c.terms),
                              vec_literal(c.vector)))
        df: Counter = Counter()
        with cur.copy("COPY chunk_postings (term_id, rowid, doc_no, lang, tf, len) FROM STDIN") as cp:
            for rid, c in zip(rowids, d.chunks):
                length = max(len(c.terms), 1)
                for term, tf in Counter(c.terms).items():
                    df[ids[term]] += 1
                    cp.write_row((ids[term], rid, dn, lang, tf, length))
        counts = Counter(t for c in d.chunks for t in c.terms)
        dlen = max(sum(counts.values()), 1)
        with cur.copy("COPY doc_postings (term_id, doc_no, lang, tf, len) FROM STDIN") as cp:
            for term, tf in counts.items():
                cp.write_row((ids[term], dn, lang, tf, dlen))
        ex("UPDATE terms t SET df = t.df + x.n, doc_df = t.doc_df + 1 FROM unnest(%s::int[], %s::int[]) AS x(id, n) "
           "WHERE t.term_id = x.id", (list(df.keys()), list(df.values())))
        ex("UPDATE lexical_stats SET chunks = chunks + %s, chunk_terms = chunk_terms + %s, docs = docs + 1, "
           "doc_terms = doc_terms + %s", (len(d.chunks), sum(max(len(c.terms), 1) for c in d.chunks), dlen))

    def build_lock(self, wait: bool = False) -> bool:
        """Take the build lock (a session-level advisory lock, released if the build's connection dies)."""
        if wait:
            self.conn.execute("SELECT pg_advisory_lock(%s)", (self.LOCK,))
            return True
        return bool(self.conn.execute("SELECT pg_try_advisory_lock(%s)", (self.LOCK,)).fetchone()[0])

    def release_lock(self) -> None:
        """Let the build lock go."""
        self.conn.execute("SELECT pg_advisory_unlock(%s)", (self.LOCK,))

    def counts(self) -> dict[str, int]:
        """Rows of each table."""
        out = {}
        for t in ("documents", "chunks", "terms", "chunk_postings", "doc_postings"):
            out[t] = int(self.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
        return out


def by_lang(terms_fn, question: str, langs: Iterable[str], question_lang: str) -> dict[str, list[str]]:
    """The question's terms for each language of the index (``terms_fn`` = :func:`rag.lexical.query_terms`)."""
    return {name: terms_fn(question, name, question_lang) for name in langs}
