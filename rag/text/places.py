"""Country and region names across languages, from the Unicode CLDR (as Babel ships it, offline).

An English question about French articles names *Norway* where the articles say *Norvège*, and
*the United States* where they say *les États-Unis*: no stem, prefix or cognate joins them. The
CLDR lists every country and region by its name in each language, so :func:`translated_places`
gives the names a question uses in the language of the text it is matched against, to be searched
beside the question's own words.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from babel import Locale, UnknownLocaleError

from .normalize import normalize_answer

UNKNOWN = "ZZ"  # CLDR's "unknown region"


class PlaceTable(NamedTuple):
    """The names of one language found in a text, and their names in another."""

    pattern: re.Pattern | None  # whole normalised names of the source language, longest first
    names: dict[str, str]       # normalised source name -> the target language's name, as written


@lru_cache(maxsize=16)
def place_table(source: str, target: str) -> PlaceTable:
    """The CLDR territory names of ``source`` that differ in ``target``, with their ``target`` names.

    Names that are the same in both languages once normalised (*Iran*, *Oman*) are left out: the
    question's own words already match them. An unknown language gives an empty table.
    """
    try:
        here, there = Locale.parse(source).territories, Locale.parse(target).territories
    except (UnknownLocaleError, ValueError):
        return PlaceTable(None, {})
    names = {}
    for code, name in here.items():
        key, other = normalize_answer(name), there.get(code)
        if code == UNKNOWN or not key or not other or normalize_answer(other) == key:
            continue
        names.setdefault(key, other)
    if not names:
        return PlaceTable(None, {})
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(k) for k in sorted(names, key=len, reverse=True)) + r")\b")
    return PlaceTable(pattern, names)


def translated_places(text: str, source: str, target: str) -> list[str]:
    """The countries and regions ``text`` (in ``source``) names, as ``target`` writes them.

    Parameters
    ----------
    text : str
        A question or any text.
    source, target : str
        Language codes (``"en"``, ``"fr"``).

    Returns
    -------
    list of str
        Each name once, in the order the text names them; empty when the languages are the same.

    Examples
    --------
    >>> translated_places("Which organization based in Norway counted the deaths?", "en", "fr")
    ['Norvège']
    >>> translated_places("Qui a rencontré l'envoyé des États-Unis ?", "fr", "en")
    ['United States']
    """
    if source == target:
        return []
    table = place_table(source, target)
    if table.pattern is None:
        return []
    found = (table.names[m.group(0)] for m in table.pattern.finditer(normalize_answer(text)))
    return list(dict.fromkeys(found))
