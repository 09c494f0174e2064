"""Retrieval: BM25 and dense search fused by normalised, weighted scores.

Plain reciprocal rank fusion of a strong retriever (BM25 on French) and a weak one (an
English embedding model on French) is worse than the strong one alone; a convex combination
of min-max-normalised scores keeps the strong one in charge and lets the other break ties and
rescue paraphrases. The default weight comes from measurements on PIAF-dev (README,
"Evaluation"), as do the lexical side's choices (:mod:`rag.lexical`).
"""

from __future__ import annotations

import enum
import logging
import os
import threading
from collections import OrderedDict
from typing import Iterable, Sequence

import numpy as np

from .config import Config
from .dates import day_range
from .embedding import Embedder, canonical_model_name, encoder_recipe, get_embedder, stale_recipe
from .lexical import LexicalIndex, LexicalMismatch
from .schema import Hit
from .store import FORMAT_VERSION, IndexCorrupt, IndexMismatch, Manifest, Store
from .text import detect_language, normalize_answer
from .vectors import VectorIndex

log = logging.getLogger(__name__)


class Mode(str, enum.Enum):
    """Which retrievers are used."""

    HYBRID = "hybrid"
    BM25 = "bm25"
    DENSE = "dense"


def minmax(scores: np.ndarray) -> np.ndarray:
    """Scale scores to [0, 1] (all equal -> all 1)."""
    if not len(scores):
        return scores.astype(np.float32)
    lo, hi = float(scores.min()), float(scores.max())
    if hi - lo < 1e-9:
        return np.ones_like(scores, dtype=np.float32)
    return ((scores - lo) / (hi - lo)).astype(np.float32)


def fuse(bm25: tuple[np.ndarray, np.ndarray], dense: tuple[np.ndarray, np.ndarray],
         weight: float) -> list[tuple[int, float, float, float]]:
    """Convex fusion of two (ids, scores) lists: ``weight * bm25 + (1 - weight) * dense``.

    Scores are min-max normalised within each list; an id missing from a list gets 0 there.

    Returns
    -------
    list of (id, fused, bm25 raw, dense raw), best first.
    """
    table: dict[int, list[float]] = {}
    for i, (ids, raw) in enumerate((bm25, dense)):
        for cid, n, r in zip(ids.tolist(), minmax(raw).tolist(), raw.tolist()):
            row = table.setdefault(cid, [0.0, 0.0, 0.0, 0.0])
            row[i], row[2 + i] = n, r
    fused = [(cid, weight * b + (1 - weight) * d, rb, rd) for cid, (b, d, rb, rd) in table.items()]
    fused.sort(key=lambda x: (-x[1], x[0]))
    return fused


def _overlaps(a: Hit, b: Hit) -> bool:
    return a.doc_id == b.doc_id and a.start < b.end and b.start < a.end


def _words(hit: Hit) -> frozenset[str]:
    return frozenset(normalize_answer(hit.text).split())


def _near_duplicate(a: frozenset[str], b: frozenset[str], threshold: float = 0.9) -> bool:
    if not a or not b:
        return False
    return len(a & b) / len(a | b) >= threshold


def collapse(hits: Iterable[Hit], k: int) -> list[Hit]:
    """Keep the best of overlapping chunks of a document and of near-duplicate texts, up to ``k``.

    Near-duplicates share at least 90% of their normalised words (Jaccard), e.g. the same
    wire story published twice.
    """
    kept: list[tuple[Hit, frozenset[str]]] = []
    for h in hits:
        words = _words(h)
        if any(_overlaps(h, o) or _near_duplicate(words, w) for o, w in kept):
            continue
        kept.append((h, words))
        if len(kept) == k:
            break
    return [h for h, _ in kept]


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
        self._lock = threading.Lock()
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()  # recent query vectors
        self.manifest: Manifest | None = None
        self.vectors: VectorIndex | None = None
        self.lexical: LexicalIndex | None = None
        self.refresh()

    @property
    def embedder(self) -> Embedder:
        """The query encoder: the index's model, run the way the index was built (torch or int8)."""
        encoder = self.manifest.encoder if self.manifest else None
        if self._embedder is None or (encoder and self._embedder.encoder != encoder):
            self._embedder = get_embedder(self.config.model, self.config.batch_size, encoder,
                                          self.config.cache_dir or None)
            self._queries.clear()
        return self._embedder

    def refresh(self) -> bool:
        """Load the current generation if it changed; True when something was (re)loaded."""
        manifest = self.store.manifest()
        if manifest is None:
            raise IndexCorrupt(f"{self.store.folder}/ has no committed build yet; run: rag index build --index {self.store.folder}")
        if self.manifest is not None and manifest.generation == self.manifest.generation:
            return False
        if manifest.format_version != FORMAT_VERSION:
            raise IndexMismatch(f"{self.store.folder}/ has index format {manifest.format_version}, this version reads "
                                f"{FORMAT_VERSION}; rebuild it: rag index build --rebuild --index {self.store.folder}")
        model = canonical_model_name(self.config.model)
        if manifest.model != model:
            raise IndexMismatch(f"{self.store.folder}/ was built with model {manifest.model}, but the configuration "
                                f"says {model}; set RAG_MODEL={manifest.model} or rebuild: "
                                f"rag index build --rebuild --index {self.store.folder}")
        folder = self.store.gen_dir(manifest.generation)
        try:
            vectors = VectorIndex.load(folder / "vectors.faiss")
            lexical = LexicalIndex.load(folder / "lexical")
        except LexicalMismatch as exc:
            raise IndexMismatch(f"{exc}; rebuild the index: rag index build --rebuild --index {self.store.folder}") from None
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            raise IndexCorrupt(f"{folder}/: search files unreadable ({exc}); rebuild with: "
                               f"rag index build --index {self.store.folder}") from None
        if vectors.dim != manifest.dimensions:
            raise IndexCorrupt(f"{folder}/vectors.faiss has dimension {vectors.dim}, manifest says {manifest.dimensions}")
        if stale_recipe(manifest.encoder, manifest.encoder_recipe):
            log.warning("%s/: its vectors were made by an earlier %s export (recipe %d); questions are encoded by "
                        "recipe %d, a little less accurately against them; `rag index build` encodes them again",
                        self.store.folder, manifest.encoder, manifest.encoder_recipe, encoder_recipe(manifest.encoder))
        with self._lock:
            self.manifest, self.vectors, self.lexical = manifest, vectors, lexical
        return True

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
        fused = fuse(lex, dense, weight)
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
        vec = self.embedder.encode([question])[0]
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
