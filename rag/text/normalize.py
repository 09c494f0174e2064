"""Text utilities shared by every stage: normalisation, accent folding, language detection, hashing."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_WORD = re.compile(r"\w+", re.UNICODE)

# Function words that tell French and English apart in a few words of text.
_FR = frozenset(
    "le la les un une des du de et est sont qui que quoi quel quelle quels quelles où dans pour "
    "par sur avec pas ne au aux ce cette ces il elle ils elles nous vous son sa ses leur leurs "
    "été était ont avait comment pourquoi combien quand y a en se plus mais ou donc".split()
)
_EN = frozenset(
    "the a an of and is are was were who what which where when why how to in on for with by "
    "from that this these those it its he she they we you his her their has have had did does "
    "do not but or be been at as".split()
)
LANGS = ("fr", "en")


def jsonl_lines(text: str) -> list[tuple[int, str]]:
    """Numbered lines of a JSON Lines text, split at line feeds only.

    ``str.splitlines`` also breaks on U+0085, U+2028 and other characters that JSON
    writes raw inside strings, which would cut a valid record in two.
    Blank lines are left out; line numbers count from 1.
    """
    return [(n, line.rstrip("\r")) for n, line in enumerate(text.split("\n"), 1) if line.strip()]


def text_hash(text: str) -> str:
    """SHA-256 of ``text`` in UTF-8, in hex: the identity of a document's or a chunk's text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def strip_accents(text: str) -> str:
    """Remove combining accents: ``"États"`` -> ``"Etats"``."""
    if text.isascii():  # most words: nothing to decompose
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalize_answer(text: str) -> str:
    """Normalise text for answer comparison (the evaluation contract).

    Unicode NFKC, case-folded, accents stripped, every run of non-alphanumeric characters
    (hyphens of all kinds, apostrophes, punctuation) made one space, trimmed.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = strip_accents(text)
    return _NON_ALNUM.sub(" ", text).strip()


def detect_language(text: str, default: str = "fr") -> str:
    """Tell French from English by their function words.

    Parameters
    ----------
    text : str
        Any text; only its first 5,000 characters are read.
    default : str
        Returned when the text has no telling word (too short, or another language).

    Returns
    -------
    str
        ``"fr"`` or ``"en"`` (or ``default``).
    """
    words = [w.casefold() for w in _WORD.findall(text[:5000])]
    if re.search(r"\b(?:l|d|qu|n|s|j|c)['’]\w", text[:5000], re.IGNORECASE):
        words.append("le")  # elisions are French
    fr = sum(w in _FR for w in words)
    en = sum(w in _EN for w in words)
    if fr == en:
        return default
    return "fr" if fr > en else "en"
