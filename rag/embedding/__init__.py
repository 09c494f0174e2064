"""Embedding: a sentence-transformers model on the CPU, normalised vectors, the model's own token counter.

Two encoders run the same model (:class:`Encoder`): ``torch`` (:mod:`rag.embedding.torch`) runs
it as published; ``onnx-int8`` (the default, :mod:`rag.embedding.onnx`) runs an ONNX export of
it with int8 weights through onnxruntime, 2 to 3.5 times as fast on the CPUs measured, for the
same retrieval quality (README, "Performance"). Vectors of the two differ slightly, so an index
records its encoder (and the recipe of its int8 export, :func:`encoder_recipe`) and the
embedding cache keys vectors by model, encoder and recipe (:func:`cache_key`).

:func:`get_embedder` is the factory: one shared embedder per model, encoder and cache folder.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from ..config import DEFAULT_MODEL, default_cache_dir, load_config
from .base import PASSAGE, QUERY, Embedder, Encoder, quiet_transformers, vector_key
from .models import canonical_model_name, resolve_model
from .onnx import RECIPE, EncoderUnavailable, OnnxEmbedder
from .torch import TorchEmbedder

__all__ = [
    "DEFAULT_MODEL", "PASSAGE", "QUERY", "RECIPE", "Embedder", "Encoder", "EncoderUnavailable", "OnnxEmbedder",
    "TorchEmbedder", "cache_key", "canonical_model_name", "configured_encoder", "encoder_recipe", "get_embedder",
    "quiet_transformers", "resolve_model", "stale_recipe",
]


def encoder_recipe(encoder: Encoder | str) -> int:
    """The version of how this release runs ``encoder``: 0 for ``torch`` (the model as published),
    :data:`rag.embedding.onnx.RECIPE` for ``onnx-int8`` (the export's recipe: its vectors change with it)."""
    return 0 if Encoder(encoder) is Encoder.TORCH else RECIPE


def stale_recipe(encoder: str, recipe: int) -> bool:
    """True when vectors made by ``encoder`` at ``recipe`` are not what this release makes (unknown encoders: False)."""
    try:
        return recipe != encoder_recipe(encoder)
    except ValueError:
        return False


def cache_key(model: str, encoder: Encoder | str, recipe: int | None = None) -> str:
    """The name vectors are cached under (:func:`rag.embedding.base.vector_key`).

    ``recipe`` defaults to the current one.
    """
    return vector_key(canonical_model_name(model), encoder, encoder_recipe(encoder) if recipe is None else recipe)


def configured_encoder() -> tuple[str, str]:
    """The encoder and cache folder the configuration asks for (``rag.toml``, ``RAG_ENCODER``, ``RAG_CACHE_DIR``)."""
    cfg = load_config()
    return cfg.encoder, cfg.cache_dir


def get_embedder(model: str = DEFAULT_MODEL, batch_size: int = 32, encoder: Encoder | str | None = None,
                 cache_dir: str | os.PathLike | None = None, cores: int | None = None) -> Embedder:
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
    cores : int, optional
        The cores it may keep busy (default: all this process may run on); a Ray actor gives its share.

    Returns
    -------
    Embedder
        A :class:`TorchEmbedder`, or an :class:`OnnxEmbedder` for ``onnx-int8``.
    """
    if encoder is None or cache_dir is None:
        configured = configured_encoder()
        encoder, cache_dir = encoder or configured[0], cache_dir or configured[1]
    try:
        encoder = Encoder(encoder)
    except ValueError:
        raise ValueError(f"encoder {encoder!r} is not one of {', '.join(e.value for e in Encoder)}") from None
    folder = str(Path(cache_dir) if cache_dir else default_cache_dir())
    return _embedder(canonical_model_name(model), batch_size, encoder, folder, cores)


@lru_cache(maxsize=4)
def _embedder(model: str, batch_size: int, encoder: Encoder, cache_dir: str, cores: int | None) -> Embedder:
    if encoder is Encoder.TORCH:
        return TorchEmbedder(model, batch_size, cache_dir=Path(cache_dir), cores=cores)
    return OnnxEmbedder(model, batch_size, cache_dir=Path(cache_dir), cores=cores)
