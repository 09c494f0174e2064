"""Lexical retrieval: per-language analysis and a bm25s index persisted without pickle.

Analysis (:func:`analyze`): NFKC, lower case, French elisions (``l'``, ``d'``, ``qu'``... with
straight or typographic apostrophes) removed, words split at hyphens of every kind, stopwords
dropped, Snowball stemming in the text's language, then accents folded.

Indexing (:func:`index_terms`) gives each word three terms, so that a match counts more the
closer it is: its stem, its exact (accent-folded) form ``=word`` and its first five letters
``~prefi``. Questions drop their interrogative words too. Each chunk is scored by BM25 over its
own terms, blended with BM25 over its whole document (:data:`DOC_WEIGHT` in
:class:`rag.config.Config`), and every row is matched with the question analysed in that row's
language. The figures behind each choice are in the README, "Evaluation".
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

from . import term_table
from .bm25_build import bm25_index
from .term_table import TermTable
from .text import strip_accents

ANALYZER_VERSION = 2  # stored with the index: terms written by another analysis need a rebuild
K1, B = 0.9, 0.5      # BM25 parameters, measured on PIAF-dev (README, "Evaluation")
PREFIX = 5            # letters of the prefix term

_ELISION = re.compile(r"\b(?:l|d|j|m|n|s|t|c|qu|jusqu|lorsqu|puisqu|quoiqu|presqu)['’ʼ`]", re.IGNORECASE)
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_STEMMERS = {"fr": "french", "en": "english"}
_STOPWORDS = {
    "fr": frozenset(STOPWORDS_FRENCH) | frozenset("les a cet cette ces dont où y quel quelle quels quelles".split()),
    # bm25s's English list is Lucene's 33 words; pronouns and auxiliaries added
    "en": frozenset(STOPWORDS_EN) | frozenset("i me my we our you your he him his she her its them were been being "
                                              "am has have had would could should can may might from than also".split()),
}
# Words that ask rather than say: dropped from questions only ("comment" and "when" can be content in articles).
QUESTION_WORDS = {
    "fr": frozenset("combien quand comment pourquoi quoi quel quelle quels quelles lequel laquelle lesquels "
                    "lesquelles auquel auxquels duquel desquels".split()),
    "en": frozenset("what which who whom whose when where why how do does did".split()),
}
_EMPTY = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))


@lru_cache(maxsize=8)
def _stemmer(lang: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(_STEMMERS.get(lang, "french"))


def _words(text: str, lang: str, stop: frozenset[str], elide: bool) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower()
    if elide:
        text = _ELISION.sub(" ", text)
    return [w for w in _TOKEN.findall(text) if w not in stop and (len(w) > 1 or w.isdigit())]


def analyze(text: str, lang: str = "fr") -> list[str]:
    """Turn text into stems for language ``lang`` (``"fr"`` or ``"en"``), one per kept word.

    Examples
    --------
    >>> analyze("L’État d'Israël et les États-Unis")
    ['etat', 'israel', 'etat', 'unis']
    """
    words = _words(text, lang, _STOPWORDS.get(lang, _STOPWORDS["fr"]), lang == "fr")
    return [strip_accents(s) for s in _stemmer(lang).stemWords(words)]


def stopwords(lang: str) -> frozenset[str]:
    """The words :func:`analyze` drops in ``lang`` (lower case; French for a language it lacks)."""
    return _STOPWORDS.get(lang, _STOPWORDS["fr"])


@lru_cache(maxsize=200_000)
def word_terms(word: str, lang: str) -> tuple[str, ...]:
    """``analyze(word, lang)`` of one written word, remembered (the same words come back in every passage)."""
    return tuple(analyze(word, lang))


def terms_of(text: str, lang: str) -> list[str]:
    """``analyze(text, lang)``, word by word through a cache (analysis never crosses white space)."""
    return [t for w in text.split() for t in word_terms(w, lang)]


@lru_cache(maxsize=1 << 16)
def _fold(word: str) -> str:
    """``strip_accents``, remembered: the same words come back in every chunk."""
    return strip_accents(word)


def _terms(words: list[str], lang: str) -> list[str]:
    out = []
    for word, stem in zip(words, _stemmer(lang).stemWords(words)):
        folded = _fold(word)
        out += [_fold(stem), "=" + folded, "~" + folded[:PREFIX]]
    return out


def index_terms(text: str, lang: str = "fr") -> list[str]:
    """The BM25 terms of a chunk: for each kept word, its stem, ``=`` its form, ``~`` its prefix.

    Examples
    --------
    >>> index_terms("Les négociations", "fr")
    ['negoci', '=negociations', '~negoc']
    """
    return _terms(_words(text, lang, _STOPWORDS.get(lang, _STOPWORDS["fr"]), lang == "fr"), lang)


def query_terms(question: str, lang: str = "fr", question_lang: str | None = None) -> list[str]:
    """The BM25 terms of a question, for matching text in language ``lang``.

    The question's own language (``question_lang``, default ``lang``) adds its stopwords,
    interrogatives and elisions, so an English question still loses "who" and "the" when it is
    matched against French articles.
    """
    langs = {lang, question_lang or lang}
    stop = frozenset().union(*(_STOPWORDS.get(x, frozenset()) | QUESTION_WORDS.get(x, frozenset()) for x in langs))
    return _terms(_words(question, lang, stop, "fr" in langs), lang)


class LexicalMismatch(ValueError):
    """The stored index was written by another analysis or layout; it must be rebuilt."""


class LexicalIndex:
    """BM25 over chunks, blended with BM25 over their documents.

    Each row is a chunk with its id (an int64 key), its document and its language. Row terms
    come from :func:`index_terms`; a document's terms are its chunks' terms together.

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
            Each row's terms (:func:`index_terms`), or the same already numbered
            (:mod:`rag.term_table`; kept with the index, so that updates need not number them again).
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
        self._bm25 = bm25_index(vocab, terms, rows, n, self.k1, self.b)
        self._docs = bm25_index(vocab, terms, self.groups[rows].astype(np.int64), len(order), self.k1, self.b)
        return self

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
                                  f"this version uses {ANALYZER_VERSION}")
        idx = cls(params["k1"], params["b"])
        idx.lang_names = list(params["langs"])
        idx.ids, idx.groups, idx.langs, idx._doc_langs = (
            np.load(folder / f"{name}.npy", allow_pickle=False) for name in ("ids", "groups", "langs", "doc_langs"))
        if len(idx.ids):
            idx._bm25 = bm25s.BM25.load(str(folder / "bm25"), mmap=mmap, allow_pickle=False)
            idx._docs = bm25s.BM25.load(str(folder / "bm25_docs"), mmap=mmap, allow_pickle=False)
        return idx


def _blend(chunk: np.ndarray, doc: np.ndarray, doc_weight: float) -> np.ndarray:
    def unit(x: np.ndarray) -> np.ndarray:
        top = float(x.max()) if len(x) else 0.0
        return x / top if top > 0 else x

    return ((1 - doc_weight) * unit(chunk) + doc_weight * unit(doc)).astype(np.float32)
