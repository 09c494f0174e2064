"""Short answers: the words of a quoted sentence that answer the question (a name, a date, a number...).

The extractive answerer quotes whole sentences; this module picks, inside them, the span a
reader wants first. No model call, a few milliseconds per answer:

- **candidates** are the word ranges of the answer's sentences, up to :data:`MAX_WORDS` words,
  never across ``. ; : ! ?``, starting on a content word, a determiner or a preposition and
  ending on a content word, and holding none of the question's content words (the question's
  own words are not its answer); for a question about a person, a place, a date or a number,
  only those of that shape (a capital, a date, a digit or a number word) when there are any;
- each is described by the features of :data:`FEATURES` (groups in :data:`GROUPS`): what the
  question asks for (:func:`rag.questions.asked_for`) crossed with the candidate's shape (capitals,
  digits, a date, an amount with its unit, a name: :mod:`rag.sentences`), the question's words it
  holds and how far it sits from the others, its length, its position and edges, its sentence's
  share of the answerer's belief; with spaCy installed (``rag[syntax]``), its place in a dependency
  parse of the sentence (:mod:`rag.answering.syntax`: its head's part of speech and relation, whether
  it is one constituent, the question's words around it in the tree);
- a linear model (weights in ``span_weights.json``, fitted on PIAF-dev by ``eval/fit_spans.py``)
  scores them; a softmax over the question's candidates gives each a probability, and a logistic
  model over the best one's probability and kind gives the **confidence**. Below the fitted
  ``threshold`` there is no short answer. The weights file holds two fits: with the syntax
  features (used when spaCy's French pipeline is installed) and without them.

:func:`find_span` takes the question and the answer's sentences (each with the citation it
falls under); :func:`rag.answering.extractive.short_answer` calls it for an extractive answer.
:mod:`.span_words` (the question and the sentence's words), :mod:`.span_candidates` (the
candidates) and :mod:`.span_features` (their features) do the work; this module holds the model.
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
from .span_candidates import MAX_WORDS, Candidates, candidates
from .span_features import ASKED, COL, FEATURES, FITS, GROUPS
from .span_words import Question, Sentence, analyse_question

WEIGHTS_FILE = Path(__file__).with_name("span_weights.json")
CONFIDENCE_FEATURES = ("probability", "log_margin", "share", "sentence_coverage", "entity", "date", "amount",
                       "log_len", "fits") + tuple(f"asked={a.value}" for a in ASKED)


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
    data = json.loads(path.read_text(encoding="utf-8"))
    for key, names in (("span", FEATURES), ("confidence", CONFIDENCE_FEATURES)):
        if tuple(data[key]["features"]) != names:
            raise ValueError(f"{path}: {key} weights are for other features than this version computes "
                             f"({len(data[key]['features'])} vs {len(names)}); refit with eval/fit_spans.py")
    use_syntax = syntax.available("fr") if use_syntax is None else use_syntax
    if use_syntax and "with_syntax" in data:
        data = {**data, **data["with_syntax"]}
    return SpanModel(np.array(data["span"]["weights"], dtype=np.float32),
                     np.array(data["confidence"]["weights"] + [data["confidence"]["bias"]], dtype=np.float32),
                     float(data["threshold"]), bool(use_syntax and "with_syntax" in data))



# -- scoring ------------------------------------------------------------------------------------
def probabilities(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Softmax of the candidates' linear scores (one question's candidates)."""
    z = features @ weights
    p = np.exp(z - z.max())
    return p / p.sum()


def confidence_features(cands: Candidates, probs: np.ndarray, best: int, asked: Asked) -> np.ndarray:
    """The :data:`CONFIDENCE_FEATURES` of the best candidate ``best``."""
    f = cands.features[best]
    second = np.partition(probs, -2)[-2] if len(probs) > 1 else 0.0
    col = COL
    return np.array([probs[best], math.log((probs[best] + 1e-6) / (second + 1e-6)), f[col["share"]],
                     f[col["sentence_coverage"]], f[col["entity"]], f[col["date"]],
                     max(f[col["amount"]], f[col["amount_unit"]]), f[col["log_len"]],
                     float(any(f[col[name]] > 0 for name in FITS.get(asked, ())))]
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
    cands = candidates(q, sentences, use_syntax=model.syntax, question_text=question)
    if not len(cands.start):
        return None
    probs = probabilities(cands.features, model.weights)
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
           "FITS", "ASKED", "MAX_WORDS", "Asked", "WEIGHTS_FILE",
           "load_model", "default_model", "analyse_question", "candidates", "probabilities", "confidence_features",
           "find_span"]
