"""The PostgreSQL backend's records: documents, chunks with their vectors, the cache, the lexical statistics.

The index lives in one database (``postgresql://user@host:port/db``), shared by every
``rag serve`` and ``rag ask`` process, readable from a streaming replica. Every SQL statement of
this backend's writes is here; its searches are in :mod:`rag.retrieval.pg_search`.

- **Documents and chunks** as in the local index; each chunk row holds its vector
  (pgvector ``halfvec``, an HNSW index on inner product) and its number of terms.
- **Lexical side**: the project's own BM25 terms (:func:`rag.text.analysis.index_terms`, given
  by the indexer) numbered once in ``terms`` with their chunk and document frequencies, postings
  per chunk and per document with their counts and lengths, and the totals (``lexical_stats``).
  BM25 is computed at query time from them (:mod:`rag.retrieval.pg_lexical`), so a document's change
  touches its own rows and a few counters, never the whole collection; the postings are also kept
  packed per term (:mod:`rag.store.pg_packed`), packed again by a build once enough has changed.
- **One document per transaction** (:meth:`PgStore.apply`): the old version's postings, chunks
  and counters go and the new version's come in one commit; a reader's statement sees the
  document and the statistics of one snapshot, before or after it, never half of it. A killed
  build loses its open transaction only; the file stamps and the manifest are written last, so
  the next build reads the files again, finds the committed documents unchanged by hash and does
  the rest. Builds hold a session advisory lock, which dies with their connection.
- **A first load in bulk**: into an index never committed (no manifest, so no reader uses it),
  documents go in batches with COPY, and the HNSW graph and the postings' keys are made once
  after the rows, with the manifest; then the tables are vacuumed and analysed.
- The embedding cache keeps float32 vectors (exact), so an index copied out again
  (:mod:`rag.indexing.copy`) is the one copied in.

psycopg is imported on first use: the base install has no psycopg (``pip install 'rag[postgres]'``).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from ..errors import (
    DependencyMissing,
    IndexBusy,
    IndexCorrupt,
    IndexMismatch,
    IndexMissing,
    IndexReadOnly,
    IndexUnavailable,
    Remedy,
    first_line,
)
from ..ingest.fetch import Validators
from ..ingest.files import key_files
from ..lazy import lazy_import
from ..schema import Document
from ..text.normalize import text_hash
from .base import DocumentChange, StoredChunk, date_condition, export_chunks
from .layout import Manifest, now_iso
from .pg_packed import (
    PACKED_SCHEMA,
    PACKED_TABLES,
    describe,
    has_packed_tables,
    pack,
    pack_due,
    packed_problems,
    record_added,
    record_removed,
)

try:
    psycopg = lazy_import("psycopg")
except ModuleNotFoundError:  # the base install: the error comes when a database is opened
    psycopg = None

LOCK_KEY = 0x7261_6731  # pg_advisory_lock key of builds ("rag1")
VECTOR_TYPE = "halfvec"  # 16-bit floats (half the storage of vector); the cache keeps the exact float32
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 64

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS manifest (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS langs (code smallint PRIMARY KEY, name text UNIQUE NOT NULL);
CREATE SEQUENCE IF NOT EXISTS doc_no;
CREATE SEQUENCE IF NOT EXISTS chunk_rowid;
CREATE SEQUENCE IF NOT EXISTS term_id;
CREATE TABLE IF NOT EXISTS documents (
    doc_no integer UNIQUE NOT NULL DEFAULT nextval('doc_no'),
    id text PRIMARY KEY, key text UNIQUE NOT NULL, source text NOT NULL, title text NOT NULL,
    lang text NOT NULL, sha256 text NOT NULL, text text NOT NULL, meta jsonb NOT NULL DEFAULT '{}',
    chunks integer NOT NULL DEFAULT 0, indexed text NOT NULL, date text NOT NULL DEFAULT '',
    date_source text NOT NULL DEFAULT '', url text NOT NULL DEFAULT '', author text NOT NULL DEFAULT '',
    n_terms integer NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS documents_date ON documents(date);
CREATE TABLE IF NOT EXISTS embedding_cache (model text NOT NULL, hash text NOT NULL, vector bytea NOT NULL,
                                            PRIMARY KEY (model, hash));
CREATE TABLE IF NOT EXISTS files (path text PRIMARY KEY, size bigint NOT NULL, mtime_ns bigint NOT NULL,
                                  ctime_ns bigint NOT NULL, inode bigint NOT NULL, reader text NOT NULL);
CREATE TABLE IF NOT EXISTS pages (key text PRIMARY KEY, url text NOT NULL, final_url text NOT NULL,
                                  etag text NOT NULL, last_modified text NOT NULL, body_sha256 text NOT NULL,
                                  reader text NOT NULL);
CREATE TABLE IF NOT EXISTS terms (term_id integer PRIMARY KEY, term text UNIQUE NOT NULL,
                                  df integer NOT NULL DEFAULT 0, doc_df integer NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS doc_postings (term_id integer NOT NULL, doc_no integer NOT NULL, lang smallint NOT NULL,
                                         tf integer NOT NULL, len integer NOT NULL);
CREATE TABLE IF NOT EXISTS lexical_stats (one boolean PRIMARY KEY DEFAULT true CHECK (one), chunks bigint NOT NULL,
                                          chunk_terms bigint NOT NULL, docs bigint NOT NULL,
                                          doc_terms bigint NOT NULL);
INSERT INTO lexical_stats VALUES (true, 0, 0, 0, 0) ON CONFLICT DO NOTHING;
"""
# made by the first build, which knows the vectors' dimension; their search indexes are DEFERRED
CHUNK_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    rowid bigint PRIMARY KEY, id text UNIQUE NOT NULL,
    doc_no integer NOT NULL REFERENCES documents(doc_no) ON DELETE CASCADE,
    ordinal integer NOT NULL, start integer NOT NULL, "end" integer NOT NULL, text text NOT NULL,
    hash text NOT NULL, terms text NOT NULL, n_terms integer NOT NULL, embedding {vtype}({dim}) NOT NULL);
