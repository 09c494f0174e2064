"""Short answers, the words of a sentence: its word ranges' classes and the question's words in them.

:func:`analyse_question` reads what the question asks for and its content stems (each with its
weight); :func:`sentence_words` cuts a quoted sentence into words and classifies each (capitals,
digits, dates, stopwords, the question's words...), the material :mod:`.span_candidates` makes
candidates of and :mod:`.span_features` describes them with.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable, NamedTuple, Sequence

import numpy as np

from ..text.analysis import PREFIX, QUESTION_WORDS, stopwords, word_terms
from ..text.normalize import normalize_answer
from ..text.questions import Asked, asked_for, head_noun, strip_meta
from ..text.sentences import MONTHS, NUMBER_WORDS, WEEKDAYS

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W_]+(?:[-‑][^\W_]+)*(?:[’'](?=[^\W_]))?|[^\w\s]")
STRONG = frozenset(".;:!?…")
OPEN, CLOSE = frozenset("«“([\""), frozenset("»”)]\"")
_YEAR = re.compile(r"1\d{3}|20\d{2}")
_MONTHS = frozenset(normalize_answer(MONTHS).split())
_WEEKDAYS = frozenset(normalize_answer(WEEKDAYS).split())
_NUMBER_WORDS = frozenset(normalize_answer(NUMBER_WORDS).split())
DETERMINERS = frozenset("le la les l un une des du au aux ce cet cette ces son sa ses leur leurs mon ma mes notre nos "
                         "the a an his her its their this these those".split())
PREPOSITIONS = frozenset("à a de d en dans par pour sur sous avec sans vers chez entre contre depuis pendant selon "
                          "après avant durant of in at on by for with from to into during since after before "
                          "about".split())
_COORDINATION = frozenset("et ou and or".split())


class Sentence(NamedTuple):
    """A sentence a short answer may come from.

    ``start`` is its offset in the document text; ``n`` the citation (or passage) it belongs to;
    ``lang`` its language; ``share`` the answerer's belief in it (its softmax share).
    """

    text: str
    start: int
    n: int
    lang: str = "fr"
    share: float = 1.0



class Question(NamedTuple):
    """The question as the span finder sees it."""

    asked: Asked
    terms: dict[str, int]      # content stem -> its index in ``weights``
    weights: np.ndarray        # weight of each content stem (its inverse document frequency, or 1)
    prefixes: dict[str, int]   # first letters of its content words (cognates, derivations) -> stem index
    noun: frozenset[str]       # stems of the noun a "quel X" question names
    lang: str



# -- the question -----------------------------------------------------------------------------
_SKIP = frozenset(t for words in QUESTION_WORDS.values() for w in words for lg in ("fr", "en")
                  for t in word_terms(w, lg))


def analyse_question(question: str, lang: str, idf: Callable[[str], float] | None = None) -> Question:
    """What the question asks for, its content stems and the noun it names (:class:`Question`).

    ``idf`` weighs each stem (e.g. :meth:`rag.extractive.TermStats.idf` of the index); without
    it every stem weighs 1.
    """
    terms: dict[str, int] = {}
    prefixes: dict[str, int] = {}
    for word in strip_meta(question, lang).split():
        for t in word_terms(word, lang):
            if t in _SKIP:
                continue
            k = terms.setdefault(t, len(terms))
            for w in normalize_answer(word).split():
                if len(w) >= PREFIX and w not in stopwords(lang):
                    prefixes.setdefault(w[:PREFIX], k)
    weights = np.array([idf(t) if idf else 1.0 for t in terms], dtype=np.float32)
    noun = frozenset(word_terms(head_noun(question, lang), lang))
    return Question(asked_for(question, lang), terms, weights, prefixes, noun, lang)


# -- words of a sentence ------------------------------------------------------------------------
class Words(NamedTuple):
    """The words of one sentence and, per word, the classes the features count."""

    start: np.ndarray  # offsets in the sentence
    end: np.ndarray
    lower: list[str]
    attrs: dict[str, np.ndarray]  # name -> (words,) float
    strong: np.ndarray  # strong punctuation before each word (a candidate never crosses it)
    match: np.ndarray   # the question stem each word matches (-1: none)


@lru_cache(maxsize=100_000)
def word_class(word: str, lang: str) -> tuple[bool, bool, bool, bool, bool, bool, bool, bool, bool]:
    """(capitalised, acronym, digit, year, month or weekday, number word, stopword, determiner, preposition)."""
    low = word.lower().rstrip("'’")
    norm = normalize_answer(low)
    return (word[0].isupper(), len(word) > 1 and word.isupper() and word.isalpha(), word[0].isdigit(),
            bool(_YEAR.fullmatch(word)), norm in _MONTHS or norm in _WEEKDAYS, norm in _NUMBER_WORDS,
            low in stopwords(lang) or (len(low) == 1 and not low.isdigit()) or low in DETERMINERS,
            low in DETERMINERS, low in PREPOSITIONS)


def sentence_words(text: str, lang: str, question: Question) -> Words:
    """Cut ``text`` into words and classify each (capitals, digits, stopwords, question words...)."""
    starts, ends, lower, gaps = [], [], [], []
    last = 0
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if not (tok[0].isalnum()):
            continue
        gaps.append(text[last:m.start()])
        starts.append(m.start())
        ends.append(m.end())
        lower.append(tok.lower())
        last = m.end()
    n = len(starts)
    cls = np.array([word_class(text[a:b], lang) for a, b in zip(starts, ends)], dtype=bool).reshape(n, 9)
    initial = np.array([i == 0 or any(c in OPEN or c in STRONG or c in "—–" for c in g)
                        for i, g in enumerate(gaps)], dtype=bool)
    match = np.array([question_term(w, lang, question) for w in lower], dtype=np.int64)
    q = (match >= 0)
    noun = np.array([bool(question.noun) and not question.noun.isdisjoint(word_terms(w, lang)) for w in lower],
                    dtype=bool)
    attrs = {
        "cap": cls[:, 0] & ~initial, "initial_cap": cls[:, 0] & initial, "acronym": cls[:, 1], "digit": cls[:, 2],
        "year": cls[:, 3], "month": cls[:, 4], "number_word": cls[:, 5], "stop": cls[:, 6], "det": cls[:, 7],
        "prep": cls[:, 8], "question": q & ~cls[:, 6], "noun": noun,
        "comma": np.array([("," in g) for g in gaps], dtype=bool),
        "open": np.array([any(c in OPEN for c in g) for g in gaps], dtype=bool),
        "close": np.array([any(c in CLOSE for c in g) for g in gaps], dtype=bool),
        "coord": np.array([w in _COORDINATION for w in lower], dtype=bool),
    }
    strong = np.array([i > 0 and any(c in STRONG for c in g) for i, g in enumerate(gaps)], dtype=bool)
    match = np.where(cls[:, 6], -1, match)
    return Words(np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64), lower,
                  {k: v.astype(np.float32) for k, v in attrs.items()}, strong, match)


def question_term(word: str, lang: str, question: Question) -> int:
    """The index of the question's content stem ``word`` matches (same stem, or same first letters), or -1."""
    for t in word_terms(word, lang):
        if t in question.terms:
            return question.terms[t]
    norm = normalize_answer(word)
    return question.prefixes.get(norm[:PREFIX], -1) if len(norm) >= PREFIX else -1


# -- candidates and their features ----------------------------------------------------------------
def token_pairs(words: Words, spans: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
    """The (first word, last word) of each character span (words wholly inside it)."""
    out = set()
    for a, b in spans:
        i = int(np.searchsorted(words.start, a))
        j = int(np.searchsorted(words.end, b, side="right")) - 1
        if i <= j:
            out.add((i, j))
    return out


def runs(words: Words) -> list[tuple[int, int]]:
    """Maximal runs of content words with no punctuation between them (rough noun phrases)."""
    out, start = [], None
    content = words.attrs["stop"] == 0
    brk = (words.attrs["comma"] + words.attrs["open"] + words.attrs["close"] > 0) | words.strong
    for k in range(len(content) + 1):
        if k < len(content) and content[k] and not (start is not None and brk[k]):
            start = k if start is None else start
            continue
        if start is not None:
            out.append((start, k - 1))
        start = k if k < len(content) and content[k] else None
    return out


__all__ = ["Sentence", "Question", "Words", "analyse_question", "sentence_words", "word_class", "question_term",
           "token_pairs", "runs", "STRONG", "OPEN", "CLOSE", "DETERMINERS", "PREPOSITIONS"]
