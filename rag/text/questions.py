"""Questions: what kind of answer a question expects, and follow-ups rewritten from the chat so far.

Both are small rule sets for French and English, no model:

- :func:`question_type` tells a question about a person (*qui*, *who*), a date (*quand*, *en
  quelle année*, *when*), a number (*combien*, *how many*), a place (*où*, *where*) or
  anything else; the extractive answerer prefers sentences holding that kind of thing.
- :func:`rewrite_followup` completes an elliptic follow-up (*« Et qui l'a rencontré ? »*) with
  the content words of the previous question, so retrieval and sentence scoring see the topic.
"""

from __future__ import annotations

import enum
import re
from typing import Sequence

from .analysis import analyze

Turn = tuple[str, str]  # (question, answer text) of an earlier exchange in a chat


class QuestionType(str, enum.Enum):
    """The kind of answer a question expects."""

    PERSON = "person"
    DATE = "date"
    NUMBER = "number"
    PLACE = "place"
    OTHER = "other"


_DATE_NOUNS = r"(?:année|an|jour|date|siècle|époque|mois|période|décennie|heure)"
_NUMBER_NOUNS = (r"(?:nombre|pourcentage|taux|âge|population|superficie|surface|montant|prix|coût|durée|"
                 r"distance|hauteur|longueur|largeur|altitude|profondeur|taille|poids|vitesse|score|chiffre|"
                 r"quantité|budget|effectif|capacité)")
_PLACE_NOUNS = (r"(?:ville|pays|région|lieu|endroit|continent|département|province|commune|capitale|île|"
                r"quartier|état|fleuve|rivière|océan|mer|territoire)")
_QUEL = r"(?:quel|quelle|quels|quelles|lequel|laquelle|lesquels|lesquelles)"
_QUEL_THE = rf"\b{_QUEL}\s+(?:est\s+|était\s+)?(?:la\s+|le\s+|l['’]\s*)?"  # "quelle est la", "quel"
_EN_DATE_NOUNS = r"(?:year|day|date|month|century|decade|time)"
_EN_PLACE_NOUNS = r"(?:city|country|town|place|region|state|continent|capital|island)"
_RULES_FR: list[tuple[QuestionType, re.Pattern]] = [
    (QuestionType.NUMBER, re.compile(rf"\bcombien\b|\b{_QUEL}\s+(?:est\s+|était\s+|sont\s+|fut\s+)?(?:le\s+|la\s+|l['’]\s*)?"
                                     rf"{_NUMBER_NOUNS}\b", re.I)),
    (QuestionType.DATE, re.compile(rf"\bquand\b|{_QUEL_THE}{_DATE_NOUNS}\b|"
                                   rf"\bdepuis\s+quand\b|\bà\s+partir\s+de\s+quand\b", re.I)),
    (QuestionType.PLACE, re.compile(rf"(?:^|\s)(?:d['’])?où\b|{_QUEL_THE}{_PLACE_NOUNS}\b", re.I)),
    (QuestionType.PERSON, re.compile(r"^\s*(?:et\s+)?(?:à\s+|a\s+|de\s+|par\s+|pour\s+|avec\s+|contre\s+)?qui\b|"
                                     r"\b(?:par|à|de|pour|avec|contre)\s+qui\b|\bqui\s+(?:est|était|sont|a|ont|fut)\b|"
                                     r"\bcomment\s+s['’]appel", re.I)),
]
_RULES_EN: list[tuple[QuestionType, re.Pattern]] = [
    (QuestionType.NUMBER, re.compile(r"\bhow\s+(?:many|much|long|old|far|big|large|tall|high)\b|"
                                     r"\bwhat\s+(?:is\s+|was\s+)?(?:the\s+)?(?:number|percentage|rate|age|population|"
                                     r"price|cost|amount|size|area|length|height|distance|budget)\b", re.I)),
    (QuestionType.DATE, re.compile(rf"\bwhen\b|\b(?:what|which)\s+{_EN_DATE_NOUNS}\b", re.I)),
    (QuestionType.PLACE, re.compile(rf"\bwhere\b|\b(?:what|which|in\s+which|in\s+what)\s+{_EN_PLACE_NOUNS}\b", re.I)),
    (QuestionType.PERSON, re.compile(r"\bwho\b|\bwhom\b|\bwhose\b", re.I)),
]


_ASKED_NOUN = {
    "fr": re.compile(rf"{_QUEL_THE}({_PLACE_NOUNS}|{_DATE_NOUNS})\b", re.I),
    "en": re.compile(rf"\b(?:what|which)\s+({_EN_PLACE_NOUNS}|{_EN_DATE_NOUNS})\b", re.I),
}


