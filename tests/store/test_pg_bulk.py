"""A first load into PostgreSQL in batches (COPY, search indexes made after the rows) against the
per-document path of later builds: the same documents, chunks, statistics and answers.

Each test takes fresh databases on the session's test server (tests/servers/).
"""

from __future__ import annotations

import time

import pytest
from conftest import ARTICLE_FR_2

from rag.config import Config
from rag.indexing import Indexer
from rag.indexing.copy import copy_index
from rag.retrieval.retriever import Retriever
from rag.store.factory import open_store
from rag.store.postgres import DEFERRED
from tests.servers import postgres
from tests.system.test_crash import synthetic_corpus

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[postgres]'")
QUESTIONS = ("Combien mesure le nouveau pont piéton de Lyon ?", "négociations à Mascate", "Dépêche numéro 7",
             "How many homes can the Nevada solar farm power?", "ministre des Affaires étrangères")


def second_database(pg_primary) -> str:
    """Another fresh database on the test server."""
    return postgres.create_database(pg_primary, f"rag_bulk_{int(time.time() * 1000) % 10**9}")


def contents(url: str) -> dict:
    """What an index holds, independent of the numbers it gave its rows."""
    with psycopg.connect(url) as conn:
        def rows(sql):
            return sorted(conn.execute(sql).fetchall())
        return {
            "documents": rows("SELECT id, key, sha256, lang, chunks, n_terms, text FROM documents"),
            "chunks": rows('SELECT c.id, d.id, c.ordinal, c.start, c."end", c.hash, c.terms, c.n_terms, '
                           "c.embedding::text FROM chunks c JOIN documents d USING (doc_no)"),
            "terms": rows("SELECT term, df, doc_df FROM terms WHERE df > 0 OR doc_df > 0"),
            "chunk_postings": rows("SELECT t.term, c.id, p.tf, p.len FROM chunk_postings p JOIN terms t USING "
                                   "(term_id) JOIN chunks c USING (rowid)"),
            "doc_postings": rows("SELECT t.term, d.id, p.tf, p.len FROM doc_postings p JOIN terms t USING (term_id) "
                                 "JOIN documents d USING (doc_no)"),
            "stats": rows("SELECT chunks, chunk_terms, docs, doc_terms FROM lexical_stats"),
        }


def index_names(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}


def test_a_first_load_in_batches_holds_what_one_document_per_transaction_holds(
        pg_primary, pg_database, corpus, embedder):
    synthetic_corpus(corpus, 11)
    bulk, single = pg_database, second_database(pg_primary)
    report = Indexer(Config(index_dir=bulk, pg_bulk_batch=4), embedder).build([corpus], progress=False)
    assert len(report.added) == 14
    # the other database: one document first (the first load), then the 13 others one per transaction
    Indexer(Config(index_dir=single), embedder).build([corpus / "pont.txt"], progress=False)
    assert {name for name, *_ in DEFERRED} <= index_names(single)
    report = Indexer(Config(index_dir=single), embedder).build([corpus], progress=False)
    assert len(report.added) == 13
    assert {name for name, *_ in DEFERRED} <= index_names(bulk)
    a, b = contents(bulk), contents(single)
    for part in a:
        assert a[part] == b[part], part
    assert open_store(bulk).verify() == [] and open_store(single).verify() == []
    for question in QUESTIONS:
        for mode in ("hybrid", "bm25", "dense"):
            got = [Retriever(Config(index_dir=url), embedder=embedder).search(question, 5, mode=mode)
                   for url in (bulk, single)]
            assert [h.chunk_id for h in got[0]] == [h.chunk_id for h in got[1]], (question, mode)
            assert [h.score for h in got[0]] == pytest.approx([h.score for h in got[1]], abs=1e-6)
    # later builds of the bulk-loaded index go one document per transaction, its indexes kept up to date
    (corpus / "pont.txt").write_text(ARTICLE_FR_2, encoding="utf-8")
    (corpus / "art003.txt").unlink()
    report = Indexer(Config(index_dir=bulk, pg_bulk_batch=4), embedder).build([corpus], progress=False)
    assert len(report.updated) == 1 and len(report.removed) == 1 and len(report.unchanged) == 12
    assert open_store(bulk).verify() == []
    hits = Retriever(Config(index_dir=bulk), embedder=embedder).search("grève des contrôleurs aériens", 1)
    assert "contrôleurs" in hits[0].text


def test_a_copy_into_a_database_loads_in_batches_and_answers_as_the_folder(tmp_path, pg_database, corpus, embedder):
    synthetic_corpus(corpus, 5)
    folder = str(tmp_path / "index")
    Indexer(Config(index_dir=folder), embedder).build([corpus], progress=False)
    moved = copy_index(folder, pg_database, Config(pg_bulk_batch=3))
    assert moved.documents == 8 and {name for name, *_ in DEFERRED} <= index_names(pg_database)
    assert open_store(pg_database).verify() == []
    for question in QUESTIONS:
        want = [h.chunk_id for h in Retriever(Config(index_dir=folder), embedder=embedder).search(question, 5)]
        got = [h.chunk_id for h in Retriever(Config(index_dir=pg_database), embedder=embedder).search(question, 5)]
        assert got == want, question


def test_a_batch_below_one_is_refused_naming_the_value(pg_database):
    store = open_store(pg_database, create=True)
    with pytest.raises(ValueError, match="batch=0"):
        store.apply([], None, batch=0)
