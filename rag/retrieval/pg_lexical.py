"""BM25 in the PostgreSQL backend, two ways that give the same scores: in SQL, and over packed postings.

BM25 is the local index's (bm25s's Lucene variant, :data:`rag.search.lexical.K1` and ``B``),
over chunks and over documents, from the postings and the statistics the database keeps
(:mod:`rag.store.postgres`): ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))`` and
``tf / (tf + k1 (1 - b) + k1 b len / avglen)``, summed over the question's terms in each row's
language, then blended ``(1 - doc_weight) x chunk / best chunk + doc_weight x document / best
document`` as :meth:`rag.search.lexical.LexicalIndex.scores`. The candidates are the chunks
matching a term and the chunks of the best ``n`` documents (a chunk matching nothing still scores
its document's share); ties go to the lower row number, as locally.

- :data:`LEXICAL_SQL` computes it all in one statement over the row postings: an index made
  before the packed postings, and the reference the tests hold the packed way to.
- :data:`PACKED_SQL` reads, in one statement (one snapshot), the statistics, each query term's
  packed arrays (:mod:`rag.store.pg_packed`), the row postings added since they were packed and the
  rows removed since; :func:`packed_scores` computes the same formula with numpy, in the same
  float64 operations. A second statement reads the chunks of the best documents (a document's
  chunks never change: a new version is a new document).
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import numpy as np

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

# Rows: (part, term_id, mult, a, b, ids, docs, tfs, lens). Parts: 0 chunk arrays packed, 1 chunk postings added
# since (a = df, b = doc_df for both), 2 and 3 the same for documents (ids NULL), 4 and 6 the statistics (a, b:
# chunks and their terms; documents and their terms), 5 the rows removed since (ids: chunks, docs: documents).
# The packed arrays count only while packed_state is valid; otherwise every posting is "added since".
PACKED_SQL = """WITH q AS MATERIALIZED (
    SELECT t.term_id, x.lang, count(*)::float8 AS mult, t.df::bigint AS df, t.doc_df::bigint AS doc_df
    FROM unnest(%(langs)s::smallint[], %(terms)s::text[]) AS x(lang, term) JOIN terms t ON t.term = x.term
    GROUP BY t.term_id, x.lang, t.df, t.doc_df),
st AS MATERIALIZED (
    SELECT p.valid, CASE WHEN p.valid THEN p.chunk_mark ELSE -1 END AS cm,
           CASE WHEN p.valid THEN p.doc_mark ELSE -1 END AS dm FROM packed_state p)
SELECT 0, q.term_id, q.mult, q.df, q.doc_df, k.rowids, k.docs, k.tfs, k.lens
FROM q JOIN chunk_packed k ON k.term_id = q.term_id AND k.lang = q.lang WHERE (SELECT valid FROM st)
UNION ALL
SELECT 1, q.term_id, q.mult, q.df, q.doc_df, string_agg(int8send(p.rowid), ''::bytea),
       string_agg(int4send(p.doc_no), ''::bytea), string_agg(int4send(p.tf::integer), ''::bytea),
       string_agg(int4send(p.len), ''::bytea)
FROM q JOIN chunk_postings p ON p.term_id = q.term_id AND p.lang = q.lang AND p.rowid > (SELECT cm FROM st)
GROUP BY q.term_id, q.lang, q.mult, q.df, q.doc_df
UNION ALL
SELECT 2, q.term_id, q.mult, q.df, q.doc_df, NULL, k.docs, k.tfs, k.lens
FROM q JOIN doc_packed k ON k.term_id = q.term_id AND k.lang = q.lang WHERE (SELECT valid FROM st)
UNION ALL
SELECT 3, q.term_id, q.mult, q.df, q.doc_df, NULL, string_agg(int4send(p.doc_no), ''::bytea),
       string_agg(int4send(p.tf), ''::bytea), string_agg(int4send(p.len), ''::bytea)