def asked_noun(question: str, lang: str = "fr") -> str:
    """The noun naming what a place or date question asks for (*quelle ville*, *which year*), or "".

    The answer names the place or the date instead (*« arrivés à Mascate »*), so this noun is
    no evidence that a sentence answers.

    Examples
    --------
    >>> asked_noun("Dans quelle ville se sont déroulées les discussions ?")
    'ville'
    >>> asked_noun("Quelle est la population d'Oman ?")
    ''
    """
    m = _ASKED_NOUN.get(lang, _ASKED_NOUN["fr"]).search(question)
    return m.group(1) if m else ""


def question_type(question: str, lang: str = "fr") -> QuestionType:
    """The kind of answer ``question`` expects.

    Parameters
    ----------
    question : str
        The question.
    lang : str
        Its language (``"fr"`` or ``"en"``).

    Returns
    -------
    QuestionType
        ``OTHER`` when no rule applies (``Quel groupe…``, ``Que veut…``).

    Examples
    --------
    >>> question_type("Combien de manifestants sont morts ?").value
    'number'
    >>> question_type("Who is the White House press secretary?", "en").value
    'person'
    """
    for kind, pattern in _RULES_EN if lang == "en" else _RULES_FR:
        if pattern.search(question):
            return kind
    return QuestionType.OTHER


class Asked(str, enum.Enum):
    """What a question asks for, finer than :class:`QuestionType` for the questions it calls ``OTHER``."""

    PERSON = "person"
    DATE = "date"
    NUMBER = "number"
    PLACE = "place"
    WHICH = "which"  # quel…, lequel…, which…, what + noun: a thing of a named kind
    WHAT = "what"    # que…, quoi…, qu'est-ce…, what…: a thing or an act
    HOW = "how"      # comment…, how…: a manner
    WHY = "why"      # pourquoi…, why…: a cause or a purpose
    OTHER = "other"


_ASKED_RULES = {
    "fr": [(Asked.WHY, re.compile(r"\bpourquoi\b|\bpour\s+quelles?\s+raisons?\b|\bdans\s+quel\s+but\b", re.I)),
           (Asked.HOW, re.compile(r"\bcomment\b", re.I)),
           (Asked.WHICH, re.compile(rf"\b{_QUEL}\b", re.I)),
           (Asked.WHAT, re.compile(r"\b(?:que|qu['’]|quoi)(?:\b|(?<=['’]))", re.I))],
    "en": [(Asked.WHY, re.compile(r"\bwhy\b", re.I)),
           (Asked.HOW, re.compile(r"\bhow\b", re.I)),
           (Asked.WHICH, re.compile(r"\bwhich\b|\bwhat\s+(?!is\b|was\b|are\b|were\b|did\b|does\b|do\b|has\b|"
                                    r"had\b|have\b)[a-z]+", re.I)),
           (Asked.WHAT, re.compile(r"\bwhat\b", re.I))],
}


_HEAD_NOUN = {
    "fr": re.compile(rf"\b{_QUEL}\s+(?:(?:est|sont|était|étaient|fut)\s+)?(?:(?:le|la|les)\s+|l['’]\s*)?"
                     r"([^\W\d_][\w‑-]*)", re.I),
    "en": re.compile(r"\b(?:which|what)\s+(?:(?:is|was|are|were)\s+)?(?:the\s+)?([^\W\d_][\w-]*)", re.I),
}


def head_noun(question: str, lang: str = "fr") -> str:
    """The noun a *quel…* / *which…* question names (*quel professeur*, *quelle est la population*), or "".

    The answer often stands right after it in the sentence (*« son professeur Armand Trousseau »*).

    Examples
    --------
    >>> head_noun("Quel professeur de Lasègue joua un rôle déterminant ?")
    'professeur'
    >>> head_noun("Which carrier was sent?", "en")
    'carrier'
    """
    m = _HEAD_NOUN.get(lang, _HEAD_NOUN["fr"]).search(question)
    return m.group(1) if m else ""


def asked_for(question: str, lang: str = "fr") -> Asked:
    """What ``question`` asks for: its :func:`question_type`, or for ``OTHER`` the kind its question word says.

    Examples
    --------
    >>> asked_for("Quel porte-avions a été envoyé dans la région ?").value
    'which'
    >>> asked_for("Pourquoi Böhme enfle-t-il ?").value
    'why'
    >>> asked_for("Qu'a introduit la série de lois ?").value
    'what'
    """
    kind = question_type(question, lang)
    if kind is not QuestionType.OTHER:
        return Asked(kind.value)
    for asked, pattern in _ASKED_RULES.get(lang, _ASKED_RULES["fr"]):
        if pattern.search(question):
            return asked
    return Asked.OTHER


