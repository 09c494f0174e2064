"""Packed postings of the PostgreSQL backend: each term's postings in one row, so BM25 reads a few blobs.

A question's BM25 reads every posting of its terms (a dozen terms: tens of thousands of rows at
100,000 chunks), and PostgreSQL's executor pays per row. So the postings are also kept packed:
one row per (term, language) holding all its chunk postings as four arrays (row numbers,
document numbers, counts, lengths: big-endian int64 / int32 in ``bytea``, stored uncompressed),
and the same for the document postings. :mod:`rag.retrieval.pg_lexical` scores them with numpy.

Packing rewrites the arrays from the row postings (which stay the reference: every document's
transaction keeps them, the counters and the statistics exact). Between two packings:

- **new rows** are the postings of chunks numbered above ``chunk_mark`` and documents numbered
  above ``doc_mark`` (row and document numbers only grow: a replaced document is removed and
  added again under new numbers); a search reads them from the row postings;
- **gone rows**: removing a document packed before records its number and its chunks' numbers
  (``dead_docs``, ``dead_chunks``) in the removal's own transaction; a search leaves them out.

So a search over the packed arrays, the new rows and the gone ones, in one statement, sees one
snapshot and scores exactly what the row postings hold. A build packs again (in one transaction,
under the build lock) when the rows added or removed since the last packing reach
:data:`PACK_SHARE` of the index, at least :data:`PACK_MIN_CHUNKS` chunks; a first load always
packs. Chunks copied in with row numbers at or below the mark (rows not numbered by this
database) make the packed arrays invalid until the same build packs again: searches then read
the row postings alone.
"""

from __future__ import annotations

import logging
import time
from typing import Sequence

log = logging.getLogger(__name__)

PACK_MIN_CHUNKS = 2000  # chunks added or removed since the last packing before a build packs again
PACK_SHARE = 0.1  # ... and at least this share of the index's chunks
PACK_WORK_MEM = "256MB"

PACKED_SCHEMA = """
CREATE TABLE IF NOT EXISTS packed_state (one boolean PRIMARY KEY DEFAULT true CHECK (one), valid boolean NOT NULL,
                                         chunk_mark bigint NOT NULL, doc_mark integer NOT NULL, packed text NOT NULL);
INSERT INTO packed_state VALUES (true, false, -1, -1, '') ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS chunk_packed (term_id integer NOT NULL, lang smallint NOT NULL, n integer NOT NULL,
                                         rowids bytea NOT NULL, docs bytea NOT NULL, tfs bytea NOT NULL,
                                         lens bytea NOT NULL, PRIMARY KEY (term_id, lang));
CREATE TABLE IF NOT EXISTS doc_packed (term_id integer NOT NULL, lang smallint NOT NULL, n integer NOT NULL,
                                       docs bytea NOT NULL, tfs bytea NOT NULL, lens bytea NOT NULL,
                                       PRIMARY KEY (term_id, lang));
ALTER TABLE chunk_packed ALTER rowids SET STORAGE EXTERNAL, ALTER docs SET STORAGE EXTERNAL,
    ALTER tfs SET STORAGE EXTERNAL, ALTER lens SET STORAGE EXTERNAL;
ALTER TABLE doc_packed ALTER docs SET STORAGE EXTERNAL, ALTER tfs SET STORAGE EXTERNAL,
    ALTER lens SET STORAGE EXTERNAL;
CREATE TABLE IF NOT EXISTS dead_chunks (rowid bigint PRIMARY KEY);
CREATE TABLE IF NOT EXISTS dead_docs (doc_no integer PRIMARY KEY);
"""
PACKED_TABLES = ("packed_state", "chunk_packed", "doc_packed", "dead_chunks", "dead_docs")

# the arrays of one side, in the order the search decodes them (no ORDER BY: every aggregate of a group reads its
# rows in the same order, so the arrays stay aligned), for the terms numbered in a range
CLEAR_SQL = ("DELETE FROM chunk_packed", "DELETE FROM doc_packed", "DELETE FROM dead_chunks", "DELETE FROM dead_docs")
CHUNK_PACK_SQL = (
    "INSERT INTO chunk_packed (term_id, lang, n, rowids, docs, tfs, lens) "
    "SELECT term_id, lang, count(*), string_agg(int8send(rowid), ''::bytea), string_agg(int4send(doc_no), ''::bytea), "
    "string_agg(int4send(tf::integer), ''::bytea), string_agg(int4send(len), ''::bytea) "
    "FROM chunk_postings WHERE term_id BETWEEN %s AND %s GROUP BY term_id, lang")
DOC_PACK_SQL = (
    "INSERT INTO doc_packed (term_id, lang, n, docs, tfs, lens) "
    "SELECT term_id, lang, count(*), string_agg(int4send(doc_no), ''::bytea), string_agg(int4send(tf), ''::bytea), "
    "string_agg(int4send(len), ''::bytea) FROM doc_postings WHERE term_id BETWEEN %s AND %s GROUP BY term_id, lang")
MARK_SQL = ("UPDATE packed_state SET valid = true, chunk_mark = coalesce((SELECT max(rowid) FROM chunks), 0), "
            "doc_mark = coalesce((SELECT max(doc_no) FROM documents), 0), packed = %s")
PACK_BATCH = 4_000_000  # postings (by the counters) aggregated per statement: bounds a packing's memory
_ALL = (-2**31, 2**31 - 1)


