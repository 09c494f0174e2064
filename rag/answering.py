"""Answering: turn retrieved passages into an :class:`Answer` with ``[n]`` citations.

This first answerer quotes the best passages, each with its marker; the extractive and LLM
answerers build on the same citations.
"""

from __future__ import annotations

from typing import Sequence

from .schema import Answer, Citation, Hit

NO_ANSWER = {
    "fr": "Je ne trouve pas la réponse dans les articles indexés.",
    "en": "I could not find the answer in the indexed articles.",
}


def citation_for(n: int, hit: Hit) -> Citation:
    """The citation of a retrieved passage, numbered ``n``."""
    return Citation(n=n, doc_id=hit.doc_id, source=hit.source, title=hit.title, chunk_id=hit.chunk_id,
                    excerpt=hit.text, start=hit.start, end=hit.end, score=hit.score)


def passages_answer(question: str, hits: Sequence[Hit], lang: str) -> Answer:
    """Quote the retrieved passages with their markers; abstain when there are none."""
    if not hits:
        return Answer(question, NO_ANSWER.get(lang, NO_ANSWER["en"]), True, [], lang=lang, mode="passages")
    citations = [citation_for(i, h) for i, h in enumerate(hits, 1)]
    text = "\n\n".join(f"{c.excerpt} [{c.n}]" for c in citations)
    return Answer(question, text, False, citations, lang=lang, mode="passages")