# Words about the article itself ("cité dans l'article", "mentioned in the text"): never in its sentences.
_END = r"(?=\s*[?.!]*\s*$)"
_META = {
    "fr": re.compile(r"\b(?:(?:est|sont|a\s+été|ont\s+été)\s+)?(?:cité|mentionné|évoqué|nommé)e?s?"
                     r"(?:\s+dans\s+(?:l['’]\s*|le\s+|ce\s+|cet\s+)(?:article|texte|document))?" + _END + "|"
                     r"\b(?:dans|selon|d['’]après)\s+(?:l['’]\s*|le\s+|ce\s+|cet\s+)(?:article|texte|document)\b", re.I),
    "en": re.compile(r"\b(?:(?:is|are|was|were)\s+)?(?:mentioned|cited|named|quoted)"
                     r"(?:\s+in\s+(?:the|this)\s+(?:article|text|report))?" + _END + "|"
                     r"\b(?:in|according\s+to)\s+(?:the|this)\s+(?:article|text|report)\b", re.I),
}


def strip_meta(question: str, lang: str = "fr") -> str:
    """``question`` without the words that point at the article rather than at its content.

    Examples
    --------
    >>> strip_meta("Quel groupe armé libanais est cité dans l'article ?")
    'Quel groupe armé libanais ?'
    >>> strip_meta("Which group is mentioned in the article?", "en")
    'Which group?'
    >>> strip_meta("Qui est cité par Le Monde ?")  # a question about quoting: kept
    'Qui est cité par Le Monde ?'
    >>> strip_meta("Qui est mentionné ?")  # nothing would be left to look for: kept
    'Qui est mentionné ?'
    """
    out = _META.get(lang, _META["fr"]).sub(" ", question)
    if out == question or not analyze(out, lang):
        return question
    out = " ".join(out.split()).lstrip(",;: ")
    return re.sub(r"\s+([?!.,])", r"\1", out) if lang == "en" else out


# Words that make a question lean on the previous one: pronouns and openers of elliptic questions.
_ANAPHORA = {
    "fr": re.compile(r"^\s*(?:et|mais|puis|alors|ensuite)\b|\b(?:il|elle|ils|elles|lui|leur|eux|celui|celle|ceux|"
                     r"celles|celui-ci|celle-ci|là-bas|y)\b|\b[ln]['’]\s*(?:a|ont|avait|avaient|est|sont|fut)\b|"
                     r"\b(?:ce|cette|ces)\s+(?:pays|ville|homme|femme|personne|organisation|groupe|accord|"
                     r"réunion|rencontre|ministre|président|événement|date|lieu)\b|"
                     r"\b(?:son|sa|ses|leurs?)\s+\w+", re.I),
    "en": re.compile(r"^\s*(?:and|but|then|so)\b|\b(?:he|she|it|they|him|her|them|his|hers|its|their|theirs|there|"
                     r"this|that|these|those)\b", re.I),
}
ELLIPTIC_TERMS = 1  # a question with at most this many content terms is read as elliptic


def is_followup(question: str, lang: str = "fr") -> bool:
    """True when ``question`` reads as depending on an earlier one (pronoun, ``Et…``, very short)."""
    if _ANAPHORA.get(lang, _ANAPHORA["fr"]).search(question):
        return True
    return len(set(analyze(question, lang))) <= ELLIPTIC_TERMS


def rewrite_followup(question: str, history: Sequence[Turn] | None, lang: str = "fr") -> str:
    """Complete a follow-up question with the topic of the chat so far.

    The previous question (itself rewritten if it was a follow-up) lends the content words the
    follow-up lacks; a question that stands on its own is returned unchanged.

    Parameters
    ----------
    question : str
        The new question.
    history : sequence of (question, answer)
        Earlier turns, oldest first.
    lang : str
        The language of ``question``.

    Returns
    -------
    str
        ``question``, possibly followed by words of the earlier questions.

    Examples
    --------
    >>> rewrite_followup("Et qui l'a rencontré ?", [("Qui est le ministre iranien ?", "Abbas Araghchi [1]")])
    "Et qui l'a rencontré ? ministre iranien"
    """
    if not history:
        return question
    previous = ""
    for past, _ in history:
        previous = _complete(past, previous, lang)
    return _complete(question, previous, lang)


def _complete(question: str, previous: str, lang: str) -> str:
    if not previous or not is_followup(question, lang):
        return question
    own = set(analyze(question, lang))
    words = [w for w in re.findall(r"[^\W_](?:[\w’'‑-]*[^\W_])?", previous)
             if (terms := analyze(w, lang)) and not own.intersection(terms)]
    seen: list[str] = []
    for w in words:
        if w not in seen:
            seen.append(w)
    return f"{question} {' '.join(seen)}".strip() if seen else question
