"""Verify and repair an index folder: say what is damaged, then bring it back.

``verify`` checks the SQLite file (readable, integrity, tables and columns), the manifest, the
current generation's FAISS and BM25 files against the chunk rows, chunk offsets and the
embedding cache. ``repair`` rebuilds the search files and the manifest from the documents kept in
SQLite (vectors come from the embedding cache; only missing ones are encoded again); when the
SQLite file itself is lost, it moves it aside and re-indexes the article files still on disk.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from ..config import Config
from ..embedding import cache_key, canonical_model_name
from ..errors import IndexCorrupt, IndexProblem, RagError, Remedy
from ..schema import Document
from ..store import layout
from ..store.layout import DB_NAME, FORMAT_VERSION, Manifest
from ..store.sqlite import REQUIRED_COLUMNS, Store, document_columns, stored_document
from .changes import BuildReport
from .indexer import Indexer


class Problem(NamedTuple):
    """One thing wrong with an index: the part (sqlite, manifest, vectors, lexical, chunks, cache) and what."""

    part: str
    message: str


def verify(index_dir: str | os.PathLike, config: Config | None = None) -> list[Problem]:
    """Check an index folder; an empty list means it is sound.

    Never raises on a damaged index: a SQLite file that cannot be read, search files whose
    checksums are not those written at commit, NaN or huge values, all come back as problems.

    Parameters
    ----------
    index_dir : path-like
        The index folder.
    config : Config, optional
        When given, also report a model or chunking different from the configuration.
    """
    folder = Path(index_dir)
    if not (folder / DB_NAME).exists():
        return [Problem("sqlite", f"no {DB_NAME} in {folder}/: not an index (or never built)")]
    try:
        store = Store(folder)
    except (IndexProblem, sqlite3.DatabaseError, UnicodeDecodeError) as exc:
        return [Problem("sqlite", _damaged(folder, exc))]
    try:
        return _verify(store, config)
    except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # damaged pages, or text that is no longer UTF-8
        return [Problem("sqlite", _damaged(folder, exc))]
    except IndexCorrupt as exc:
        return [Problem("manifest", str(exc))]
    finally:
        store.close()


def _damaged(folder: Path, exc: BaseException) -> str:
    if isinstance(exc, RagError):
        return str(exc)
    return f"{folder / DB_NAME} is damaged ({exc}): the documents it holds are salvaged by repair, or indexed again " \
           f"from their files"


def _verify(store: Store, config: Config | None) -> list[Problem]:
    check = store.quick_check()
    manifest = store.manifest()
    problems = [] if check == "ok" else [Problem("sqlite", f"integrity check failed: {check}")]
    if manifest is None:
        return problems + [Problem("manifest", "no committed build (empty manifest)")]
    if manifest.format_version != FORMAT_VERSION:
        problems.append(Problem("manifest", f"format_version {manifest.format_version}, expected {FORMAT_VERSION}"))
    if config is not None and "model" in config.sources and manifest.model != canonical_model_name(config.model):
        problems.append(Problem("manifest", f"built with model {manifest.model}, configuration says {config.model}"))
    rowids = store.chunk_ids()
    problems += _check_search_files(store, manifest, rowids)
    problems += [Problem("chunks", message) for message in store.check_rows()]
    hashes = [h for _, h in store.chunk_hashes()]
    if hashes:
        key = cache_key(manifest.model, manifest.encoder, manifest.encoder_recipe)
        cached = store.cached_vectors(key, hashes, manifest.dimensions)
        if not cached:
            problems.append(Problem("cache", f"no cached vector of model {key} (dimension "
                                             f"{manifest.dimensions}) for any chunk: manifest edited?"))
    return problems


def _check_search_files(store: Store, manifest: Manifest, rowids: np.ndarray) -> list[Problem]:
    folder = store.gen_dir(manifest.generation)
    if not folder.is_dir():
        return [Problem("vectors", f"generation folder {folder} is missing (manifest generation {manifest.generation})")]
    problems = [Problem("vectors" if message.startswith(str(folder / layout.VECTORS)) else "lexical", message)
                for message in layout.check_search_files(store.folder, manifest)]
    try:
        vectors = layout.load_vectors(store.folder, manifest)
        ids = vectors.ids()
        if len(ids) != len(rowids) or not np.array_equal(np.sort(ids), rowids):
            problems.append(Problem("vectors", f"{len(ids)} vectors for {len(rowids)} chunks, or ids differ"))
        problems += [Problem("vectors", message) for message in vectors.problems()]
    except RagError as exc:
        problems.append(Problem("vectors", str(exc)))
    try:
        lexical = layout.load_lexical(store.folder, manifest)
        if not np.array_equal(np.sort(lexical.ids), rowids):
            problems.append(Problem("lexical", f"{len(lexical.ids)} BM25 rows for {len(rowids)} chunks, or ids differ"))
        problems += [Problem("lexical", message) for message in lexical.problems()]
    except RagError as exc:
        problems.append(Problem("lexical", str(exc)))
    return problems


def _salvage_documents(db_path: Path) -> list[Document] | None:
    """Documents (with their text) from a possibly damaged SQLite file; None if unreadable."""
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            rows = conn.execute(f"SELECT {document_columns(conn)} FROM documents").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return None
    return [stored_document(*row) for row in rows]


def _drop_bad_tables(db_path: Path) -> list[str]:
    """Drop tables whose columns are wrong (they are recreated empty); documents are never dropped."""
    dropped = []
    conn = sqlite3.connect(db_path)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table, wanted in REQUIRED_COLUMNS.items():
            if table == "documents" or table not in names:
                continue
            have = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
            if not wanted <= have:
                conn.execute(f'DROP TABLE "{table}"')
                dropped.append(table)
        conn.commit()
    finally:
        conn.close()
    return dropped


def repair(index_dir: str | os.PathLike, config: Config, paths: Sequence[str | os.PathLike] = (),
           progress: bool = True) -> BuildReport:
    """Bring a damaged index back.

    Parameters
    ----------
    index_dir : path-like
        The index folder.
    config : Config
        Model and chunking to rebuild with.
    paths : sequence of path-like
        Article files and folders, needed only when the SQLite file itself is lost.

    Returns
    -------
    BuildReport
        Of the rebuild (``updated`` lists the documents re-indexed).

    Raises
    ------
    IndexCorrupt
        When nothing can be salvaged and no ``paths`` were given.
    """
    folder = Path(index_dir)
    db_path = folder / DB_NAME
    indexer = Indexer(config)
    docs = _salvage_documents(db_path) if db_path.exists() else None
    if docs is None:
        if not paths:
            raise IndexCorrupt(f"{db_path} cannot be read and holds the document list; the article files are needed "
                               f"to index them again", Remedy.REPAIR_FROM_FILES, str(folder))
        if db_path.exists():
            aside = db_path.with_name(f"{DB_NAME}.broken-{int(time.time())}")
            os.replace(db_path, aside)
            for extra in ("-wal", "-shm"):
                Path(str(db_path) + extra).unlink(missing_ok=True)
        return indexer.build(paths, folder, rebuild=True, progress=progress)
    _drop_bad_tables(db_path)
    return indexer.reindex(docs, folder, progress=progress)
