"""Search in the PostgreSQL backend: BM25 computed exactly in SQL, pgvector for the dense side.

BM25 is the local index's (bm25s's Lucene variant, :data:`rag.search.lexical.K1` and ``B``),
over chunks and over documents, from the postings and the statistics the database keeps
(:mod:`rag.store.postgres`): ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))`` and
``tf / (tf + k1 (1 - b) + k1 b len / avglen)``, summed over the question's terms in each row's
language (:func:`rag.text.analysis.query_terms`), then blended ``(1 - doc_weight) x chunk / best
chunk + doc_weight x document / best document`` as :meth:`rag.search.lexical.LexicalIndex.scores`.
The candidates are the chunks matching a term and the chunks of the best ``n`` documents (a
chunk matching nothing still scores its document's share); ties go to the lower row number,
as locally. One statement reads postings and statistics: one snapshot.

The dense side is inner product on unit vectors: exact (every allowed vector read) for a
filter or an index of at most ``exact_search_limit`` chunks, as the local FAISS index is;
HNSW above, with ``hnsw.ef_search`` = max(``pg_ef_search``, the candidates asked for). Where
the search is exact, the candidates found on the 16-bit vectors are scored again on their exact
float32 vectors, read from the embedding cache in the same statement, so their scores and order
are the local index's; above the limit both backends search approximately (IVF locally) and the
16-bit scores stand.
"""

from __future__ import annotations

import threading

import numpy as np

from ..config import Config
from ..embedding import cache_key
from ..search.lexical import K1, B
from ..search.stats import TermStats
from ..store.layout import Manifest, check_readable
from ..store.postgres import PgStore, vec_literal
from ..text.analysis import query_terms

# Each query term's weights (its multiplicity times its idf, over chunks and over documents) and the length
# norm's constants are computed once, in q: a posting row only adds w tf / (tf + k0 + kl len). The maxima are
# computed once (m is materialised: inlined, each use would scan c and d again). The order is by the score to
# 12 decimals (it is at most 1), then rowid: sums of the same terms added in another order (another plan) differ
# in their last bits, and would otherwise swap exact ties.
LEXICAL_SQL = """WITH q AS MATERIALIZED (
    SELECT t.term_id, q.lang,
           count(*)::float8 * ln(1 + (st.n - t.df + 0.5) / (t.df + 0.5)) AS w,
           count(*)::float8 * ln(1 + (st.nd - t.doc_df + 0.5) / (t.doc_df + 0.5)) AS wd,
           %(k1)s * (1 - %(b)s) AS k0, %(k1)s * %(b)s / st.avg AS kl, %(k1)s * %(b)s / st.avgd AS kld
    FROM unnest(%(langs)s::smallint[], %(terms)s::text[]) AS q(lang, term) JOIN terms t ON t.term = q.term
    CROSS JOIN (SELECT chunks::float8 AS n, chunk_terms::float8 / chunks AS avg, docs::float8 AS nd,
                       doc_terms::float8 / greatest(docs, 1) AS avgd FROM lexical_stats WHERE chunks > 0) st
    GROUP BY t.term_id, q.lang, t.df, t.doc_df, st.n, st.nd, st.avg, st.avgd),
c AS (
    SELECT p.rowid, any_value(p.doc_no) AS doc_no, sum(q.w * p.tf / (p.tf + q.k0 + q.kl * p.len)) AS s
    FROM q JOIN chunk_postings p ON p.term_id = q.term_id AND p.lang = q.lang
    WHERE %(allowed)s::int[] IS NULL OR p.doc_no = ANY(%(allowed)s::int[])
    GROUP BY p.rowid),
d AS (
    SELECT p.doc_no, sum(q.wd * p.tf / (p.tf + q.k0 + q.kld * p.len)) AS s
    FROM q JOIN doc_postings p ON p.term_id = q.term_id AND p.lang = q.lang
    WHERE %(allowed)s::int[] IS NULL OR p.doc_no = ANY(%(allowed)s::int[])
    GROUP BY p.doc_no),
m AS MATERIALIZED (SELECT coalesce((SELECT max(s) FROM c), 0) AS mc, coalesce((SELECT max(s) FROM d), 0) AS md),
top_docs AS (SELECT doc_no, s FROM d ORDER BY s DESC LIMIT %(n)s),
cand AS (
    SELECT c.rowid, c.s AS cs, d.s AS ds FROM c LEFT JOIN d USING (doc_no)
    UNION ALL
    SELECT ch.rowid, NULL, top_docs.s FROM top_docs JOIN chunks ch USING (doc_no)
    WHERE NOT EXISTS (SELECT 1 FROM c WHERE c.rowid = ch.rowid))
SELECT rowid, score FROM (
    SELECT cand.rowid,
           (1 - %(w)s) * CASE WHEN m.mc > 0 THEN coalesce(cs, 0) / m.mc ELSE coalesce(cs, 0) END
           + %(w)s * CASE WHEN m.md > 0 THEN coalesce(ds, 0) / m.md ELSE coalesce(ds, 0) END AS score
    FROM cand CROSS JOIN m) scored
ORDER BY round(score * 1e12) DESC, rowid
LIMIT %(n)s
"""
# HNSW: the index gives the order (no second sort key, or the planner could not use it)
DENSE_SQL = ("SELECT rowid, hash, -(embedding <#> %(q)s::halfvec) AS score FROM chunks "
             "ORDER BY embedding <#> %(q)s::halfvec LIMIT %(n)s")
