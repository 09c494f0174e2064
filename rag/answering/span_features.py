"""Short answers, the features of a candidate span: what describes it to the span model.

:data:`FEATURES` (groups in :data:`GROUPS`): what the question asks for crossed with the
candidate's shape (capitals, digits, a date, an amount with its unit, a name), the question's words
around it, its length, its position and edges, its sentence's share of the answerer's belief, and
with spaCy installed its place in a dependency parse (:mod:`.syntax`). :func:`sentence_features`
computes them for the candidates of one sentence (:mod:`.span_candidates`).
"""

from __future__ import annotations

import numpy as np

from ..text.questions import Asked
from ..text.sentences import dates, entities, numbers, quotes
from . import syntax
from .span_words import Question, Sentence, Words, runs, token_pairs

WINDOW = 4       # words on each side where the question's words are counted
COVER_WINDOWS = (3, 8, 20)  # words on each side where the share of the question's weight is measured
FAR = 20.0       # distance, in words, given when no word of the question is on that side

# Words whose presence at an edge of the span, or right before it, the model weighs one by one.
EDGE_WORDS = ("le", "la", "les", "l", "un", "une", "des", "du", "de", "d", "à", "au", "aux", "en", "dans", "par",
              "pour", "sur", "avec", "entre", "car", "parce", "que", "qui", "est", "a", "son", "sa", "ses", "leur",
              "environ", "plus", "the", "of", "in", "by", "as")
ASKED = tuple(Asked)
# The candidate's shape, alone (group "shape") and crossed with what the question asks for (group "type").
SHAPE = ("has_cap", "cap_share", "acronym", "has_digit", "has_number_word", "has_year", "has_month",
         "starts_det", "starts_prep", "after_prep", "date", "amount", "amount_unit", "entity", "quote", "log_len",
         "items")
# Length buckets (words), alone and crossed with what the question asks for; their bounds.
LENGTHS = ("len1", "len2", "len3", "len4_5", "len6_8", "len9_12", "len13_")
_BOUNDS = ((1, 1), (2, 2), (3, 3), (4, 5), (6, 8), (9, 12), (13, 999))
GROUPS: dict[str, tuple[str, ...]] = {
    "type": tuple(f"{a.value}*{s}" for a in ASKED for s in SHAPE),
    "shape": SHAPE + ("starts_initial", "in_entity", "holds_entity", "chunk", "det_chunk"),
    "question": ("asked_noun_before",),
    "distance": ("log_dist", "log_dist_left", "log_dist_right", "adjacent_left", "adjacent_right",
                 "question_left", "question_right", "no_question_near")
                + tuple(f"cover_{side}{k}" for k in COVER_WINDOWS for side in ("left", "right", "around"))
                + ("cover_local", "cover_clause", "clause_breaks"),
    "length": LENGTHS + ("commas", "coordination", "stop_share"),
    "type_length": tuple(f"{a.value}*{b}" for a in ASKED for b in LENGTHS + ("fits",)),
    "echo": ("echo", "echo_share", "echo_weight", "echo_first", "echo_last"),
    "position": ("rel_start", "rel_end", "at_start", "at_end", "punct_before", "punct_after",
                 "next_stop", "in_brackets"),
    "lexical": tuple(f"first={w}" for w in EDGE_WORDS) + tuple(f"prev={w}" for w in EDGE_WORDS),
    "sentence": ("share", "best_sentence", "sentence_coverage"),
    "syntax": syntax.feature_names([a.value for a in ASKED]),  # zeros without spaCy (rag.answering.syntax)
}
FEATURES: tuple[str, ...] = tuple(f for group in GROUPS.values() for f in group)
# The shape a typed question's answer has (any of these features): a name, a date, a number.
FITS = {Asked.PERSON: ("has_cap", "entity"), Asked.PLACE: ("has_cap", "entity"),
        Asked.DATE: ("date", "has_year", "has_month"), Asked.NUMBER: ("has_digit", "has_number_word")}
COL = {f: i for i, f in enumerate(FEATURES)}

SYNTAX_NAMES = {name: k for k, name in enumerate(GROUPS["syntax"])}
SYNTAX_COLS = np.array([COL[name] for name in GROUPS["syntax"]])


