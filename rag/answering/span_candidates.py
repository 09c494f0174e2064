"""Short answers, the candidates: the word ranges of the quoted sentences that may be the answer.

:func:`candidates` lists, for each sentence, the ranges of words that may answer (see its
docstring for the rules) and fills their :data:`.span_features.FEATURES`; with the parse it adds
the syntax group (:mod:`.syntax`).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from ..text.questions import Asked
from . import syntax
from .span_features import COL, FEATURES, FITS, SYNTAX_COLS, SYNTAX_NAMES, sentence_features
from .span_words import Question, Sentence, Words, question_term, sentence_words


class Rules(NamedTuple):
    """What may be a candidate (:func:`sentence_candidates`).

    ``longest``: the most words of a candidate, by what the question asks for (``None``: the
    default). ``echo``: the question's own content words in a candidate: ``"none"`` (never),
    ``"own"`` (allowed beside a content word of the candidate's own, the ``echo`` features then
    weigh them), ``"inner"`` (the same, but never as its first or last word), ``"all"`` (any).
    ``gate``: for a question about a person, a place, a date or a number, keep only the
    candidates of that shape (:data:`FITS`) when there is one.
    """

    longest: dict
    echo: str = "inner"
    gate: bool = False


SHORT = 10  # longest candidate of a question asking for a name, a date, a number or a thing, in words
# chosen by cross-validation over the fit half's articles (eval/fit_spans.py)
RULES = Rules({None: SHORT, Asked.WHICH: 15, Asked.WHAT: 20, Asked.HOW: 20, Asked.WHY: 20, Asked.OTHER: 20}, "inner")
MAX_WORDS = 20  # the longest candidate of any question


class Candidates(NamedTuple):
    """All candidate spans of a question: one row of ``features`` (:data:`FEATURES`) each."""

    features: np.ndarray  # (candidates, len(FEATURES)) float32
    sentence: np.ndarray  # index in the sentences
    start: np.ndarray     # offsets in the document text
    end: np.ndarray
    first: np.ndarray     # first and last word, counted over all the sentences (word k of sentence s:
    last: np.ndarray      # k plus the words of the sentences before s)


def longest(rules: Rules, asked: Asked) -> int:
    """The most words a candidate may have for a question asking for ``asked``."""
    return min(rules.longest.get(asked, rules.longest[None]), MAX_WORDS)


def broken_rules(w: Words, i: np.ndarray, j: np.ndarray, cum: dict, rules: Rules, asked: Asked) -> dict:
    """For the word ranges ``(i[k], j[k])`` of a sentence, each rule of a candidate and where it fails.

    Returns
    -------
    dict
        Rule name -> boolean array, True where the range breaks it: ``"too long"``, ``"crosses . ; : ! ?"``,
        ``"no content word"``, ``"starts on a function word"`` (other than a determiner or a
        preposition), ``"ends on a function word"``, ``"a question word"`` (the ``echo`` rule).
    """
    a = w.attrs
    strong = np.concatenate([[0], np.cumsum(w.strong)])

    def count(name: str) -> np.ndarray:
        return cum[name][j + 1] - cum[name][i]

    n = j - i + 1
    content = n - count("stop")
    question = count("question")
    if rules.echo == "none":
        echo = question > 0  # the question's own words are not its answer
    elif rules.echo == "own":
        echo = (question > 0) & (content - question <= 0)  # ... unless beside words of its own
    elif rules.echo == "inner":  # ... and inside, not at an edge
        echo = (question > 0) & ((content - question <= 0) | (a["question"][i] > 0) | (a["question"][j] > 0))
    else:
        echo = np.zeros(len(i), bool)
    return {"too long": n > longest(rules, asked),
            "crosses . ; : ! ?": (strong[j + 1] - strong[i + 1]) > 0,
            "no content word": content <= 0,
            "starts on a function word": (a["stop"][i] > 0) & (a["det"][i] == 0) & (a["prep"][i] == 0),
            "ends on a function word": a["stop"][j] > 0,
            "a question word": echo}


def sentence_candidates(text: str, lang: str, question: Question,
                        rules: Rules = RULES) -> tuple[np.ndarray, np.ndarray, dict, Words]:
    """Candidate word ranges (first, last) of one sentence, the running counts of word classes, the words."""
    w = sentence_words(text, lang, question)
    t = len(w.start)
    if t == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), {}, w
    i, j = np.triu_indices(t)
    keep = j - i < longest(rules, question.asked)
    i, j = i[keep], j[keep]
    cum = {k: np.concatenate([[0.0], np.cumsum(v)]) for k, v in w.attrs.items()}
    ok = ~np.any(list(broken_rules(w, i, j, cum, rules, question.asked).values()), axis=0)
    return i[ok], j[ok], cum, w


def candidates(question: Question, sentences: Sequence[Sentence], rules: Rules = RULES, use_syntax: bool = False,
               question_text: str = "", select: np.ndarray | None = None, parse_mass: float = 1.0) -> Candidates:
    """Every candidate span of ``sentences`` with its :data:`FEATURES`.

    Parameters
    ----------
    question : Question
        From :func:`analyse_question`.
    sentences : sequence of Sentence
        The sentences the answer quotes, best first.
    rules : Rules
        What may be a candidate (default :data:`RULES`; ``eval/fit_spans.py`` measures others).
    use_syntax : bool
        Fill the ``syntax`` group (:mod:`rag.answering.syntax`) from a parse of the sentences
        whose language has a spaCy pipeline; its columns stay 0 otherwise.
    question_text : str
        The question as asked, parsed for the role of its question word (with ``use_syntax``).
    select : numpy.ndarray, optional
        With ``use_syntax``: weights without the syntax group (the fit without the parse) that
        choose the sentences worth parsing (:func:`parsed_sentences`); the candidates of the
        others are left out. Default: every sentence is parsed.
    parse_mass : float
        The share of ``select``'s belief the parsed sentences must hold.

    Returns
    -------
    Candidates
        Rows in sentence order; offsets in the document text.
    """
    rows: list[tuple] = []
    words_before = 0
    for s_ix, sent in enumerate(sentences):
        i, j, cum, w = sentence_candidates(sent.text, sent.lang, question, rules)
        words_before += len(w.start)
        if len(i):
            rows.append((s_ix, i, j, w, sentence_features(question, sent, s_ix, i, j, cum, w),
                         words_before - len(w.start)))
    if use_syntax and rows:
        if select is not None:
            keep = parsed_sentences([r[4] @ select for r in rows], parse_mass)
            rows = [r for k, r in enumerate(rows) if k in keep]
        docs = syntax.parse_all(question_text, question.lang, [(sentences[r[0]].text, sentences[r[0]].lang)
                                                               for r in rows])
        role = syntax.question_role(docs["question"]) if "question" in docs else ""
        for k, (s_ix, i, j, w, block, _) in enumerate(rows):
            if k in docs:
                lang = sentences[s_ix].lang
                block[:, SYNTAX_COLS] = syntax.span_features(
                    docs[k], w.start[i], w.end[j], lambda word, lang=lang: question_term(word, lang, question) >= 0,
                    role, question.asked.value, SYNTAX_NAMES)
    if not rows:
        z = np.zeros(0, np.int64)
        return Candidates(np.zeros((0, len(FEATURES)), np.float32), z, z, z, z, z)
    out = Candidates(np.concatenate([r[4] for r in rows]), np.concatenate([np.full(len(r[1]), r[0]) for r in rows]),
                     np.concatenate([r[3].start[r[1]] + sentences[r[0]].start for r in rows]),
                     np.concatenate([r[3].end[r[2]] + sentences[r[0]].start for r in rows]),
                     np.concatenate([r[1] + r[5] for r in rows]), np.concatenate([r[2] + r[5] for r in rows]))
    if rules.gate and question.asked in FITS:
        fits = (out.features[:, [COL[name] for name in FITS[question.asked]]] > 0).any(axis=1)
        if fits.any():
            out = Candidates(*(column[fits] for column in out))
    return out


def parsed_sentences(scores: Sequence[np.ndarray], mass: float) -> set[int]:
    """The sentences worth parsing: the fewest, best first, whose candidates hold ``mass`` of the softmax.

    ``scores``: each sentence's candidates' scores (without the parse). With ``mass`` 1 every sentence.
    """
    if mass >= 1.0:
        return set(range(len(scores)))
    top = max(float(s.max()) for s in scores)
    held = np.array([float(np.exp(s - top).sum()) for s in scores])
    order = np.argsort(-held, kind="stable")
    cum = np.cumsum(held[order]) / held.sum()
    return set(order[:int(np.searchsorted(cum, mass)) + 1].tolist())

__all__ = ["MAX_WORDS", "SHORT", "RULES", "Rules", "Candidates", "candidates", "sentence_candidates", "longest",
           "broken_rules", "parsed_sentences"]