CREATE TABLE IF NOT EXISTS chunk_postings (term_id integer NOT NULL, rowid bigint NOT NULL, doc_no integer NOT NULL,
                                           lang smallint NOT NULL, tf smallint NOT NULL, len integer NOT NULL);
"""
# The indexes a first load makes once its rows are in (name, table, statement), rather than row by row; every
# later build keeps them up to date as it commits each document.
DEFERRED = (
    ("chunks_doc", "chunks", "CREATE INDEX chunks_doc ON chunks(doc_no)"),
    ("chunk_postings_pkey", "chunk_postings",
     "ALTER TABLE chunk_postings ADD PRIMARY KEY (term_id, rowid) INCLUDE (doc_no, lang, tf, len)"),
    ("chunk_postings_doc", "chunk_postings", "CREATE INDEX chunk_postings_doc ON chunk_postings(doc_no)"),
    ("doc_postings_pkey", "doc_postings",
     "ALTER TABLE doc_postings ADD PRIMARY KEY (term_id, doc_no) INCLUDE (lang, tf, len)"),
    ("doc_postings_doc", "doc_postings", "CREATE INDEX doc_postings_doc ON doc_postings(doc_no)"),
    ("chunks_hnsw", "chunks", "CREATE INDEX chunks_hnsw ON chunks USING hnsw (embedding {vtype}_ip_ops) "
                              "WITH (m = {m}, ef_construction = {efc})"),
)
BULK_BATCH = 1000  # documents per transaction of a first load
BULK_MAINTENANCE_MEM = "1GB"  # maintenance_work_mem while a first load builds its indexes (HNSW in memory)
LISTED = ("id, key, source, title, lang, sha256, chunks, indexed, meta::text AS meta, date, date_source, url, "
          "author")
DOCUMENT_COLUMNS = "id, key, source, title, lang, text, meta::text, date, date_source, url, author"
CHUNK_KEYS = ("rowid", "chunk_id", "doc_id", "start", "end", "text", "source", "title", "lang", "date",
              "date_source", "url", "author")
# what verify recounts: each counter a score reads, against the postings it counts
RECOUNT_SQL = {
    "df": "SELECT count(*) FROM terms t WHERE t.df != (SELECT count(*) FROM chunk_postings p "
          "WHERE p.term_id = t.term_id)",
    "doc_df": "SELECT count(*) FROM terms t WHERE t.doc_df != (SELECT count(*) FROM doc_postings p "
              "WHERE p.term_id = t.term_id)",
}
TOTALS_SQL = ("SELECT (SELECT count(*) FROM chunks), (SELECT coalesce(sum(greatest(n_terms, 1)), 0) FROM chunks), "
              "(SELECT count(*) FROM documents WHERE chunks > 0), "
              "(SELECT coalesce(sum(greatest(n_terms, 1)), 0) FROM documents WHERE chunks > 0)")
REPAIR_SQL = (
    ("UPDATE terms t SET df = coalesce((SELECT count(*) FROM chunk_postings p WHERE p.term_id = t.term_id), 0), "
     "doc_df = coalesce((SELECT count(*) FROM doc_postings p WHERE p.term_id = t.term_id), 0)"),
    f"UPDATE lexical_stats SET (chunks, chunk_terms, docs, doc_terms) = ({TOTALS_SQL})",
)


def vec_literal(v: np.ndarray) -> str:
    """pgvector's text form of a vector."""
    return "[" + ",".join(f"{x:.8g}" for x in np.asarray(v, dtype=np.float32).tolist()) + "]"


def parse_vector(text: str) -> np.ndarray:
    """A vector from pgvector's text form."""
    return np.array([float(x) for x in text.strip("[]").split(",")] if text.strip("[]") else [], dtype=np.float32)


