"""The index store: the on-disk layout (:mod:`.layout`) and its SQLite records (:mod:`.sqlite`)."""

from .layout import FORMAT_VERSION, Manifest, now_iso
from .sqlite import ChunkRow, Commit, Store, docs_under, stored_document

__all__ = ["ChunkRow", "Commit", "FORMAT_VERSION", "Manifest", "Store", "docs_under", "now_iso", "stored_document"]
