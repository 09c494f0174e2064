"""Answering: turn retrieved passages into an :class:`Answer` whose claims cite their excerpts.

This module holds what every answerer shares: the request it receives, the citation of a
passage, the abstention in the question's language, and :func:`make_answerer`, which picks a
backend by :class:`AnswerMode`. The backends live one per module: :mod:`rag.extractive` (the
default, offline) and :mod:`rag.llm` (any OpenAI-compatible endpoint, falling back to the
extractive answer when the endpoint fails).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Protocol

from .config import Config
from .questions import Turn
from .schema import Answer, Citation, Hit

if TYPE_CHECKING:
    from .extractive import TermStats


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


def default_mode(config: Config) -> AnswerMode:
    """LLM when an endpoint and a model are configured, else extractive."""
    return AnswerMode.LLM if config.llm_base_url and config.llm_model else AnswerMode.EXTRACTIVE


def parse_mode(mode: AnswerMode | str | None, config: Config) -> AnswerMode:
    """The answer mode asked for (``None``: the configured default).

    Raises
    ------
    ValueError
        For an unknown mode name (the message lists the valid ones).
    """
    if mode is None or mode == "":
        return default_mode(config)
    try:
        return AnswerMode(str(getattr(mode, "value", mode)).lower())
    except ValueError:
        valid = ", ".join(m.value for m in AnswerMode)
        raise ValueError(f"answer mode {mode!r} is not one of: {valid}") from None


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
    """

    question: str
    hits: list[Hit]
    lang: str
    query: str = ""
    history: list[Turn] = field(default_factory=list)
    stats: "TermStats | None" = None

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


def make_answerer(config: Config, mode: AnswerMode | str | None = None) -> Answerer:
    """The answerer for ``mode`` (default: :func:`default_mode`).

    The LLM answerer needs ``llm_base_url`` and ``llm_model``; without them it is an error
    naming the settings to give.
    """
    from .extractive import ExtractiveAnswerer

    chosen = parse_mode(mode, config)
    extractive = ExtractiveAnswerer(config)
    if chosen is AnswerMode.EXTRACTIVE:
        return extractive
    if not (config.llm_base_url and config.llm_model):
        raise ValueError("answer mode 'llm' needs llm_base_url and llm_model "
                         "(rag.toml or RAG_LLM_BASE_URL / RAG_LLM_MODEL)")
    from .llm import LLMAnswerer

    return LLMAnswerer(config, fallback=extractive)
