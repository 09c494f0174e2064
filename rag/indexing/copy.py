"""Copy an index between backends (a folder and a PostgreSQL database, either way) without encoding again.

The documents, their chunks (with their row numbers and BM25 terms), the embedding cache (the
exact float32 vectors) and the file stamps go over; the destination makes its own search
indexes from them: a folder writes a generation from its records and cache, a database takes
the documents in batches and makes its postings' keys and HNSW index once they are in. So the
copy answers as the original does, and a later build of the same files finds them unchanged.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import NamedTuple

from ..config import Config
from ..embedding import cache_key
from ..errors import BadInput, IndexCorrupt, Remedy
from ..store import layout
from ..store.factory import location_of, open_store
from ..store.sqlite import ChunkRow, Commit
from .indexer import Indexer


class CopyReport(NamedTuple):
    """What a copy moved, and how long it took."""

    documents: int
    chunks: int
    vectors: int
    seconds: float


def copy_index(source: str | os.PathLike, target: str | os.PathLike, config: Config, wait: float = 0.0,
               progress: bool = False) -> CopyReport:
    """Copy the index at ``source`` into ``target`` (an empty or new folder or database).

    Parameters
    ----------
    source, target : str or path-like
        Index folders or ``postgresql://`` addresses.
    config : Config
        Settings for the destination's search files (``exact_search_limit``, ``pg_bulk_batch``); the
        model, chunking and encoder are the source's.
    wait : float
        Seconds to wait for a build holding the destination's lock.

    Raises
    ------
    BadInput
        ``target`` already holds documents, or is ``source`` itself.
    IndexCorrupt
        ``source`` has no committed build, or a chunk's vector is not in its cache.
    """
    t0 = time.perf_counter()
    src, dst = location_of(source), location_of(target)
    if src == dst:
        raise BadInput(f"copy: source and destination are the same index ({src})")
    store = open_store(src)
    manifest = store.manifest()
    if manifest is None:
        raise IndexCorrupt(f"{store.folder} has no committed build to copy", Remedy.BUILD, str(store.folder))
    key = cache_key(manifest.model, manifest.encoder, manifest.encoder_recipe)
    out = open_store(dst, create=True)
    with out.build_lock(wait):
        if out.manifest() is not None or out.counts()[0]:
            raise BadInput(f"copy: {out.folder} already holds an index; copy into a new folder or an empty database")
        vectors = 0
        batch: list = []
        for item in store.cache_items(key):
            batch.append(item)
            if len(batch) == 5000:
                out.cache_vectors(key, batch)
                vectors, batch = vectors + len(batch), []
        out.cache_vectors(key, batch)
        vectors += len(batch)
        changes = store.export(key, manifest.dimensions)
        stamps = {}
        for path, size, mtime, ctime, inode, reader in store.file_records():
            stamps.setdefault(reader, {})[path] = (int(size), int(mtime), int(ctime), int(inode))
        if out.local:
            docs, chunks = _write_records(out, changes, manifest, stamps)
        else:
            counted = _Counted(changes)
            out.apply(counted, dataclasses.replace(manifest, generation=1, updated=layout.now_iso(), checksums=""),
                      batch=config.pg_bulk_batch)
            with out.transaction():
                for reader, part in stamps.items():
                    out.record_files(part, reader)
            docs, chunks = counted.documents, counted.chunks
    if out.local:  # the generation's search files, from the records and the cache just written
        settings = {f: getattr(manifest, f) for f in ("model", "chunk_tokens", "chunk_overlap", "title_tokens",
                                                      "encoder")}
        Indexer(config.replace(index_dir=dst, **settings)).build([], index_dir=dst, wait=max(wait, 60.0),
                                                                  progress=progress)
    return CopyReport(docs, chunks, vectors, time.perf_counter() - t0)


class _Counted:
    """The changes of an export, counted as they are taken."""

    def __init__(self, changes):
        self.changes, self.documents, self.chunks = changes, 0, 0

    def __iter__(self):
        for change in self.changes:
            self.documents += 1
            self.chunks += len(change.chunks)
            yield change


def _write_records(out, changes, manifest, stamps: dict[str, dict]) -> tuple[int, int]:
    """Documents and chunks into a folder's SQLite (their numbers kept), under a manifest without search files."""
    docs, rows = [], []
    for change in changes:
        docs.append(change.document)
        rows += [ChunkRow(c.rowid, c.id, change.document.id, c.ordinal, c.start, c.end, c.text, c.hash,
                          " ".join(c.terms)) for c in change.chunks]
    # generation 0 has no folder: the build that follows writes the search files from these rows
    out.commit(Commit(dataclasses.replace(manifest, generation=0, updated=layout.now_iso(), checksums=""), docs,
                      rows))
    with out.transaction():
        for reader, part in stamps.items():
            out.record_files(part, reader)
    return len(docs), len(rows)
