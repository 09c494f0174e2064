"""Text analysis: the terms the lexical index and the answerers compare, per language.

:func:`analyze`: NFKC, lower case, French elisions (``l'``, ``d'``, ``qu'``... with straight or
typographic apostrophes) removed, words split at hyphens of every kind, stopwords dropped,
Snowball stemming in the text's language, then accents folded.

:func:`index_terms` gives each word three terms, so that a match counts more the closer it is:
its stem, its exact (accent-folded) form ``=word`` and its first :data:`PREFIX` letters
``~prefi``. :func:`query_terms` does the same for a question, dropping its interrogative words
too. The figures behind each choice are in ``docs/evaluation.md``.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import Stemmer

from .normalize import normalize_answer, strip_accents
from .places import translated_places
from .stopwords import LUCENE_ENGLISH, SNOWBALL_FRENCH

ANALYZER_VERSION = 2  # stored with the index: terms written by another analysis need a rebuild
PREFIX = 5            # letters of the prefix term; stems sharing them match (derivations, cognates)

_ELISION = re.compile(r"\b(?:l|d|j|m|n|s|t|c|qu|jusqu|lorsqu|puisqu|quoiqu|presqu)['’ʼ`]", re.IGNORECASE)
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_STEMMERS = {"fr": "french", "en": "english"}
STOPWORDS = {
    "fr": SNOWBALL_FRENCH | frozenset("les a cet cette ces dont où y quel quelle quels quelles".split()),
    # Lucene's English list is 33 words; pronouns and auxiliaries added
    "en": LUCENE_ENGLISH | frozenset("i me my we our you your he him his she her its them were been being "
                                     "am has have had would could should can may might from than also".split()),
}
# Words that ask rather than say: dropped from questions only ("comment" and "when" can be content in articles).
QUESTION_WORDS = {
    "fr": frozenset("combien quand comment pourquoi quoi quel quelle quels quelles lequel laquelle lesquels "
                    "lesquelles auquel auxquels duquel desquels".split()),
    "en": frozenset("what which who whom whose when where why how do does did".split()),
}


@lru_cache(maxsize=8)
def _stemmer(lang: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(_STEMMERS.get(lang, "french"))


def content_words(text: str, lang: str, stop: frozenset[str], elide: bool) -> list[str]:
    """The words of ``text`` analysis keeps: NFKC, lower case, elisions cut (``elide``), ``stop`` words dropped."""
    text = unicodedata.normalize("NFKC", text).lower()
    if elide:
        text = _ELISION.sub(" ", text)
    return [w for w in _TOKEN.findall(text) if w not in stop and (len(w) > 1 or w.isdigit())]


def stopwords(lang: str) -> frozenset[str]:
    """The words :func:`analyze` drops in ``lang`` (lower case; French for a language it lacks)."""
    return STOPWORDS.get(lang, STOPWORDS["fr"])


def stems(words: list[str], lang: str) -> list[str]:
    """The Snowball stems of ``words`` in ``lang``, accents folded."""
    return [strip_accents(s) for s in _stemmer(lang).stemWords(words)]


def analyze(text: str, lang: str = "fr") -> list[str]:
    """Turn text into stems for language ``lang`` (``"fr"`` or ``"en"``), one per kept word.

    Examples
    --------
    >>> analyze("L’État d'Israël et les États-Unis")
    ['etat', 'israel', 'etat', 'unis']
    """
    return stems(content_words(text, lang, STOPWORDS.get(lang, STOPWORDS["fr"]), lang == "fr"), lang)


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
    return _terms(content_words(text, lang, STOPWORDS.get(lang, STOPWORDS["fr"]), lang == "fr"), lang)


def query_terms(question: str, lang: str = "fr", question_lang: str | None = None) -> list[str]:
    """The BM25 terms of a question, for matching text in language ``lang``.

    The question's own language (``question_lang``, default ``lang``) adds its stopwords,
    interrogatives and elisions, so an English question still loses "who" and "the" when it is
    matched against French articles, and the countries it names are searched by their names in
    ``lang`` too (:func:`rag.text.places.translated_places`: *Norway*, *Norvège*).
    """
    langs = {lang, question_lang or lang}
    if question_lang and question_lang != lang:
        question = " ".join([question, *translated_places(question, question_lang, lang)])
    stop = frozenset().union(*(STOPWORDS.get(x, frozenset()) | QUESTION_WORDS.get(x, frozenset()) for x in langs))
    return _terms(content_words(question, lang, stop, "fr" in langs), lang)


@lru_cache(maxsize=200_000)
def word_terms(word: str, lang: str) -> tuple[str, ...]:
    """``analyze(word, lang)`` of one word, remembered."""
    return tuple(analyze(word, lang))


def terms_of(text: str, lang: str) -> list[str]:
    """``analyze(text, lang)``, word by word through a cache (analysis never crosses white space)."""
    return [t for w in text.split() for t in word_terms(w, lang)]


@lru_cache(maxsize=200_000)
def _word_prefixes(word: str) -> frozenset[str]:
    return frozenset(w[:PREFIX] for w in normalize_answer(word).split() if len(w) >= PREFIX)


def prefixes_of(text: str, lang: str) -> list[frozenset[str]]:
    """For each term of ``terms_of(text, lang)``, the first letters of the written word it comes from.

    Two languages' stemmers cut cognates differently (*envoyé* -> ``envoi``, *envoy* -> ``envoy``);
    their written forms still share a prefix, so matches across languages compare those too.
    """
    return [_word_prefixes(w) for w in text.split() for _ in word_terms(w, lang)]
