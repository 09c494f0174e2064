"""The data that flows between stages: Document, Chunk, Hit, Citation, Short, Answer."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

# A citation marker in an answer's text: [2], or several passages at once, [1, 3]
CITATION_MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


def strip_markers(text: str) -> str:
    """``text`` without its citation markers."""
    return CITATION_MARKER.sub("", text)


@dataclass
class Document:
    """One article, with its extracted text.

    ``key`` identifies the document across builds (resolved path, plus ``#record`` for
    JSONL and SQuAD files, or the address of a web page); ``source`` is what users see (a path
    relative to the current folder where possible, or the address). ``date`` is a day
    (``YYYY-MM-DD``) and ``date_source`` where it comes from (:class:`rag.dates.DateSource`:
    ``published``, ``document``, ``server``, ``file``, ``fetched``); ``url`` is the article's
    http(s) address when known (a fetched page's final address after redirects).
    """

    id: str
    key: str
    source: str
    title: str
    text: str
    lang: str
    sha256: str
    meta: dict[str, Any] = field(default_factory=dict)
    date: str = ""
    date_source: str = ""
    url: str = ""
    author: str = ""


@dataclass
class Chunk:
    """A passage of a document: ``document.text[start:end] == text``."""

    id: str
    doc_id: str
    text: str
    start: int
    end: int
    ordinal: int = 0


@dataclass
class Hit:
    """A retrieved chunk with its scores (``score`` is the fused one, in [0, 1])."""

    chunk_id: str
    doc_id: str
    source: str
    title: str
    text: str
    start: int
    end: int
    lang: str
    score: float
    bm25: float = 0.0
    dense: float = 0.0
    date: str = ""
    date_source: str = ""
    url: str = ""
    author: str = ""


@dataclass
class Citation:
    """The excerpt behind a marker ``[n]`` of an answer.

    ``start``/``end`` are offsets of the excerpt in the document text; ``sentence_start`` and
    ``sentence_end`` (when set) locate the supporting sentence there, for highlighting.
    ``date``, ``date_source``, ``url`` and ``author`` are those of the document (see
    :class:`Document`; empty when unknown).
    """

    n: int
    doc_id: str
    source: str
    title: str
    chunk_id: str
    excerpt: str
    start: int
    end: int
    score: float
    sentence_start: int | None = None
    sentence_end: int | None = None
    date: str = ""
    date_source: str = ""
    url: str = ""
    author: str = ""


@dataclass
class Short:
    """The exact words of a cited passage that answer: ``document.text[start:end] == text``.

    ``n`` is the citation the words are under; ``score`` the span finder's confidence, in [0, 1].
    """

    text: str
    n: int
    start: int
    end: int
    score: float = 1.0


@dataclass
class Answer:
    """An answer with ``[n]`` markers, its citations and whether it abstained."""

    question: str
    answer: str
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    short: Short | None = None
    latency_ms: float = 0.0
    lang: str = ""
    mode: str = "extractive"
    notice: str = ""

    def to_json(self) -> dict[str, Any]:
        """The Answer JSON of the design (extra keys: ``lang``, ``mode``, ``notice``)."""
        out = asdict(self)
        out["latency_ms"] = round(self.latency_ms, 1)
        for c in out["citations"]:
            c["score"] = round(float(c["score"]), 4)
        return out
