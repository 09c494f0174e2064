"""Answering: retrieved passages in, an answer whose claims cite their excerpts out.

:mod:`.base` holds what every answerer shares; :mod:`.extractive` (offline, the default) and
:mod:`.llm` (an OpenAI-compatible endpoint) are the backends; :mod:`.fallback` wraps one in
another; :mod:`.factory` builds them from the configuration.
"""

from .base import Answerer, AnswerFailure, AnswerMode, Request, abstain, citation_for
from .extractive import ExtractiveAnswerer
from .factory import default_mode, make_answerer, parse_mode
from .fallback import FallbackAnswerer
from .llm import LLMAnswerer, LLMFailure

__all__ = ["AnswerFailure", "AnswerMode", "Answerer", "ExtractiveAnswerer", "FallbackAnswerer", "LLMAnswerer",
           "LLMFailure", "Request", "abstain", "citation_for", "default_mode", "make_answerer", "parse_mode"]
