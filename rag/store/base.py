"""The contract of an index backend: what the indexer, the retriever, verify and the UI ask of a store.

Two backends implement it: the local index folder (:mod:`rag.store.sqlite` with the search files
of :mod:`rag.store.layout`) and a PostgreSQL database (:mod:`rag.store.postgres`). This module
imports neither; :mod:`rag.store.factory` chooses one by the index location (a folder, or a
``postgresql://`` / ``postgres://`` address).

A build hands a backend that writes per document (:meth:`IndexStore.apply`) one
:class:`DocumentChange` per document added, replaced or removed; the chunks come with their
text hash, their BM25 terms (:func:`rag.text.analysis.index_terms`) and their vector, so the
backend never analyses or encodes anything itself.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Iterable, Iterator, Mapping, NamedTuple, Protocol, Sequence

import numpy as np

from ..schema import Document

DATABASE_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(location: object) -> bool:
    """True when ``location`` names a PostgreSQL database (``postgresql://…`` or ``postgres://…``)."""
    return isinstance(location, str) and location.lower().startswith(DATABASE_SCHEMES)


def date_condition(since: str | None, until: str | None, column: str = "date", mark: str = "?") -> tuple[str, list]:
    """SQL (`` AND …``) and its arguments keeping rows whose ``column`` day is from ``since`` to ``until``
    (ISO days, both included; None: open); a row without a date is in no range. ``mark``: the driver's
    placeholder."""
    sql, args = f" AND {column} != ''", []
    if since:
        sql += f" AND {column} >= {mark}"
        args.append(since)
    if until:
        sql += f" AND {column} <= {mark}"
        args.append(until)
    return sql, args


class StoredChunk(NamedTuple):
    """A chunk as a backend stores it: its record, text hash, BM25 terms and vector.

    ``rowid`` is the chunk's number in the search indexes; None lets the backend number it
    (a copy keeps the source's numbers).
    """

    rowid: int | None
    id: str
    ordinal: int
    start: int
    end: int
    text: str
    hash: str
    terms: Sequence[str]
    vector: np.ndarray


class DocumentChange(NamedTuple):
    """One document's change, committed whole or not at all.

    ``gone`` is the id of the document it replaces or removes (None: a new document);
    ``document`` None is a removal.
    """

    gone: str | None
    document: Document | None
    chunks: Sequence[StoredChunk] = ()


class IndexStore(Protocol):
    """The records of an index: documents, chunks, the embedding cache, the manifest, file stamps."""

    local: bool      # True for an index folder (search files written per generation)
    folder: Any      # where the index is: its folder (a Path), or its address without the password

    def manifest(self) -> Any: ...                                   # Manifest | None
    def status(self) -> dict: ...
    def documents(self) -> list[dict]: ...                           # without their text
    def find_documents(self, query: str = "", limit: int = 50, offset: int = 0,
                       count: bool = True) -> tuple[list[dict], int]: ...
    def documents_by_id(self, doc_ids: Iterable[str]) -> list[dict]: ...
    def has_documents_from(self, path: Any) -> bool: ...
    def stored_documents(self) -> list[Document]: ...
    def document_text(self, doc_id: str) -> str | None: ...
    def counts(self) -> tuple[int, int]: ...
    def chunk_rows(self, rowids: Iterable[int]) -> dict[int, dict]: ...
    def resolve_docs(self, names: Iterable[str]) -> list[str]: ...
    def file_stamps(self, reader: str) -> dict[str, tuple[int, int, int, int]]: ...
    def record_files(self, stamps: Mapping[str, tuple[int, int, int, int]], reader: str) -> None: ...
    def record_digests(self, digests: Mapping[str, str]) -> None: ...
    def page_validators(self, reader: str) -> dict: ...
    def record_pages(self, pages: Mapping[str, Any], reader: str) -> None: ...
    def transaction(self) -> AbstractContextManager: ...
    def cached_vectors(self, model: str, hashes: list[str], dim: int) -> dict[str, np.ndarray]: ...
    def cache_vectors(self, model: str, items: Iterable[tuple[str, np.ndarray]]) -> None: ...
    def build_lock(self, wait: float = 0.0) -> AbstractContextManager: ...
    def has_search_files(self, manifest: Any) -> bool: ...
    def close(self) -> None: ...


class SearchBackend(Protocol):
    """The search side the retriever holds: each side's (chunk rowids, scores), best first.

    ``allowed`` is what :meth:`restrict` made of a document and date filter (None: no filter),
    in the backend's own form (row ids locally, document numbers in the database).
    """

    manifest: Any

    def refresh(self) -> bool: ...
    def restrict(self, doc_ids: Sequence[str] | None, since: str | None, until: str | None) -> Any: ...
    def lexical_search(self, question: str, n: int, allowed: Any, lang: str | None,
                       doc_weight: float) -> tuple[np.ndarray, np.ndarray]: ...
    def dense_search(self, query: np.ndarray, n: int, allowed: Any) -> tuple[np.ndarray, np.ndarray]: ...
    def foreign_rows(self, rows: np.ndarray, lang: str) -> set[int]: ...
    def term_stats(self) -> Any: ...


def export_chunks(rows: Iterable[tuple], vectors: Mapping[str, np.ndarray]) -> Iterator[StoredChunk]:
    """Stored chunks from ``(rowid, id, ordinal, start, end, text, hash, terms)`` rows (terms space-joined)
    and their vectors by text hash."""
    for rowid, cid, ordinal, start, end, text, h, terms in rows:
        yield StoredChunk(int(rowid), cid, int(ordinal), int(start), int(end), text, h,
                          terms.split() if isinstance(terms, str) else list(terms), vectors[h])
