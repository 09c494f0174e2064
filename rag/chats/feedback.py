"""Rated turns as a Q&A set ``rag eval`` reads: the users' own questions become the evaluation set."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from ..schema import CITATION_MARKER
from .store import Conversation, Rating, Turn


class FeedbackSets(NamedTuple):
    """The rated turns split for ``rag eval``: ``qa`` lines (JSONL contract) and ``review`` lines."""

    qa: list[dict[str, Any]]
    review: list[dict[str, Any]]


def gold_answers(turn: Turn) -> list[str]:
    """Gold answers of an approved turn: its short answer, else each cited sentence of its text.

    An approved abstention has none (the question becomes an unanswerable one).
    """
    if turn.abstained:
        return []
    if turn.short and str(turn.short.get("text", "")).strip():
        return [str(turn.short["text"]).strip()]
    out: list[str] = []
    pos = 0
    for m in CITATION_MARKER.finditer(turn.answer):
        piece = " ".join(turn.answer[pos:m.start()].split()).strip(" .;,")
        if piece:
            out.append(piece)
        pos = m.end()
    tail = " ".join(turn.answer[pos:].split()).strip(" .;,")
    if tail and not out:
        out.append(tail)
    return out


def gold_source(turn: Turn) -> str:
    """The source of the document the approved answer rests on: the short answer's citation, else the first cited."""
    by_n = {c.get("n"): c for c in turn.citations}
    wanted = turn.short.get("n") if turn.short else None
    if wanted not in by_n:
        m = CITATION_MARKER.search(turn.answer)
        wanted = int(re.findall(r"\d+", m.group(1))[0]) if m else (turn.citations[0]["n"] if turn.citations else None)
    cited = by_n.get(wanted)
    return str(cited.get("source") or "") if cited else ""


def feedback_sets(conversations: Iterable[Conversation]) -> FeedbackSets:
    """Rated turns as a Q&A set and a review list.

    A thumbs-up gives ``{"id", "question", "answers": gold_answers, "doc": gold_source}``; a
    thumbs-down marked "not in the articles" gives ``answers: []``; any other thumbs-down goes to
    ``review`` with the answer, the comment and the sources. A question asked again (same words)
    keeps only its latest rating.
    """
    latest: dict[str, tuple[str, dict[str, Any]]] = {}
    for conv in conversations:
        for turn in conv.turns:
            fb = turn.feedback
            if fb is None:
                continue
            ident = f"{conv.id}-{turn.number}"
            if fb.rating is Rating.UP or fb.not_in_articles:
                answers = gold_answers(turn) if fb.rating is Rating.UP else []
                line: dict[str, Any] = {"id": ident, "question": turn.question, "answers": answers}
                doc = gold_source(turn) if answers else ""
                if doc:
                    line["doc"] = doc
                kind = "qa"
            else:
                line = {"id": ident, "question": turn.question, "answer": turn.answer, "comment": fb.comment,
                        "sources": [{"n": c.get("n"), "title": c.get("title"), "source": c.get("source"),
                                     "excerpt": c.get("excerpt")} for c in turn.citations],
                        "conversation": conv.id, "turn": turn.number, "user": conv.user, "rated": fb.updated}
                kind = "review"
            key = " ".join(turn.question.casefold().split())
            if key not in latest or latest[key][1].get("_rated", "") <= fb.updated:
                latest[key] = (kind, {**line, "_rated": fb.updated})
    qa = [{k: v for k, v in line.items() if k != "_rated"} for kind, line in latest.values() if kind == "qa"]
    review = [{k: v for k, v in line.items() if k != "_rated"} for kind, line in latest.values() if kind == "review"]
    return FeedbackSets(qa, review)


def write_jsonl(path: str | os.PathLike, lines: Iterable[dict[str, Any]]) -> int:
    """Write ``lines`` as JSONL (UTF-8) through a temporary file; returns how many."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
            n += 1
    os.replace(tmp, path)
    return n
