"""Search in an index folder: the current generation's FAISS and BM25 files, loaded in this process.

A build that commits a new generation is picked up by the next :meth:`LocalSearch.refresh`.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from ..embedding import encoder_recipe, stale_recipe
from ..errors import IndexCorrupt, Remedy
from ..search.lexical import LexicalIndex
from ..search.stats import TermStats
from ..search.vectors import VectorIndex
from ..store import layout
from ..store.layout import Manifest
from ..store.sqlite import Store

log = logging.getLogger(__name__)


class LocalSearch:
    """The retriever's search side over an index folder.

    Parameters
    ----------
    store : Store
        The folder's SQLite records.
    model : str or None
        The model questions are encoded by (canonical name): the index must have been built with it
        (None: the index's own).
    """

    def __init__(self, store: Store, model: str | None):
        self.store, self.model = store, model
        self._lock = threading.Lock()
        self.manifest: Manifest | None = None
        self.vectors: VectorIndex | None = None
        self.lexical: LexicalIndex | None = None
        self._stats: TermStats | None = None

    def refresh(self) -> bool:
        """Load the current generation if it changed; True when something was (re)loaded.

        Raises
        ------
        IndexCorrupt, IndexMismatch
            No committed build, damaged search files (their checksums are checked), another format
            or another model.
        """
        manifest = self.store.manifest()
        if manifest is not None and self.manifest is not None and manifest.generation == self.manifest.generation:
            return False
        where = str(self.store.folder)
        manifest = layout.check_readable(manifest, self.model or (manifest.model if manifest else ""), where)
        layout.check_sound(self.store.folder, manifest)  # the checksums written at commit
        vectors = layout.load_vectors(self.store.folder, manifest)
        lexical = layout.load_lexical(self.store.folder, manifest)
        damage = lexical.problems()
        if damage:
            raise IndexCorrupt(f"{where}/ BM25 files are damaged: {damage[0]}", Remedy.REPAIR, where)
        if stale_recipe(manifest.encoder, manifest.encoder_recipe):
            log.warning("%s/: its vectors were made by an earlier %s export (recipe %d); questions are encoded by "
                        "recipe %d, a little less accurately against them; the index's next build encodes them again",
                        where, manifest.encoder, manifest.encoder_recipe, encoder_recipe(manifest.encoder))
        with self._lock:
            self.manifest, self.vectors, self.lexical = manifest, vectors, lexical
            self._stats = None
        return True

    def restrict(self, doc_ids, since, until) -> np.ndarray | None:
        """The chunk rowids a document and date filter allows (None: all)."""
        allowed = self.store.rowids_of_docs(doc_ids) if doc_ids is not None else None
        if since or until:
            dated = self.store.rowids_dated(since, until)
            allowed = dated if allowed is None else np.intersect1d(allowed, dated)
        return allowed

    def lexical_search(self, question: str, n: int, allowed: np.ndarray | None, lang: str | None,
                       doc_weight: float) -> tuple[np.ndarray, np.ndarray]:
        """Best ``n`` chunks by blended BM25: (rowids, scores), best first."""
        with self._lock:
            lexical = self.lexical
        mask = None if allowed is None else np.isin(lexical.ids, allowed).astype(np.float32)
        return lexical.search(question, n, mask, lang, doc_weight)

    def dense_search(self, query: np.ndarray, n: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Best ``n`` chunks by inner product: (rowids, scores), best first."""
        with self._lock:
            vectors = self.vectors
        return vectors.search(query, n, allowed)

    def foreign_rows(self, rows: np.ndarray, lang: str) -> set[int]:
        """The chunk rowids among ``rows`` whose chunk is not in language ``lang``."""
        with self._lock:
            lexical = self.lexical
        if lexical.lang_names == [lang]:
            return set()
        order = np.argsort(lexical.ids, kind="stable")
        at = np.minimum(np.searchsorted(lexical.ids[order], rows), len(order) - 1)
        found = lexical.ids[order][at] == rows
        codes = lexical.langs[order][at]
        mine = lexical.lang_names.index(lang) if lang in lexical.lang_names else -1
        return set(rows[found & (codes != mine)].tolist())

    def term_stats(self) -> TermStats:
        """Term statistics of the current generation (computed once per generation)."""
        with self._lock:
            if self._stats is None:
                self._stats = self.lexical.term_stats() if self.lexical is not None else TermStats({}, 1)
            return self._stats