def sentence_features(question: Question, sent: Sentence, s_ix: int, i: np.ndarray, j: np.ndarray, cum: dict,
              w: Words) -> np.ndarray:
    """The feature rows of one sentence's candidates ``(i[k], j[k])`` (first and last word).

    Parameters
    ----------
    question : Question
        The question analysed.
    sent : Sentence
        The sentence, index ``s_ix`` among the answer's.
    i, j : numpy.ndarray
        The candidates' first and last words.
    cum : dict
        Running counts of the word classes of ``w`` (``Words.attrs``), a 0 first.
    w : Words
        The sentence's words.

    Returns
    -------
    numpy.ndarray
        (candidates, len(FEATURES)) float32; the syntax group left at 0.
    """
    a, t = w.attrs, len(w.start)
    x = np.zeros((len(i), len(FEATURES)), dtype=np.float32)
    n = (j - i + 1).astype(np.float32)

    def count(name: str) -> np.ndarray:
        return (cum[name][j + 1] - cum[name][i]).astype(np.float32)

    def put(name: str, values) -> None:
        x[:, COL[name]] = values

    def inside(name: str) -> np.ndarray:  # count over the gaps inside the span (before words i+1..j)
        return (cum[name][j + 1] - cum[name][i + 1]).astype(np.float32)

    def exact(pairs: set[tuple[int, int]]) -> np.ndarray:  # the candidate is one of these (first, last) words
        table = np.zeros((t, t), dtype=bool)
        if pairs:
            table[tuple(np.array(sorted(pairs)).T)] = True
        return table[i, j]

    ent = token_pairs(w, entities(sent.text))
    amounts = numbers(sent.text)
    flags = {"entity": exact(ent), "date": exact(token_pairs(w, dates(sent.text))),
             "quote": exact(token_pairs(w, quotes(sent.text))),
             "amount": exact(token_pairs(w, [c for c, _ in amounts])),
             "amount_unit": exact(token_pairs(w, [u for c, u in amounts if u != c]))}
    in_ent = np.zeros(len(i), bool)
    holds_ent = np.zeros(len(i), bool)
    for p, q in ent:
        in_ent |= (i >= p) & (j <= q) & ~((i == p) & (j == q))
        holds_ent |= (i <= p) & (j >= q) & ~((i == p) & (j == q))
    items = np.zeros(len(i), np.float32)  # names, dates and amounts wholly in the span
    for p, q in ent | token_pairs(w, dates(sent.text)) | token_pairs(w, [u for _, u in amounts]):
        items += (i <= p) & (j >= q)
    chunks = runs(w)
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
    put("chunk", exact(set(chunks)))
    put("det_chunk", exact({(p - 1, q) for p, q in chunks if p > 0 and a["det"][p - 1]}))
    # the question's words around the span (none is in it)
    put("asked_noun_before", has_prev * np.maximum(a["noun"][prev], (i > 1) * a["noun"][np.maximum(i - 2, 0)]))
    qpos = np.flatnonzero(a["question"])
    far = FAR
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
        put("echo_weight", question.weights @ ((mc[:, j + 1] - mc[:, i]) > 0) / total_w)
        # the clause: the words between the commas (brackets, dashes) around the span
        brk = np.cumsum((a["comma"] + a["open"] + a["close"] > 0) | w.strong)  # clause number of each word
        first_word = np.searchsorted(brk, brk[i], side="left")
        last_word = np.searchsorted(brk, brk[j], side="right")
        put("cover_clause", question.weights @ ((mc[:, last_word] - mc[:, first_word]) - (mc[:, j + 1] - mc[:, i]) > 0)
            / total_w)
    else:
        in_sentence = 0.0
    # length
    for name, (low, high) in zip(LENGTHS, _BOUNDS):
        put(name, (n >= low) & (n <= high))
        put(f"{asked}*{name}", (n >= low) & (n <= high))
    put(f"{asked}*fits", np.any([shape[name] > 0 for name in FITS.get(question.asked, ())], axis=0)
        if question.asked in FITS else 0.0)
    # the question's words in the span (candidates of rules.echo "own")
    echo = count("question")
    put("echo", echo > 0)
    put("echo_share", echo / np.maximum(nonstop, 1))
    put("echo_first", a["question"][i])
    put("echo_last", a["question"][j])
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
        cols = np.array([COL.get(prefix + word.rstrip("'’"), -1) for word in w.lower] + [-1])[words_at]
        x[rows[cols >= 0], cols[cols >= 0]] = 1.0  # words_at == -1 (no previous word) reads the last, -1
    # the sentence
    put("share", sent.share)
    put("best_sentence", float(s_ix == 0))
    put("sentence_coverage", in_sentence)
    return x


__all__ = ["FEATURES", "GROUPS", "FITS", "ASKED", "SHAPE", "EDGE_WORDS", "COL", "sentence_features"]
