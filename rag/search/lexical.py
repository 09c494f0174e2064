"""The lexical index: BM25 over chunks, blended with BM25 over their documents, kept without pickle.

Terms come from :mod:`rag.text.analysis` (:func:`~rag.text.analysis.index_terms` for chunks,
:func:`~rag.text.analysis.query_terms` for questions). Each chunk is scored by BM25 over its own
terms, blended with BM25 over its whole document (``doc_weight`` in :class:`rag.config.Config`),
and every row is matched with the question analysed in that row's language. This is the only
module that imports bm25s: the postings are computed by :mod:`rag.search.bm25_build` and handed
to it for scoring, saving and loading.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import IndexMismatch, Remedy
from ..lazy import lazy_import
from ..text.analysis import ANALYZER_VERSION, query_terms
from . import term_table
from .bm25_build import Postings, bm25_postings
from .stats import TermStats
from .term_table import TermTable

bm25s = lazy_import("bm25s")  # with SciPy, 0.3-0.6 s: only when an index is built, loaded or searched
K1, B = 0.9, 0.5      # BM25 parameters, measured on PIAF-dev (docs/evaluation.md)
_EMPTY = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))


MAX_SCORE = 1e4  # a BM25 weight beyond this is damage (idf * (k1 + 1) stays far below it)


def bm25s_index(postings: Postings, k1: float, b: float) -> bm25s.BM25:
    """A :class:`bm25s.BM25` holding ``postings``, as ``bm25s.BM25(k1=k1, b=b).index`` would make it."""
    bm = bm25s.BM25(k1=k1, b=b)
    bm.nonoccurrence_array = None  # as bm25s sets it for the Lucene variant
    bm.scores = {"data": postings.data, "indices": postings.indices, "indptr": postings.indptr,
                 "num_docs": postings.num_docs}
    bm.vocab_dict = postings.vocab
    bm.unique_token_ids_set = set(postings.vocab.values())
    return bm


class LexicalMismatch(IndexMismatch):
    """The stored index was written by another analysis or layout; it must be rebuilt."""


class LexicalIndex:
    """BM25 over chunks, blended with BM25 over their documents.

    Each row is a chunk with its id (an int64 key), its document and its language. Row terms
    come from :func:`rag.text.analysis.index_terms`; a document's terms are its chunks' terms together.

    Parameters
    ----------
    k1, b : float
        BM25 parameters.
    """

    def __init__(self, k1: float = K1, b: float = B):
        self.k1, self.b = k1, b
        self.ids = np.zeros(0, dtype=np.int64)
        self.groups = np.zeros(0, dtype=np.int32)   # document ordinal of each row
        self.langs = np.zeros(0, dtype=np.int8)     # index into self.lang_names, per row
        self.lang_names: list[str] = []
        self._bm25: bm25s.BM25 | None = None        # rows (chunks)
        self._docs: bm25s.BM25 | None = None        # documents
        self._doc_langs = np.zeros(0, dtype=np.int8)
        self.table: TermTable | None = None          # numbered terms of the rows, saved for updates

    def __len__(self) -> int:
        return len(self.ids)

    def build(self, ids: Sequence[int], tokens: Sequence[list[str]] | TermTable, docs: Sequence[str] | None = None,
              langs: Sequence[str] | None = None) -> "LexicalIndex":
        """Index the terms ``tokens`` of chunk ids ``ids``.

        Parameters
        ----------
        ids : sequence of int
            Chunk ids, one per row.
        tokens : sequence of list of str, or TermTable
            Each row's terms (:func:`rag.text.analysis.index_terms`), or the same already numbered
            (:mod:`rag.search.term_table`; kept with the index, so that updates need not number them again).
        docs : sequence of str, optional
            Each row's document id (default: each row its own document).
        langs : sequence of str, optional
            Each row's language (default: French).
        """
        self.ids = np.asarray(ids, dtype=np.int64)
        n = len(self.ids)
        table = tokens if isinstance(tokens, TermTable) else term_table.table_of(tokens)
        docs = list(docs) if docs is not None else [str(i) for i in range(n)]
        langs = list(langs) if langs is not None else ["fr"] * n
        if not (table.rows == len(docs) == len(langs) == n):
            raise ValueError(f"LexicalIndex.build: {n} ids, {table.rows} token lists, {len(docs)} docs, {len(langs)} langs")
        self.table = table
        order = {d: i for i, d in enumerate(dict.fromkeys(docs))}
        self.groups = np.array([order[d] for d in docs], dtype=np.int32)
        self.lang_names = sorted(set(langs)) or ["fr"]
        codes = {x: i for i, x in enumerate(self.lang_names)}
        self.langs = np.array([codes[x] for x in langs], dtype=np.int8)
        if not n:
            self._bm25 = self._docs = None
            return self
        last = np.zeros(len(order), dtype=np.int64)
        np.maximum.at(last, self.groups, np.arange(n))
        self._doc_langs = self.langs[last]  # a document's language: its last row's
        # a document's terms are its rows' terms: the same term ids, owned by the row's document
        vocab, terms, rows = table.occurrences()
        self._bm25 = bm25s_index(bm25_postings(vocab, terms, rows, n, self.k1, self.b), self.k1, self.b)
        self._docs = bm25s_index(bm25_postings(vocab, terms, self.groups[rows].astype(np.int64), len(order),
                                                 self.k1, self.b), self.k1, self.b)
        return self

    def term_stats(self) -> TermStats:
        """Document frequencies of the chunk terms (for weighting question terms by rarity)."""
        if self._bm25 is None:
            return TermStats({}, len(self))
        df = np.diff(np.asarray(self._bm25.scores["indptr"]))
        vocab = self._bm25.vocab_dict
        return TermStats({t: int(df[i]) for t, i in vocab.items() if i < len(df)}, int(self._bm25.scores["num_docs"]))

    @staticmethod
    def _scores(bm: bm25s.BM25, terms: list[str], size: int) -> np.ndarray:
        known = [t for t in terms if t in bm.vocab_dict]
        return bm.get_scores(known).astype(np.float32) if known else np.zeros(size, dtype=np.float32)

    def scores(self, question: str, lang: str | None = None, doc_weight: float = 0.3,
               mask: np.ndarray | None = None) -> np.ndarray:
        """Lexical score of every row for ``question`` (in language ``lang``), in [0, 1].

        ``(1 - doc_weight) * chunk BM25 + doc_weight * document BM25``, each divided by its
        best value among the rows ``mask`` allows (0/1 per row; default all); rows are matched
        with the question analysed in their own language.
        """
        chunk = np.zeros(len(self.ids), dtype=np.float32)
        if self._bm25 is None or self._docs is None:
            return chunk
        doc = np.zeros(len(self._doc_langs), dtype=np.float32)
        for code, name in enumerate(self.lang_names):
            terms = query_terms(question, name, lang)
            if len(self.lang_names) == 1:
                chunk, doc = self._scores(self._bm25, terms, len(chunk)), self._scores(self._docs, terms, len(doc))
                break
            rows, docs = self.langs == code, self._doc_langs == code
            chunk[rows] = self._scores(self._bm25, terms, len(chunk))[rows]
            doc[docs] = self._scores(self._docs, terms, len(doc))[docs]
        doc = doc[self.groups]
        if mask is not None:
            chunk, doc = chunk * mask, doc * mask
        return _blend(chunk, doc, doc_weight)

    def search(self, question: str, n: int, mask: np.ndarray | None = None, lang: str | None = None,
               doc_weight: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
        """Best ``n`` rows for ``question``: (chunk ids, scores), best first.

        ``mask`` (0/1 per row) restricts the search to some rows; rows scoring 0 are left out.
        """
        if self._bm25 is None or n <= 0:
            return _EMPTY
        scores = self.scores(question, lang, doc_weight, mask)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return self.ids[top], scores[top]

    def save(self, folder: Path) -> None:
        """Write the index to ``folder`` (numpy arrays and JSON only)."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("ids", "groups", "langs"):
            np.save(folder / f"{name}.npy", getattr(self, name), allow_pickle=False)
        np.save(folder / "doc_langs.npy", self._doc_langs, allow_pickle=False)
        params = {"k1": self.k1, "b": self.b, "analyzer": ANALYZER_VERSION, "langs": self.lang_names}
        (folder / "params.json").write_text(json.dumps(params), encoding="utf-8")
        if self._bm25 is not None and self._docs is not None:
            self._bm25.save(str(folder / "bm25"), allow_pickle=False)
            self._docs.save(str(folder / "bm25_docs"), allow_pickle=False)
        if self.table is not None:
            term_table.save(self.table, folder)

    @staticmethod
    def saved_ids(folder: Path) -> np.ndarray | None:
        """The chunk ids of the rows saved in ``folder`` (None when unreadable)."""
        try:
            return np.load(folder / "ids.npy", allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None

    @classmethod
    def load(cls, folder: Path, mmap: bool = False) -> "LexicalIndex":
        """Read an index written by :meth:`save` (``mmap`` keeps large postings on disk).

        Raises
        ------
        LexicalMismatch
            When the index was written by another analysis (rebuild it).
        """
        params = json.loads((folder / "params.json").read_text(encoding="utf-8"))
        if params.get("analyzer") != ANALYZER_VERSION:
            raise LexicalMismatch(f"{folder}: BM25 terms from text analysis version {params.get('analyzer', 1)}, "
                                  f"this version uses {ANALYZER_VERSION}", Remedy.REBUILD)
        idx = cls(params["k1"], params["b"])
        idx.lang_names = list(params["langs"])
        idx.ids, idx.groups, idx.langs, idx._doc_langs = (
            np.load(folder / f"{name}.npy", allow_pickle=False) for name in ("ids", "groups", "langs", "doc_langs"))
        if len(idx.ids):
            idx._bm25 = bm25s.BM25.load(str(folder / "bm25"), mmap=mmap, allow_pickle=False)
            idx._docs = bm25s.BM25.load(str(folder / "bm25_docs"), mmap=mmap, allow_pickle=False)
        return idx


    def problems(self, bound: float = MAX_SCORE) -> list[str]:
        """What is wrong with the arrays held: rows pointing at no document or language, BM25 weights
        that are NaN, infinite, negative or above ``bound``. Empty when sound."""
        out = []
        n_docs, n_langs = len(self._doc_langs), len(self.lang_names)
        if len(self.groups) != len(self.ids) or len(self.langs) != len(self.ids):
            out.append(f"{len(self.ids)} rows but {len(self.groups)} document numbers and {len(self.langs)} languages")
        elif len(self.ids) and (self.groups.min() < 0 or self.groups.max() >= n_docs):
            out.append(f"rows point at documents outside 0..{n_docs - 1}")
        if len(self.langs) and (self.langs.min() < 0 or self.langs.max() >= n_langs):
            out.append(f"rows point at languages outside 0..{n_langs - 1}")
        if len(self._doc_langs) and (self._doc_langs.min() < 0 or self._doc_langs.max() >= n_langs):
            out.append(f"documents point at languages outside 0..{n_langs - 1}")
        for name, bm in (("rows", self._bm25), ("documents", self._docs)):
            if bm is None:
                continue
            data = np.asarray(bm.scores["data"])
            if len(data) and not (np.isfinite(data).all() and data.min() >= 0 and data.max() <= bound):
                out.append(f"BM25 weights of the {name} hold NaN, infinite, negative or huge values")
            indices = np.asarray(bm.scores["indices"])
            size = len(self.ids) if bm is self._bm25 else n_docs
            if len(indices) and (indices.min() < 0 or indices.max() >= size):
                out.append(f"BM25 postings of the {name} point outside 0..{size - 1}")
        return out


def _blend(chunk: np.ndarray, doc: np.ndarray, doc_weight: float) -> np.ndarray:
    def unit(x: np.ndarray) -> np.ndarray:
        top = float(x.max()) if len(x) else 0.0
        return x / top if top > 0 else x

    return ((1 - doc_weight) * unit(chunk) + doc_weight * unit(doc)).astype(np.float32)
