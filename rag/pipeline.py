"""The question-answering pipeline: a retriever and an answerer behind one ``ask`` call."""

from __future__ import annotations

import os
import time
from typing import Iterator, Sequence

from .answering import passages_answer
from .config import Config, load_config
from .retrieval import Retriever
from .schema import Answer
from .text import detect_language

Turn = tuple[str, str]  # (question, answer text) of an earlier exchange in a chat


class RAG:
    """Ask questions of an index folder.

    Parameters
    ----------
    config : Config, optional
        Settings (default: :func:`rag.config.load_config`).
    index_dir : path-like, optional
        Overrides ``config.index_dir``.

    Examples
    --------
    >>> rag = RAG(index_dir="index")                                   # doctest: +SKIP
    >>> rag.ask("Qui est le ministre iranien des Affaires étrangères ?").answer  # doctest: +SKIP
    """

    def __init__(self, config: Config | None = None, index_dir: str | os.PathLike | None = None):
        self.config = config or load_config()
        self.retriever = Retriever(self.config, index_dir)

    def ask(self, question: str, k: int | None = None, docs: Sequence[str] | None = None,
            history: Sequence[Turn] | None = None, mode: str | None = None) -> Answer:
        """Answer one question with cited passages.

        Parameters
        ----------
        question : str
            The question.
        k : int, optional
            Passages to retrieve (default ``config.top_k``).
        docs : sequence of str, optional
            Restrict to these documents (ids, sources, folder prefixes or titles).
        history : sequence of (question, answer), optional
            Earlier turns of a chat, oldest first, for follow-up questions.
        mode : str, optional
            Answer mode (``"extractive"`` or ``"llm"``); default from the configuration.

        Returns
        -------
        Answer
        """
        final = None
        for final in self.ask_stream(question, k, docs, history, mode):
            pass
        return final

    def ask_stream(self, question: str, k: int | None = None, docs: Sequence[str] | None = None,
                   history: Sequence[Turn] | None = None, mode: str | None = None) -> Iterator[Answer]:
        """Like :meth:`ask`, yielding partial answers as they grow; the last one is complete."""
        t0 = time.perf_counter()
        lang = detect_language(question, self.config.default_lang)
        hits = self.retriever.search(question, k or self.config.top_k, docs=docs, lang=lang) if question.strip() else []
        answer = passages_answer(question, hits, lang)
        answer.latency_ms = (time.perf_counter() - t0) * 1000
        yield answer
