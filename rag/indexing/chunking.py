"""Chunking: a document's text cut into passages that fit the embedding model, with offsets.

Cuts fall, by preference, between paragraphs, then lines, then sentences (French and
English punctuation, guillemets and typographic quotes), then clauses, then words. Lengths are
counted with the embedding model's own tokenizer, so no chunk is truncated by the model.
"""

from __future__ import annotations

from typing import Callable, Sequence

from ..lazy import lazy_import
from ..schema import Chunk, Document
from ..text.tokens import TokenSpans, count_between

splitters = lazy_import("langchain_text_splitters")  # 0.4-0.6 s: only when something is chunked
SpanFunction = Callable[[Sequence[str]], "list[TokenSpans] | None"]
GROUP, GROUP_CHARS = 64, 1_000_000  # documents and characters tokenized per batch by run_all; longer ones piecewise

# Sentence ends: ., !, ?, … possibly followed by a closing quote, then white space.
SENTENCE_END = r"(?<=[.!?…])[\"'”»’)]*\s+"
SEPARATORS = [r"\n\s*\n", r"\n", SENTENCE_END, r";\s+", r":\s+", r",\s+", r"\s+", ""]


class Chunker:
    """Splits documents into :class:`Chunk` objects whose text is a slice of the document.

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
        self.spans = spans
        self._lengths: dict[str, int] = {}
        self._text, self._spans = "", None
        self._splitter = splitters.RecursiveCharacterTextSplitter(
            separators=SEPARATORS, is_separator_regex=True, keep_separator="end",
            chunk_size=chunk_tokens, chunk_overlap=chunk_overlap, length_function=self._length,
            strip_whitespace=True,
        )

    def run_all(self, docs: Sequence[Document]) -> list[list[Chunk]]:
        """Chunk many documents, tokenizing them a group at a time when the tokenizer allows it."""
        out: list[list[Chunk]] = []
        for group in _groups(docs):
            whole = [d for d in group if len(d.text) <= GROUP_CHARS]  # a giant text is measured piece by piece
            found = (self.spans([d.text for d in whole]) if self.spans and whole else None) or []
            spans = dict(zip((id(d) for d in whole), found))
            out.extend(self.run(doc, spans.get(id(doc))) for doc in group)
        return out

    def run(self, doc: Document, spans: TokenSpans | None = None) -> list[Chunk]:
        """Chunk one document; every chunk satisfies ``doc.text[c.start:c.end] == c.text``.

        ``spans``, the token spans of ``doc.text``, spare most calls to the tokenizer.
        """
        chunks: list[Chunk] = []
        self._lengths.clear()  # the splitter measures many pieces twice or more: once each is enough
        self._text, self._spans = doc.text, spans
        for piece in self._splitter.split_text(doc.text):
            for part in self._fit(piece):
                start = self._locate(doc, part, chunks[-1] if chunks else None)
                chunks.append(Chunk(f"{doc.id}-{len(chunks):04d}", doc.id, part, start,
                                    start + len(part), len(chunks)))
        return chunks

    def _length(self, text: str) -> int:
        n = self._lengths.get(text)
        if n is None:
            n = self._lengths[text] = self._measure(text)
        return n

    def _measure(self, text: str) -> int:
        """Tokens of ``text``: read off the document's spans when it falls between words, else counted."""
        if self._spans is not None:
            at = self._text.find(text)
            if at >= 0:
                n = count_between(self._spans, at, at + len(text))
                if n is not None:
                    return n
        return self.length(text)

    @staticmethod
    def _locate(doc: Document, part: str, prev: Chunk | None) -> int:
        """Offset of ``part``: after the previous chunk's start, at the latest where it ends.

        A chunk either overlaps the previous one or starts at the next non-blank character
        after it. Taking the last such occurrence keeps offsets right in repetitive text
        ("xxxx…", a repeated paragraph), where the first occurrence would step back.
        """
        text = doc.text
        lo, hi = (prev.start + 1, prev.end) if prev else (0, 0)
        while hi < len(text) and text[hi].isspace():
            hi += 1
        start = text.rfind(part, lo, hi + len(part))
        if start < 0:
            start = text.find(part, lo)
        if start < 0:  # repetitive text whose pieces overlapped more than placed so far: the last fit before
            start = text.rfind(part, 0, hi + len(part))
        if start < 0:
            raise AssertionError(f"chunk not found in {doc.source}: {part[:60]!r}")
        return start

    def _fit(self, piece: str) -> list[str]:
        """Guarantee the token limit even where the splitter could not (one giant word)."""
        if self._length(piece) <= self.chunk_tokens:
            return [piece]
        out, step = [], max(1, len(piece) // 2)
        for i in range(0, len(piece), step):
            out.extend(self._fit(piece[i:i + step]))
        return [p for p in out if p.strip()]


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