FROM q JOIN doc_postings p ON p.term_id = q.term_id AND p.lang = q.lang AND p.doc_no > (SELECT dm FROM st)
GROUP BY q.term_id, q.lang, q.mult, q.df, q.doc_df
UNION ALL
SELECT 4, NULL, NULL, s.chunks, s.chunk_terms, NULL, NULL, NULL, NULL FROM lexical_stats s
UNION ALL
SELECT 6, NULL, NULL, s.docs, s.doc_terms, NULL, NULL, NULL, NULL FROM lexical_stats s
UNION ALL
SELECT 5, NULL, NULL, NULL, NULL, (SELECT string_agg(int8send(rowid), ''::bytea) FROM dead_chunks),
       (SELECT string_agg(int4send(doc_no), ''::bytea) FROM dead_docs), NULL, NULL
FROM st WHERE st.valid
"""
CHUNKS_OF_DOCS_SQL = "SELECT rowid, doc_no FROM chunks WHERE doc_no = ANY(%s)"
_I8, _I4 = np.dtype(">i8"), np.dtype(">i4")
_EMPTY = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))


class SideScores(NamedTuple):
    """BM25 of one side (chunks or documents): the rows matching a term, ascending, with their sums."""

    ids: np.ndarray      # int64, ascending
    docs: np.ndarray     # int64: each row's document (the ids themselves on the document side)
    scores: np.ndarray   # float64


def _array(blobs: Sequence, dtype: np.dtype, out: type = np.int64) -> np.ndarray:
    """One array (of ``out``) of the big-endian integers of ``blobs`` (``bytea`` values, None for none)."""
    return np.frombuffer(b"".join(bytes(b) for b in blobs if b), dtype=dtype).astype(out)


def _sums(ids: np.ndarray, values: np.ndarray, docs: np.ndarray | None) -> SideScores:
    """``values`` (positive) summed by id, in the order they come (ids ascending), with each id's document
    (``docs`` None: the ids are documents)."""
    if not len(ids):
        return SideScores(ids, ids, np.zeros(0))
    lo, hi = int(ids.min()), int(ids.max())
    if hi - lo < 4 * len(ids) + 65536:  # dense enough: one pass, no sort
        at = ids - lo
        sums = np.bincount(at, weights=values, minlength=hi - lo + 1)
        keys = np.flatnonzero(sums > 0)  # every posting adds a positive term weight
        if docs is None:
            return SideScores(keys + lo, keys + lo, sums[keys])
        owner = np.zeros(hi - lo + 1, dtype=np.int64)
        owner[at] = docs
        return SideScores(keys + lo, owner[keys], sums[keys])
    uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    return SideScores(uniq, uniq if docs is None else docs[first],
                      np.bincount(inverse, weights=values, minlength=len(uniq)))


def _nth_best(scores: np.ndarray, n: int) -> float:
    """The ``n``-th highest of ``scores`` (``len(scores) > n > 0``)."""
    return float(np.partition(scores, len(scores) - n)[len(scores) - n])


def _best(scores: np.ndarray, ids: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` best ``scores``, best first, ties by the lower id (only those near the top sorted)."""
    near = np.arange(len(scores))
    if len(scores) > n > 0:
        near = np.flatnonzero(scores >= _nth_best(scores, n))
    return near[np.lexsort((ids[near], -scores[near]))][:n]


