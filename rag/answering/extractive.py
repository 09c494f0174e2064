"""Extractive answers: the sentences of the passages that answer the question, each cited.

Every sentence of the retrieved passages is scored by a linear model over lexical and
retrieval evidence, with no model call (a few milliseconds on top of retrieval):

- how much of the question's content it holds, each term weighted by its inverse document
  frequency in the index (exact stems, then 5-letter prefixes, which also bridge English
  questions and French articles: *minister* / *ministre*; across languages the written words'
  prefixes too, *envoy* / *envoyé*), alone and within a 12-term window, and the question's term
  pairs it repeats;
- whether it holds what the question asks for (a name for *qui*, a date for *quand*, a number
  for *combien*, a place for *où*) beyond the words of the question itself;
- its passage's retrieval scores (fused, BM25, dense) and how much of the question the whole
  passage and its title hold.

A softmax over all sentences gives each one a share of belief; a document's share is the sum
of its sentences'. The answer quotes the best sentence, plus the next best of the same
document when it has at least ``SECOND_RATIO`` of the best one's share, each with its marker.
The *evidence* of an answer combines the winning document's share (is one source clearly
best?) and the best sentence's raw score (does it hold the question at all?); below
``abstain_threshold`` the answerer abstains. Weights and threshold were fitted on half of
PIAF-dev and checked on the other half (README, "Answers").

Across languages (an English question, French passages among the first ``Crosslingual.hits``),
words say little, so meaning decides: the sentences of those passages get the cosine of the
question with them, from the index's own model (:attr:`Request.similarity`), weighted
``Crosslingual.weight`` in their score, and the answer is given when the chosen sentence's cosine
reaches ``Crosslingual.gate``. These were fitted for one model (``Crosslingual.model``, by
``eval/fit_crosslingual.py``); an index with another model keeps the lexical evidence alone.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import numpy as np

from ..config import Config
from ..errors import BadInput
from ..schema import Answer, Citation, Hit, Short
from ..search.stats import TermStats
from ..text.analysis import PREFIX, QUESTION_WORDS, prefixes_of, terms_of, word_terms
from ..text.normalize import normalize_answer
from ..text.questions import QuestionType, asked_noun, question_type, strip_meta
from ..text.sentences import Span, has_date, has_number, names, places, split_sentences
from . import spans
from .base import AnswerMode, Request, abstain, citation_for

WINDOWS = (12, 6)  # terms in the proximity windows

FEATURES = ("coverage", "fuzzy", "chunk_coverage", "title_coverage", "fused", "bm25", "dense", "first",
            "type_match", "type_missing", "novelty", "short", "prev_coverage", "window", "log_len", "bigram",
            "best_in_hit", "window6")
EVIDENCE_FEATURES = ("doc_share", "coverage", "window", "window6", "bigram", "type_missing", "type_match")
SUPPORT_FEATURES = EVIDENCE_FEATURES[1:]
WEIGHTS_FILE = Path(__file__).with_name("extractive_weights.json")


class Crosslingual(NamedTuple):
    """How sentences are weighed when the question and the first passages differ in language."""

    model: str     # the embedding model these values were fitted for
    weight: float  # weight of the question-sentence cosine in a sentence's score
    hits: int      # the first passages whose sentences are compared by meaning
    gate: float    # lowest cosine of the chosen sentence at which the answer is given


def load_weights(path: Path = WEIGHTS_FILE) -> dict[str, np.ndarray | float | Crosslingual]:
    """The fitted weights (written by ``eval/fit_answerer.py``), checked against the feature lists.

    ``sentence``: weights of :data:`FEATURES` (a softmax over a question's sentences);
    ``evidence``: weights of :data:`EVIDENCE_FEATURES`, then the bias (a logistic model);
    ``support``: weights of :data:`SUPPORT_FEATURES`, then the bias; ``support_min``: its floor;
    ``crosslingual``: the :class:`Crosslingual` values.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    for key, wanted in (("sentence", FEATURES), ("evidence", EVIDENCE_FEATURES), ("support", SUPPORT_FEATURES)):
        if tuple(data[key]["features"]) != wanted:
            raise BadInput(f"{path}: {key} weights are for features {data[key]['features']}, "
                           f"this version computes {list(wanted)}; refit with eval/fit_answerer.py")
    return {"sentence": np.array(data["sentence"]["weights"], dtype=np.float32),
            "evidence": np.array(data["evidence"]["weights"] + [data["evidence"]["bias"]], dtype=np.float32),
            "support": np.array(data["support"]["weights"] + [data["support"]["bias"]], dtype=np.float32),
            "support_min": float(data["support_min"]),
            "crosslingual": Crosslingual(**{f: data["crosslingual"][f] for f in Crosslingual._fields})}


# Fitted on the questions of the even-numbered PIAF-dev articles, checked on the odd-numbered ones
# (README, "Answers"). Support is the chance that the best sentence itself holds the answer, from its
# own features only: doc share is relative (one source beats the others), support is absolute, so a
# small corpus, where one document always wins, still abstains on questions its sentences do not hold.
_FITTED = load_weights()
WEIGHTS: np.ndarray = _FITTED["sentence"]
EVIDENCE: np.ndarray = _FITTED["evidence"]
SUPPORT: np.ndarray = _FITTED["support"]
SUPPORT_MIN: float = _FITTED["support_min"]
CROSSLINGUAL: Crosslingual = _FITTED["crosslingual"]
SECOND_RATIO = 0.3
CONTEXT_WEIGHT = 0.5  # weight of the words a follow-up question borrows from the chat


@dataclass
class Query:
    """The question as the scorer sees it."""

    weights: dict[str, float]           # content term -> inverse document frequency
    kind: QuestionType                  # what the question asks for
    bigrams: frozenset[tuple[str, str]]  # consecutive content terms
    words: frozenset[str]               # normalised words, to tell new names from echoed ones
    lang: str = "fr"
    written: dict[str, frozenset[str]] = field(default_factory=dict)  # term -> prefixes of its written words
    total: float = 1.0

    def __post_init__(self) -> None:
        self.total = sum(self.weights.values()) or 1.0
        self._long = [(t, t[:PREFIX], w) for t, w in self.weights.items() if len(t) >= PREFIX]

    def coverage(self, terms: set[str] | frozenset[str], lang: str,
                 written: frozenset[str] = frozenset()) -> tuple[float, float]:
        """Share of the question's weight held by ``terms`` (of a text in ``lang``), and the part by prefix.

        A term matched by its prefix only counts half. Across languages, where a prefix (a
        cognate) is the only match there is, it counts fully, and the prefixes of the written
        words (``written``, see :func:`prefixes_of`) match too.
        """
        exact = sum(w for t, w in self.weights.items() if t in terms)
        prefixes = {t[:PREFIX] for t in terms if len(t) >= PREFIX}
        if lang == self.lang:
            fuzzy = sum(w for t, p, w in self._long if p in prefixes and t not in terms) / self.total
            return exact / self.total + 0.5 * fuzzy, fuzzy
        prefixes.update(written)
        fuzzy = sum(w for t, w in self.weights.items() if t not in terms and self._cognate(t, prefixes)) / self.total
        return exact / self.total + fuzzy, fuzzy

    def _cognate(self, term: str, prefixes: set[str]) -> bool:
        """Whether ``term`` or a written word it comes from starts like one of ``prefixes``."""
        if len(term) >= PREFIX and term[:PREFIX] in prefixes:
            return True
        return not self.written.get(term, frozenset()).isdisjoint(prefixes)


def make_query(question: str, lang: str, stats: TermStats, context: str = "") -> Query:
    """Analyse ``question`` (in its language ``lang``) for scoring sentences.

    Question words (*combien*, *quand*, *who*, *did*...: :data:`rag.text.analysis.QUESTION_WORDS`) are
    left out: they say what is asked, which the question type captures. Terms of an English
    question meet French ones by prefix, of their stems or of their written words.
    ``context`` (words a follow-up borrows from the chat) counts ``CONTEXT_WEIGHT`` as much.
    """
    skip = {t for words in QUESTION_WORDS.values() for w in words for lg in ("fr", "en") for t in word_terms(w, lg)}
    skip.update(word_terms(asked_noun(question, lang), lang))
    text = strip_meta(question, lang)
    pairs = [(t, p) for t, p in zip(terms_of(text, lang), prefixes_of(text, lang)) if t not in skip]
    seq = [t for t, _ in pairs]
    written: dict[str, frozenset[str]] = {}
    for t, p in pairs:
        written[t] = written.get(t, frozenset()) | p
    weights = {t: stats.idf(t) for t in dict.fromkeys(seq)}
    for t in terms_of(context, lang):
        if t not in skip and t not in weights:
            weights[t] = CONTEXT_WEIGHT * stats.idf(t)
    bigrams = frozenset(zip(seq, seq[1:]))
    return Query(weights, question_type(question, lang), bigrams, frozenset(normalize_answer(question).split()), lang,
                 written)


@dataclass
class Candidate:
    """A sentence of a retrieved passage, with its features and scores."""

    hit: int            # index of its passage in the hits
    span: Span          # offsets in the document text
    text: str
    features: np.ndarray
    score: float = 0.0  # linear score (logit)
    share: float = 0.0  # softmax share among the question's sentences
    meaning: float | None = None  # cosine with the question, where compared by meaning (across languages)


def _window(query: Query, seq: list[str], lang: str, size: int, written: Sequence[frozenset[str]] = ()) -> float:
    """Best coverage of the question within ``size`` consecutive terms (proximity).

    ``written``: the prefixes of each term's written word (:func:`prefixes_of`), across languages.
    """
    def cover(i: int) -> float:
        return query.coverage(set(seq[i:i + size]), lang, frozenset().union(*written[i:i + size]))[0]

    if len(seq) <= size:
        return cover(0)
    step = max(1, size // 4)
    return max(cover(i) for i in range(0, len(seq) - size + step, step))


def _bigrams(query: Query, seq: list[str]) -> float:
    """Share of the question's consecutive term pairs found in ``seq`` (one word may come between)."""
    if not query.bigrams:
        return 0.0
    pairs = {(seq[i], seq[j]) for i in range(len(seq)) for j in range(i + 1, min(i + 3, len(seq)))}
    return len(query.bigrams & pairs) / len(query.bigrams)


def _type_features(query: Query, sentence: str) -> tuple[float, float]:
    """(holds what the question asks for, lacks it); (0, 0) for questions of no particular type."""
    kind = query.kind
    if kind is QuestionType.OTHER:
        return 0.0, 0.0
    if kind is QuestionType.DATE:
        found = has_date(sentence)
    elif kind is QuestionType.NUMBER:
        found = has_number(sentence)
    else:
        found_names = places(sentence) if kind is QuestionType.PLACE else names(sentence)
        found = any((n := normalize_answer(x)) and n not in query.words for x in found_names)
    return (1.0, 0.0) if found else (0.0, 1.0)


def _written(text: str, lang: str, cross: bool) -> frozenset[str]:
    """The written words' prefixes of ``text`` when compared across languages, else none."""
    return frozenset().union(*prefixes_of(text, lang)) if cross else frozenset()


def sentence_candidates(query: Query, hits: Sequence[Hit]) -> list[Candidate]:
    """The sentences of ``hits`` that could answer, with their features (see :data:`FEATURES`).

    A sentence whose every content word is in the question (a heading, an echo of the question)
    adds nothing, so it is left out.
    """
    out: list[Candidate] = []
    own = set(query.weights)
    for i, hit in enumerate(hits):
        cross = hit.lang != query.lang  # written words are compared across languages only
        chunk = hit.title + "\n" + hit.text
        chunk_cov = query.coverage(set(terms_of(chunk, hit.lang)), hit.lang, _written(chunk, hit.lang, cross))[0]
        title_cov = query.coverage(set(terms_of(hit.title, hit.lang)), hit.lang,
                                   _written(hit.title, hit.lang, cross))[0]
        prev, mine = 0.0, []
        for span in split_sentences(hit.text):
            text = hit.text[span.start:span.end]
            seq, pre = terms_of(text, hit.lang), (prefixes_of(text, hit.lang) if cross else [])
            terms = set(seq)
            cov, fuzzy = query.coverage(terms, hit.lang, frozenset().union(*pre))
            match, missing = _type_features(query, text)
            feats = [cov, fuzzy, chunk_cov, title_cov,
                     hit.score, hit.bm25, hit.dense, float(i == 0), match, missing,
                     len(terms - own) / len(terms) if terms else 0.0, float(len(text.split()) < 5), prev,
                     _window(query, seq, hit.lang, WINDOWS[0], pre), math.log1p(len(seq)), _bigrams(query, seq), 0.0,
                     _window(query, seq, hit.lang, WINDOWS[1], pre)]
            if terms - own:
                mine.append(Candidate(i, Span(hit.start + span.start, hit.start + span.end), text,
                                      np.array(feats, dtype=np.float32)))
            prev = cov
        best = max((c.features[13] for c in mine), default=0.0)
        for c in mine:
            c.features[16] = best
        out.extend(mine)
    return out


def score(candidates: list[Candidate], weights: np.ndarray = WEIGHTS) -> None:
    """Set each candidate's linear score and its softmax share among ``candidates``."""
    if not candidates:
        return
    logits = np.stack([c.features for c in candidates]) @ weights
    for c, z in zip(candidates, logits.tolist()):
        c.score = z
    _share(candidates)


def _share(candidates: list[Candidate]) -> None:
    """Set each candidate's softmax share of the scores."""
    logits = np.array([c.score for c in candidates])
    shares = np.exp(logits - logits.max())
    shares /= shares.sum()
    for c, s in zip(candidates, shares.tolist()):
        c.share = s


def weigh_meaning(candidates: list[Candidate], request: Request, lang: str,
                  params: Crosslingual = CROSSLINGUAL) -> bool:
    """Across languages, add the question-sentence cosine to the scores of the first passages' sentences.

    Applies when one of the first ``params.hits`` passages is in another language than the
    question (``lang``), the request can compare meanings and its model is ``params.model``: the
    sentences of those passages (in either language, so that they compete alike) get their cosine
    in :attr:`Candidate.meaning` and ``params.weight`` times it in their score; shares are
    recomputed. With a weight of 0 the scores stay as they are, and only the best sentence's
    cosine is needed (for :func:`choose`'s gate): it alone is encoded, when it is one of those
    passages'. Returns whether it applied.
    """
    first = request.hits[:params.hits]
    if (request.similarity is None or request.model != params.model or not candidates
            or all(h.lang == lang for h in first)):
        return False
    near = [c for c in candidates if c.hit < len(first)]
    if not params.weight:
        best = max(candidates, key=lambda c: c.score)
        near = [best] if best.hit < len(first) else []
    if not near:
        return False
    for c, cos in zip(near, request.similarity([c.text for c in near]).tolist()):
        c.meaning = float(cos)
        c.score += params.weight * c.meaning
    if params.weight:
        _share(candidates)
    return True


def evidence_features(features: np.ndarray, doc_share: float) -> np.ndarray:
    """The :data:`EVIDENCE_FEATURES` of an answer resting on a sentence with ``features``
    (:data:`FEATURES`), its document holding ``doc_share``."""
    f = features
    return np.array([doc_share, f[0], f[13], f[17], f[15], f[9], f[8]], dtype=np.float32)


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


def evidence(x: np.ndarray, params: np.ndarray = EVIDENCE, support: np.ndarray = SUPPORT,
             support_min: float = SUPPORT_MIN) -> float:
    """How far to trust an answer with evidence features ``x`` (:func:`evidence_features`), in [0, 1].

    0 when the sentence's own support (``x`` without the document's share) is below
    ``support_min``, whatever its document's share.
    """
    if _sigmoid(float(x[1:] @ support[:-1] + support[-1])) < support_min:
        return 0.0
    return _sigmoid(float(x @ params[:-1] + params[-1]))


@dataclass
class Choice:
    """The sentences an answer quotes and the evidence behind them."""

    sentences: list[Candidate]
    evidence: float


def choose(candidates: list[Candidate], hits: Sequence[Hit], second_ratio: float = SECOND_RATIO,
           gate: float = CROSSLINGUAL.gate) -> Choice | None:
    """The best sentence and a second one of the same document.

    The second is the sentence right after the best one when the best lacks what the question asks
    for and that one holds it (*« … le pont de Lyon. Il mesure 180 mètres. »*); otherwise the next
    best sentence of the document, when its share is at least ``second_ratio`` of the best one's.
    The evidence of a sentence compared by meaning (:func:`weigh_meaning`) is 1 when its cosine
    reaches ``gate``, else 0.
    """
    if not candidates:
        return None
    ranked = sorted(candidates, key=lambda c: -c.score)
    best = ranked[0]
    doc = hits[best.hit].doc_id
    doc_share = sum(c.share for c in candidates if hits[c.hit].doc_id == doc)
    chosen = [best]
    following = next((c for c in candidates if c.hit == best.hit and c.span.start >= best.span.end), None)
    if best.features[9] and following is not None and following.features[8]:  # type_missing, then type_match
        chosen.append(following)
    else:
        seen = normalize_answer(best.text)
        for c in ranked[1:]:
            if hits[c.hit].doc_id == doc and normalize_answer(c.text) != seen:
                if c.share >= second_ratio * best.share:
                    chosen.append(c)
                break
    if best.meaning is not None:
        return Choice(chosen, float(best.meaning >= gate))
    return Choice(chosen, evidence(evidence_features(best.features, doc_share)))


def compose(question: str, lang: str, hits: Sequence[Hit], chosen: list[Candidate]) -> Answer:
    """The answer text with a marker after each quoted sentence, and its citations.

    Sentences of one passage are quoted in their order there; sentences that follow each other
    share one marker, whose citation's ``sentence_start``/``sentence_end`` cover them.
    """
    if len({c.hit for c in chosen}) == 1:
        chosen = sorted(chosen, key=lambda c: c.span.start)
    groups: list[list[Candidate]] = []
    for c in chosen:
        last = groups[-1][-1] if groups else None
        if last is not None and last.hit == c.hit and not _gap(hits[c.hit], last.span, c.span).strip():
            groups[-1].append(c)
        else:
            groups.append([c])
    parts: list[str] = []
    citations: list[Citation] = []
    for n, group in enumerate(groups, 1):
        hit = hits[group[0].hit]
        parts.append(" ".join(" ".join(c.text.split()) for c in group) + f" [{n}]")
        citations.append(citation_for(n, hit, (group[0].span.start, group[-1].span.end)))
    return Answer(question, " ".join(parts), False, citations, lang=lang, mode=AnswerMode.EXTRACTIVE.value)


def _gap(hit: Hit, a: Span, b: Span) -> str:
    """The passage text between two of its sentences (``a`` before ``b``)."""
    return hit.text[a.end - hit.start:b.start - hit.start] if a.end <= b.start else "x"


def answer_sentences(request: Request, choice: Choice, answer: Answer) -> list[spans.Sentence]:
    """The sentences an answer quotes, best first, each with the citation it falls under."""
    out = []
    for c in choice.sentences:
        hit = request.hits[c.hit]
        n = next((cit.n for cit in answer.citations if cit.chunk_id == hit.chunk_id
                  and (cit.sentence_start is None or cit.sentence_start <= c.span.start < (cit.sentence_end or 0))),
                 0)
        out.append(spans.Sentence(c.text, c.span.start, n, hit.lang, float(c.share)))
    return out


def short_answer(request: Request, choice: Choice, answer: Answer,
                 model: spans.SpanModel | None = None) -> Short | None:
    """The exact words of the quoted sentences that answer (:mod:`.spans`), or None.

    None for an abstention or when no span is confident enough; ``Short.n`` is the citation the
    span's sentence is under.
    """
    if answer.abstained or not choice.sentences:
        return None
    idf = request.stats.idf if request.stats is not None else None
    pick = spans.find_span(request.question, request.lang, answer_sentences(request, choice, answer), model, idf=idf)
    if pick is None:
        return None
    return Short(pick.text, pick.n, pick.start, pick.end, round(pick.confidence, 4))


class ExtractiveAnswerer:
    """Answers by quoting the sentences of the passages that answer the question.

    Parameters
    ----------
    threshold : float
        Minimum evidence, in [0, 1], to answer rather than abstain (0 never abstains).
    span_model : SpanModel, optional
        How the short answer is found (default: the fitted weights of ``span_weights.json``, read
        at the first short answer).
    """

    mode = AnswerMode.EXTRACTIVE

    def __init__(self, threshold: float = 0.15, span_model: spans.SpanModel | None = None):
        self.threshold = threshold
        self._span_model = span_model

    @property
    def span_model(self) -> spans.SpanModel:
        """The span finder's model: the one given, else :func:`rag.answering.spans.default_model`."""
        return self._span_model or spans.default_model()

    @classmethod
    def from_config(cls, config: Config) -> "ExtractiveAnswerer":
        """The answerer with the configured ``abstain_threshold``."""
        return cls(config.abstain_threshold)

    def rank(self, request: Request, meaning: bool = True) -> list[Candidate]:
        """All sentences of the request's passages, scored (unsorted); with ``meaning``, across
        languages by meaning too (:func:`weigh_meaning`)."""
        hits = request.hits
        if not hits:
            return []
        stats = request.stats or TermStats.from_texts([h.text for h in hits], hits[0].lang)
        context = request.query[len(request.question):] if request.query.startswith(request.question) else ""
        query = make_query(request.question, request.lang, stats, context)
        if not query.weights:
            return []
        candidates = sentence_candidates(query, hits)
        score(candidates)
        if meaning:
            weigh_meaning(candidates, request, query.lang)
        return candidates

    def answer(self, request: Request) -> Answer:
        """The extractive answer with its short answer, or the abstention when the evidence is below the threshold."""
        choice = choose(self.rank(request), request.hits)
        if choice is None or choice.evidence < self.threshold:
            return abstain(request.question, request.lang)
        answer = compose(request.question, request.lang, request.hits, choice.sentences)
        answer.short = short_answer(request, choice, answer, self.span_model)
        return answer

    def stream(self, request: Request) -> Iterator[Answer]:
        """One complete answer (an extractive answer is not written word by word)."""
        yield self.answer(request)
