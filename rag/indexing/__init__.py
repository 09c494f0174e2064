"""Indexing: chunk, embed (through the cache) and store articles, incrementally; verify and repair."""

from .changes import BuildReport
from .indexer import Indexer
from .verify import Problem, repair, verify

__all__ = ["BuildReport", "Indexer", "Problem", "repair", "verify"]
