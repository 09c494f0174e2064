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
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np

from ..text.analysis import PREFIX, QUESTION_WORDS, stopwords, word_terms
from ..text.normalize import normalize_answer
from ..text.questions import Asked, asked_for, head_noun, strip_meta
from ..text.sentences import MONTHS, NUMBER_WORDS, WEEKDAYS, dates, entities, numbers, quotes
from . import syntax

MAX_WORDS = 10   # longest candidate, in words
WINDOW = 4       # words on each side where the question's words are counted
COVER_WINDOWS = (3, 8, 20)  # words on each side where the share of the question's weight is measured
WEIGHTS_FILE = Path(__file__).with_name("span_weights.json")

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W_]+(?:[-‑][^\W_]+)*(?:[’'](?=[^\W_]))?|[^\w\s]")
_STRONG = frozenset(".;:!?…")
_OPEN, _CLOSE = frozenset("«“([\""), frozenset("»”)]\"")
_YEAR = re.compile(r"1\d{3}|20\d{2}")
_MONTHS = frozenset(normalize_answer(MONTHS).split())
_WEEKDAYS = frozenset(normalize_answer(WEEKDAYS).split())
_NUMBER_WORDS = frozenset(normalize_answer(NUMBER_WORDS).split())
_DETERMINERS = frozenset("le la les l un une des du au aux ce cet cette ces son sa ses leur leurs mon ma mes notre nos "
                         "the a an his her its their this these those".split())
_PREPOSITIONS = frozenset("à a de d en dans par pour sur sous avec sans vers chez entre contre depuis pendant selon "
                          "après avant durant of in at on by for with from to into during since after before "
                          "about".split())
_COORDINATION = frozenset("et ou and or".split())
# Words whose presence at an edge of the span, or right before it, the model weighs one by one.
EDGE_WORDS = ("le", "la", "les", "l", "un", "une", "des", "du", "de", "d", "à", "au", "aux", "en", "dans", "par",
              "pour", "sur", "avec", "entre", "car", "parce", "que", "qui", "est", "a", "son", "sa", "ses", "leur",
              "environ", "plus", "the", "of", "in", "by", "as")
ASKED = tuple(Asked)
# The candidate's shape, alone (group "shape") and crossed with what the question asks for (group "type").
SHAPE = ("has_cap", "cap_share", "acronym", "has_digit", "has_number_word", "has_year", "has_month",
         "starts_det", "starts_prep", "after_prep", "date", "amount", "amount_unit", "entity", "quote", "log_len",
         "items")
GROUPS: dict[str, tuple[str, ...]] = {
    "type": tuple(f"{a.value}*{s}" for a in ASKED for s in SHAPE),
    "shape": SHAPE + ("starts_initial", "in_entity", "holds_entity", "chunk", "det_chunk"),
    "question": ("asked_noun_before",),
    "distance": ("log_dist", "log_dist_left", "log_dist_right", "adjacent_left", "adjacent_right",
                 "question_left", "question_right", "no_question_near")
                + tuple(f"cover_{side}{k}" for k in COVER_WINDOWS for side in ("left", "right", "around"))
                + ("cover_local", "cover_clause", "clause_breaks"),
    "length": ("len1", "len2", "len3", "len4_5", "len6_8", "len9_", "commas", "coordination", "stop_share"),
    "position": ("rel_start", "rel_end", "at_start", "at_end", "punct_before", "punct_after",
                 "next_stop", "in_brackets"),
    "lexical": tuple(f"first={w}" for w in EDGE_WORDS) + tuple(f"prev={w}" for w in EDGE_WORDS),
    "sentence": ("share", "best_sentence", "sentence_coverage"),
    "syntax": syntax.feature_names([a.value for a in ASKED]),  # zeros without spaCy (rag.answering.syntax)
}
FEATURES: tuple[str, ...] = tuple(f for group in GROUPS.values() for f in group)
CONFIDENCE_FEATURES = ("probability", "log_margin", "share", "sentence_coverage", "entity", "date", "amount",
                       "log_len", "fits") + tuple(f"asked={a.value}" for a in ASKED)
# The shape a typed question's answer has (any of these features): a name, a date, a number.
FITS = {Asked.PERSON: ("has_cap", "entity"), Asked.PLACE: ("has_cap", "entity"),
        Asked.DATE: ("date", "has_year", "has_month"), Asked.NUMBER: ("has_digit", "has_number_word")}
_COL = {f: i for i, f in enumerate(FEATURES)}


# -- inputs and results -----------------------------------------------------------------------
class Sentence(NamedTuple):
    """A sentence a short answer may come from.

    ``start`` is its offset in the document text; ``n`` the citation (or passage) it belongs to;
    ``lang`` its language; ``share`` the answerer's belief in it (its softmax share).
    """

    text: str
    start: int
    n: int
    lang: str = "fr"
    share: float = 1.0


class Pick(NamedTuple):
    """The span found: ``text == document_text[start:end]``, from ``sentences[sentence]`` (citation ``n``)."""

    text: str
    start: int
    end: int
    n: int
    sentence: int
    probability: float  # softmax share among the question's candidates
    confidence: float   # the confidence model's output, in [0, 1]


class Question(NamedTuple):
    """The question as the span finder sees it."""

    asked: Asked
    terms: dict[str, int]      # content stem -> its index in ``weights``
    weights: np.ndarray        # weight of each content stem (its inverse document frequency, or 1)
    prefixes: dict[str, int]   # first letters of its content words (cognates, derivations) -> stem index
    noun: frozenset[str]       # stems of the noun a "quel X" question names
    lang: str


class Candidates(NamedTuple):
    """All candidate spans of a question: one row of ``features`` (:data:`FEATURES`) each."""

    features: np.ndarray  # (candidates, len(FEATURES)) float32
    sentence: np.ndarray  # index in the sentences
    start: np.ndarray     # offsets in the document text
    end: np.ndarray


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


# -- the question -----------------------------------------------------------------------------
_SKIP = frozenset(t for words in QUESTION_WORDS.values() for w in words for lg in ("fr", "en")
                  for t in word_terms(w, lg))


def analyse_question(question: str, lang: str, idf: Callable[[str], float] | None = None) -> Question:
    """What the question asks for, its content stems and the noun it names (:class:`Question`).

    ``idf`` weighs each stem (e.g. :meth:`rag.extractive.TermStats.idf` of the index); without
    it every stem weighs 1.
    """
    terms: dict[str, int] = {}
    prefixes: dict[str, int] = {}
    for word in strip_meta(question, lang).split():
        for t in word_terms(word, lang):
            if t in _SKIP:
                continue
            k = terms.setdefault(t, len(terms))
            for w in normalize_answer(word).split():
                if len(w) >= PREFIX and w not in stopwords(lang):
                    prefixes.setdefault(w[:PREFIX], k)
    weights = np.array([idf(t) if idf else 1.0 for t in terms], dtype=np.float32)
    noun = frozenset(word_terms(head_noun(question, lang), lang))
    return Question(asked_for(question, lang), terms, weights, prefixes, noun, lang)


# -- words of a sentence ------------------------------------------------------------------------
class _Words(NamedTuple):
    """The words of one sentence and, per word, the classes the features count."""

    start: np.ndarray  # offsets in the sentence
    end: np.ndarray
    lower: list[str]
    attrs: dict[str, np.ndarray]  # name -> (words,) float
    strong: np.ndarray  # strong punctuation before each word (a candidate never crosses it)
    match: np.ndarray   # the question stem each word matches (-1: none)


@lru_cache(maxsize=100_000)
def _word_class(word: str, lang: str) -> tuple[bool, bool, bool, bool, bool, bool, bool, bool, bool]:
    """(capitalised, acronym, digit, year, month or weekday, number word, stopword, determiner, preposition)."""
    low = word.lower().rstrip("'’")
    norm = normalize_answer(low)
    return (word[0].isupper(), len(word) > 1 and word.isupper() and word.isalpha(), word[0].isdigit(),
            bool(_YEAR.fullmatch(word)), norm in _MONTHS or norm in _WEEKDAYS, norm in _NUMBER_WORDS,
            low in stopwords(lang) or (len(low) == 1 and not low.isdigit()) or low in _DETERMINERS,
            low in _DETERMINERS, low in _PREPOSITIONS)


def _words(text: str, lang: str, question: Question) -> _Words:
    """Cut ``text`` into words and classify each (capitals, digits, stopwords, question words...)."""
    starts, ends, lower, gaps = [], [], [], []
    last = 0
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if not (tok[0].isalnum()):
            continue
        gaps.append(text[last:m.start()])
        starts.append(m.start())
        ends.append(m.end())
        lower.append(tok.lower())
        last = m.end()
    n = len(starts)
    cls = np.array([_word_class(text[a:b], lang) for a, b in zip(starts, ends)], dtype=bool).reshape(n, 9)
    initial = np.array([i == 0 or any(c in _OPEN or c in _STRONG or c in "—–" for c in g)
                        for i, g in enumerate(gaps)], dtype=bool)
    match = np.array([_question_term(w, lang, question) for w in lower], dtype=np.int64)
    q = (match >= 0)
    noun = np.array([bool(question.noun) and not question.noun.isdisjoint(word_terms(w, lang)) for w in lower],
                    dtype=bool)
    attrs = {
        "cap": cls[:, 0] & ~initial, "initial_cap": cls[:, 0] & initial, "acronym": cls[:, 1], "digit": cls[:, 2],
        "year": cls[:, 3], "month": cls[:, 4], "number_word": cls[:, 5], "stop": cls[:, 6], "det": cls[:, 7],
        "prep": cls[:, 8], "question": q & ~cls[:, 6], "noun": noun,
        "comma": np.array([("," in g) for g in gaps], dtype=bool),
        "open": np.array([any(c in _OPEN for c in g) for g in gaps], dtype=bool),
        "close": np.array([any(c in _CLOSE for c in g) for g in gaps], dtype=bool),
        "coord": np.array([w in _COORDINATION for w in lower], dtype=bool),
    }
    strong = np.array([i > 0 and any(c in _STRONG for c in g) for i, g in enumerate(gaps)], dtype=bool)
    match = np.where(cls[:, 6], -1, match)
    return _Words(np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64), lower,
                  {k: v.astype(np.float32) for k, v in attrs.items()}, strong, match)


def _question_term(word: str, lang: str, question: Question) -> int:
    """The index of the question's content stem ``word`` matches (same stem, or same first letters), or -1."""
    for t in word_terms(word, lang):
        if t in question.terms:
            return question.terms[t]
    norm = normalize_answer(word)
    return question.prefixes.get(norm[:PREFIX], -1) if len(norm) >= PREFIX else -1


# -- candidates and their features ----------------------------------------------------------------
def _token_pairs(words: _Words, spans: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
    """The (first word, last word) of each character span (words wholly inside it)."""
    out = set()
    for a, b in spans:
        i = int(np.searchsorted(words.start, a))
        j = int(np.searchsorted(words.end, b, side="right")) - 1
        if i <= j:
            out.add((i, j))
    return out


def _runs(words: _Words) -> list[tuple[int, int]]:
    """Maximal runs of content words with no punctuation between them (rough noun phrases)."""
    out, start = [], None
    content = words.attrs["stop"] == 0
    brk = (words.attrs["comma"] + words.attrs["open"] + words.attrs["close"] > 0) | words.strong
    for k in range(len(content) + 1):
        if k < len(content) and content[k] and not (start is not None and brk[k]):
            start = k if start is None else start
            continue
        if start is not None:
            out.append((start, k - 1))
        start = k if k < len(content) and content[k] else None
    return out


def _sentence_candidates(text: str, lang: str, question: Question,
                         echo: bool) -> tuple[np.ndarray, np.ndarray, dict, _Words]:
    """Candidate word ranges (first, last) of one sentence, the running counts of word classes, the words."""
    w = _words(text, lang, question)
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
        i, j, cum, w = _sentence_candidates(sent.text, sent.lang, question, echo)
        if not len(i):
            continue
        block = _features(question, sent, s_ix, i, j, cum, w)
        if s_ix in docs:
            block[:, _SYNTAX_COLS] = syntax.span_features(
                docs[s_ix], w.start[i], w.end[j], lambda word, lang=sent.lang: _question_term(word, lang, question) >= 0,
                role, question.asked.value, _SYNTAX_NAMES)
        blocks.append(block)
        sent_ix.append(np.full(len(i), s_ix))
        starts.append(w.start[i] + sent.start)
        ends.append(w.end[j] + sent.start)
    if not blocks:
        z = np.zeros(0, np.int64)
        return Candidates(np.zeros((0, len(FEATURES)), np.float32), z, z, z)
    out = Candidates(np.concatenate(blocks), np.concatenate(sent_ix), np.concatenate(starts), np.concatenate(ends))
    if gate and question.asked in FITS:
        fits = (out.features[:, [_COL[name] for name in FITS[question.asked]]] > 0).any(axis=1)
        if fits.any():
            out = Candidates(*(column[fits] for column in out))
    return out


_SYNTAX_NAMES = {name: k for k, name in enumerate(GROUPS["syntax"])}
_SYNTAX_COLS = np.array([_COL[name] for name in GROUPS["syntax"]])


def _features(question: Question, sent: Sentence, s_ix: int, i: np.ndarray, j: np.ndarray, cum: dict,
              w: _Words) -> np.ndarray:
    """The feature rows of one sentence's candidates ``(i[k], j[k])`` (first and last word)."""
    a, t = w.attrs, len(w.start)
    x = np.zeros((len(i), len(FEATURES)), dtype=np.float32)
    n = (j - i + 1).astype(np.float32)

    def count(name: str) -> np.ndarray:
        return (cum[name][j + 1] - cum[name][i]).astype(np.float32)

    def put(name: str, values) -> None:
        x[:, _COL[name]] = values

    def inside(name: str) -> np.ndarray:  # count over the gaps inside the span (before words i+1..j)
        return (cum[name][j + 1] - cum[name][i + 1]).astype(np.float32)

    def exact(pairs: set[tuple[int, int]]) -> np.ndarray:  # the candidate is one of these (first, last) words
        table = np.zeros((t, t), dtype=bool)
        if pairs:
            table[tuple(np.array(sorted(pairs)).T)] = True
        return table[i, j]

    ent = _token_pairs(w, entities(sent.text))
    amounts = numbers(sent.text)
    flags = {"entity": exact(ent), "date": exact(_token_pairs(w, dates(sent.text))),
             "quote": exact(_token_pairs(w, quotes(sent.text))),
             "amount": exact(_token_pairs(w, [c for c, _ in amounts])),
             "amount_unit": exact(_token_pairs(w, [u for c, u in amounts if u != c]))}
    in_ent = np.zeros(len(i), bool)
    holds_ent = np.zeros(len(i), bool)
    for p, q in ent:
        in_ent |= (i >= p) & (j <= q) & ~((i == p) & (j == q))
        holds_ent |= (i <= p) & (j >= q) & ~((i == p) & (j == q))
    items = np.zeros(len(i), np.float32)  # names, dates and amounts wholly in the span
    for p, q in ent | _token_pairs(w, dates(sent.text)) | _token_pairs(w, [u for _, u in amounts]):
        items += (i <= p) & (j >= q)
    runs = _runs(w)
    nonstop = n - count("stop")
    caps = count("cap")
    prev = np.maximum(i - 1, 0)
    has_prev = i > 0
    shape = {
        "has_cap": caps > 0, "cap_share": caps / np.maximum(nonstop, 1), "acronym": count("acronym") > 0,
        "has_digit": count("digit") > 0, "has_number_word": count("number_word") > 0, "has_year": count("year") > 0,
        "has_month": count("month") > 0, "starts_det": a["det"][i], "starts_prep": a["prep"][i] * (1 - a["det"][i]),
        "after_prep": has_prev * a["prep"][prev], "date": flags["date"], "amount": flags["amount"],
        "amount_unit": flags["amount_unit"], "entity": flags["entity"], "quote": flags["quote"],
        "log_len": np.log(n), "items": np.minimum(items, 3),
    }
    for name, v in shape.items():
        put(name, v)
    asked = question.asked.value
    for name, v in shape.items():
        put(f"{asked}*{name}", v)
    put("starts_initial", a["initial_cap"][i])
    put("in_entity", in_ent)
    put("holds_entity", holds_ent)
    put("chunk", exact(set(runs)))
    put("det_chunk", exact({(p - 1, q) for p, q in runs if p > 0 and a["det"][p - 1]}))
    # the question's words around the span (none is in it)
    put("asked_noun_before", has_prev * np.maximum(a["noun"][prev], (i > 1) * a["noun"][np.maximum(i - 2, 0)]))
    qpos = np.flatnonzero(a["question"])
    far = 2.0 * MAX_WORDS
    if len(qpos):
        before = np.searchsorted(qpos, i) - 1
        left = np.where(before >= 0, i - qpos[np.maximum(before, 0)], far)
        after = np.searchsorted(qpos, j, side="right")
        right = np.where(after < len(qpos), qpos[np.minimum(after, len(qpos) - 1)] - j, far)
    else:
        left = right = np.full(len(i), far)
    left, right = np.minimum(left, far), np.minimum(right, far)
    put("log_dist", np.log1p(np.minimum(left, right)))
    put("log_dist_left", np.log1p(left))
    put("log_dist_right", np.log1p(right))
    put("adjacent_left", left == 1)
    put("adjacent_right", right == 1)
    total_q = max(float(cum["question"][-1]), 1.0)
    lo, hi = np.maximum(i - WINDOW, 0), np.minimum(j + 1 + WINDOW, t)
    put("question_left", (cum["question"][i] - cum["question"][lo]) / total_q)
    put("question_right", (cum["question"][hi] - cum["question"][j + 1]) / total_q)
    put("no_question_near", (left > WINDOW) & (right > WINDOW))
    # the share of the question's weight held around the span (each stem once, weighted)
    total_w = float(question.weights.sum()) or 1.0
    if len(question.weights):
        onehot = np.zeros((len(question.weights), t), dtype=np.float32)
        hit = w.match >= 0
        onehot[w.match[hit], np.flatnonzero(hit)] = 1.0
        mc = np.concatenate([np.zeros((len(question.weights), 1), np.float32), np.cumsum(onehot, axis=1)], axis=1)
        in_sentence = float(question.weights @ (mc[:, t] > 0)) / total_w
        around8 = None
        for k in COVER_WINDOWS:
            lo, hi = np.maximum(i - k, 0), np.minimum(j + 1 + k, t)
            lt, rt = (mc[:, i] - mc[:, lo]) > 0, (mc[:, hi] - mc[:, j + 1]) > 0
            put(f"cover_left{k}", question.weights @ lt / total_w)
            put(f"cover_right{k}", question.weights @ rt / total_w)
            around = question.weights @ (lt | rt) / total_w
            put(f"cover_around{k}", around)
            if k == 8:
                around8 = around
        put("cover_local", around8 / max(in_sentence, 1e-6) if in_sentence else 0.0)
        # the clause: the words between the commas (brackets, dashes) around the span
        brk = np.cumsum((a["comma"] + a["open"] + a["close"] > 0) | w.strong)  # clause number of each word
        first_word = np.searchsorted(brk, brk[i], side="left")
        last_word = np.searchsorted(brk, brk[j], side="right")
        put("cover_clause", question.weights @ ((mc[:, last_word] - mc[:, first_word]) - (mc[:, j + 1] - mc[:, i]) > 0)
            / total_w)
    else:
        in_sentence = 0.0
    # length
    for name, (low, high) in (("len1", (1, 1)), ("len2", (2, 2)), ("len3", (3, 3)), ("len4_5", (4, 5)),
                              ("len6_8", (6, 8)), ("len9_", (9, 99))):
        put(name, (n >= low) & (n <= high))
    put("commas", inside("comma"))
    if len(qpos):  # clause breaks between the span and the nearest word of the question
        brk_all = np.concatenate([[0.0], np.cumsum((a["comma"] + a["open"] + a["close"] > 0) | w.strong)])
        near = np.where(left <= right, np.maximum(i - left, 0), np.minimum(j + right, t - 1)).astype(np.int64)
        put("clause_breaks", np.minimum(np.abs(brk_all[near + 1] - np.where(left <= right, brk_all[i + 1],
                                                                              brk_all[j + 1])), 3))
    put("coordination", count("coord") > 0)
    put("stop_share", count("stop") / n)
    # position and edges
    put("rel_start", i / t)
    put("rel_end", (j + 1) / t)
    put("at_start", i == 0)
    put("at_end", j == t - 1)
    nxt = np.minimum(j + 1, t - 1)
    put("punct_before", (i == 0) | (a["comma"][i] + a["open"][i] > 0))
    put("punct_after", (j == t - 1) | (a["comma"][nxt] + a["close"][nxt] + w.strong[nxt] > 0))
    put("next_stop", (j < t - 1) & (a["stop"][nxt] > 0))
    put("in_brackets", a["open"][i] * (j < t - 1) * a["close"][nxt])
    rows = np.arange(len(i))
    for prefix, words_at in (("first=", i), ("prev=", i - 1)):
        cols = np.array([_COL.get(prefix + word.rstrip("'’"), -1) for word in w.lower] + [-1])[words_at]
        x[rows[cols >= 0], cols[cols >= 0]] = 1.0  # words_at == -1 (no previous word) reads the last, -1
    # the sentence
    put("share", sent.share)
    put("best_sentence", float(s_ix == 0))
    put("sentence_coverage", in_sentence)
    return x


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
    col = _COL
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
           "FITS",
           "load_model", "default_model", "analyse_question", "candidates", "probabilities", "confidence_features",
           "find_span"]
