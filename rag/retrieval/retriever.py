"""The retriever: an index's BM25 and dense candidates for a question, fused into passages.

It follows the index: a build that commits a new generation is picked up at the next search.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from typing import Sequence

import numpy as np

from ..config import Config
from ..dates import day_range
from ..embedding import QUERY, Embedder, canonical_model_name, encoder_recipe, get_embedder, stale_recipe
from ..schema import Hit
from ..search.lexical import LexicalIndex
from ..search.stats import TermStats
from ..search.vectors import VectorIndex
from ..store import layout
from ..store.layout import Manifest
from ..store.sqlite import Store
from ..text.normalize import detect_language
from .fusion import Mode, collapse, fuse

log = logging.getLogger(__name__)


class Retriever:
    """Searches an index folder; reloads by itself when a build commits a new generation.

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
        self.store = Store(index_dir or config.index_dir)
        self._embedder = embedder
        self._chosen = embedder.name if embedder is not None else None  # a given embedder names the model
        self._lock = threading.Lock()
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()  # recent query vectors
        self.manifest: Manifest | None = None
        self.vectors: VectorIndex | None = None
        self.lexical: LexicalIndex | None = None
        self._stats: TermStats | None = None
        self.refresh()

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
        """Load the current generation if it changed; True when something was (re)loaded.

        Raises
        ------
        IndexCorrupt, IndexMismatch
            No committed build, damaged search files, another format or another model.
        """
        manifest = self.store.manifest()
        if manifest is not None and self.manifest is not None and manifest.generation == self.manifest.generation:
            return False
        where = str(self.store.folder)
        asked = self._chosen or (canonical_model_name(self.config.model) if "model" in self.config.sources else None)
        manifest = layout.check_readable(manifest, asked or (manifest.model if manifest else ""), where)
        vectors = layout.load_vectors(self.store.folder, manifest)
        lexical = layout.load_lexical(self.store.folder, manifest)
        if stale_recipe(manifest.encoder, manifest.encoder_recipe):
            log.warning("%s/: its vectors were made by an earlier %s export (recipe %d); questions are encoded by "
                        "recipe %d, a little less accurately against them; the index's next build encodes them again",
                        where, manifest.encoder, manifest.encoder_recipe, encoder_recipe(manifest.encoder))
        with self._lock:
            self.manifest, self.vectors, self.lexical = manifest, vectors, lexical
            self._stats = None
        return True

    def term_stats(self) -> TermStats:
        """Term statistics of the current generation (computed once per generation)."""
        with self._lock:
            if self._stats is None:
                self._stats = self.lexical.term_stats() if self.lexical is not None else TermStats({}, 1)
            return self._stats

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
        with self._lock:
            vectors, lexical = self.vectors, self.lexical
        allowed = self.store.rowids_of_docs(self.store.resolve_docs(docs)) if docs else None
        if since or until:
            dated = self.store.rowids_dated(since, until)
            allowed = dated if allowed is None else np.intersect1d(allowed, dated)
        n = max(self.config.candidates, 4 * k)
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        lex = dense = empty
        if mode is not Mode.DENSE:
            mask = None if allowed is None else np.isin(lexical.ids, allowed).astype(np.float32)
            lex = lexical.search(question, n, mask, lang, self.config.doc_weight)
        if mode is not Mode.BM25 and question.strip():
            dense = vectors.search(self.query_vector(question), n, allowed)
        weight = {Mode.HYBRID: self.config.bm25_weight, Mode.BM25: 1.0, Mode.DENSE: 0.0}[mode]
        foreign = None
        if mode is Mode.HYBRID and self.config.crosslingual_bm25_weight != weight:
            foreign = foreign_rows(lexical, np.union1d(lex[0], dense[0]), lang)
        fused = fuse(lex, dense, weight, foreign, self.config.crosslingual_bm25_weight)
        hits = self._hits(fused[: 3 * k + 10])
        if hits is None:  # a build committed between our refresh and the row lookup
            if self.refresh():
                return self.search(question, k, docs, mode, lang, since, until)
            hits = self._hits(fused[: 3 * k + 10], strict=False)
        return collapse(hits, k)

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


def foreign_rows(lexical: LexicalIndex, rows: np.ndarray, lang: str) -> set[int]:
    """The ``rows`` (chunk row ids) of ``lexical`` whose chunk is not in language ``lang``."""
    if len(lexical.lang_names) < 2 and lexical.lang_names == [lang]:
        return set()
    order = np.argsort(lexical.ids, kind="stable")
    at = np.searchsorted(lexical.ids[order], rows)
    at = np.minimum(at, len(order) - 1)
    found = lexical.ids[order][at] == rows
    codes = lexical.langs[order][at]
    mine = lexical.lang_names.index(lang) if lang in lexical.lang_names else -1
    return set(rows[found & (codes != mine)].tolist())
