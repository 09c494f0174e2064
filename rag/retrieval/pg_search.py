"""Search in the PostgreSQL backend: BM25 computed exactly in the database's snapshot, pgvector for the dense side.

BM25 is the local index's, over the packed postings where the database has them and in SQL
otherwise (:mod:`rag.retrieval.pg_lexical`), for the question's terms in each row's language
(:func:`rag.text.analysis.query_terms`). One statement reads postings and statistics: one snapshot.

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
from ..store.pg_packed import has_packed_tables
from ..store.postgres import PgStore, vec_literal
from ..text.analysis import query_terms
from .pg_lexical import CHUNKS_OF_DOCS_SQL, LEXICAL_SQL, PACKED_SQL, packed_scores

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
        self._packed: bool | None = None             # whether the database has packed postings (per build)
        self._session = threading.local()            # the hnsw.ef_search set on this thread's connection

    def refresh(self) -> bool:
        """Read the manifest; True when a build committed since the last call (nothing else is loaded)."""
        manifest = self.store.manifest()
        manifest = check_readable(manifest, self.model or (manifest.model if manifest else ""), self.store.folder)
        if self.manifest is not None and manifest.generation == self.manifest.generation:
            return False
        self.manifest, self._stats, self._langs, self._chunks, self._packed = manifest, None, None, None, None
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
                       doc_weight: float, packed: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Best ``n`` chunks by blended BM25: (rowids, scores), best first, zero scores left out.

        ``packed`` False reads the row postings alone (the same scores, in SQL: the reference the packed
        way is held to); None reads the packed postings where the database has them.
        """
        if n <= 0 or (allowed is not None and not allowed):
            return _EMPTY
        langs, terms = [], []
        for name, code in self._languages().items():
            words = query_terms(question, name, lang)
            langs += [code] * len(words)
            terms += words
        if not terms:
            return _EMPTY
        if self._packed is None:
            with self.store.errors():
                self._packed = has_packed_tables(self.store.db)
        if self._packed and packed is not False:
            rows = self.store.query(PACKED_SQL, {"langs": langs, "terms": terms}, prepare=False, binary=True)
            ids, scores = packed_scores(rows, int(n), float(doc_weight), K1, B, allowed,
                                        lambda docs: self.store.query(CHUNKS_OF_DOCS_SQL, (docs,)))
        else:
            found = self.store.query(LEXICAL_SQL, {"langs": langs, "terms": terms, "k1": K1, "b": B, "n": int(n),
                                                   "w": float(doc_weight), "allowed": allowed}, prepare=False)
            ids = np.array([r[0] for r in found], dtype=np.int64)
            scores = np.array([r[1] for r in found], dtype=np.float32)
        keep = scores > 0
        return ids[keep], scores[keep]

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
