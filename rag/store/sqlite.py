"""The SQLite side of an index folder: documents, chunks, the embedding cache, the manifest, file stamps.

Every SQL statement of the local index is here. A build hands :meth:`Store.commit` a complete
:class:`Commit` (documents in and out, chunk rows, the next manifest, file stamps, page
validators), applied in one transaction after the generation's search files are on disk
(:mod:`rag.store.layout`), so a crash at any point leaves the previous generation in use.

Each document row keeps its date (a ``YYYY-MM-DD`` day, indexed, for the date filters), where
the date comes from, its URL and its author; an index made before these columns gets them when
it is opened (:meth:`Store.upgrade`), filled from what it kept (a JSONL record's ``url`` and
``date``, else the file's modification day). The validators of the web pages fetched (ETag,
Last-Modified, body hash) let a rebuild ask a page again without parsing it. Nothing is pickled.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from ..dates import DateSource, file_day, normalize_date
from ..errors import DiskFull, IndexBusy, IndexCorrupt, IndexMismatch, IndexMissing, Remedy
from ..ingest.fetch import Validators, is_address
from ..ingest.files import key_files
from ..schema import Document
from ..search import term_table
from ..search.lexical import LexicalIndex
from ..search.term_table import TermTable
from ..text.normalize import text_hash
from . import layout
from .base import DocumentChange, date_condition, export_chunks
from .layout import DB_NAME, LOCK_NAME, Manifest

SCHEMA = """
CREATE TABLE IF NOT EXISTS manifest (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY, key TEXT UNIQUE NOT NULL, source TEXT NOT NULL, title TEXT NOT NULL,
    lang TEXT NOT NULL, sha256 TEXT NOT NULL, text TEXT NOT NULL, meta TEXT NOT NULL DEFAULT '{}',
    chunks INTEGER NOT NULL DEFAULT 0, indexed TEXT NOT NULL, date TEXT NOT NULL DEFAULT '',
    date_source TEXT NOT NULL DEFAULT '', url TEXT NOT NULL DEFAULT '', author TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL,
    doc_id TEXT NOT NULL REFERENCES documents(id), ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL, hash TEXT NOT NULL,
    terms TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS embedding_cache (
    model TEXT NOT NULL, hash TEXT NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, hash));
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL, reader TEXT NOT NULL);
"""
# added by Store.upgrade (after the documents' new columns, for an index made before them)
PAGES_SCHEMA = """
CREATE TABLE IF NOT EXISTS pages (
    key TEXT PRIMARY KEY, url TEXT NOT NULL, final_url TEXT NOT NULL, etag TEXT NOT NULL,
    last_modified TEXT NOT NULL, body_sha256 TEXT NOT NULL, reader TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS documents_date ON documents(date);
"""
SOURCE_COLUMNS = ("date", "date_source", "url", "author")  # of documents, added to indexes made before them
# not required: an index made before the files table reads every file once, and gets the table
# from its next build (Store(create=True))
REQUIRED_COLUMNS = {
    "manifest": {"key", "value"},
    "documents": {"id", "key", "source", "title", "lang", "sha256", "text", "meta", "chunks", "indexed"},
    "chunks": {"id", "doc_id", "ordinal", "start", "end", "text", "hash", "terms"},
    "embedding_cache": {"model", "hash", "vector"},
}




# a document's row without its text, as documents() and find_documents() give it
LISTED = "id, key, source, title, lang, sha256, chunks, indexed, meta, date, date_source, url, author"
# what the BM25 index needs of each stored chunk: id, terms, document, language
LEXICAL_ROWS = ("SELECT c.rowid, c.terms, c.doc_id, d.lang FROM chunks c JOIN documents d ON d.id = c.doc_id "
                "ORDER BY c.rowid")


class LexicalRow(NamedTuple):
    """A stored chunk as the BM25 index sees it (``terms`` is None when a saved term table numbers it)."""

    rowid: int
    terms: str | None
    doc_id: str
    lang: str


class ChunkRow(NamedTuple):
    """A chunk row to insert."""

    rowid: int
    id: str
    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    hash: str
    terms: str


@dataclass
class Commit:
    """Everything one build changes, applied by :meth:`Store.commit` in one transaction.

    ``gone`` lists the ids of documents whose rows go (removed, or replaced by a new version in
    ``documents``), ``gone_keys`` their keys; with ``rebuild`` every row goes. ``stamps`` are
    recorded under ``reader`` and ``pages`` (web page validators) under ``page_reader``; the
    stamps and validators of gone documents are forgotten. ``drop_cache`` names a cache key whose
    vectors will never be read again.
    """

    manifest: Manifest
    documents: Sequence[Document] = ()
    chunks: Sequence[ChunkRow] = ()
    gone: Sequence[str] = ()
    gone_keys: Sequence[str] = ()
    stamps: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    reader: str = ""
    rebuild: bool = False
    drop_cache: str | None = None
    pages: dict[str, Validators] = field(default_factory=dict)
    page_reader: str = ""


DOCUMENT_COLUMNS = "id, key, source, title, lang, text, meta, " + ", ".join(SOURCE_COLUMNS)  # stored_document's


def document_columns(db: sqlite3.Connection) -> str:
    """:data:`DOCUMENT_COLUMNS` for the documents table of ``db``, ``''`` for a source column it lacks
    (a damaged index made before them is salvaged all the same)."""
    have = {r[1] for r in db.execute('PRAGMA table_info("documents")')}
    return ", ".join(c if c in have or c not in SOURCE_COLUMNS else f"'' AS {c}"
                     for c in (c.strip() for c in DOCUMENT_COLUMNS.split(",")))


def stored_document(doc_id: str, key: str, source: str, title: str, lang: str, text: str, meta: str | None,
                    date: str = "", date_source: str = "", url: str = "", author: str = "") -> Document:
    """A :class:`Document` from its stored row (:data:`DOCUMENT_COLUMNS`): the hash is that of the text,
    and meta that is not valid JSON reads as empty."""
    try:
        meta = json.loads(meta) if meta else {}
    except json.JSONDecodeError:
        meta = {}
    return Document(doc_id, key, source, title, text, lang, text_hash(text), meta,
                    date or "", date_source or "", url or "", author or "")


class Store:
    """The SQLite side of an index folder; one connection per thread.

    Parameters
    ----------
    folder : path-like
        The index folder (created when ``create`` is true).
    create : bool
        Create the folder and tables if missing; otherwise raise :class:`IndexMissing`.
    """

    local = True  # an index folder (rag.store.base.IndexStore)

    def __init__(self, folder: str | os.PathLike, create: bool = False):
        self.folder = Path(folder)
        self.db_path = self.folder / DB_NAME
        if not self.db_path.exists():
            if not create:
                raise IndexMissing(f"no index in {self.folder}/", Remedy.BUILD, str(self.folder))
            self.folder.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        if create:
            self.db.executescript(SCHEMA)
        self._check_tables()
        self.upgrade()

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
                self._raise_if_full(exc)
                raise IndexCorrupt(f"{self.db_path}: not a readable SQLite database ({exc})", Remedy.REPAIR_FROM_FILES,
                                   str(self.folder)) from None
            self._local.conn = conn
        return conn

    def _raise_if_full(self, exc: BaseException) -> None:
        """Raise :class:`DiskFull` when the error opening the database comes of a full disk (not of damage)."""
        if layout.is_disk_full(exc, self.folder):
            raise DiskFull(f"disk full: {self.db_path} cannot be opened ({exc}); nothing was changed, the index is "
                           f"at its previous state; free some space and run it again", where=str(self.folder)) from None

    def _check_tables(self) -> None:
        try:
            names = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            self._raise_if_full(exc)
            raise IndexCorrupt(f"{self.db_path}: not a readable SQLite database ({exc})", Remedy.REPAIR_FROM_FILES,
                               str(self.folder)) from None
        missing = set(REQUIRED_COLUMNS) - names
        if missing:
            raise IndexCorrupt(f"{self.db_path}: missing table(s) {', '.join(sorted(missing))}", Remedy.REPAIR,
                               str(self.folder))
        for table, wanted in REQUIRED_COLUMNS.items():
            have = {r[1] for r in self.db.execute(f'PRAGMA table_info("{table}")')}
            if not wanted <= have:
                raise IndexCorrupt(f"{self.db_path}: table {table} lacks column(s) {', '.join(sorted(wanted - have))}",
                                   Remedy.REPAIR, str(self.folder))

    def upgrade(self) -> None:
        """Give an index made before them the documents' date, URL and author columns and the pages table.

        One transaction: the columns are added and filled from what the index kept (a JSONL
        record's ``url`` and ``date`` were in ``meta``; otherwise the date is the modification
        day of the document's file, when it is still there, marked ``file``). Nothing else
        changes: no document is read or encoded again.

        Raises
        ------
        IndexMismatch
            When the index needs it but cannot be written.
        """
        if self._missing_parts():
            try:
                with self.transaction() as db:
                    missing = self._missing_parts()
                    for column in missing:
                        if column != "pages":
                            db.execute(f"ALTER TABLE documents ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
                    for statement in filter(None, (p.strip() for p in PAGES_SCHEMA.split(";"))):
                        db.execute(statement)  # one by one: executescript would commit the transaction
                    if "date" in missing:
                        self._fill_sources(db)
            except sqlite3.OperationalError as exc:
                raise IndexMismatch(f"{self.folder}/ was made by an earlier version: its documents need date and "
                                    f"link columns, but it cannot be written ({exc}); open it once where it can "
                                    f"be, or rebuild it", Remedy.REBUILD, str(self.folder)) from None

    def _missing_parts(self) -> list[str]:
        have = {r[1] for r in self.db.execute('PRAGMA table_info("documents")')}
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
        missing = [c for c in SOURCE_COLUMNS if c not in have]
        return missing + ([] if {"pages", "documents_date"} <= tables else ["pages"])

    @staticmethod
    def _fill_sources(db: sqlite3.Connection) -> None:
        """Dates and URLs of documents indexed before the columns existed (in the caller's transaction)."""
        rows = db.execute("SELECT id, key, meta FROM documents").fetchall()
        updates = []
        for doc_id, key, meta in rows:
            try:
                meta = json.loads(meta) if meta else {}
            except json.JSONDecodeError:
                meta = {}
            meta = meta if isinstance(meta, dict) else {}
            url = meta.get("url") if is_address(meta.get("url")) else ""
            day, source = normalize_date(meta.get("date")), DateSource.PUBLISHED.value
            if day is None:
                day, source = _file_day_of(key), DateSource.FILE.value
            updates.append((day or "", source if day else "", url, doc_id))
        db.executemany("UPDATE documents SET date=?, date_source=?, url=? WHERE id=?", updates)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- manifest ---------------------------------------------------------------------------
    def manifest(self) -> Manifest | None:
        """The manifest, or None for an index never committed."""
        rows = dict(self.db.execute("SELECT key, value FROM manifest").fetchall())
        return Manifest.from_rows(rows) if rows else None

    def gen_dir(self, generation: int) -> Path:
        """Folder of the search files of ``generation``."""
        return layout.gen_dir(self.folder, generation)

    def current_gen_dir(self) -> Path:
        """Folder of the search files of the committed generation."""
        manifest = self.manifest()
        if manifest is None:
            raise IndexCorrupt(f"{self.folder}/ has no committed build yet", Remedy.BUILD, str(self.folder))
        return self.gen_dir(manifest.generation)

    def has_search_files(self, manifest: Manifest | None) -> bool:
        """True when the manifest's generation folder is there."""
        return layout.has_search_files(self.folder, manifest)

    # -- reads ------------------------------------------------------------------------------
    def documents(self) -> list[dict]:
        """All documents (without their text), ordered by source."""
        cur = self.db.execute(f"SELECT {LISTED} FROM documents ORDER BY source")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur]

    def find_documents(self, query: str = "", limit: int = 50, offset: int = 0,
                       count: bool = True) -> tuple[list[dict], int]:
        """One page of the documents whose title or source holds ``query``, and how many match.

        Parameters
        ----------
        query : str
            Text to look for in titles and sources (ASCII letters in any case); empty: every document.
        limit, offset : int
            The page: at most ``limit`` rows after the first ``offset``, most recently indexed first.
        count : bool
            Count the matching documents (False: -1 is returned instead).

        Returns
        -------
        (list of dict, int)
            Rows as :meth:`documents` gives them, and the number of matching documents.
        """
        where, args = "", []
        if query.strip():
            pattern = "%" + _like_escape(query.strip()) + "%"
            where, args = "WHERE title LIKE ? ESCAPE '\\' OR source LIKE ? ESCAPE '\\'", [pattern, pattern]
        limit, offset = max(0, int(limit)), max(0, int(offset))
        # rows are written when a document is added or changed: the newest rowids are the latest indexed
        cur = self.db.execute(f"SELECT {LISTED} FROM documents {where} ORDER BY rowid DESC LIMIT ? OFFSET ?",
                              [*args, limit, offset])
        cols = [d[0] for d in cur.description]
        rows = [dict(zip(cols, r)) for r in cur]
        if not count:
            return rows, -1
        if offset == 0 and len(rows) < limit:
            return rows, len(rows)
        return rows, int(self.db.execute(f"SELECT COUNT(*) FROM documents {where}", args).fetchone()[0])

    def documents_by_id(self, doc_ids: Iterable[str]) -> list[dict]:
        """The rows (as :meth:`documents` gives them) of the documents with these ids, in no set order."""
        doc_ids = list(dict.fromkeys(doc_ids))
        out: list[dict] = []
        for i in range(0, len(doc_ids), 500):
            part = doc_ids[i:i + 500]
            cur = self.db.execute(f"SELECT {LISTED} FROM documents WHERE id IN ({','.join('?' * len(part))})", part)
            cols = [d[0] for d in cur.description]
            out.extend(dict(zip(cols, r)) for r in cur)
        return out

    def has_documents_from(self, path: str | os.PathLike) -> bool:
        """Whether a document read from the file ``path`` (its resolved path, or its records) is indexed."""
        key = str(path)  # its records' keys are key + "#...": the range [key#, key$) of the key index
        row = self.db.execute("SELECT 1 FROM documents WHERE key=? OR (key >= ? AND key < ?) LIMIT 1",
                              (key, key + "#", key + "$")).fetchone()
        return row is not None

    def stored_documents(self, ids: Sequence[str] | None = None) -> list[Document]:
        """Every indexed document (or those of ``ids``) with its text, as it was indexed."""
        if ids is None:
            return [stored_document(*row) for row in self.db.execute(f"SELECT {DOCUMENT_COLUMNS} FROM documents")]
        out = []
        for i in range(0, len(ids), 500):
            part = list(ids[i:i + 500])
            out += [stored_document(*row) for row in self.db.execute(
                f"SELECT {DOCUMENT_COLUMNS} FROM documents WHERE id IN ({','.join('?' * len(part))})", part)]
        return out

    def document_text(self, doc_id: str) -> str | None:
        """A document's full extracted text."""
        row = self.db.execute("SELECT text FROM documents WHERE id=?", (doc_id,)).fetchone()
        return row[0] if row else None

    def counts(self) -> tuple[int, int]:
        """(documents, chunks)."""
        d = self.db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        c = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return d, c

    def chunk_rows(self, rowids: Iterable[int]) -> dict[int, dict]:
        """Chunk rows joined with their document, by chunk rowid."""
        rowids = [int(r) for r in rowids]
        if not rowids:
            return {}
        marks = ",".join("?" * len(rowids))
        cur = self.db.execute(
            f'SELECT c.rowid, c.id, c.doc_id, c.start, c."end", c.text, d.source, d.title, d.lang, d.date, '
            f"d.date_source, d.url, d.author FROM chunks c JOIN documents d ON d.id = c.doc_id "
            f"WHERE c.rowid IN ({marks})", rowids)
        keys = ("rowid", "chunk_id", "doc_id", "start", "end", "text", "source", "title", "lang", "date",
                "date_source", "url", "author")
        return {r[0]: dict(zip(keys, r)) for r in cur}

    def rowids_of_docs(self, doc_ids: Iterable[str]) -> np.ndarray:
        """Chunk rowids of the given documents."""
        doc_ids = list(doc_ids)
        if not doc_ids:
            return np.zeros(0, dtype=np.int64)
        marks = ",".join("?" * len(doc_ids))
        rows = self.db.execute(f"SELECT rowid FROM chunks WHERE doc_id IN ({marks})", doc_ids).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def rowids_dated(self, since: str | None, until: str | None) -> np.ndarray:
        """Chunk rowids of the documents dated from ``since`` to ``until`` (ISO days, both included;
        None: open). A document without a date is in no range."""
        dated, args = date_condition(since, until, "d.date")
        sql = "SELECT c.rowid FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE true" + dated
        return np.array([r[0] for r in self.db.execute(sql, args)], dtype=np.int64)

    def resolve_docs(self, names: Iterable[str]) -> list[str]:
        """Document ids matching ids, sources or source prefixes (a folder), titles, or files: a JSONL or
        SQuAD file's name matches its records, and any path (relative to the current folder or absolute)
        matches the documents read from that file or below that folder, however their source is shown.
        An empty name matches nothing.
        """
        out: list[str] = []
        docs = None
        for name in names:
            if not name.strip():  # as a folder prefix, it would match every document below /
                continue
            rows = self.db.execute(
                "SELECT id FROM documents WHERE id=? OR source=? OR title=? OR source LIKE ? ESCAPE '\\' "
                "OR source LIKE ? ESCAPE '\\'", (name, name, name, _like_prefix(name), _like_records(name))).fetchall()
            out.extend(r[0] for r in rows)
            if not is_address(name):
                docs = self.documents() if docs is None else docs
                out.extend(docs_under(docs, [os.path.abspath(name), str(Path(name).resolve())]))
        return sorted(set(out))

    def status(self) -> dict:
        """Documents, chunks, model, dimensions, last update (and generation, languages, chunking)."""
        manifest = self.manifest()
        if manifest is None:
            raise IndexCorrupt(f"{self.folder}/ has no committed build yet", Remedy.BUILD, str(self.folder))
        docs, chunks = self.counts()
        langs = dict(self.db.execute("SELECT lang, COUNT(*) FROM documents GROUP BY lang").fetchall())
        return {"documents": docs, "chunks": chunks, "model": manifest.model, "dimensions": manifest.dimensions,
                "updated": manifest.updated, "index": str(self.folder), "generation": manifest.generation,
                "format_version": manifest.format_version, "chunk_tokens": manifest.chunk_tokens,
                "chunk_overlap": manifest.chunk_overlap, "languages": langs, "encoder": manifest.encoder,
                "encoder_recipe": manifest.encoder_recipe, "prompts": {"query": manifest.query_prompt,
                                                                       "passage": manifest.passage_prompt},
                "vector_search": layout.vector_search_kind(self.folder, manifest.generation)}

    def next_rowid(self) -> int:
        """The rowid the next new chunk gets."""
        return int(self.db.execute("SELECT COALESCE(MAX(rowid), 0) FROM chunks").fetchone()[0]) + 1

    def chunk_ids(self) -> np.ndarray:
        """Every chunk's rowid, ascending."""
        rows = self.db.execute("SELECT rowid FROM chunks ORDER BY rowid").fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def chunk_hashes(self) -> list[tuple[int, str]]:
        """(rowid, text hash) of every chunk, ascending."""
        return self.db.execute("SELECT rowid, hash FROM chunks ORDER BY rowid").fetchall()

    def lexical_rows(self, lexical_dir: Path | None = None) -> tuple[list[LexicalRow], TermTable | None]:
        """Every chunk as the BM25 index sees it, and the term table saved in ``lexical_dir`` when it numbers them.

        When the table matches the rows (same count, same ids as the BM25 files beside it), the
        term strings are not read: each row's ``terms`` is None. Otherwise the rows come with
        their terms and the table is None.
        """
        if lexical_dir is not None:
            rows = [LexicalRow(*r) for r in self.db.execute(LEXICAL_ROWS.replace("c.terms", "NULL"))]
            table = term_table.load(lexical_dir, len(rows))
            saved = LexicalIndex.saved_ids(lexical_dir) if table is not None else None
            if saved is not None and np.array_equal(saved, np.array([r.rowid for r in rows], dtype=np.int64)):
                return rows, table
        return [LexicalRow(*r) for r in self.db.execute(LEXICAL_ROWS)], None

    def check_rows(self) -> list[str]:
        """What is wrong with the chunk rows: orphans, wrong counts, offsets that do not match the text."""
        problems = []
        orphans = self.db.execute("SELECT COUNT(*) FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents)"
                                  ).fetchone()[0]
        if orphans:
            problems.append(f"{orphans} chunks belong to no document")
        bad_counts = self.db.execute(
            "SELECT COUNT(*) FROM documents d WHERE d.chunks != (SELECT COUNT(*) FROM chunks c WHERE c.doc_id = d.id)"
        ).fetchone()[0]
        if bad_counts:
            problems.append(f"{bad_counts} documents have a wrong chunk count")
        bad_offsets = self.db.execute(
            'SELECT COUNT(*) FROM chunks c JOIN documents d ON d.id = c.doc_id '
            'WHERE substr(d.text, c.start + 1, c."end" - c.start) != c.text').fetchone()[0]
        if bad_offsets:
            problems.append(f"{bad_offsets} chunks whose offsets do not match their document text")
        return problems

    def quick_check(self) -> str:
        """SQLite's ``PRAGMA quick_check``: ``"ok"`` or what is wrong."""
        return str(self.db.execute("PRAGMA quick_check").fetchone()[0])

    # -- commit -----------------------------------------------------------------------------
    def commit(self, change: Commit, inside: Callable[[], None] | None = None) -> None:
        """Apply ``change`` in one transaction; ``inside`` runs just before it commits (fault injection)."""
        counts: dict[str, int] = {}
        for c in change.chunks:
            counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
        gone = list(change.gone)
        with self.transaction() as db:
            if change.rebuild:
                db.execute("DELETE FROM chunks")
                db.execute("DELETE FROM documents")
            self.forget_files(None if change.rebuild else (f for k in change.gone_keys for f in key_files(k)))
            self.record_files(change.stamps, change.reader)
            self.forget_pages(None if change.rebuild else change.gone_keys)
            self.record_pages(change.pages, change.page_reader)
            for i in range(0, len(gone), 500):
                part = gone[i:i + 500]
                marks = ",".join("?" * len(part))
                db.execute(f"DELETE FROM chunks WHERE doc_id IN ({marks})", part)
                db.execute(f"DELETE FROM documents WHERE id IN ({marks})", part)
            stamp = layout.now_iso()
            db.executemany(
                "INSERT INTO documents(id, key, source, title, lang, sha256, text, meta, chunks, indexed, date, "
                "date_source, url, author) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(d.id, d.key, d.source, d.title, d.lang, d.sha256, d.text, json.dumps(d.meta, ensure_ascii=False),
                  counts.get(d.id, 0), stamp, d.date, d.date_source, d.url, d.author) for d in change.documents])
            db.executemany('INSERT INTO chunks(rowid, id, doc_id, ordinal, start, "end", text, hash, terms) '
                           "VALUES (?,?,?,?,?,?,?,?,?)", change.chunks)
            if inside is not None:
                inside()
            if change.drop_cache:
                db.execute("DELETE FROM embedding_cache WHERE model=?", (change.drop_cache,))
            db.execute("DELETE FROM manifest")
            db.executemany("INSERT INTO manifest(key, value) VALUES (?,?)", change.manifest.to_rows().items())

    # -- file stamps ------------------------------------------------------------------------
    def file_stamps(self, reader: str) -> dict[str, tuple[int, int, int, int]]:
        """(size, mtime_ns, ctime_ns, inode) of the files read by ``reader``, by resolved path.

        ``reader`` names the code and settings that turned the files into documents: stamps
        recorded by another are left out, so that their files are read again.
        """
        try:
            rows = self.db.execute("SELECT path, size, mtime_ns, ctime_ns, inode FROM files WHERE reader=?",
                                   (reader,)).fetchall()
        except sqlite3.DatabaseError:  # an index made before the files table (or damaged: the build says so)
            return {}
        return {path: tuple(stamp) for path, *stamp in rows}

    def record_files(self, stamps: dict[str, tuple[int, int, int, int]], reader: str) -> None:
        """Record file stamps (in the caller's transaction, if any)."""
        self.db.executemany("INSERT OR REPLACE INTO files(path, size, mtime_ns, ctime_ns, inode, reader) "
                            "VALUES (?,?,?,?,?,?)", [(p, *s, reader) for p, s in stamps.items()])

    def record_digests(self, digests: dict[str, str]) -> None:
        """Keep the record digest (``meta["record_sha256"]``) of documents by id (in the caller's transaction,
        if any): documents found unchanged whose JSONL record's bytes were not the ones indexed."""
        self.db.executemany("UPDATE documents SET meta = json_set(CASE WHEN json_valid(meta) THEN meta ELSE '{}' END, "
                            "'$.record_sha256', ?) WHERE id = ?", [(d, i) for i, d in digests.items()])

    def forget_files(self, paths: Iterable[str] | None = None) -> None:
        """Drop the stamps of ``paths`` (all of them when None), in the caller's transaction if any."""
        if paths is None:
            self.db.execute("DELETE FROM files")
            return
        paths = list(paths)
        for i in range(0, len(paths), 500):
            part = paths[i:i + 500]
            self.db.execute(f"DELETE FROM files WHERE path IN ({','.join('?' * len(part))})", part)

    # -- web pages --------------------------------------------------------------------------
    def page_validators(self, reader: str) -> dict[str, Validators]:
        """Validators of the pages read by ``reader`` (:func:`rag.web.web_version`...), by document key."""
        rows = self.db.execute("SELECT key, url, final_url, etag, last_modified, body_sha256 FROM pages "
                               "WHERE reader=?", (reader,)).fetchall()
        return {key: Validators(*rest) for key, *rest in rows}

    def record_pages(self, pages: dict[str, Validators], reader: str) -> None:
        """Record page validators (in the caller's transaction, if any)."""
        self.db.executemany("INSERT OR REPLACE INTO pages(key, url, final_url, etag, last_modified, body_sha256, "
                            "reader) VALUES (?,?,?,?,?,?,?)", [(k, *v, reader) for k, v in pages.items()])

    def forget_pages(self, keys: Iterable[str] | None = None) -> None:
        """Drop the validators of ``keys`` (all of them when None), in the caller's transaction if any."""
        if keys is None:
            self.db.execute("DELETE FROM pages")
            return
        keys = list(keys)
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            self.db.execute(f"DELETE FROM pages WHERE key IN ({','.join('?' * len(part))})", part)

    # -- embedding cache --------------------------------------------------------------------
    def cached_vectors(self, model: str, hashes: list[str], dim: int) -> dict[str, np.ndarray]:
        """Vectors in the cache for these text hashes."""
        out: dict[str, np.ndarray] = {}
        for i in range(0, len(hashes), 500):
            part = hashes[i:i + 500]
            marks = ",".join("?" * len(part))
            for h, blob in self.db.execute(
                    f"SELECT hash, vector FROM embedding_cache WHERE model=? AND hash IN ({marks})", [model, *part]):
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape == (dim,):
                    out[h] = vec
        return out

    def cache_vectors(self, model: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        """Add vectors to the cache (its own transaction: survives a failed build)."""
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO embedding_cache(model, hash, vector) VALUES (?,?,?)",
                           [(model, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items])

    def cache_items(self, model: str) -> Iterator[tuple[str, np.ndarray]]:
        """Every (text hash, vector) cached under ``model``."""
        for h, blob in self.db.execute("SELECT hash, vector FROM embedding_cache WHERE model=?", (model,)):
            yield h, np.frombuffer(blob, dtype=np.float32)

    # -- export -----------------------------------------------------------------------------
    def export(self, cache_key: str, dim: int) -> Iterator[DocumentChange]:
        """Every document with its chunks (rowids, terms) and their cached vectors (:mod:`rag.indexing.copy`).

        Raises
        ------
        IndexCorrupt
            When a chunk's vector is not in the cache (repair the index first).
        """
        for row in self.db.execute(f"SELECT {document_columns(self.db)} FROM documents ORDER BY rowid").fetchall():
            doc = stored_document(*row)
            rows = self.db.execute('SELECT rowid, id, ordinal, start, "end", text, hash, terms FROM chunks '
                                   "WHERE doc_id=? ORDER BY ordinal", (doc.id,)).fetchall()
            vectors = self.cached_vectors(cache_key, [r[6] for r in rows], dim)
            if len(vectors) < len({r[6] for r in rows}):
                raise IndexCorrupt(f"{self.folder}/: vectors of {doc.source} are not in the cache {cache_key}",
                                   Remedy.REPAIR, str(self.folder))
            yield DocumentChange(None, doc, list(export_chunks(rows, vectors)))

    def file_records(self) -> list[tuple]:
        """Every file stamp: (path, size, mtime_ns, ctime_ns, inode, reader)."""
        return self.db.execute("SELECT path, size, mtime_ns, ctime_ns, inode, reader FROM files").fetchall()

    # -- lock -------------------------------------------------------------------------------
    @contextmanager
    def build_lock(self, wait: float = 0.0) -> Iterator[None]:
        """Hold ``build.lock``; waits up to ``wait`` seconds, then raises :class:`IndexBusy`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fh = open(self.folder / LOCK_NAME, "a+")
        deadline = time.monotonic() + wait
        try:
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise IndexBusy(f"another build is running on {self.folder}/ "
                                        f"(lock {self.folder / LOCK_NAME})", Remedy.WAIT, str(self.folder)) from None
                    time.sleep(0.2)
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
            yield
        finally:
            fh.close()


def docs_under(docs: Iterable[dict], paths: Iterable[str]) -> list[str]:
    """Ids of the documents (rows of :meth:`Store.documents`) read from these resolved files or below these folders.

    A document's key is the resolved path of its file, followed by ``#record`` for the records of
    a JSONL or SQuAD file.
    """
    wanted = set(paths)
    return sorted({d["id"] for d in docs if not wanted.isdisjoint(key_files(d["key"]))
                   or any(d["key"].startswith(w + os.sep) for w in wanted)})


def _file_day_of(key: str) -> str | None:
    """The modification day of the file a document key comes from, if it is still there."""
    for path in key_files(key):
        try:
            return file_day(os.stat(path).st_mtime)
        except (OSError, ValueError):
            continue
    return None


def _like_escape(text: str) -> str:
    """``text`` matched literally by ``LIKE ? ESCAPE '\\'``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_records(name: str) -> str:
    """LIKE pattern of the sources of a JSONL or SQuAD file's records (``file#line``)."""
    return _like_escape(name) + "#%"


def _like_prefix(name: str) -> str:
    return _like_escape(name.rstrip("/")) + "/%"


