"""The ``torch`` encoder: a sentence-transformers model as published, run by PyTorch on the CPU."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import DEFAULT_MODEL
from .base import Embedder, Encoder, model_prompts, quiet_transformers
from .models import canonical_model_name, resolve_model


class TorchEmbedder(Embedder):
    """A sentence-transformers model run by PyTorch, encoding texts into unit vectors.

    Parameters
    ----------
    model : str
        Model name or path (see :func:`rag.embedding.models.resolve_model`).
    batch_size : int
        Encoding batch size.
    cache_dir : path-like, optional
        Where a bundled model is converted when it needs to be (multilingual-e5-small).
    cores : int, optional
        The cores torch may keep busy (a Ray actor's share of its node); default: torch's own choice.
    """

    encoder = Encoder.TORCH
    recipe = 0

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 32, cache_dir: str | Path | None = None,
                 cores: int | None = None):
        import torch
        from sentence_transformers import SentenceTransformer  # heavy: loaded when a torch encoder is made

        super().__init__()
        quiet_transformers()
        self.name = canonical_model_name(model)
        self.batch_size = batch_size
        if cores:
            torch.set_num_threads(max(1, int(cores)))
        self.model = SentenceTransformer(resolve_model(model, cache_dir), device="cpu")
        self.max_tokens = int(self.model.max_seq_length)
        dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim())
        self.prompts = model_prompts(self.model)
        self._tokenizer = self.model.tokenizer
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        """Length of ``text`` in model tokens, special tokens excluded."""
        with self._count_lock:  # a tokenizer is not safe to share between threads
            return len(self._tokenizer.encode(text, add_special_tokens=False))

    def _span_tokenizer(self):
        """A ``tokenizers.Tokenizer`` without truncation or padding (a copy of the model's), or None."""
        if not hasattr(self, "_spanner"):
            backend = getattr(self._tokenizer, "backend_tokenizer", None)
            self._spanner = None
            if backend is not None:
                from tokenizers import Tokenizer

                self._spanner = Tokenizer.from_str(backend.to_str())
                self._spanner.no_truncation()
                self._spanner.no_padding()
        return self._spanner

    def _encode(self, texts: Sequence[str], progress: bool) -> np.ndarray:
        import torch

        with self._lock:  # torch on 2 cores: one encode at a time is fastest and safe
            threads = torch.get_num_threads()
            if len(texts) <= 4:  # a question: one thread is fastest and never spins against other work
                torch.set_num_threads(1)
            try:
                vecs = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                         show_progress_bar=progress, convert_to_numpy=True)
            finally:
                torch.set_num_threads(threads)
        return np.ascontiguousarray(vecs, dtype=np.float32)
