"""Sentences: passages cut into sentences with their offsets, and what each sentence holds.

The extractive answerer quotes whole sentences, so the cut must be right in French and English:
a sentence ends at ``.``, ``!``, ``?`` or ``…`` (closing quotes and brackets included) followed by
white space and a capital, a digit or an opening quote, and never after an abbreviation
(``M.``, ``Mme``, ``J.-C.``, ``av.``) or an initial (``J. K.``). A blank line ends one too, and so
does a single line break after a heading (a short line without final punctuation); other single
line breaks are hard wraps inside a sentence.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_END = re.compile(r"[.!?…]+[\"'”»’)\]]*(?:[ \u00a0\u202f]+[»”])?\s+|\n[ \t]*\n\s*|\n")
HEADING_WORDS = 10  # a line of at most this many words, without final punctuation, is a heading
_STARTS_SENTENCE = re.compile(r"[\"'“«(\[—–-]?\s*[A-ZÀ-ÖØ-Þ0-9]")
_ABBREVIATIONS = frozenset(
    "m mm mme mmes mlle mlles dr pr me mgr st ste av apr j.-c jc etc cf env vol p pp n no nos gén gal col cdt lt "
    "mr mrs ms jr sr vs fig éd ed chap art al op cit ibid resp tél max min".split()
)
_LAST_WORD = re.compile(r"([\w.-]+)$")

MONTHS = ("janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre|novembre|décembre|"
          "decembre|january|february|march|april|may|june|july|august|september|october|november|december")
WEEKDAYS = "lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_DATE = re.compile(rf"\b(?:1\d{{3}}|20\d{{2}})\b|\b(?:{MONTHS}|{WEEKDAYS})\b|\b[IVXLC]+(?:e|ème|er)\s+siècle\b|"
                   r"\b\d+(?:e|ème)\s+siècle\b|\b(?:siècle|century|aujourd'hui|hier|demain|yesterday|today)\b", re.I)
_NUMBER = re.compile(r"\d|\b(?:deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|treize|quatorze|quinze|seize|"
                     r"vingt|trente|quarante|cinquante|soixante|cent|cents|mille|million|millions|milliard|milliards|"
                     r"dizaine|dizaines|centaine|centaines|moitié|tiers|quart|two|three|four|five|six|seven|eight|"
                     r"nine|ten|eleven|twelve|twenty|hundred|thousand|million|billion|half|dozen)\b", re.I)
_CAPITALISED = re.compile(r"(?<![\w’'‑-])[A-ZÀ-ÖØ-Þ][\w’'‑-]*")
_PLACE_PREP = re.compile(r"(?:\b(?:à|au|aux|en|dans|de|vers|près\s+de|in|at|near|from)\s+|\bd[’'])"
                         r"(?:la\s+|le\s+|les\s+|l[’'])?[A-ZÀ-ÖØ-Þ][\w’'‑-]+")


class Span(NamedTuple):
    """A sentence: ``text[start:end]`` of the text it was cut from."""

    start: int
    end: int


def split_sentences(text: str) -> list[Span]:
    """Cut ``text`` into sentences.

    Parameters
    ----------
    text : str
        A passage.

    Returns
    -------
    list of Span
        Offsets in ``text``, white space trimmed, empty pieces left out, in order.

    Examples
    --------
    >>> t = "M. Dupont est arrivé. Il a vu J. K. Rowling ! « Bravo », dit-il."
    >>> [t[s.start:s.end] for s in split_sentences(t)]
    ['M. Dupont est arrivé.', 'Il a vu J. K. Rowling !', '« Bravo », dit-il.']
    """
    spans: list[Span] = []
    start = 0
    for m in _END.finditer(text):
        if _is_line_break(text, m) if m.group().startswith("\n") else _is_boundary(text, m):
            spans.extend(_trimmed(text, start, m.end()))
            start = m.end()
    spans.extend(_trimmed(text, start, len(text)))
    return spans


def _is_line_break(text: str, m: re.Match) -> bool:
    """A blank line, or a single line break that ends a heading (not a hard wrap)."""
    if m.group().count("\n") > 1:
        return True
    line = text[text.rfind("\n", 0, m.start()) + 1:m.start()].strip()
    return (len(line.split()) <= HEADING_WORDS and not re.search(r"[.!?…]\s|[,;:(\-–—]$", line)
            and bool(_STARTS_SENTENCE.match(text, m.end())))


def _is_boundary(text: str, m: re.Match) -> bool:
    if not _STARTS_SENTENCE.match(text, m.end()):
        return False
    if text[m.start()] != ".":
        return True
    word = _LAST_WORD.search(text, 0, m.start())
    if not word:
        return True
    w = word.group(1).lower().lstrip("-")
    return not (len(w) == 1 or w in _ABBREVIATIONS or re.fullmatch(r"(?:\w\.)+\w", w) or w.endswith(".-c"))


def _trimmed(text: str, start: int, end: int) -> list[Span]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return [Span(start, end)] if end > start else []


def has_date(sentence: str) -> bool:
    """A year, a month, a weekday or a century is named in ``sentence``."""
    return bool(_DATE.search(sentence))


_DATE_NUMBER = re.compile(rf"\b\d{{1,2}}(?:er)?\s+(?:{MONTHS})\b|\b(?:{MONTHS})\s+\d{{4}}\b|\b(?:en|in|depuis|since)\s+\d{{4}}\b",
                          re.I)


_BOTH = re.compile(r"\b(?:les|des|ces|nos|vos|leurs|the)\s+(?:deux|two)\b", re.I)  # "both", not a count


def has_number(sentence: str) -> bool:
    """``sentence`` holds a number that is not part of a date (``6 février``, ``en 2025``) nor *les deux*."""
    return bool(_NUMBER.search(_BOTH.sub(" ", _DATE_NUMBER.sub(" ", sentence))))


def names(sentence: str) -> list[str]:
    """Capitalised words of ``sentence``, its first word excluded (proper names, acronyms)."""
    found = [m for m in _CAPITALISED.finditer(sentence)]
    return [m.group() for m in found if m.start() > 0 and not _after_opening(sentence, m.start())]


def _after_opening(sentence: str, pos: int) -> bool:
    before = sentence[:pos].rstrip()
    return not before or before[-1] in "«“\"'(:—–.!?"


def places(sentence: str) -> list[str]:
    """Capitalised words after a place preposition (``à Mascate``, ``en Norvège``, ``in Oman``)."""
    return [re.split(r"[\s’']", m.group())[-1] for m in _PLACE_PREP.finditer(sentence)]