def public_url(url: str) -> str:
    """``url`` without its password (what messages and ``status`` show)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}@{netloc}" if user else netloc, parts.path, parts.query, ""))


class PgStore:
    """The records of an index in a PostgreSQL database; one connection per thread.

    Parameters
    ----------
    url : str
        ``postgresql://user[:password]@host[:port]/database`` (libpq's URI form, its parameters too).
    create : bool
        Create the tables when missing (the database must exist; the ``vector`` extension is
        created if the user may). Otherwise an empty database raises :class:`IndexMissing`.

    Raises
    ------
    DependencyMissing
        psycopg is not installed.
    IndexUnavailable
        The server cannot be reached.
    """

    local = False

    def __init__(self, url: str, create: bool = False):
        if psycopg is None:
            raise DependencyMissing("a PostgreSQL index needs psycopg and pgvector: pip install 'rag[postgres]'")
        self.url = url
        self.folder = public_url(url)  # where the index is, for messages
        self._local = threading.local()
        self._has_chunks = False
        self._langs: dict[str, int] = {}
        if create:
            self._write(self._create_tables)
        elif not self._table_exists("manifest"):
            raise IndexMissing(f"no index in the database {self.folder}", Remedy.BUILD, self.folder)
        self._has_chunks = self._table_exists("chunks")
        self._packed = self._table_exists("packed_state")  # an index made before the packed postings has none

    @staticmethod
    def _create_tables(db) -> None:
        db.execute(SCHEMA)
        if not has_packed_tables(db):
            db.execute(PACKED_SCHEMA)

    # -- connections -------------------------------------------------------------------------
    @property
    def db(self):
        """This thread's connection (autocommit; transactions are explicit)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            try:
                conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            except psycopg.OperationalError as exc:
                raise IndexUnavailable(f"cannot reach the database {self.folder}: {first_line(exc)}",
                                       where=self.folder) from None
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn the server's refusals into the library's errors (a replica refusing a write, a lost server)."""
        try:
            yield
        except psycopg.errors.ReadOnlySqlTransaction:
            raise IndexReadOnly(f"the database {self.folder} is read-only (a replica, or the primary is in "
                                f"recovery): builds write to the primary", where=self.folder) from None
        except psycopg.OperationalError as exc:
            self.close()
            raise IndexUnavailable(f"lost the database {self.folder}: {first_line(exc)}", where=self.folder) from None

    def query(self, sql: str, args: Any = None, prepare: bool | None = None, binary: bool = False) -> list[tuple]:
        """Rows of one statement (outside any transaction: its own snapshot); ``prepare`` False plans it
        for its own arguments every time (psycopg prepares a statement run often, and the server may then
        keep one generic plan for all arguments); ``binary`` has the values sent in binary (``bytea`` as is)."""
        with self.errors():
            return self.db.execute(sql, args, prepare=prepare, binary=binary).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One transaction on this thread's connection, rolled back on any exception."""
        with self.errors():
            db = self.db
            with db.transaction():
                yield db

    def _write(self, work) -> Any:
        with self.transaction() as db:
            return work(db)

    def _table_exists(self, name: str) -> bool:
        return self.query("SELECT to_regclass(%s) IS NOT NULL", (name,))[0][0]

    # -- manifest ----------------------------------------------------------------------------
    def manifest(self) -> Manifest | None:
        """The manifest, or None for an index never committed."""
        rows = dict(self.query("SELECT key, value FROM manifest"))
        return Manifest.from_rows(rows) if rows else None

    def has_search_files(self, manifest: Manifest | None) -> bool:
        """Always True: the database's search indexes are kept with its rows."""
        return True

    # -- reads -------------------------------------------------------------------------------
    def _dicts(self, sql: str, args: Any = None) -> list[dict]:
        with self.errors():
            cur = self.db.execute(sql, args)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r)) for r in cur.fetchall()]

    def documents(self) -> list[dict]:
        """All documents (without their text), ordered by source."""
        return self._dicts(f"SELECT {LISTED} FROM documents ORDER BY source")

    def find_documents(self, query: str = "", limit: int = 50, offset: int = 0,
                       count: bool = True) -> tuple[list[dict], int]:
        """One page of the documents whose title or source holds ``query`` (any case), most recently indexed
        first, and how many match (-1 when ``count`` is false)."""
        where, args = "", []
        if query.strip():
            pattern = "%" + query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where, args = "WHERE title ILIKE %s OR source ILIKE %s", [pattern, pattern]
        limit, offset = max(0, int(limit)), max(0, int(offset))
        rows = self._dicts(f"SELECT {LISTED} FROM documents {where} ORDER BY doc_no DESC LIMIT %s OFFSET %s",
                           [*args, limit, offset])
        if not count:
            return rows, -1
        if offset == 0 and len(rows) < limit:
            return rows, len(rows)
        return rows, int(self.query(f"SELECT count(*) FROM documents {where}", args)[0][0])

    def documents_by_id(self, doc_ids: Iterable[str]) -> list[dict]:
        """The rows (as :meth:`documents` gives them) of the documents with these ids, in no set order."""
        return self._dicts(f"SELECT {LISTED} FROM documents WHERE id = ANY(%s)", (list(dict.fromkeys(doc_ids)),))

    def has_documents_from(self, path: Any) -> bool:
        """Whether a document read from the file ``path`` (its resolved path, or its records) is indexed."""
        key = str(path)
        return bool(self.query("SELECT 1 FROM documents WHERE key = %s OR (key >= %s AND key < %s) LIMIT 1",
                               (key, key + "#", key + "$")))

    def stored_documents(self, ids: Sequence[str] | None = None) -> list[Document]:
        """Every indexed document (or those of ``ids``) with its text, as it was indexed."""
        if ids is None:
            return [_document(*row) for row in self.query(f"SELECT {DOCUMENT_COLUMNS} FROM documents ORDER BY doc_no")]
        return [_document(*row) for row in self.query(f"SELECT {DOCUMENT_COLUMNS} FROM documents WHERE id = ANY(%s) "
                                                      "ORDER BY doc_no", (list(ids),))]

    def document_text(self, doc_id: str) -> str | None:
        """A document's full extracted text."""
        rows = self.query("SELECT text FROM documents WHERE id = %s", (doc_id,))
        return rows[0][0] if rows else None

    def counts(self) -> tuple[int, int]:
        """(documents, chunks)."""
        chunks = "(SELECT count(*) FROM chunks)" if self._chunks_ready() else "0"
        d, c = self.query(f"SELECT (SELECT count(*) FROM documents), {chunks}")[0]
        return int(d), int(c)

    def chunk_count(self) -> int:
        """Chunks in the index, from the statistics the builds keep (no count over the table)."""
        return int(self.query("SELECT chunks FROM lexical_stats")[0][0])

    def _chunks_ready(self) -> bool:
        if not self._has_chunks:
            self._has_chunks = self._table_exists("chunks")
        return self._has_chunks

    def chunk_rows(self, rowids: Iterable[int]) -> dict[int, dict]:
        """Chunk rows joined with their document, by chunk rowid."""
        rowids = [int(r) for r in rowids]
        if not rowids:
            return {}
        rows = self.query('SELECT c.rowid, c.id, d.id, c.start, c."end", c.text, d.source, d.title, d.lang, d.date, '
                          "d.date_source, d.url, d.author FROM chunks c JOIN documents d ON d.doc_no = c.doc_no "
                          "WHERE c.rowid = ANY(%s)", (rowids,))
        return {r[0]: dict(zip(CHUNK_KEYS, r)) for r in rows}

    def resolve_docs(self, names: Iterable[str]) -> list[str]:
        """Document ids matching ids, sources or source prefixes (a folder), or titles."""
        out: list[str] = []
        for name in names:
            prefix = name.rstrip("/").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"
            out += [r[0] for r in self.query("SELECT id FROM documents WHERE id = %s OR source = %s OR title = %s "
                                             "OR source LIKE %s", (name, name, name, prefix))]
        return sorted(set(out))

    def doc_numbers(self, doc_ids: Sequence[str] | None, since: str | None, until: str | None) -> list[int] | None:
        """The document numbers (the search indexes' keys) of ``doc_ids`` dated from ``since`` to ``until``
        (None: no filter at all; a document without a date is in no range)."""
        if doc_ids is None and not since and not until:
            return None
        sql, args = "SELECT doc_no FROM documents WHERE true", []
        if doc_ids is not None:
            sql += " AND id = ANY(%s)"
            args.append(list(doc_ids))
        if since or until:
            dated, more = date_condition(since, until, mark="%s")
            sql, args = sql + dated, args + more
        return [r[0] for r in self.query(sql, args)]

    def status(self) -> dict:
        """Documents, chunks, model, dimensions, last update (and generation, languages, chunking, search)."""
        manifest = self.manifest()
        if manifest is None:
            raise IndexCorrupt(f"{self.folder} has no committed build yet", Remedy.BUILD, self.folder)
        docs, chunks = self.counts()
        langs = dict(self.query("SELECT lang, count(*) FROM documents GROUP BY lang"))
        return {"documents": docs, "chunks": chunks, "model": manifest.model, "dimensions": manifest.dimensions,
                "updated": manifest.updated, "index": self.folder, "generation": manifest.generation,
                "format_version": manifest.format_version, "chunk_tokens": manifest.chunk_tokens,
                "chunk_overlap": manifest.chunk_overlap, "languages": {k: int(v) for k, v in langs.items()},
                "encoder": manifest.encoder, "encoder_recipe": manifest.encoder_recipe,
                "vector_search": f"PostgreSQL pgvector HNSW ({VECTOR_TYPE}, m={HNSW_M}, "
                                 f"ef_construction={HNSW_EF_CONSTRUCTION}); exact up to exact_search_limit chunks",
                "lexical_search": describe(self.query, self._packed) if self._chunks_ready() else ""}

    def lang_codes(self) -> dict[str, int]:
        """The languages of the postings, by name."""
        self._langs = dict(self.query("SELECT name, code FROM langs"))
        return dict(self._langs)

    # -- file stamps and pages ---------------------------------------------------------------
    def file_stamps(self, reader: str) -> dict[str, tuple[int, int, int, int]]:
        """(size, mtime_ns, ctime_ns, inode) of the files read by ``reader``, by resolved path."""
        rows = self.query("SELECT path, size, mtime_ns, ctime_ns, inode FROM files WHERE reader = %s", (reader,))
        return {path: tuple(int(x) for x in stamp) for path, *stamp in rows}

    def record_files(self, stamps: Mapping[str, tuple[int, int, int, int]], reader: str) -> None:
        """Record file stamps (in the caller's transaction, if any)."""
        if stamps:
            with self.errors():
                self.db.cursor().executemany(
                    "INSERT INTO files (path, size, mtime_ns, ctime_ns, inode, reader) VALUES (%s,%s,%s,%s,%s,%s) "
                    "ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, "
                    "ctime_ns = excluded.ctime_ns, inode = excluded.inode, reader = excluded.reader",
                    [(p, *s, reader) for p, s in stamps.items()])

    def record_digests(self, digests: Mapping[str, str]) -> None:
        """Keep the record digest (``meta["record_sha256"]``) of documents by id (in the caller's transaction,
        if any): documents found unchanged whose JSONL record's bytes were not the ones indexed."""
        if digests:
            with self.errors():
                self.db.execute("UPDATE documents d SET meta = d.meta || jsonb_build_object('record_sha256', x.digest) "
                                "FROM unnest(%s::text[], %s::text[]) AS x(id, digest) WHERE d.id = x.id",
                                (list(digests), list(digests.values())))

    def page_validators(self, reader: str) -> dict[str, Validators]:
        """Validators of the pages read by ``reader``, by document key."""
        rows = self.query("SELECT key, url, final_url, etag, last_modified, body_sha256 FROM pages WHERE reader = %s",
                          (reader,))
        return {key: Validators(*rest) for key, *rest in rows}

    def record_pages(self, pages: Mapping[str, Validators], reader: str) -> None:
        """Record page validators (in the caller's transaction, if any)."""
        if pages:
            with self.errors():
                self.db.cursor().executemany(
                    "INSERT INTO pages (key, url, final_url, etag, last_modified, body_sha256, reader) "
                    "VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (key) DO UPDATE SET url = excluded.url, "
                    "final_url = excluded.final_url, etag = excluded.etag, last_modified = excluded.last_modified, "
                    "body_sha256 = excluded.body_sha256, reader = excluded.reader",
                    [(k, *v, reader) for k, v in pages.items()])

    # -- embedding cache ---------------------------------------------------------------------
    def cached_vectors(self, model: str, hashes: list[str], dim: int) -> dict[str, np.ndarray]:
        """Vectors in the cache for these text hashes."""
        out: dict[str, np.ndarray] = {}
        for i in range(0, len(hashes), 5000):
            for h, blob in self.query("SELECT hash, vector FROM embedding_cache WHERE model = %s AND hash = ANY(%s)",
                                      (model, hashes[i:i + 5000])):
                vec = np.frombuffer(bytes(blob), dtype=np.float32)
                if vec.shape == (dim,):
                    out[h] = vec
        return out

    def cache_vectors(self, model: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        """Add vectors to the cache (its own transaction: survives a failed build)."""
        rows = [(model, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items]
        if rows:
            with self.transaction() as db:
                db.cursor().executemany("INSERT INTO embedding_cache (model, hash, vector) VALUES (%s,%s,%s) "
                                        "ON CONFLICT (model, hash) DO UPDATE SET vector = excluded.vector", rows)

    def cache_keys(self) -> list[str]:
        """The cache keys (model and encoder) vectors are cached under."""
        return [r[0] for r in self.query("SELECT DISTINCT model FROM embedding_cache")]

    def cache_items(self, model: str) -> Iterator[tuple[str, np.ndarray]]:
        """Every (text hash, vector) cached under ``model``."""
        for h, blob in self.query("SELECT hash, vector FROM embedding_cache WHERE model = %s", (model,)):
            yield h, np.frombuffer(bytes(blob), dtype=np.float32)

    # -- lock --------------------------------------------------------------------------------
    @contextmanager
    def build_lock(self, wait: float = 0.0) -> Iterator[None]:
        """Hold the database's build lock (a session advisory lock: a killed build leaves none); waits up to
        ``wait`` seconds, then raises :class:`IndexBusy`."""
        deadline = time.monotonic() + wait
        while not self.query("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))[0][0]:
            if time.monotonic() >= deadline:
                raise IndexBusy(f"another build is running on the database {self.folder}", Remedy.WAIT, self.folder)
            time.sleep(0.2)
        try:
            yield
        finally:
            try:
                self.query("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
            except IndexUnavailable:  # the connection went, and the lock with it
                pass

    # -- writes ------------------------------------------------------------------------------
    def apply(self, changes: Iterable[DocumentChange], manifest: Manifest, *, reader: str = "",
              stamps: Mapping[str, tuple[int, int, int, int]] | None = None,
              pages: Mapping[str, Validators] | None = None,
              page_reader: str = "", forget_keys: Sequence[str] = (), forget_all: bool = False,
              drop_cache: str | None = None, inside: Any = None, committed: Any = None, packing: Any = None,
              batch: int = BULK_BATCH) -> None:
        """Commit the changes, then the stamps and the manifest.

        Into an index never committed (no manifest: a first build, a copy, or the rest of a first
        build that was killed) the changes go ``batch`` documents per transaction, with COPY, and the
        search indexes (:data:`DEFERRED`: the HNSW graph, the postings' keys) are made once, in the
        transaction that writes the manifest, then the tables are vacuumed and analysed. No reader
        uses an index without a manifest, and the documents of each committed batch are whole, so a
        killed first load keeps what it committed and the next build does the rest. Into a committed
        index each document's change is its own transaction.

        Parameters
        ----------
        changes : iterable of DocumentChange
            Documents added, replaced (``gone`` and ``document``) or removed (``document`` None).
        manifest : Manifest
            Written last, with the file stamps (``stamps`` under ``reader``) and page validators
            (``pages`` under ``page_reader``): a build killed before it reads its files again.
        forget_keys : sequence of str
            Keys of removed or replaced documents whose file stamps and validators go (all with ``forget_all``).
        drop_cache : str, optional
            A cache key whose vectors will never be read again.
        inside : callable, optional
            Called inside each transaction of changes, before it commits (fault injection).
        committed : callable, optional
            Called after each transaction of changes commits (fault injection).
        packing : callable, optional
            Called inside the transaction that packs the postings again, when due (fault injection).
        batch : int
            Documents per transaction of a first load (at least 1).

        Raises
        ------
        ValueError
            ``batch`` is below 1.
        """
        if batch < 1:
            raise ValueError(f"batch={batch!r}: a first load needs at least 1 document per transaction")
        self._ensure_chunks(manifest.dimensions)
        bulk = self.manifest() is None
        if bulk:
            self._write(self._drop_deferred)
        for group in _groups(changes, batch if bulk else 1):
            with self.transaction() as db:
                for change in group:
                    if change.gone is not None:
                        self._remove(db, change.gone)
                self._add_many(db, [(c.document, c.chunks) for c in group if c.document is not None])
                if inside is not None:
                    inside()
            if committed is not None:
                committed()
        with self.transaction() as db:
            made = self._create_deferred(db, manifest.dimensions)
            if forget_all:
                db.execute("DELETE FROM files")
                db.execute("DELETE FROM pages")
            elif forget_keys:
                files = [f for k in forget_keys for f in key_files(k)]
                db.execute("DELETE FROM files WHERE path = ANY(%s)", (files,))
                db.execute("DELETE FROM pages WHERE key = ANY(%s)", (list(forget_keys),))
            self.record_files(stamps or {}, reader)
            self.record_pages(pages or {}, page_reader)
            if drop_cache:
                db.execute("DELETE FROM embedding_cache WHERE model = %s", (drop_cache,))
            db.execute("SELECT setval('chunk_rowid', m) FROM (SELECT max(rowid) AS m FROM chunks) x "  # numbers copied
                       "WHERE m >= (SELECT last_value + is_called::int FROM chunk_rowid)")
            db.execute("DELETE FROM manifest")
            db.cursor().executemany("INSERT INTO manifest (key, value) VALUES (%s, %s)",
                                    list(manifest.to_rows().items()))
        if made:
            self.vacuum()
        self.pack(packing, force=False)

    def pack(self, packing: Any = None, force: bool = True) -> bool:
        """Pack the postings again (:mod:`rag.store.pg_packed`), when due unless ``force``, in one transaction;
        ``packing`` is called inside it before it commits (fault injection). True if it packed."""
        if not self._packed:
            return False
        with self.transaction() as db:
            if not (force or pack_due(db)):
                return False
            pack(db, now_iso())
            if packing is not None:
                packing()
        with self.errors():
            for table in ("chunk_packed", "doc_packed"):
                self.db.execute(f"VACUUM (ANALYZE) {table}")
        return True

    def vacuum(self) -> None:
        """VACUUM ANALYZE the index's tables (the planner's statistics, and index-only scans of the postings)."""
        with self.errors():
            for table in ("documents", "chunks", "chunk_postings", "doc_postings", "terms"):
                self.db.execute(f"VACUUM (ANALYZE) {table}")

    def _missing_deferred(self, db) -> list[tuple[str, str, str]]:
        have = {r[0] for r in db.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                                         "AND tablename IN ('chunks', 'chunk_postings', 'doc_postings')")}
        return [d for d in DEFERRED if d[0] not in have]

    def _drop_deferred(self, db) -> None:
        """Drop the search indexes a first load makes after its rows (none of them is there, usually)."""
        for name, table, _ in DEFERRED:
            if name.endswith("_pkey"):
                db.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")
            else:
                db.execute(f"DROP INDEX IF EXISTS {name}")

    def _create_deferred(self, db, dim: int) -> bool:
        """Make the search indexes that are missing (in the caller's transaction); True if any was made."""
        missing = self._missing_deferred(db)
        if missing:
            db.execute(f"SET LOCAL maintenance_work_mem = '{BULK_MAINTENANCE_MEM}'")
        for _, _, sql in missing:
            db.execute(sql.format(vtype=VECTOR_TYPE, dim=int(dim), m=HNSW_M, efc=HNSW_EF_CONSTRUCTION))
        return bool(missing)

    def _ensure_chunks(self, dim: int) -> None:
        """The chunks table for vectors of ``dim`` dimensions (made by the first build).

        Raises
        ------
        IndexMismatch
            Its vectors have another dimension (another model): one column holds one dimension.
        """
        if not self._chunks_ready():
            self._write(lambda db: db.execute(CHUNK_SCHEMA.format(vtype=VECTOR_TYPE, dim=int(dim), m=HNSW_M,
                                                                  efc=HNSW_EF_CONSTRUCTION)))
            self._has_chunks = True
        have = self.query("SELECT atttypmod FROM pg_attribute WHERE attrelid = 'chunks'::regclass "
                          "AND attname = 'embedding'")[0][0]
        if have != int(dim):
            raise IndexMismatch(f"the database {self.folder} holds vectors of {have} dimensions, this build makes "
                                f"{dim} (another model): build into a new database, or copy the index out, drop "
                                f"it and build again", where=self.folder)

    def _lang_code(self, db, name: str) -> int:
        """The code of a language name (added when new, in the caller's transaction)."""
        if name not in self._langs:
            db.execute("INSERT INTO langs (code, name) SELECT coalesce(max(code) + 1, 0), %s FROM langs "
                       "ON CONFLICT (name) DO NOTHING", (name,))
            self._langs = dict(db.execute("SELECT name, code FROM langs").fetchall())
        return self._langs[name]

    def _remove(self, db, doc_id: str) -> None:
        """Delete a document with its chunks and postings, its counts taken off the statistics."""
        row = db.execute("SELECT doc_no FROM documents WHERE id = %s", (doc_id,)).fetchone()
        if row is None:
            return
        dn = row[0]
        if self._packed:
            record_removed(db, dn)
        db.execute("UPDATE terms t SET df = t.df - x.n FROM (SELECT term_id, count(*) AS n FROM chunk_postings "
                   "WHERE doc_no = %s GROUP BY term_id) x WHERE t.term_id = x.term_id", (dn,))
        db.execute("UPDATE terms t SET doc_df = t.doc_df - 1 FROM doc_postings p "
                   "WHERE p.doc_no = %s AND t.term_id = p.term_id", (dn,))
        db.execute("UPDATE lexical_stats s SET chunks = s.chunks - x.n, chunk_terms = s.chunk_terms - x.len, "
                   "docs = s.docs - x.d, doc_terms = s.doc_terms - x.dlen FROM ("
                   "SELECT count(*) AS n, coalesce(sum(greatest(n_terms, 1)), 0) AS len, (count(*) > 0)::int AS d, "
                   "greatest(coalesce(sum(n_terms), 0), 1) * (count(*) > 0)::int AS dlen "
                   "FROM chunks WHERE doc_no = %s) x", (dn,))
        db.execute("DELETE FROM chunk_postings WHERE doc_no = %s", (dn,))
        db.execute("DELETE FROM doc_postings WHERE doc_no = %s", (dn,))
        db.execute("DELETE FROM documents WHERE doc_no = %s", (dn,))  # its chunks go with it (ON DELETE CASCADE)

    def _add_many(self, db, items: Sequence[tuple[Document, Sequence[StoredChunk]]]) -> None:
        """Insert documents, their chunks and postings with COPY, their counts added to the statistics."""
        if not items:
            return
        doc_nos = [r[0] for r in db.execute("SELECT nextval('doc_no') FROM generate_series(1, %s)",
                                            (len(items),)).fetchall()]
        vocab = sorted({t for _, chunks in items for c in chunks for t in c.terms})
        ids: dict[str, int] = {}
        if vocab:
            db.execute("INSERT INTO terms (term_id, term) SELECT nextval('term_id'), t FROM unnest(%s::text[]) AS t "
                       "ON CONFLICT (term) DO NOTHING", (vocab,))
            ids = dict(db.execute("SELECT term, term_id FROM terms WHERE term = ANY(%s)", (vocab,)).fetchall())
        unnumbered = sum(1 for _, chunks in items for c in chunks if c.rowid is None)
        fresh = iter([r[0] for r in db.execute("SELECT nextval('chunk_rowid') FROM generate_series(1, %s)",
                                               (unnumbered,)).fetchall()] if unnumbered else [])
        cur = db.cursor()
        df: Counter = Counter()
        doc_df: Counter = Counter()
        totals = [0, 0, 0, 0]  # chunks, their lengths, documents with chunks, their lengths
        with cur.copy("COPY documents (doc_no, id, key, source, title, lang, sha256, text, meta, chunks, indexed, "
                      "date, date_source, url, author, n_terms) FROM STDIN") as cp:
            for dn, (d, chunks) in zip(doc_nos, items):
                cp.write_row((dn, d.id, d.key, d.source, d.title, d.lang, d.sha256, d.text,
                              json.dumps(d.meta, ensure_ascii=False), len(chunks), now_iso(), d.date, d.date_source,
                              d.url, d.author, sum(len(c.terms) for c in chunks)))
        rows = []  # (doc_no, lang code, rowid, chunk)
        for dn, (d, chunks) in zip(doc_nos, items):
            lang = self._lang_code(db, d.lang)
            rows += [(dn, lang, c.rowid if c.rowid is not None else next(fresh), c) for c in chunks]
        with cur.copy('COPY chunks (rowid, id, doc_no, ordinal, start, "end", text, hash, terms, n_terms, embedding) '
                      "FROM STDIN") as cp:
            for dn, _, rid, c in rows:
                cp.write_row((rid, c.id, dn, c.ordinal, c.start, c.end, c.text, c.hash, " ".join(c.terms),
                              len(c.terms), vec_literal(c.vector)))
        with cur.copy("COPY chunk_postings (term_id, rowid, doc_no, lang, tf, len) FROM STDIN") as cp:
            for dn, lang, rid, c in rows:
                length = max(len(c.terms), 1)  # a chunk without terms counts 1, as bm25s's empty term
                totals[0] += 1
                totals[1] += length
                for term, tf in Counter(c.terms).items():
                    df[ids[term]] += 1
                    cp.write_row((ids[term], rid, dn, lang, tf, length))
        with cur.copy("COPY doc_postings (term_id, doc_no, lang, tf, len) FROM STDIN") as cp:
            for dn, (d, chunks) in zip(doc_nos, items):
                if not chunks:
                    continue
                counts = Counter(t for c in chunks for t in c.terms)
                dlen = max(sum(counts.values()), 1)
                lang = self._langs[d.lang]
                totals[2] += 1
                totals[3] += dlen
                for term, tf in counts.items():
                    doc_df[ids[term]] += 1
                    cp.write_row((ids[term], dn, lang, tf, dlen))
        if df:
            keys = sorted(df)
            db.execute("UPDATE terms t SET df = t.df + x.n, doc_df = t.doc_df + x.nd "
                       "FROM unnest(%s::int[], %s::int[], %s::int[]) AS x(id, n, nd) WHERE t.term_id = x.id",
                       (keys, [df[k] for k in keys], [doc_df[k] for k in keys]))
        if totals[0]:
            db.execute("UPDATE lexical_stats SET chunks = chunks + %s, chunk_terms = chunk_terms + %s, "
                       "docs = docs + %s, doc_terms = doc_terms + %s", totals)
        if self._packed:
            record_added(db, [rid for _, _, rid, _ in rows], doc_nos)

    # -- export, verify, repair --------------------------------------------------------------
    def export(self, cache_key: str, dim: int) -> Iterator[DocumentChange]:
        """Every document with its chunks (numbers, terms) and vectors, exact from the cache where it has them."""
        for doc_no, *row in self.query(f"SELECT doc_no, {DOCUMENT_COLUMNS} FROM documents ORDER BY doc_no"):
            doc = _document(*row)
            rows = self.query('SELECT rowid, id, ordinal, start, "end", text, hash, terms, embedding::text '
                              "FROM chunks WHERE doc_no = %s ORDER BY ordinal", (doc_no,))
            vectors = {r[6]: parse_vector(r[8]) for r in rows}
            vectors.update(self.cached_vectors(cache_key, list(vectors), dim))
            yield DocumentChange(None, doc, list(export_chunks([r[:8] for r in rows], vectors)))

    def file_records(self) -> list[tuple]:
        """Every file stamp: (path, size, mtime_ns, ctime_ns, inode, reader)."""
        return self.query("SELECT path, size, mtime_ns, ctime_ns, inode, reader FROM files")

    def verify(self) -> list[tuple[str, str]]:
        """(part, problem) for what is wrong: counters against the postings, chunks without vectors, offsets."""
        if self.manifest() is None:
            return [("manifest", "no committed build (empty manifest)")]
        if not self._chunks_ready():
            return [("chunks", "the chunks table is missing")]
        problems = []
        for name, sql in RECOUNT_SQL.items():
            bad = self.query(sql)[0][0]
            if bad:
                problems.append(("lexical", f"{bad} terms whose {name} differs from a count of the postings"))
        have = self.query("SELECT chunks, chunk_terms, docs, doc_terms FROM lexical_stats")[0]
        recount = self.query(TOTALS_SQL)[0]
        if tuple(int(x) for x in have) != tuple(int(x) for x in recount):
            problems.append(("lexical", f"totals {tuple(have)} differ from a count of the rows {tuple(recount)}"))
        bad = self.query("SELECT count(*) FROM documents d WHERE d.chunks != "
                         "(SELECT count(*) FROM chunks c WHERE c.doc_no = d.doc_no)")[0][0]
        if bad:
            problems.append(("chunks", f"{bad} documents have a wrong chunk count"))
        bad = self.query('SELECT count(*) FROM chunks c JOIN documents d ON d.doc_no = c.doc_no '
                         'WHERE substr(d.text, c.start + 1, c."end" - c.start) != c.text')[0][0]
        if bad:
            problems.append(("chunks", f"{bad} chunks whose offsets do not match their document text"))
        bad = self.query("SELECT count(*) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM chunk_postings p "
                         "WHERE p.rowid = c.rowid) AND c.n_terms > 0")[0][0]
        if bad:
            problems.append(("lexical", f"{bad} chunks with terms but no postings"))
        if self._packed:
            problems += [("lexical", p) for p in packed_problems(self.query)]
        return problems

    def repair(self) -> None:
        """Rewrite every counter a score reads from the postings and rows, in one transaction, then the packed
        postings."""
        with self.transaction() as db:
            for sql in REPAIR_SQL:
                db.execute(sql)
        self.pack()

    def drop(self) -> None:
        """Delete every table of the index (its database stays)."""
        self._write(lambda db: db.execute(
            "DROP TABLE IF EXISTS chunk_postings, chunks, doc_postings, terms, lexical_stats, documents, langs, "
            f"embedding_cache, files, pages, manifest, {', '.join(PACKED_TABLES)} CASCADE; "
            "DROP SEQUENCE IF EXISTS doc_no, chunk_rowid, term_id"))
        self._has_chunks = self._packed = False
        self._langs = {}


def _groups(items: Iterable[Any], size: int) -> Iterator[list]:
    """``items`` in lists of ``size`` (the last one shorter), taken as they come."""
    group: list = []
    for item in items:
        group.append(item)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def _document(doc_id: str, key: str, source: str, title: str, lang: str, text: str, meta: str | None,
              date: str = "", date_source: str = "", url: str = "", author: str = "") -> Document:
    try:
        meta = json.loads(meta) if meta else {}
    except json.JSONDecodeError:
        meta = {}
    return Document(doc_id, key, source, title, text, lang, text_hash(text), meta, date or "", date_source or "",
                    url or "", author or "")

