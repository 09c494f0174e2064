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
NUMBER_WORDS = ("deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|treize|quatorze|quinze|seize|"
                "vingt|trente|quarante|cinquante|soixante|cent|cents|mille|million|millions|milliard|milliards|"
                "dizaine|dizaines|centaine|centaines|moitié|tiers|quart|two|three|four|five|six|seven|eight|"
                "nine|ten|eleven|twelve|twenty|hundred|thousand|million|billion|half|dozen")
_NUMBER = re.compile(rf"\d|\b(?:{NUMBER_WORDS})\b", re.I)
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


# -- where in a sentence: the pieces a short answer can be (rag/spans.py) --------------------------
_DAY = r"\d{1,2}(?:er|st|nd|rd|th)?"
_YEAR = r"(?:1\d{3}|20\d{2})"
_RELATIVE = r"(?:dernier|dernière|prochain|prochaine|soir|matin|après-midi)"
_DATE_EXPR = re.compile(
    rf"\b(?:(?:{WEEKDAYS})\s+)?{_DAY}\s+(?:{MONTHS})(?:\s+{_YEAR})?\b|"          # (vendredi) 6 février (2026)
    rf"\b(?:{MONTHS})\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+{_YEAR})?\b|"          # February 6(, 2026)
    rf"\b(?:{MONTHS})\s+(?:{_RELATIVE}|{_YEAR})\b|"                              # juin dernier, août 2016
    rf"\b(?:last|next|this)\s+(?:{WEEKDAYS}|{MONTHS}|week|month|year|summer|winter|spring|autumn|fall)\b|"
    rf"\b(?:{WEEKDAYS})(?:\s+{_RELATIVE})?\b|"                                   # vendredi (dernier)
    rf"\b(?:la\s+semaine|l['’]an(?:née)?|le\s+mois|l['’]été|l['’]hiver)\s+{_RELATIVE}\b|"
    rf"\b(?:les\s+)?années\s+(?:19|20)?\d0\b|\bthe\s+(?:19|20)?\d0s\b|"           # les années 1950, the 1990s
    rf"\b{_YEAR}(?:\s*[-–]\s*(?:{_YEAR}|\d{{2}}))?\b|"                           # 1998, 2013-2014
    r"\b[IVXLC]+(?:e|ème|er)\s+siècle\b|\b\d+(?:e|ème)\s+siècle\b|\b\d+(?:st|nd|rd|th)\s+century\b|"
    rf"\b(?:{MONTHS})\b|\b(?:aujourd['’]hui|hier|demain|yesterday|today|tomorrow)\b", re.I)
_AMOUNT = (r"\d+(?:[ \u00a0\u202f]\d{3})*(?:[.,]\d+)?|"
           rf"(?:{NUMBER_WORDS})(?:[- ](?:et[- ])?(?:{NUMBER_WORDS}))*")
_SCALE = r"millions?|milliards?|mille|billions?|thousands?|hundreds?|%|pour\s+cent|per\s*cent"
_NUMBER_EXPR = re.compile(rf"(?<![\w,.])(?P<core>(?:{_AMOUNT})(?:\s*(?:{_SCALE}))?)(?![\w])"
                          r"(?:\s+(?:de\s+|d['’]|of\s+)?(?P<unit>[^\W\d_][\w’'‑-]*))?", re.I)
_CAP_WORD = r"[A-ZÀ-ÖØ-Þ][\w’'‑-]*"
_PARTICLES = r"(?:de|du|des|la|le|les|von|van|der|den|al|el|ben|bin|ibn|da|di|do|dos|of|the)"
_NAME_EXPR = re.compile(rf"(?<![\w‑-]){_CAP_WORD}(?:\s+(?:{_PARTICLES}\s+|[dl]['’])*{_CAP_WORD})*")
_QUOTE_EXPR = re.compile(r"«\s*([^«»]{1,200}?)\s*»|“([^“”]{1,200})”|\"([^\"]{1,200})\"")
_LEADING = frozenset("le la les l un une des du de d en au aux the a an in on at il elle ils elles ce cette ces "
                     "son sa ses leur leurs selon pour par dans sur avec mais et".split())


def dates(sentence: str) -> list[Span]:
    """Date expressions of ``sentence``: *vendredi 6 février 2026*, *juin dernier*, *1998*, *last Friday*.

    Examples
    --------
    >>> t = "Ils sont arrivés le vendredi 6 février 2026, après la guerre de juin dernier."
    >>> [t[s.start:s.end] for s in dates(t)]
    ['vendredi 6 février 2026', 'juin dernier']
    """
    return [Span(*m.span()) for m in _DATE_EXPR.finditer(sentence)]


def numbers(sentence: str) -> list[tuple[Span, Span]]:
    """Amounts of ``sentence``, each as (the number, the number with its unit when a word follows).

    Examples
    --------
    >>> t = "Le pont mesure 180 mètres et a coûté 25 millions d'euros à 120 000 habitants."
    >>> [(t[a.start:a.end], t[b.start:b.end]) for a, b in numbers(t)]
    [('180', '180 mètres'), ('25 millions', "25 millions d'euros"), ('120 000', '120 000 habitants')]
    """
    out = []
    for m in _NUMBER_EXPR.finditer(sentence):
        core = Span(*m.span("core"))
        unit = m.group("unit")
        whole = Span(core.start, m.end("unit")) if unit and unit.lower() not in _LEADING else core
        out.append((core, whole))
    return out


def entities(sentence: str) -> list[Span]:
    """Capitalised sequences with their particles: *Abbas Araghchi*, *Organisation des Nations*, *Côte d'Ivoire*.

    A sequence opening on a capitalised function word (*Le*, *En*, *The*) is given without it too.

    Examples
    --------
    >>> t = "Le porte-avions USS Abraham Lincoln a rejoint Abbas Araghchi en Côte d'Ivoire."
    >>> [t[s.start:s.end] for s in entities(t)]
    ['Le', 'USS Abraham Lincoln', 'Abbas Araghchi', "Côte d'Ivoire"]
    """
    out = []
    for m in _NAME_EXPR.finditer(sentence):
        out.append(Span(*m.span()))
        first = re.match(r"[\w]+['’]?\s*", m.group())
        if first and first.end() < len(m.group()) and first.group().strip(" '’").lower() in _LEADING:
            out.append(Span(m.start() + first.end(), m.end()))
    return out


def quotes(sentence: str) -> list[Span]:
    """The words between quotation marks (« … », “…”, "…"), without the marks.

    Examples
    --------
    >>> t = 'Il parle d’un « accord historique » et de "bonne foi".'
    >>> [t[s.start:s.end] for s in quotes(t)]
    ['accord historique', 'bonne foi']
    """
    out = []
    for m in _QUOTE_EXPR.finditer(sentence):
        group = next(g for g in (1, 2, 3) if m.group(g) is not None)
        start, end = m.span(group)
        text = sentence[start:end]
        start += len(text) - len(text.lstrip())
        end -= len(text) - len(text.rstrip())
        if end > start:
            out.append(Span(start, end))
    return out
