"""What every answerer shares: the request it gets, the citation of a passage, the abstention.

An answerer turns a :class:`Request` (the question and its retrieved passages) into an
:class:`~rag.schema.Answer` whose claims cite their excerpts with ``[n]`` markers. The backends
live one per module (:mod:`.extractive`, :mod:`.llm`), :mod:`.fallback` wraps one in another, and
:mod:`.factory` picks them by :class:`AnswerMode`; this module imports none of them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol, Sequence

import numpy as np

from ..errors import RagError
from ..schema import Answer, Citation, Hit
from ..search.stats import TermStats
from ..text.questions import Turn

NO_ANSWER = {
    "fr": "Je ne trouve pas la réponse dans les articles indexés.",
    "en": "I could not find the answer in the indexed articles.",
}
NO_QUESTION = {
    "fr": "Posez une question sur les articles indexés.",
    "en": "Ask a question about the indexed articles.",
}


class AnswerMode(str, enum.Enum):
    """How answers are written."""

    EXTRACTIVE = "extractive"  # sentences quoted from the passages (offline, the default)
    LLM = "llm"                # written by a language model behind an OpenAI-compatible endpoint


@dataclass
class Request:
    """What an answerer gets: the question, the passages and the context.

    Attributes
    ----------
    question : str
        The question as the user asked it.
    hits : list of Hit
        Retrieved passages, best first.
    lang : str
        The question's language (messages are written in it).
    query : str
        The question completed from the chat history (what retrieval used).
    history : list of (question, answer)
        Earlier turns of the chat, oldest first.
    stats : TermStats, optional
        Term statistics of the index (inverse document frequencies).
    similarity : callable, optional
        ``similarity(texts)`` gives the cosine of the query with each text in the index's
        embedding space (query and passage prompts): a meaning match that works across languages,
        paid for by encoding ``texts``. None where no model is at hand.
    model : str
        The index's embedding model (whose cosines ``similarity`` gives).
    """

    question: str
    hits: list[Hit]
    lang: str
    query: str = ""
    history: list[Turn] = field(default_factory=list)
    stats: TermStats | None = None
    similarity: Callable[[Sequence[str]], np.ndarray] | None = None
    model: str = ""

    def __post_init__(self) -> None:
        self.query = self.query or self.question


class Answerer(Protocol):
    """A backend that answers a :class:`Request`."""

    mode: AnswerMode

    def answer(self, request: Request) -> Answer:
        """The complete answer."""
        ...

    def stream(self, request: Request) -> Iterator[Answer]:
        """Partial answers whose text grows; the last one is complete."""
        ...


def message(table: dict[str, str], lang: str) -> str:
    """The message of ``table`` in ``lang`` (English for a language it lacks)."""
    return table.get(lang, table["en"])


def abstain(question: str, lang: str, mode: str = AnswerMode.EXTRACTIVE.value, notice: str = "") -> Answer:
    """The answer that says the articles do not hold the answer, in the question's language."""
    table = NO_ANSWER if question.strip() else NO_QUESTION
    return Answer(question, message(table, lang), True, [], lang=lang, mode=mode, notice=notice)


def citation_for(n: int, hit: Hit, sentence: tuple[int, int] | None = None) -> Citation:
    """The citation ``[n]`` of a retrieved passage.

    Parameters
    ----------
    n : int
        Marker number.
    hit : Hit
        The passage; its text is the excerpt, its offsets the excerpt's.
    sentence : (start, end), optional
        Offsets of the supporting sentence in the document text.
    """
    s_start, s_end = sentence if sentence else (None, None)
    return Citation(n=n, doc_id=hit.doc_id, source=hit.source, title=hit.title, chunk_id=hit.chunk_id,
                    excerpt=hit.text, start=hit.start, end=hit.end, score=hit.score,
                    sentence_start=s_start, sentence_end=s_end, date=hit.date, date_source=hit.date_source,
                    url=hit.url, author=hit.author)


class AnswerFailure(RagError):
    """An answerer could not answer (an endpoint down, a reply unusable); :meth:`notice` tells the user why."""

    def notice(self, lang: str) -> str:
        """The visible notice, in ``lang``."""
        return str(self)
