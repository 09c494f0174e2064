"""Where the gold answer is among the span finder's candidates, and why it is not one when it is not.

Used by ``eval/fit_spans.py``: for each question whose answer's sentences hold the gold answer,
the word range of a sentence that is the gold answer (SQuAD exact match) and the candidate rules
(:func:`rag.answering.span_candidates.broken_rules`) it breaks, or that the type gate left it out.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from rag.answering import span_candidates as sc
from rag.answering import spans as sp
from rag.answering.span_words import sentence_words
from rag.evaluation.metrics import contains_answer
from rag.text.normalize import normalize_answer


def gold_range(sentences: Sequence[sp.Sentence], answers: Sequence[str],
               question: sp.Question) -> tuple[int, int, int] | None:
    """(sentence, first word, last word) of the first word range equal to a gold answer, or None."""
    for s_ix, sent in enumerate(sentences):
        w = sentence_words(sent.text, sent.lang, question)
        words = [normalize_answer(sent.text[a:b]).split() for a, b in zip(w.start.tolist(), w.end.tolist())]
        for gold in answers:
            want = normalize_answer(gold).split()
            for i in range(len(words)):
                got: list[str] = []
                for j in range(i, len(words)):
                    got += words[j]
                    if len(got) >= len(want):
                        break
                if got == want:
                    return s_ix, i, j
    return None


def reasons(record, rules: sc.Rules) -> list[str]:
    """Why the gold answer of ``record`` is not a candidate under ``rules`` ([] when it is one).

    ``"gold not in the sentences"``, ``"not a word range"`` (it starts or ends inside a word), the
    broken rules of :func:`~rag.answering.span_candidates.broken_rules`, or ``"type gate"``.
    """
    if not record.sentences or not contains_answer(" ".join(s.text for s in record.sentences), record.answers):
        return ["gold not in the sentences"]
    q = sp.analyse_question(record.question, record.lang, lambda t: record.idf.get(t, 1.0))
    found = gold_range(record.sentences, record.answers, q)
    if found is None:
        return ["not a word range"]
    s_ix, i, j = found
    sent = record.sentences[s_ix]
    w = sentence_words(sent.text, sent.lang, q)
    cum = {k: np.concatenate([[0.0], np.cumsum(v)]) for k, v in w.attrs.items()}
    broken = sc.broken_rules(w, np.array([i]), np.array([j]), cum, rules, q.asked)
    out = [name for name, v in broken.items() if v[0]]
    if out:
        return out
    cands = sc.candidates(q, record.sentences, rules)
    start, end = int(w.start[i]) + sent.start, int(w.end[j]) + sent.start
    if not ((cands.sentence == s_ix) & (cands.start == start) & (cands.end == end)).any():
        return ["type gate"]
    return []


def recall_table(records, rules: sc.Rules, halves: Sequence[str] = ("fit", "check", "seed")) -> list[dict]:
    """Per half: the share of questions whose gold answer is in the sentences, is a candidate, and why not."""
    rows = []
    for half in halves:
        recs = [r for r in records if r.half == half]
        why = [reasons(r, rules) for r in recs]
        counts = Counter(name for w in why for name in w)
        n = max(len(recs), 1)
        row = {"half": half, "questions": len(recs),
               "gold in the sentences": round(1 - counts["gold not in the sentences"] / n, 3),
               "gold a candidate": round(sum(not w for w in why) / n, 3)}
        for name in ("not a word range", "too long", "a question word", "crosses . ; : ! ?",
                     "starts on a function word", "ends on a function word", "no content word", "type gate"):
            row[name] = round(counts[name] / n, 3)
        rows.append(row)
    return rows


__all__ = ["gold_range", "reasons", "recall_table"]
