"""Short answers: the words of a quoted sentence that answer the question (a name, a date, a number...).

The extractive answerer quotes whole sentences; this module picks, inside them, the span a
reader wants first. No model call, a few milliseconds per answer:

- **candidates** are the word ranges of the answer's sentences (:func:`.span_candidates.candidates`),
  never across ``. ; : ! ?``, starting on a content word, a determiner or a preposition and
  ending on a content word, of up to 10 to 20 words by what the question asks for, and holding
  the question's own content words only beside words of their own and never at an edge (the
  question's words alone are not its answer); the fitted :class:`Rules` say which;
- each is described by the features of :data:`FEATURES` (groups in :data:`GROUPS`): what the
  question asks for (:func:`rag.questions.asked_for`) crossed with the candidate's shape (capitals,
  digits, a date, an amount with its unit, a name: :mod:`rag.sentences`), the question's words it
  holds and how far it sits from the others, its length, its position and edges, its sentence's
  share of the answerer's belief; with spaCy installed (``rag[syntax]``), its place in a dependency
  parse of the sentence (:mod:`rag.answering.syntax`: its head's part of speech and relation, whether
  it is one constituent, the question's words around it in the tree);
- a linear model (weights in ``span_weights.json``, fitted on PIAF-dev by ``eval/fit_spans.py``)
  scores them; a softmax over the question's candidates gives each a probability (a fit may add
  a second stage re-ranking the best ones, :mod:`.span_rerank`), and a logistic model over the
  best one's probability, kind and the mass around it gives the **confidence**. Below the fitted
  ``threshold`` there is no short answer. The weights file holds two fits: with the syntax
  features (used when spaCy's French pipeline is installed) and without them.

:func:`find_span` takes the question and the answer's sentences (each with the citation it
falls under); :func:`rag.answering.extractive.short_answer` calls it for an extractive answer.
:mod:`.span_words` (the question and the sentence's words), :mod:`.span_candidates` (the
candidates), :mod:`.span_features` (their features) and :mod:`.span_rerank` (the second stage)
do the work; this module holds the model.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np

from ..text.questions import Asked
from . import syntax
from .span_candidates import MAX_WORDS, RULES, SHORT, Candidates, Rules, candidates
from .span_features import ASKED, COL, FEATURES, FITS, GROUPS
from .span_rerank import RERANK_ALL, rerank_features, softmax
from .span_words import Question, Sentence, analyse_question

WEIGHTS_FILE = Path(__file__).with_name("span_weights.json")
_PARTS = ("span", "confidence", "threshold", "parse_mass", "rerank")  # one fit's entries in the weights file
CONFIDENCE_FEATURES = ("probability", "log_margin", "share", "sentence_coverage", "entity", "date", "amount",
                       "log_len", "fits", "unfit", "mass_overlap", "mass_inside", "echo_share", "cover_around8",
                       "cover_clause") + tuple(f"asked={a.value}" for a in ASKED)


class Pick(NamedTuple):
    """The span found: ``text == document_text[start:end]``, from ``sentences[sentence]`` (citation ``n``)."""

    text: str
    start: int
    end: int
    n: int
    sentence: int
    probability: float  # softmax share among the question's candidates
    confidence: float   # the confidence model's output, in [0, 1]


class SpanModel(NamedTuple):
    """Fitted weights: the candidate scorer, the confidence model and its threshold.

    ``syntax``: the weights use the features of :mod:`rag.answering.syntax` (spaCy); without it
    their weights are 0 and the candidates' syntax columns are left at 0.
    """

    weights: np.ndarray     # len(FEATURES)
    confidence: np.ndarray  # len(CONFIDENCE_FEATURES) + 1 (bias last)
    threshold: float
    syntax: bool = False
    rules: Rules = RULES    # what may be a candidate (fitted with the weights)
    rerank: np.ndarray | None = None  # len(RERANK_ALL): the second stage (:mod:`.span_rerank`); None: none
    select: np.ndarray | None = None  # with ``syntax``: the weights without the parse that choose the sentences
    parse_mass: float = 1.0           # parsed (:func:`.span_candidates.parsed_sentences`); 1: every sentence


def rules_json(rules: Rules) -> dict:
    """``rules`` as the weights file keeps them (:func:`rules_of` reads them back)."""
    return {"longest": {("default" if k is None else k.value): v for k, v in rules.longest.items()},
            "echo": rules.echo, "gate": rules.gate}


def rules_of(data: dict | None) -> Rules:
    """The :class:`Rules` of a weights file's ``rules`` entry (:data:`RULES` without one)."""
    if not data:
        return RULES
    return Rules({(None if k == "default" else Asked(k)): int(v) for k, v in data["longest"].items()},
                 str(data["echo"]), bool(data["gate"]))


