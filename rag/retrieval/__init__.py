"""Retrieval: BM25 and dense search of an index, fused into ranked passages."""

from .fusion import Mode, collapse, fuse, minmax
from .retriever import Retriever

__all__ = ["Mode", "Retriever", "collapse", "fuse", "minmax"]
