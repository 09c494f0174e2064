"""Choosing an answerer: :class:`AnswerMode` names in, a ready answerer out."""

from __future__ import annotations

from ..config import Config
from ..errors import BadInput
from .base import Answerer, AnswerMode
from .extractive import ExtractiveAnswerer
from .fallback import FallbackAnswerer
from .llm import LLMAnswerer


def default_mode(config: Config) -> AnswerMode:
    """LLM when an endpoint and a model are configured, else extractive."""
    return AnswerMode.LLM if config.llm_configured else AnswerMode.EXTRACTIVE


def parse_mode(mode: AnswerMode | str | None, config: Config) -> AnswerMode:
    """The answer mode asked for (``None``: the configured default).

    Raises
    ------
    BadInput
        For an unknown mode name (the message lists the valid ones).
    """
    if mode is None or mode == "":
        return default_mode(config)
    try:
        return AnswerMode(str(getattr(mode, "value", mode)).lower())
    except ValueError:
        valid = ", ".join(m.value for m in AnswerMode)
        raise BadInput(f"answer mode {mode!r} is not one of: {valid}") from None


def make_answerer(config: Config, mode: AnswerMode | str | None = None) -> Answerer:
    """The answerer for ``mode`` (default: :func:`default_mode`).

    The LLM answerer falls back to the extractive one, with a notice, whenever the model fails.

    Raises
    ------
    BadInput
        ``llm`` without ``llm_base_url`` and ``llm_model`` (the message names the settings).
    """
    chosen = parse_mode(mode, config)
    extractive = ExtractiveAnswerer(config.abstain_threshold)
    if chosen is AnswerMode.EXTRACTIVE:
        return extractive
    if not config.llm_configured:
        raise BadInput("answer mode 'llm' needs llm_base_url and llm_model "
                       "(rag.toml or RAG_LLM_BASE_URL / RAG_LLM_MODEL)")
    return FallbackAnswerer(LLMAnswerer.from_config(config), extractive)
