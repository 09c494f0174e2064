"""BM25 postings built with numpy: the scores ``bm25s.BM25.index`` computes, without its loops.

``bm25s.BM25.index`` counts terms document by document in Python, which takes seconds for
a few hundred thousand chunks and is paid on every update (BM25 scores depend on the whole
collection). Here the terms are numbered once, and the counts, document frequencies and
Lucene BM25 scores are computed over whole arrays, in the same float precision and the same
compressed sparse column layout: :class:`rag.search.lexical.LexicalIndex` hands them to a
:class:`bm25s.BM25`, which then scores, saves and loads as one built by bm25s
(``tests/search/test_lexical.py`` compares the two). Terms are numbered by
:mod:`rag.search.term_table`. This module does not import bm25s.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

EMPTY_TERM = "\u2205"  # the term of a row without terms (bm25s wants none empty)


class Postings(NamedTuple):
    """Lucene BM25 scores of every (term, row) pair, in bm25s's compressed sparse column layout.

    Row ``indices[indptr[t]:indptr[t + 1]]`` holds term ``t`` with score ``data[...]``; ``vocab``
    numbers the terms (with ``""`` last, as bm25s keeps it).
    """

    data: np.ndarray     # float32 scores
    indices: np.ndarray  # int32 rows
    indptr: np.ndarray   # int64, one offset per term and one more
    num_docs: int
    vocab: dict[str, int]


def bm25_postings(vocab: dict[str, int], ids: np.ndarray, rows: np.ndarray, n_rows: int,
                  k1: float, b: float) -> Postings:
    """The BM25 postings (Lucene variant, as ``bm25s.BM25(k1=k1, b=b).index`` makes them) of ``n_rows`` rows.

    Parameters
    ----------
    vocab : dict of str to int
        Term ids (:meth:`rag.search.term_table.TermTable.occurrences`); every term should occur in some row.
    ids, rows : np.ndarray
        Each occurrence of a term: its id, and its row (in ``range(n_rows)``).
    n_rows : int
        Rows in the index; a row without terms is given :data:`EMPTY_TERM`, as bm25s needs.
    k1, b : float
        BM25 parameters.
    """
    lengths = np.bincount(rows, minlength=n_rows)
    empty = np.flatnonzero(lengths == 0)
    if len(empty):
        vocab = {**vocab, EMPTY_TERM: vocab.get(EMPTY_TERM, len(vocab))}
        ids = np.concatenate([ids, np.full(len(empty), vocab[EMPTY_TERM], dtype=np.int64)])
        rows = np.concatenate([rows, empty])
        lengths[empty] = 1
    n_vocab = len(vocab)
    cols, docs, tf = _counts(ids, rows, n_rows)
    df = np.bincount(cols, minlength=n_vocab)
    values, where = np.unique(df, return_inverse=True)
    # idf per distinct frequency, with math.log as bm25s computes it, kept in float32 as bm25s does
    idf = np.array([math.log(1 + (n_rows - d + 0.5) / (d + 0.5)) if d else 0.0 for d in values.tolist()],
                   dtype=np.float32)[where]
    tf = tf.astype(np.float32)
    tfc = tf / (k1 * ((1 - b) + b * lengths[docs] / lengths.mean()) + tf)
    indptr = np.zeros(n_vocab + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    return Postings((idf[cols] * tfc).astype(np.float32), docs.astype(np.int32), indptr, n_rows,
                    {**vocab, "": vocab.get("", n_vocab)} if vocab else {"": 0})


def _counts(ids: np.ndarray, rows: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (term, row) pairs, sorted by term then row (bm25s's sparse column order), and their counts."""
    keys = ids * n_rows + rows
    keys.sort()
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1]))) if len(keys) else np.zeros(0, np.int64)
    counts = np.diff(np.append(starts, len(keys)))
    cols, docs = np.divmod(keys[starts], n_rows)
    return cols, docs, counts