def _positions(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Where each of ``wanted`` is in the ascending ``ids`` (-1 where it is not)."""
    at = np.searchsorted(ids, wanted)
    inside = at < len(ids)
    inside[inside] = ids[at[inside]] == wanted[inside]
    return np.where(inside, at, -1)


def side_scores(parts: Sequence[tuple], n_rows: float, avg_len: float, k1: float, b: float,
                chunks: bool, gone: np.ndarray, allowed: np.ndarray | None) -> SideScores:
    """Sum ``w tf / (tf + k1 (1 - b) + k1 b len / avg_len)`` by row over the postings of ``parts``.

    ``parts`` are :data:`PACKED_SQL` rows of one side; ``w`` is the term's multiplicity times its idf over
    ``n_rows`` (its df on the chunk side, its doc_df on the document side). Rows in ``gone`` are left out,
    and rows of documents outside ``allowed`` (document numbers; None: all).
    """
    docs = _array([p[6] for p in parts], _I4)
    ids = _array([p[5] for p in parts], _I8) if chunks else docs
    counts = [len(p[6] or b"") // 4 for p in parts]
    freq = np.array([p[3] if chunks else p[4] for p in parts], dtype=np.float64)
    mult = np.array([p[2] for p in parts], dtype=np.float64)
    w = np.repeat(mult * np.log(1 + (n_rows - freq + 0.5) / (freq + 0.5)), counts)
    tf = _array([p[7] for p in parts], _I4, np.float64)
    length = _array([p[8] for p in parts], _I4, np.float64)
    keep = None
    if len(gone):
        keep = ~np.isin(ids, gone)
    if allowed is not None:
        keep = np.isin(docs, allowed) if keep is None else keep & np.isin(docs, allowed)
    if keep is not None:
        ids, docs, w, tf, length = ids[keep], docs[keep], w[keep], tf[keep], length[keep]
    # the SQL's float8 operations, in its order: w * tf / (tf + k0 + kl * len)
    return _sums(ids, w * tf / (tf + k1 * (1 - b) + (k1 * b / avg_len) * length), docs if chunks else None)


def packed_scores(rows: Sequence[tuple], n: int, doc_weight: float, k1: float, b: float,
                  allowed: Sequence[int] | None,
                  chunks_of: Callable[[list[int]], list[tuple[int, int]]]) -> tuple[np.ndarray, np.ndarray]:
    """Best ``n`` chunks by blended BM25 from :data:`PACKED_SQL`'s rows: (rowids, scores), best first.

    ``chunks_of`` gives the (rowid, doc_no) of the chunks of some documents (the best ``n`` documents',
    whose chunks matching no term still score their document's share). Scores are the SQL's, ordered as
    :data:`LEXICAL_SQL` orders them; zero scores stay in (the caller leaves them out).
    """
    totals = {r[0]: (float(r[3]), float(r[4])) for r in rows if r[0] in (4, 6)}
    (n_chunks, chunk_terms), (n_docs, doc_terms) = totals.get(4, (0.0, 0.0)), totals.get(6, (0.0, 0.0))
    if not n_chunks:
        return _EMPTY
    dead = next((r for r in rows if r[0] == 5), None)
    gone_chunks = _array([dead[5]] if dead is not None else [], _I8)
    gone_docs = _array([dead[6]] if dead is not None else [], _I4)
    allow = np.asarray(list(allowed), dtype=np.int64) if allowed is not None else None
    c = side_scores([r for r in rows if r[0] in (0, 1)], n_chunks, chunk_terms / n_chunks, k1, b, True,
                    gone_chunks, allow)
    d = side_scores([r for r in rows if r[0] in (2, 3)], n_docs, doc_terms / max(n_docs, 1.0), k1, b, False,
                    gone_docs, allow)
    mc = float(c.scores.max()) if len(c.scores) else 0.0
    md = float(d.scores.max()) if len(d.scores) else 0.0
    top = d.ids[_best(d.scores, d.ids, n)]
    extra = np.array(chunks_of([int(x) for x in top]) if len(top) else [], dtype=np.int64).reshape(-1, 2)
    extra = extra[_positions(c.ids, extra[:, 0]) < 0]  # the best documents' chunks that matched no term
    # a matched chunk scores at least its own share; those that cannot reach the n-th best share even with their
    # document's full share are left out before their documents are looked up
    near = np.arange(len(c.ids))
    if len(c.ids) > n > 0 and mc > 0:
        own = (1 - doc_weight) * c.scores / mc
        near = np.flatnonzero(own + (doc_weight if md > 0 else 0.0) >= _nth_best(own, n) - 1e-9)
    rowids = np.concatenate([c.ids[near], extra[:, 0]])
    docs = np.concatenate([c.docs[near], extra[:, 1]])
    cs = np.concatenate([c.scores[near], np.zeros(len(extra))])
    at = _positions(d.ids, docs)
    ds = np.zeros(len(docs))
    ds[at >= 0] = d.scores[at[at >= 0]]
    score = (1 - doc_weight) * (cs / mc if mc > 0 else cs) + doc_weight * (ds / md if md > 0 else ds)
    order = _best(np.round(score * 1e12), rowids, n)
    return rowids[order], score[order].astype(np.float32)