# exact: every (allowed) vector scored behind an optimisation fence (OFFSET 0), then sorted; ties by rowid
DENSE_EXACT_SQL = ("SELECT rowid, hash, score FROM (SELECT rowid, hash, -(embedding <#> %(q)s::halfvec) AS score "
                   "FROM chunks WHERE %(allowed)s::int[] IS NULL OR doc_no = ANY(%(allowed)s::int[]) OFFSET 0) s "
                   "ORDER BY score DESC, rowid LIMIT %(n)s")
# the candidates found on the 16-bit vectors, with their exact float32 vectors from the embedding cache
RESCORE_SQL = ("SELECT s.rowid, s.score, e.vector FROM ({}) s "
               "LEFT JOIN embedding_cache e ON e.model = %(model)s AND e.hash = s.hash")
_EMPTY = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))


def rescored(rows: list[tuple], query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rowids, scores) of (rowid, 16-bit score, cached float32 vector or None) rows, best first (ties by rowid):
    the inner product with the exact vector where the cache has it (as the local index scores), else the
    16-bit one."""
    if not rows:
        return _EMPTY
    q = np.asarray(query, dtype=np.float32)
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    scores = np.array([r[1] for r in rows], dtype=np.float32)
    have = [i for i, r in enumerate(rows) if r[2] is not None and len(r[2]) == 4 * q.shape[0]]
    if have:
        vectors = np.vstack([np.frombuffer(bytes(rows[i][2]), dtype=np.float32) for i in have])
        scores[have] = vectors @ q
    order = np.lexsort((ids, -scores))
    return ids[order], scores[order]


class DatabaseTermStats(TermStats):
    """Chunk frequencies of BM25 terms, read from the database as they are asked for (cached per generation)."""

    def __init__(self, store: PgStore, n_docs: int):
        super().__init__(_Frequencies(store), n_docs)


class _Frequencies(dict):
    """A term's chunk frequency, fetched on first use."""

    def __init__(self, store: PgStore):
        super().__init__()
        self.store = store

    def get(self, term, default=0):
        if term not in self:
            rows = self.store.query("SELECT df FROM terms WHERE term = %s", (term,))
            self[term] = int(rows[0][0]) if rows else 0
        return self[term] or default


