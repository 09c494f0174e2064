"""The retriever: an index's BM25 and dense candidates for a question, fused into passages.

The index is a folder or a PostgreSQL database (:func:`rag.store.factory.open_store`); each gives its BM25 and
dense (ids, scores), fused, collapsed and turned into hits here, the same for both. It follows
the index: a build that commits is picked up at the next search.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from ..config import Config
from ..dates import day_range
from ..embedding import PASSAGE, QUERY, Embedder, canonical_model_name, get_embedder
from ..schema import Hit
from ..search.stats import TermStats
from ..store.base import IndexStore, SearchBackend
from ..store.factory import open_store
from ..store import layout
from ..store.layout import Manifest
from ..text.normalize import detect_language
from .fusion import Mode, collapse, fuse
from .local_search import LocalSearch
from .pg_search import PgSearch


def open_search(store: IndexStore, config: Config, model: str | None) -> SearchBackend:
    """The search side of ``store`` (a folder's or a database's) for questions encoded by ``model``
    (None: by the index's own model)."""
    if store.local:
        return LocalSearch(store, model)
    return PgSearch(store, config, model)


class Retriever:
    """Searches an index (a folder or a ``postgresql://`` database); follows the builds that commit.

    Parameters
    ----------
    config : Config
        Settings (index folder, model, fusion weight, candidates).
    index_dir : path-like, optional
        Overrides ``config.index_dir``.
    embedder : Embedder, optional
        A loaded model to share.
    """

    def __init__(self, config: Config, index_dir: str | os.PathLike | None = None, embedder: Embedder | None = None):
        self.config = config
        self.store = open_store(index_dir or config.index_dir)
        self._chosen = embedder.name if embedder is not None else None  # a given embedder names the model
        asked = self._chosen or (canonical_model_name(config.model) if "model" in config.sources else None)
        self.index = open_search(self.store, config, asked)  # without a model asked for: the index's
        self._embedder = embedder
        self._lock = threading.Lock()
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()  # recent query vectors
        self._dense_pool: ThreadPoolExecutor | None = None  # a database's dense searches, beside the lexical one
        self.refresh()

    @property
    def manifest(self) -> Manifest | None:
        """The manifest of the index as last refreshed."""
        return self.index.manifest

    @property
    def vectors(self):
        """The local index's vectors (:class:`rag.search.vectors.VectorIndex`; a folder index only)."""
        return self.index.vectors

    @property
    def lexical(self):
        """The local index's BM25 (:class:`rag.search.lexical.LexicalIndex`; a folder index only)."""
        return self.index.lexical

    @property
    def embedder(self) -> Embedder:
        """The query encoder: the index's model, run the way the index was built (torch or int8)."""
        encoder = self.manifest.encoder if self.manifest else None
        model = self.model
        if self._embedder is None or (encoder and self._embedder.encoder != encoder) or self._embedder.name != model:
            embedder = get_embedder(model, self.config.batch_size, encoder, self.config.cache_dir or None)
            if self.manifest is not None:
                layout.check_prompts(self.manifest, embedder.prompts, model, str(self.store.folder))
            self._embedder = embedder
            self._queries.clear()
        return self._embedder

    @property
    def model(self) -> str:
        """The index's model; the configured one when it is given explicitly (then they must agree) or no index."""
        if self._chosen:
            return self._chosen
        if self.manifest is not None and "model" not in self.config.sources:
            return self.manifest.model
        return canonical_model_name(self.config.model)

    def refresh(self) -> bool:
        """Follow the index: load the current generation of a folder if it changed, read a database's
        manifest; True when a build committed since.

        Raises
        ------
        IndexCorrupt, IndexMismatch
            No committed build, damaged search files (their checksums are checked), another format
            or another model.
        """
        return self.index.refresh()

    def term_stats(self) -> TermStats:
        """Term statistics of the current generation (computed once per generation)."""
        return self.index.term_stats()

    def search(self, question: str, k: int | None = None, docs: Sequence[str] | None = None,
               mode: Mode | str = Mode.HYBRID, lang: str | None = None, since: str | None = None,
               until: str | None = None) -> list[Hit]:
        """The best ``k`` passages for ``question``.

        Parameters
        ----------
        question : str
            The question (any length; only its first 2,000 characters are used).
        k : int, optional
            Passages to return (default ``config.top_k``).
        docs : sequence of str, optional
            Restrict to these documents (ids, sources, folder prefixes or titles).
        mode : Mode or str
            ``hybrid`` (default), ``bm25`` or ``dense``.
        lang : str, optional
            The question's language (detected when omitted).
        since, until : str or date, optional
            Only documents dated in this range (ISO days ``YYYY-MM-DD``, both included); a
            document without a date is left out by either. Applied inside both searches, like
            ``docs``, so ``k`` passages still come back when the range holds them.

        Returns
        -------
        list of Hit, best first, overlapping and near-duplicate chunks collapsed.

        Raises
        ------
        ValueError
            For a ``since`` or ``until`` that is not an ISO day, or ``since`` after ``until``.
        """
        since, until = day_range(since, until)
        self.refresh()
        k = k or self.config.top_k
        mode = Mode(mode)
        question = question[:2000]
        lang = lang or detect_language(question, self.config.default_lang)
        allowed = self.index.restrict(self.store.resolve_docs(docs) if docs else None, since, until)
        n = max(self.config.candidates, 4 * k)
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        lex = dense = empty
        pending = None
        if mode is Mode.HYBRID and question.strip() and not self.store.local:
            # a database: the dense search runs on another connection while this one runs the lexical search
            pending = self._dense_workers().submit(self.index.dense_search, self.query_vector(question), n, allowed)
        if mode is not Mode.DENSE:
            lex = self.index.lexical_search(question, n, allowed, lang, self.config.doc_weight)
        if pending is not None:
            dense = pending.result()
        elif mode is not Mode.BM25 and question.strip():
            dense = self.index.dense_search(self.query_vector(question), n, allowed)
        weight = {Mode.HYBRID: self.config.bm25_weight, Mode.BM25: 1.0, Mode.DENSE: 0.0}[mode]
        foreign = None
        if mode is Mode.HYBRID and self.config.crosslingual_bm25_weight != weight:
            foreign = self.index.foreign_rows(np.union1d(lex[0], dense[0]), lang)
        fused = fuse(lex, dense, weight, foreign, self.config.crosslingual_bm25_weight)
        hits = self._hits(fused[: 3 * k + 10])
        if hits is None:  # a build committed between our refresh and the row lookup
            if self.refresh():
                return self.search(question, k, docs, mode, lang, since, until)
            hits = self._hits(fused[: 3 * k + 10], strict=False)
        return collapse(hits, k)

    def _dense_workers(self) -> ThreadPoolExecutor:
        """The threads that run a database's dense searches (each keeps its own connection)."""
        with self._lock:
            if self._dense_pool is None:
                self._dense_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rag-dense")
            return self._dense_pool

    def query_vector(self, question: str) -> np.ndarray:
        """The question's embedding; the last 256 are kept, so asking again does not re-encode."""
        with self._lock:
            vec = self._queries.get(question)
            if vec is not None:
                self._queries.move_to_end(question)
                return vec
        vec = self.embedder.encode([question], prompt=QUERY)[0]
        with self._lock:
            self._queries[question] = vec
            while len(self._queries) > 256:
                self._queries.popitem(last=False)
        return vec

    def similarity(self, question: str, texts: Sequence[str]) -> np.ndarray:
        """Cosine of ``question`` (query prompt) with each of ``texts`` (passage prompt), in the index's model.

        Encodes ``texts`` (a few milliseconds each); the question's vector comes from the cache
        :meth:`query_vector` keeps.
        """
        if not texts:
            return np.zeros(0, dtype=np.float32)
        return self.embedder.encode(list(texts), prompt=PASSAGE) @ self.query_vector(question[:2000])

    def _hits(self, fused: list[tuple[int, float, float, float]], strict: bool = True) -> list[Hit] | None:
        """Hits with their rows; with ``strict``, None when some rows are gone (a newer generation committed)."""
        rows = self.store.chunk_rows([cid for cid, *_ in fused])
        if strict and len(rows) < len(fused):
            return None
        out = []
        for cid, score, b, d in fused:
            r = rows.get(cid)
            if r is None:
                continue
            out.append(Hit(r["chunk_id"], r["doc_id"], r["source"], r["title"], r["text"], r["start"], r["end"],
                           r["lang"], float(score), float(b), float(d), r["date"], r["date_source"], r["url"],
                           r["author"]))
        return out