def term_ranges(counts: Sequence[tuple[int, int]], batch: int | None = None) -> list[tuple[int, int]]:
    """Consecutive ranges of term numbers covering every integer, each holding about ``batch`` postings
    (default :data:`PACK_BATCH`).

    ``counts`` are (term number, postings) in ascending order; the counts only size the ranges, so a
    wrong counter never leaves a posting out.
    """
    batch = PACK_BATCH if batch is None else batch
    ranges, lo, total = [], _ALL[0], 0
    for term_id, count in counts:
        total += max(int(count), 1)
        if total >= batch:
            ranges.append((lo, int(term_id)))
            lo, total = int(term_id) + 1, 0
    return ranges + [(lo, _ALL[1])]


def has_packed_tables(db) -> bool:
    """Whether the database has the packed postings' tables (an index made before them has not)."""
    return bool(db.execute("SELECT to_regclass('packed_state') IS NOT NULL").fetchone()[0])


def record_removed(db, doc_no: int) -> None:
    """Before document ``doc_no`` and its chunks are deleted (in the caller's transaction): those of them the
    packed arrays hold are recorded as gone."""
    db.execute("INSERT INTO dead_docs SELECT %s FROM packed_state WHERE valid AND %s <= doc_mark "
               "ON CONFLICT DO NOTHING", (doc_no, doc_no))
    db.execute("INSERT INTO dead_chunks SELECT c.rowid FROM chunks c, packed_state s "
               "WHERE s.valid AND c.doc_no = %s AND c.rowid <= s.chunk_mark ON CONFLICT DO NOTHING", (doc_no,))


def record_added(db, rowids: list[int], doc_nos: list[int]) -> None:
    """After rows were added (in the caller's transaction): rows numbered at or below the marks (copied with
    their numbers) are not new rows to a search, so the packed arrays stop being used until the next packing."""
    if rowids or doc_nos:
        db.execute("UPDATE packed_state SET valid = false WHERE valid AND (%s <= chunk_mark OR %s <= doc_mark)",
                   (min(rowids, default=2**62), min(doc_nos, default=2**31 - 1)))


def pack_due(db) -> bool:
    """Whether a build should pack now: never packed, invalid, or enough rows added or removed since."""
    valid, mark = db.execute("SELECT valid, chunk_mark FROM packed_state").fetchone()
    if not valid:
        return True
    (total,) = db.execute("SELECT chunks FROM lexical_stats").fetchone()
    (changed,) = db.execute("SELECT (SELECT count(*) FROM chunks WHERE rowid > %s) + "
                            "(SELECT count(*) FROM dead_chunks)", (mark,)).fetchone()
    return changed >= max(PACK_MIN_CHUNKS, PACK_SHARE * int(total))


def describe(query, has_tables: bool) -> str:
    """How the database's BM25 reads its postings, for ``rag index status`` (``query`` runs one statement;
    ``has_tables``: :func:`has_packed_tables`)."""
    if not has_tables:
        return "BM25 over the row postings (an index made before packed postings: its next build packs them)"
    valid, when, terms, added, removed = query(
        "SELECT valid, packed, (SELECT count(*) FROM chunk_packed), (SELECT count(*) FROM chunks c "
        "WHERE c.rowid > s.chunk_mark), (SELECT count(*) FROM dead_chunks) FROM packed_state s")[0]
    if not valid:
        return "BM25 over the row postings (not packed yet: the next build packs them)"
    return (f"BM25 over packed postings ({terms} term arrays, packed {when}; {added} chunks added and {removed} "
            f"removed since, read from the rows)")


def packed_problems(query) -> list[str]:
    """What is wrong with the packed postings (``query`` runs one statement): arrays not of their length,
    rows recorded removed that are still there, marks above the rows numbered. Empty when sound."""
    if not query("SELECT valid FROM packed_state")[0][0]:
        return []
    out = []
    bad = query("SELECT (SELECT count(*) FROM chunk_packed WHERE octet_length(rowids) != 8 * n "
                "OR octet_length(docs) != 4 * n OR octet_length(tfs) != 4 * n OR octet_length(lens) != 4 * n) + "
                "(SELECT count(*) FROM doc_packed WHERE octet_length(docs) != 4 * n OR octet_length(tfs) != 4 * n "
                "OR octet_length(lens) != 4 * n)")[0][0]
    if bad:
        out.append(f"{bad} packed postings whose arrays do not hold their count")
    bad = query("SELECT (SELECT count(*) FROM dead_chunks JOIN chunks USING (rowid)) + "
                "(SELECT count(*) FROM dead_docs JOIN documents USING (doc_no))")[0][0]
    if bad:
        out.append(f"{bad} rows recorded as removed are still indexed")
    if query("SELECT chunk_mark > (SELECT last_value FROM chunk_rowid) FROM packed_state")[0][0]:
        out.append("the packed postings' mark is above the chunk numbers given out")
    return out


def pack(db, when: str) -> None:
    """Rewrite the packed arrays from the row postings (in the caller's transaction, under the build lock)."""
    t0 = time.monotonic()
    db.execute(f"SET LOCAL work_mem = '{PACK_WORK_MEM}'")
    for sql in CLEAR_SQL:
        db.execute(sql)
    for sql, column in ((CHUNK_PACK_SQL, "df"), (DOC_PACK_SQL, "doc_df")):
        for lo, hi in term_ranges(db.execute(f"SELECT term_id, {column} FROM terms ORDER BY term_id").fetchall()):
            db.execute(sql, (lo, hi))
    db.execute(MARK_SQL, (when,))
    terms = db.execute("SELECT count(*) FROM chunk_packed").fetchone()[0]
    log.info("packed the postings of %d terms in %.1f s", terms, time.monotonic() - t0)
