"""The question-answering pipeline: a retriever and an answerer behind one ``ask`` call."""

from __future__ import annotations

import functools
import os
import threading
import time
from typing import Iterator, Sequence

from .answering.base import Answerer, AnswerMode, Request, Turn, abstain
from .answering.factory import make_answerer, parse_mode
from .config import Config, load_config
from .dates import day_range
from .retrieval.retriever import Retriever
from .schema import Answer
from .text.normalize import detect_language
from .text.questions import rewrite_followup, strip_meta


class RAG:
    """Ask questions of an index.

    Parameters
    ----------
    config : Config, optional
        Settings (default: :func:`rag.config.load_config`).
    index_dir : path-like, optional
        Overrides ``config.index_dir``.
    retriever : Retriever, optional
        The retriever to use (default: one over the index folder).
    answerer : Answerer, optional
        The answerer of its mode (default: made from the configuration when a mode is first asked for).

    Examples
    --------
    >>> rag = RAG(index_dir="index")                                   # doctest: +SKIP
    >>> rag.ask("Qui est le ministre iranien des Affaires étrangères ?").answer  # doctest: +SKIP
    """

    def __init__(self, config: Config | None = None, index_dir: str | os.PathLike | None = None,
                 retriever: Retriever | None = None, answerer: Answerer | None = None):
        self.config = config or load_config()
        self.retriever = retriever or Retriever(self.config, index_dir)
        self._answerers: dict[AnswerMode, Answerer] = {answerer.mode: answerer} if answerer else {}
        self._default = answerer.mode if answerer else None
        self._lock = threading.Lock()

    def answerer(self, mode: AnswerMode | str | None = None) -> Answerer:
        """The answerer for ``mode`` (default: the one given, else the configured mode), created once.

        Raises
        ------
        BadInput
            For an unknown ``mode``, or ``"llm"`` without an endpoint configured.
        """
        chosen = parse_mode(mode or self._default, self.config)
        with self._lock:
            if chosen not in self._answerers:
                self._answerers[chosen] = make_answerer(self.config, chosen)
            return self._answerers[chosen]

    def retrieve(self, question: str, k: int | None = None, docs: Sequence[str] | None = None,
                 history: Sequence[Turn] | None = None, since: str | None = None,
                 until: str | None = None) -> Request | None:
        """The passages for ``question`` (completed from ``history``), as an answerer gets them.

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
        since, until : str or date, optional
            Only documents dated in this range (ISO days ``YYYY-MM-DD``, both included), applied
            inside retrieval. A question that says when (« depuis lundi ») is not turned into a
            range: give it here.

        Returns
        -------
        Request or None
            None for a blank question.

        Raises
        ------
        BadInput
            For a date that is not an ISO day, or ``since`` after ``until``.
        """
        since, until = day_range(since, until)  # a bad date is an error even for a blank question
        if not question.strip():
            return None
        history = list(history or [])
        lang = self.language(question, history)
        query = rewrite_followup(question, history, lang)
        searched = strip_meta(query, lang)
        hits = self.retriever.search(searched, k or self.config.top_k, docs=docs, lang=lang, since=since, until=until)
        return Request(question, hits, lang, query, history, self.retriever.term_stats(),
                       functools.partial(self.retriever.similarity, searched), self.retriever.model)

    def ask(self, question: str, k: int | None = None, docs: Sequence[str] | None = None,
            history: Sequence[Turn] | None = None, mode: str | None = None, since: str | None = None,
            until: str | None = None) -> Answer:
        """Answer one question with cited passages.

        Parameters
        ----------
        question, k, docs, history, since, until
            As for :meth:`retrieve`.
        mode : str, optional
            Answer mode (``"extractive"`` or ``"llm"``); default from the configuration.

        Returns
        -------
        Answer
            ``abstained`` is true, and the text says so in the question's language, when the
            passages do not hold the answer.
        """
        t0 = time.perf_counter()
        answerer = self.answerer(mode)
        request = self.retrieve(question, k, docs, history, since, until)
        answer = (answerer.answer(request) if request
                  else abstain(question, self.language(question, history), mode=answerer.mode.value))
        answer.latency_ms = (time.perf_counter() - t0) * 1000
        return answer

    def ask_stream(self, question: str, k: int | None = None, docs: Sequence[str] | None = None,
                   history: Sequence[Turn] | None = None, mode: str | None = None, since: str | None = None,
                   until: str | None = None) -> Iterator[Answer]:
        """Like :meth:`ask`, yielding partial answers as they grow; the last one is complete."""
        t0 = time.perf_counter()
        answerer = self.answerer(mode)
        request = self.retrieve(question, k, docs, history, since, until)
        if request is None:
            yield abstain(question, self.language(question, history), mode=answerer.mode.value)
            return
        for partial in answerer.stream(request):
            partial.latency_ms = (time.perf_counter() - t0) * 1000
            yield partial

    def language(self, question: str, history: Sequence[Turn] | None = None) -> str:
        """The question's language; a question too short to tell takes the chat's language."""
        default = self.config.default_lang
        if history:
            default = detect_language(history[-1][0], default)
        return detect_language(question, default)
