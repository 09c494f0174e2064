"""A fallback: one answerer tried first, another used with a visible notice when it fails."""

from __future__ import annotations

import logging
from typing import Iterator

from ..schema import Answer
from .base import Answerer, AnswerFailure, Request

log = logging.getLogger(__name__)


class FallbackAnswerer:
    """Answers with ``primary``; when it raises :class:`AnswerFailure`, with ``fallback`` and the failure's notice.

    Parameters
    ----------
    primary : Answerer
        Tried first (e.g. a language model).
    fallback : Answerer
        Used when ``primary`` fails (e.g. the extractive answerer, which cannot fail that way).
    """

    def __init__(self, primary: Answerer, fallback: Answerer):
        self.primary, self.fallback = primary, fallback
        self.mode = primary.mode

    def answer(self, request: Request) -> Answer:
        """The primary's complete answer, or the fallback's with a notice."""
        try:
            return self.primary.answer(request)
        except AnswerFailure as failure:
            return self._instead(request, failure)

    def stream(self, request: Request) -> Iterator[Answer]:
        """The primary's partial answers; when it fails midway, the fallback's answer comes last."""
        try:
            yield from self.primary.stream(request)
        except AnswerFailure as failure:
            yield self._instead(request, failure)

    def _instead(self, request: Request, failure: AnswerFailure) -> Answer:
        log.warning("%s answer replaced by the %s one: %s", self.primary.mode.value, self.fallback.mode.value, failure)
        answer = self.fallback.answer(request)
        answer.notice = failure.notice(request.lang)
        return answer
