"""Chunking: a document's text cut into passages that fit the embedding model, with offsets.

Cuts fall, by preference, between paragraphs, then lines, then sentences (French and
English punctuation, guillemets and typographic quotes), then clauses, then words. Lengths are
counted with the embedding model's own tokenizer, so no chunk is truncated by the model.
"""

from __future__ import annotations

import re
from typing import Callable, Iterator, Sequence

from ..schema import Chunk, Document
from ..text.tokens import TokenSpans, count_between

SpanFunction = Callable[[Sequence[str]], "list[TokenSpans] | None"]
GROUP, GROUP_CHARS = 64, 1_000_000  # documents and characters tokenized per batch by run_all; longer ones piecewise

# Sentence ends: ., !, ?, … possibly followed by a closing quote, then white space.
SENTENCE_END = r"(?<=[.!?…])[\"'”»’)]*\s+"
SEPARATORS = [r"\n\s*\n", r"\n", SENTENCE_END, r";\s+", r":\s+", r",\s+", r"\s+", ""]


class Chunker:
    """Splits documents into :class:`Chunk` objects whose text is a slice of the document.

    The recursive split of LangChain's ``RecursiveCharacterTextSplitter`` (separators as
    regular expressions, each kept at the end of its piece, pieces merged up to the limit with
    the overlap, white space stripped), done on character offsets: every piece is a ``(start,
    end)`` span of the document's text, so a chunk's offsets come from the cut itself and never
    from searching for its text (which repeated text, a paragraph said 100 times, would fool).

    Parameters
    ----------
    length : callable
        Length of a string in model tokens (without special tokens).
    chunk_tokens : int
        Maximum chunk length in tokens.
    chunk_overlap : int
        Tokens shared by consecutive chunks.
    spans : callable, optional
        Token spans of whole texts (``Embedder.token_spans``): :meth:`run_all` then tokenizes
        each document once and reads most lengths off it (see :mod:`rag.tokens`).
    """

    def __init__(self, length: Callable[[str], int], chunk_tokens: int = 200, chunk_overlap: int = 32,
                 spans: SpanFunction | None = None):
        self.length = length
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap
        self.spans = spans
        self._separators = [re.compile(s) if s else None for s in SEPARATORS]
        self._lengths: dict[tuple[int, int], int] = {}
        self._text, self._spans = "", None

    def run_all(self, docs: Sequence[Document]) -> list[list[Chunk]]:
        """Chunk many documents, tokenizing them a group at a time when the tokenizer allows it."""
        return [self.run(doc, spans) for doc, spans in self.with_spans(docs)]

    def with_spans(self, docs: Sequence[Document]) -> Iterator[tuple[Document, TokenSpans | None]]:
        """Each document with its token spans (None: measured piece by piece), tokenized a group at a time.

        A group the tokenizer refuses (one text it cannot take) is measured piece by piece: the
        document at fault then fails alone, in :meth:`run`.
        """
        for group in _groups(docs):
            whole = [d for d in group if len(d.text) <= GROUP_CHARS]  # a giant text is measured piece by piece
            try:
                found = (self.spans([d.text for d in whole]) if self.spans and whole else None) or []
            except Exception:  # noqa: BLE001 - the tokenizer's own error for one bad text: each measured alone
                found = []
            spans = dict(zip((id(d) for d in whole), found))
            for doc in group:
                yield doc, spans.get(id(doc))

    def run(self, doc: Document, spans: TokenSpans | None = None) -> list[Chunk]:
        """Chunk one document; every chunk satisfies ``doc.text[c.start:c.end] == c.text``.

        ``spans``, the token spans of ``doc.text``, spare most calls to the tokenizer.
        """
        chunks: list[Chunk] = []
        self._lengths.clear()  # the merge measures many pieces twice or more: once each is enough
        self._text, self._spans = doc.text, spans
        try:
            for start, end in self._split(0, len(doc.text), 0):
                for s, e in self._fit(start, end):
                    chunks.append(Chunk(f"{doc.id}-{len(chunks):04d}", doc.id, doc.text[s:e], s, e, len(chunks)))
        finally:
            self._lengths.clear()
            self._text, self._spans = "", None
        return chunks

    # -- the recursive split, on spans ----------------------------------------------------------
    def _split(self, start: int, end: int, level: int) -> list[tuple[int, int]]:
        """Spans of ``text[start:end]`` under the limit, cut at the first separator (from ``level``) found in it."""
        piece = self._text[start:end]
        chosen = len(self._separators) - 1
        for i in range(level, len(self._separators)):
            pattern = self._separators[i]
            if pattern is None or pattern.search(piece):
                chosen = i
                break
        pattern = self._separators[chosen]
        deeper = chosen + 1 < len(self._separators) and pattern is not None
        out: list[tuple[int, int]] = []
        good: list[tuple[int, int]] = []
        for s, e in _cut(piece, pattern, start):
            if self._length(s, e) < self.chunk_tokens:
                good.append((s, e))
                continue
            if good:
                out.extend(self._merge(good))
                good = []
            out.extend(self._split(s, e, chosen + 1) if deeper else [(s, e)])
        if good:
            out.extend(self._merge(good))
        return out

    def _merge(self, splits: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Consecutive spans joined up to the limit, each chunk starting with the overlap of the previous one."""
        out: list[tuple[int, int]] = []
        window: list[tuple[int, int, int]] = []  # (start, end, tokens)
        total = 0
        for s, e in splits:
            n = self._length(s, e)
            if total + n > self.chunk_tokens and window:
                self._emit(out, window[0][0], window[-1][1])
                while window and (total > self.chunk_overlap or (total + n > self.chunk_tokens and total > 0)):
                    total -= window.pop(0)[2]
            window.append((s, e, n))
            total += n
        if window:
            self._emit(out, window[0][0], window[-1][1])
        return out

    def _emit(self, out: list[tuple[int, int]], start: int, end: int) -> None:
        """Add ``text[start:end]`` without its surrounding white space (nothing if blank)."""
        text = self._text
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            out.append((start, end))

    def _length(self, start: int, end: int) -> int:
        n = self._lengths.get((start, end))
        if n is None:
            n = self._lengths[(start, end)] = self._measure(start, end)
        return n

    def _measure(self, start: int, end: int) -> int:
        """Tokens of ``text[start:end]``: read off the document's spans when it falls between words, else counted."""
        if self._spans is not None:
            n = count_between(self._spans, start, end)
            if n is not None:
                return n
        return self.length(self._text[start:end])

    def _fit(self, start: int, end: int) -> list[tuple[int, int]]:
        """Guarantee the token limit even where the split could not (one giant word): halves, then halves again."""
        if self._length(start, end) <= self.chunk_tokens:
            return [(start, end)]
        out, step = [], max(1, (end - start) // 2)
        for s in range(start, end, step):
            out.extend(self._fit(s, min(s + step, end)))
        return [(s, e) for s, e in out if self._text[s:e].strip()]


def _cut(piece: str, pattern: re.Pattern | None, offset: int) -> list[tuple[int, int]]:
    """Spans (shifted by ``offset``) of ``piece`` cut after each match of ``pattern``; each character without one."""
    if pattern is None:
        return [(offset + i, offset + i + 1) for i in range(len(piece))]
    out, at = [], 0
    for m in pattern.finditer(piece):
        if m.end() > at:
            out.append((offset + at, offset + m.end()))
            at = m.end()
    if at < len(piece):
        out.append((offset + at, offset + len(piece)))
    return out


def _groups(docs: Sequence[Document]) -> list[Sequence[Document]]:
    """Consecutive runs of at most :data:`GROUP` documents and about :data:`GROUP_CHARS` characters."""
    out, start, size = [], 0, 0
    for i, doc in enumerate(docs):
        if i > start and (i - start >= GROUP or size + len(doc.text) > GROUP_CHARS):
            out.append(docs[start:i])
            start, size = i, 0
        size += len(doc.text)
    if start < len(docs):
        out.append(docs[start:])
    return out
