"""Lexical retrieval: per-language analysis and a bm25s index persisted without pickle.

Analysis: NFKC, lower case, French elisions (``l'``, ``d'``, ``qu'``... with straight or
typographic apostrophes) removed, words split at hyphens of every kind, stopwords dropped,
Snowball stemming in the text's language, then accents folded.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_FRENCH

from .text import strip_accents

_ELISION = re.compile(r"\b(?:l|d|j|m|n|s|t|c|qu|jusqu|lorsqu|puisqu|quoiqu|presqu)['’ʼ`]", re.IGNORECASE)
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_STEMMERS = {"fr": "french", "en": "english"}
_STOPWORDS = {
    "fr": frozenset(STOPWORDS_FRENCH) | frozenset("les a cet cette ces dont où y quel quelle quels quelles".split()),
    "en": frozenset(STOPWORDS_EN),
}


@lru_cache(maxsize=8)
def _stemmer(lang: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(_STEMMERS.get(lang, "french"))


def analyze(text: str, lang: str = "fr") -> list[str]:
    """Turn text into BM25 terms for language ``lang`` (``"fr"`` or ``"en"``)."""
    text = unicodedata.normalize("NFKC", text).lower()
    if lang == "fr":
        text = _ELISION.sub(" ", text)
    stop = _STOPWORDS.get(lang, _STOPWORDS["fr"])
    words = [w for w in _TOKEN.findall(text) if w not in stop and (len(w) > 1 or w.isdigit())]
    return [strip_accents(s) for s in _stemmer(lang).stemWords(words)]


class LexicalIndex:
    """BM25 over chunks; each row carries a chunk id (an int64 key).

    Parameters
    ----------
    k1, b : float
        BM25 parameters.
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75):
        self.k1, self.b = k1, b
        self.ids = np.zeros(0, dtype=np.int64)
        self._bm25: bm25s.BM25 | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def build(self, ids: Sequence[int], tokens: Sequence[list[str]]) -> "LexicalIndex":
        """Index the analysed texts ``tokens`` under chunk ids ``ids``."""
        self.ids = np.asarray(ids, dtype=np.int64)
        if len(self.ids):
            bm = bm25s.BM25(k1=self.k1, b=self.b)
            # bm25s wants a vocabulary that is never empty
            bm.index([t if t else ["\u2205"] for t in tokens], show_progress=False)
            self._bm25 = bm
        return self

    def search(self, terms: list[str], n: int, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Best ``n`` rows for the query ``terms``: (chunk ids, scores), best first.

        ``mask`` (0/1 per row) restricts the search to some rows; rows scoring 0 are left out.
        """
        if self._bm25 is None or not terms:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        vocab = self._bm25.vocab_dict
        known = [t for t in terms if t in vocab]
        if not known:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores = self._bm25.get_scores(known)
        if mask is not None:
            scores = scores * mask
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return self.ids[top], scores[top].astype(np.float32)

    def save(self, folder: Path) -> None:
        """Write the index to ``folder`` (numpy arrays and JSON only)."""
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "ids.npy", self.ids, allow_pickle=False)
        (folder / "params.json").write_text(json.dumps({"k1": self.k1, "b": self.b}), encoding="utf-8")
        if self._bm25 is not None:
            self._bm25.save(str(folder / "bm25"), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, mmap: bool = False) -> "LexicalIndex":
        """Read an index written by :meth:`save` (``mmap`` keeps large postings on disk)."""
        params = json.loads((folder / "params.json").read_text(encoding="utf-8"))
        idx = cls(params["k1"], params["b"])
        idx.ids = np.load(folder / "ids.npy", allow_pickle=False)
        if len(idx.ids):
            idx._bm25 = bm25s.BM25.load(str(folder / "bm25"), mmap=mmap, allow_pickle=False)
        return idx
