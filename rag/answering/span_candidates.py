"""Short answers, the candidates: the word ranges of the quoted sentences that may be the answer.

:func:`candidates` lists, for each sentence, the ranges of words that may answer (see its
docstring for the rules) and fills their :data:`.span_features.FEATURES`; with the parse it adds
the syntax group (:mod:`.syntax`).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from . import syntax
from .span_features import COL, FEATURES, FITS, SYNTAX_COLS, SYNTAX_NAMES, sentence_features
from .span_words import Question, Sentence, Words, question_term, sentence_words

MAX_WORDS = 10   # longest candidate, in words


class Candidates(NamedTuple):
    """All candidate spans of a question: one row of ``features`` (:data:`FEATURES`) each."""

    features: np.ndarray  # (candidates, len(FEATURES)) float32
    sentence: np.ndarray  # index in the sentences
    start: np.ndarray     # offsets in the document text
    end: np.ndarray



def sentence_candidates(text: str, lang: str, question: Question,
                         echo: bool) -> tuple[np.ndarray, np.ndarray, dict, Words]:
    """Candidate word ranges (first, last) of one sentence, the running counts of word classes, the words."""
    w = sentence_words(text, lang, question)
    t = len(w.start)
    if t == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), {}, w
    i, j = np.triu_indices(t)
    keep = j - i < MAX_WORDS
    i, j = i[keep], j[keep]
    a = w.attrs
    cum = {k: np.concatenate([[0.0], np.cumsum(v)]) for k, v in a.items()}
    strong = np.concatenate([[0], np.cumsum(w.strong)])

    def count(name: str) -> np.ndarray:
        return cum[name][j + 1] - cum[name][i]

    content = (j - i + 1) - count("stop")
    ok = ((strong[j + 1] - strong[i + 1]) == 0) & (a["stop"][j] == 0) & (content > 0)
    ok &= (a["stop"][i] == 0) | (a["det"][i] > 0) | (a["prep"][i] > 0)
    if not echo:
        ok &= count("question") == 0  # the question's own words are not its answer
    return i[ok], j[ok], cum, w


def candidates(question: Question, sentences: Sequence[Sentence], echo: bool = False, gate: bool = True,
               use_syntax: bool = False, question_text: str = "") -> Candidates:
    """Every candidate span of ``sentences`` with its :data:`FEATURES`.

    Parameters
    ----------
    question : Question
        From :func:`analyse_question`.
    sentences : sequence of Sentence
        The sentences the answer quotes, best first.
    echo : bool
        Let spans holding the question's content words be candidates too (only
        ``eval/fit_spans.py`` does, to measure what leaving them out adds).
    gate : bool
        For a question about a person, a place, a date or a number, keep only the candidates of
        that shape (:data:`FITS`: a capital, a date, a digit or number word) when there is one.
    use_syntax : bool
        Fill the ``syntax`` group (:mod:`rag.answering.syntax`) from a parse of the sentences
        whose language has a spaCy pipeline; its columns stay 0 otherwise.
    question_text : str
        The question as asked, parsed for the role of its question word (with ``use_syntax``).

    Returns
    -------
    Candidates
        Rows in sentence order; offsets in the document text.
    """
    blocks, sent_ix, starts, ends = [], [], [], []
    docs = syntax.parse_all(question_text, question.lang, [(s.text, s.lang) for s in sentences]) if use_syntax else {}
    role = syntax.question_role(docs["question"]) if "question" in docs else ""
    for s_ix, sent in enumerate(sentences):
        i, j, cum, w = sentence_candidates(sent.text, sent.lang, question, echo)
        if not len(i):
            continue
        block = sentence_features(question, sent, s_ix, i, j, cum, w)
        if s_ix in docs:
            block[:, SYNTAX_COLS] = syntax.span_features(
                docs[s_ix], w.start[i], w.end[j], lambda word, lang=sent.lang: question_term(word, lang, question) >= 0,
                role, question.asked.value, SYNTAX_NAMES)
        blocks.append(block)
        sent_ix.append(np.full(len(i), s_ix))
        starts.append(w.start[i] + sent.start)
        ends.append(w.end[j] + sent.start)
    if not blocks:
        z = np.zeros(0, np.int64)
        return Candidates(np.zeros((0, len(FEATURES)), np.float32), z, z, z)
    out = Candidates(np.concatenate(blocks), np.concatenate(sent_ix), np.concatenate(starts), np.concatenate(ends))
    if gate and question.asked in FITS:
        fits = (out.features[:, [COL[name] for name in FITS[question.asked]]] > 0).any(axis=1)
        if fits.any():
            out = Candidates(*(column[fits] for column in out))
    return out



__all__ = ["MAX_WORDS", "Candidates", "candidates", "sentence_candidates"]