class PgSearch:
    """The retriever's search side over a :class:`~rag.store.postgres.PgStore`.

    Parameters
    ----------
    store : PgStore
        The database.
    config : Config
        Model, ``exact_search_limit`` and ``pg_ef_search``.
    """

    def __init__(self, store: PgStore, config: Config, model: str | None):
        self.store, self.config, self.model = store, config, model
        self.manifest: Manifest | None = None
        self._stats: DatabaseTermStats | None = None
        self._langs: dict[str, int] | None = None   # read once per build committed
        self._chunks: int | None = None
        self._session = threading.local()            # the hnsw.ef_search set on this thread's connection

    def refresh(self) -> bool:
        """Read the manifest; True when a build committed since the last call (nothing else is loaded)."""
        manifest = self.store.manifest()
        manifest = check_readable(manifest, self.model or (manifest.model if manifest else ""), self.store.folder)
        if self.manifest is not None and manifest.generation == self.manifest.generation:
            return False
        self.manifest, self._stats, self._langs, self._chunks = manifest, None, None, None
        return True

    def _languages(self) -> dict[str, int]:
        if self._langs is None:
            self._langs = self.store.lang_codes()
        return self._langs

    def _chunk_count(self) -> int:
        if self._chunks is None:
            self._chunks = self.store.chunk_count()
        return self._chunks

    def restrict(self, doc_ids, since, until) -> list[int] | None:
        """The document numbers a document and date filter allows (None: all)."""
        return self.store.doc_numbers(doc_ids, since, until)

    def lexical_search(self, question: str, n: int, allowed: list[int] | None, lang: str | None,
                       doc_weight: float) -> tuple[np.ndarray, np.ndarray]:
        """Best ``n`` chunks by blended BM25: (rowids, scores), best first, zero scores left out."""
        if n <= 0 or (allowed is not None and not allowed):
            return _EMPTY
        langs, terms = [], []
        for name, code in self._languages().items():
            words = query_terms(question, name, lang)
            langs += [code] * len(words)
            terms += words
        if not terms:
            return _EMPTY
        rows = self.store.query(LEXICAL_SQL, {"langs": langs, "terms": terms, "k1": K1, "b": B, "n": int(n),
                                              "w": float(doc_weight), "allowed": allowed}, prepare=False)
        rows = [r for r in rows if r[1] > 0]
        return np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=np.float32)

    def dense_search(self, query: np.ndarray, n: int, allowed: list[int] | None) -> tuple[np.ndarray, np.ndarray]:
        """Best ``n`` chunks by inner product: (rowids, scores), best first."""
        if n <= 0 or (allowed is not None and not allowed):
            return _EMPTY
        m = self.manifest
        args = {"q": vec_literal(query), "n": int(n), "allowed": allowed,
                "model": cache_key(m.model, m.encoder, m.encoder_recipe) if m is not None else ""}
        if allowed is not None or self._chunk_count() <= self.config.exact_search_limit:
            rows = self.store.query(RESCORE_SQL.format(DENSE_EXACT_SQL), args)
        else:
            ef = max(int(self.config.pg_ef_search), int(n))  # HNSW returns at most ef_search rows
            with self.store.errors():
                db = self.store.db
                if getattr(self._session, "conn", None) is not db or self._session.ef != ef:
                    db.execute(f"SET hnsw.ef_search = {ef}")
                    self._session.conn, self._session.ef = db, ef
                rows = [(r[0], r[2], None) for r in db.execute(DENSE_SQL, args).fetchall()]
        return rescored(rows, query)

    def foreign_rows(self, rows: np.ndarray, lang: str) -> set[int]:
        """The chunk ids among ``rows`` whose chunk is not in language ``lang``."""
        if list(self._languages()) == [lang]:
            return set()
        return {rid for rid, row in self.store.chunk_rows([int(r) for r in rows]).items() if row["lang"] != lang}

    def term_stats(self) -> TermStats:
        """Chunk frequencies of the terms, read as asked for (once per generation)."""
        if self._stats is None:
            self._stats = DatabaseTermStats(self.store, self._chunk_count())
        return self._stats
