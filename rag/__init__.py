"""rag: offline-first question answering over articles (hybrid BM25 + FAISS, cited answers).

The names below are imported on first use, so a command that needs only some stages (a
rebuild with nothing to do) does not pay for importing FAISS, bm25s or the answerers.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "Config": "config", "ConfigError": "config", "load_config": "config",
    "RagError": "errors", "BadInput": "errors",
    "BuildReport": "indexing", "Indexer": "indexing",
    "LoadResult": "ingest", "Skipped": "ingest", "load_paths": "ingest",
    "RAG": "pipeline", "Mode": "retrieval", "Retriever": "retrieval",
    "Answer": "schema", "Chunk": "schema", "Citation": "schema", "Document": "schema", "Hit": "schema",
}
__all__ = sorted(_WHERE)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``from rag import RAG`` and the like: import the name's module on first use."""
    if name not in _WHERE:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
