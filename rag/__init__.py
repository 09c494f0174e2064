"""rag: offline-first question answering over articles (hybrid BM25 + FAISS, cited answers)."""

from .config import Config, ConfigError, load_config
from .indexer import BuildReport, Indexer
from .loading import LoadResult, Skipped, load_paths
from .pipeline import RAG
from .retrieval import Mode, Retriever
from .schema import Answer, Chunk, Citation, Document, Hit

__all__ = [
    "Answer", "BuildReport", "Chunk", "Citation", "Config", "ConfigError", "Document", "Hit", "Indexer",
    "LoadResult", "Mode", "RAG", "Retriever", "Skipped", "load_config", "load_paths",
]
__version__ = "0.1.0"
