"""Building bm25s indexes with numpy: the scores ``bm25s.BM25.index`` computes, without its loops.

``bm25s.BM25.index`` counts terms document by document in Python, which takes seconds for
a few hundred thousand chunks and is paid on every update (BM25 scores depend on the whole
collection). Here the terms are numbered once, and the counts, document frequencies and
Lucene BM25 scores are computed over whole arrays, in the same float precision and the same
compressed sparse column layout: a :class:`bm25s.BM25` built here scores, saves and loads
as one built by bm25s (``tests/test_lexical.py`` compares the two). Terms are numbered by
:mod:`rag.term_table`.
"""

from __future__ import annotations

import math
from typing import Sequence

import bm25s
import numpy as np

EMPTY_TERM = "\u2205"  # the term of a row without terms (bm25s wants none empty)


def bm25_index(vocab: dict[str, int], ids: np.ndarray, rows: np.ndarray, n_rows: int,
               k1: float, b: float) -> bm25s.BM25:
    """The bm25s index (Lucene variant, as ``bm25s.BM25(k1=k1, b=b).index`` makes it) of ``n_rows`` rows.

    Parameters
    ----------
    vocab : dict of str to int
        Term ids (:meth:`rag.term_table.TermTable.occurrences`); every term should occur in some row.
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
    bm = bm25s.BM25(k1=k1, b=b)
    bm.nonoccurrence_array = None  # as bm25s sets it for the Lucene variant
    bm.scores = {"data": (idf[cols] * tfc).astype(np.float32), "indices": docs.astype(np.int32),
                 "indptr": indptr, "num_docs": n_rows}
    bm.vocab_dict = {**vocab, "": vocab.get("", n_vocab)} if vocab else {"": 0}
    bm.unique_token_ids_set = set(bm.vocab_dict.values())
    return bm


def _counts(ids: np.ndarray, rows: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (term, row) pairs, sorted by term then row (bm25s's sparse column order), and their counts."""
    keys = ids * n_rows + rows
    keys.sort()
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1]))) if len(keys) else np.zeros(0, np.int64)
    counts = np.diff(np.append(starts, len(keys)))
    cols, docs = np.divmod(keys[starts], n_rows)
    return cols, docs, counts
