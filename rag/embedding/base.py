"""The embedder interface shared by every encoder: unit vectors, the model's own token counter, prompts.

An :class:`Embedder` turns texts into float32 unit vectors of :attr:`Embedder.dim` coordinates.
Models that were trained with instructions (multilingual-e5: ``query: `` / ``passage: ``) name
them in :attr:`Embedder.prompts`; :meth:`Embedder.encode` prepends the one asked for by name.
This module imports no implementation: :mod:`rag.embedding.torch` and :mod:`rag.embedding.onnx`
subclass it, :func:`rag.embedding.get_embedder` chooses between them.
"""

from __future__ import annotations

import enum
import os
import shutil
import threading
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..text.tokens import TokenSpans, splits_words, token_spans

QUERY, PASSAGE = "query", "passage"  # the prompt names questions and chunks are encoded with


class Encoder(str, enum.Enum):
    """How the embedding model is run."""

    ONNX_INT8 = "onnx-int8"
    TORCH = "torch"


def vector_key(name: str, encoder: Encoder | str, recipe: int) -> str:
    """The embedding-cache name of vectors made by model ``name`` run by ``encoder`` at ``recipe``.

    ``torch`` keeps the bare model name, so caches written before encoders existed stay valid;
    ``onnx-int8`` adds its recipe from recipe 2 on (``model#onnx-int8/2``), so vectors of an
    earlier export are never taken for the current one's.
    """
    encoder = Encoder(encoder)
    if encoder is Encoder.TORCH:
        return name
    return f"{name}#{encoder.value}" + (f"/{recipe}" if recipe > 1 else "")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def publish_folder(tmp: Path, folder: Path, marker: str) -> None:
    """Move the finished ``tmp`` to ``folder`` in one rename; when another process got there first (its
    ``folder/marker`` is there), keep its copy and drop ``tmp``."""
    try:
        os.replace(tmp, folder)
    except OSError:
        if not (folder / marker).is_file():
            raise
        shutil.rmtree(tmp)


def quiet_transformers() -> None:
    """No tokenizer-parallelism warnings and no progress bars from transformers."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - older transformers
        pass


def model_prompts(st) -> dict[str, str]:
    """The prompts a SentenceTransformer declares (``config_sentence_transformers.json``), empty ones left out."""
    return {name: text for name, text in (getattr(st, "prompts", None) or {}).items() if text}


class Embedder:
    """Base of the encoders: texts to unit vectors, token counts and spans, prompts by name.

    Subclasses set :attr:`name`, :attr:`batch_size`, :attr:`max_tokens`, :attr:`dim`,
    :attr:`prompts`, :attr:`recipe` and implement :meth:`count_tokens`, :meth:`_span_tokenizer`
    and :meth:`_encode`.
    """

    encoder: Encoder = Encoder.TORCH
    recipe: int = 0  # the version of how this encoder runs the model (its vectors change with it)
    name: str
    batch_size: int
    max_tokens: int
    dim: int
    prompts: Mapping[str, str] = {}

    def __init__(self) -> None:
        self._count_lock = threading.Lock()

    @property
    def key(self) -> str:
        """The embedding-cache name of this model and encoder (:func:`vector_key`)."""
        return vector_key(self.name, self.encoder, self.recipe)

    @property
    def dimension(self) -> int:
        """Number of coordinates of a vector."""
        return self.dim

    def prompt(self, name: str | None) -> str:
        """The text put before texts encoded as ``name`` (``"query"``, ``"passage"``); empty when the model has none."""
        return self.prompts.get(name, "") if name else ""

    def count_tokens(self, text: str) -> int:
        """Length of ``text`` in model tokens, special tokens and prompt excluded."""
        raise NotImplementedError

    def token_spans(self, texts: Sequence[str]) -> list[TokenSpans] | None:
        """Where the tokens of each text lie (one batch), for :class:`rag.indexing.chunking.Chunker`.

        None when the tokenizer does not cut words at white space and punctuation first: then
        pieces of a text cannot be measured from the whole (see :mod:`rag.text.tokens`).
        """
        tokenizer = self._span_tokenizer()
        if tokenizer is None or not splits_words(tokenizer):
            return None
        with self._count_lock:
            return token_spans(tokenizer, texts)

    def _span_tokenizer(self):
        """A ``tokenizers.Tokenizer`` without truncation or padding, or None."""
        return None

    def clip(self, text: str, tokens: int) -> str:
        """The longest prefix of ``text`` (cut between words) that fits in ``tokens`` tokens."""
        if self.count_tokens(text) <= tokens:
            return text
        words = text.split()
        lo, hi = 0, len(words)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.count_tokens(" ".join(words[:mid])) <= tokens:
                lo = mid
            else:
                hi = mid - 1
        return " ".join(words[:lo])

    def encode(self, texts: Sequence[str], progress: bool = False, prompt: str | None = None) -> np.ndarray:
        """Encode texts into a float32 array of unit vectors.

        Parameters
        ----------
        texts : sequence of str
            The texts.
        progress : bool
            Show a progress bar (long encodings).
        prompt : str, optional
            The name of the model's prompt to put before each text (:data:`QUERY` for questions,
            :data:`PASSAGE` for chunks); nothing when the model has no prompt of that name.

        Returns
        -------
        numpy.ndarray
            Shape ``(len(texts), dim)``.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prefix = self.prompt(prompt)
        texts = [prefix + t for t in texts] if prefix else list(texts)
        return self._encode(texts, progress)

    def _encode(self, texts: list[str], progress: bool) -> np.ndarray:
        raise NotImplementedError