def load_model(path: Path = WEIGHTS_FILE, use_syntax: bool | None = None) -> SpanModel:
    """The weights written by ``eval/fit_spans.py --write``, checked against this version's features.

    Parameters
    ----------
    path : Path
        The weights file.
    use_syntax : bool, optional
        Take the weights fitted with the syntax features (default: when spaCy's French pipeline
        is installed, :func:`rag.answering.syntax.available`), else those fitted without them.

    Raises
    ------
    ValueError
        When the file was fitted for other features (the message says to refit).
    """
    data = plain = json.loads(path.read_text(encoding="utf-8"))
    for part in (data, data.get("with_syntax", {})):
        for key, names in (("span", FEATURES), ("confidence", CONFIDENCE_FEATURES), ("rerank", RERANK_ALL)):
            if key in part and tuple(part[key]["features"]) != names:
                raise ValueError(f"{path}: {key} weights are for other features than this version computes "
                                 f"({len(part[key]['features'])} vs {len(names)}); refit with eval/fit_spans.py")
    use_syntax = syntax.available("fr") if use_syntax is None else use_syntax
    if use_syntax and "with_syntax" in data:  # the fit's own parts only (no second stage of the other's)
        data = {**{k: v for k, v in data.items() if k not in _PARTS}, **data["with_syntax"]}
    rerank = np.array(data["rerank"]["weights"], dtype=np.float32) if data.get("rerank") else None
    with_parse = bool(use_syntax and "with_syntax" in data)
    parse_mass = float(data.get("parse_mass", 1.0)) if with_parse else 1.0
    select = np.array(plain["span"]["weights"], dtype=np.float32) if parse_mass < 1.0 else None
    return SpanModel(np.array(data["span"]["weights"], dtype=np.float32),
                     np.array(data["confidence"]["weights"] + [data["confidence"]["bias"]], dtype=np.float32),
                     float(data["threshold"]), with_parse, rules_of(data.get("rules")), rerank, select, parse_mass)


# -- scoring ------------------------------------------------------------------------------------
def probabilities(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Softmax of the candidates' linear scores (one question's candidates)."""
    return softmax(features @ weights)


def final_probabilities(cands: Candidates, model: SpanModel, asked: Asked) -> np.ndarray:
    """Each candidate's probability: the first stage's softmax, or with ``model.rerank`` the second
    stage's over the first stage's :data:`~rag.answering.span_rerank.TOP` best (0 for the others)."""
    scores = cands.features @ model.weights
    if model.rerank is None:
        return softmax(scores)
    top, x = rerank_features(cands, scores, asked)
    probs = np.zeros(len(scores), dtype=np.float64)
    probs[top] = softmax(x @ model.rerank)
    return probs


def confidence_features(cands: Candidates, probs: np.ndarray, best: int, asked: Asked) -> np.ndarray:
    """The :data:`CONFIDENCE_FEATURES` of the best candidate ``best``.

    Besides its probability and shape: whether a question about a person, a place, a date or a
    number gets a span without that shape (``unfit``), the probability mass of the candidates of its
    sentence that overlap it and that it holds (much mass around it: the place is right, if not
    every word).
    """
    f = cands.features[best]
    second = np.partition(probs, -2)[-2] if len(probs) > 1 else 0.0
    col = COL
    a, b, same = cands.first[best], cands.last[best], cands.sentence == cands.sentence[best]
    overlap = float(probs[same & (cands.first <= b) & (cands.last >= a)].sum())
    fits = float(any(f[col[name]] > 0 for name in FITS.get(asked, ())))
    inside = float(probs[same & (cands.first >= a) & (cands.last <= b)].sum())
    return np.array([probs[best], math.log((probs[best] + 1e-6) / (second + 1e-6)), f[col["share"]],
                     f[col["sentence_coverage"]], f[col["entity"]], f[col["date"]],
                     max(f[col["amount"]], f[col["amount_unit"]]), f[col["log_len"]],
                     fits, float(asked in FITS and not fits), overlap, inside,
                     f[col["echo_share"]], f[col["cover_around8"]], f[col["cover_clause"]]]
                    + [float(asked is a) for a in ASKED], dtype=np.float32)


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


def find_span(question: str, lang: str, sentences: Sequence[Sentence], model: SpanModel | None = None,
              threshold: float | None = None, idf: Callable[[str], float] | None = None) -> Pick | None:
    """The span of ``sentences`` that answers ``question``, or None when none is confident enough.

    Parameters
    ----------
    question : str
        The question as asked.
    lang : str
        Its language.
    sentences : sequence of Sentence
        The sentences the answer quotes, best first (offsets in their document's text).
    model : SpanModel, optional
        Default: the fitted weights (``span_weights.json``).
    threshold : float, optional
        Minimum confidence (default: the model's fitted threshold; 0 always gives a span when
        there is a candidate).
    idf : callable, optional
        Weight of a question stem (the index's inverse document frequency); default 1 each.

    Returns
    -------
    Pick or None
        ``Pick.start``/``end`` are offsets in the document text of the sentence it comes from.
    """
    model = model or default_model()
    q = analyse_question(question, lang, idf)
    cands = candidates(q, sentences, model.rules, model.syntax, question, model.select, model.parse_mass)
    if not len(cands.start):
        return None
    probs = final_probabilities(cands, model, q.asked)
    best = int(np.argmax(probs))
    conf = _sigmoid(float(confidence_features(cands, probs, best, q.asked) @ model.confidence[:-1]
                          + model.confidence[-1]))
    if conf < (model.threshold if threshold is None else threshold):
        return None
    s = int(cands.sentence[best])
    sent = sentences[s]
    start, end = int(cands.start[best]), int(cands.end[best])
    return Pick(sent.text[start - sent.start:end - sent.start], start, end, sent.n, s, float(probs[best]), conf)


@lru_cache(maxsize=1)
def default_model() -> SpanModel:
    """The fitted model of ``span_weights.json``, read once."""
    return load_model()


__all__ = ["Sentence", "Pick", "Question", "Candidates", "SpanModel", "FEATURES", "GROUPS", "CONFIDENCE_FEATURES",
           "FITS", "ASKED", "MAX_WORDS", "Asked", "WEIGHTS_FILE", "RULES", "SHORT", "Rules", "rules_json", "rules_of",
           "load_model", "default_model", "final_probabilities", "RERANK_ALL", "analyse_question", "candidates",
           "probabilities", "confidence_features", "find_span"]
