"""Ingestion: files, folders (and their stamps) in, :class:`rag.schema.Document` objects out."""

from .files import FileStamp, file_stamp, iter_files, walk
from .loading import (
           SUPPORTED,
           LoadResult,
           Skipped,
           load_file,
           load_paths,
           make_document,
)

__all__ = ["FileStamp", "LoadResult", "SUPPORTED", "Skipped", "file_stamp", "iter_files", "load_file",
           "load_paths", "make_document", "walk"]
