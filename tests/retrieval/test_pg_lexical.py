"""BM25 over a PostgreSQL index's packed postings against the same BM25 in SQL over its row postings: the same
chunks, scores and order after a first build, after documents changed and removed since the packing, with a
document filter, after a build packs again, and when the packed arrays are damaged or their packing is killed.

Each test takes a fresh database on the session's test server (tests/servers/).
"""

from __future__ import annotations

import json

import pytest
from conftest import ARTICLE_FR_2, ROOT

from rag.config import Config
from rag.indexing import Indexer
from rag.retrieval.retriever import Retriever
from rag.store import pg_packed
from rag.store.factory import open_store
from rag.text.normalize import detect_language
from tests.store.test_backends import rag
from tests.system.test_crash import synthetic_corpus

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[postgres]'")
QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "eval" / "seed_qa.jsonl").read_text().splitlines()
             if line.strip()] + ["Dépêche numéro 7", "How many homes can the Nevada solar farm power?",
                                 "Combien mesure le nouveau pont piéton de Lyon ?", "grève des contrôleurs aériens"]


def state(url: str) -> dict:
    """The packed postings' state: valid, chunks added above the mark, chunks and documents recorded removed."""
    with psycopg.connect(url) as conn:
        valid, above, dead, dead_docs = conn.execute(
            "SELECT valid, (SELECT count(*) FROM chunks WHERE rowid > chunk_mark), (SELECT count(*) FROM dead_chunks), "
            "(SELECT count(*) FROM dead_docs) FROM packed_state").fetchone()
    return {"valid": valid, "added": above, "removed_chunks": dead, "removed_docs": dead_docs}


def searches(url: str, embedder, question: str, allowed=None, n: int = 100):
    """(packed, SQL) results of the lexical search for ``question``: (rowids, scores) each."""
    search = Retriever(Config(index_dir=url), embedder=embedder).index
    lang = detect_language(question, "fr")
    return [search.lexical_search(question, n, allowed, lang, 0.3, packed=packed) for packed in (None, False)]


def assert_same_as_sql(url: str, embedder, allowed=None, n: int = 100) -> int:
    """Every question scores the same both ways; returns how many found anything."""
    found = 0
    for question in QUESTIONS:
        (ids, scores), (want_ids, want_scores) = searches(url, embedder, question, allowed, n)
        assert ids.tolist() == want_ids.tolist(), question
        assert scores.tolist() == pytest.approx(want_scores.tolist(), abs=1e-6), question
        found += bool(len(ids))
    return found


def build(url: str, folder, embedder):
    return Indexer(Config(index_dir=url), embedder).build([folder], progress=False)


def test_packed_bm25_scores_every_question_as_the_sql_over_the_rows_through_changes_and_removals(
        pg_database, corpus, embedder, monkeypatch):
    url = pg_database
    synthetic_corpus(corpus, 30)
    build(url, corpus, embedder)
    assert state(url) == {"valid": True, "added": 0, "removed_chunks": 0, "removed_docs": 0}  # a first load packs
    assert assert_same_as_sql(url, embedder) > len(QUESTIONS) // 2
    store = open_store(url)
    some = store.doc_numbers([d["id"] for d in store.documents()][:7], None, None)
    assert assert_same_as_sql(url, embedder, allowed=some) > 0
    assert assert_same_as_sql(url, embedder, n=5) > 0  # fewer candidates than documents

    (corpus / "pont.txt").write_text(ARTICLE_FR_2, encoding="utf-8")  # changed: removed, added again
    (corpus / "solar.md").unlink()
    (corpus / "art004.txt").unlink()
    synthetic_corpus(corpus / "more", 2, salt="b")
    build(url, corpus, embedder)
    now = state(url)
    assert now["valid"] and now["added"] > 0 and now["removed_chunks"] >= 3 and now["removed_docs"] == 3
    assert f"{now['added']} chunks added and {now['removed_chunks']} removed since" in store.status()["lexical_search"]
    assert assert_same_as_sql(url, embedder) > len(QUESTIONS) // 2
    (ids, _), _ = searches(url, embedder, "grève des contrôleurs aériens")
    assert store.chunk_rows(ids[:1])[int(ids[0])]["text"].count("contrôleurs")  # the new version, from the rows
    some = store.doc_numbers([d["id"] for d in store.documents()][-6:], None, None)
    assert assert_same_as_sql(url, embedder, allowed=some) > 0
    assert store.verify() == []

    monkeypatch.setattr(pg_packed, "PACK_BATCH", 40)  # packs again, a few terms per statement
    store.repair()
    assert state(url) == {"valid": True, "added": 0, "removed_chunks": 0, "removed_docs": 0}
    assert assert_same_as_sql(url, embedder) > len(QUESTIONS) // 2


def test_a_build_packs_again_once_a_tenth_of_the_index_changed_since(pg_database, corpus, embedder, monkeypatch):
    monkeypatch.setattr(pg_packed, "PACK_MIN_CHUNKS", 0)  # the share alone decides, on this small index
    url = pg_database
    synthetic_corpus(corpus, 30)
    build(url, corpus, embedder)
    chunks = open_store(url).counts()[1]
    (corpus / "art001.txt").unlink()
    build(url, corpus, embedder)
    assert state(url)["removed_chunks"] == 1 and 1 < pg_packed.PACK_SHARE * chunks  # below a tenth: not yet
    for i in range(2, 2 + int(pg_packed.PACK_SHARE * chunks) + 1):
        (corpus / f"art{i:03d}.txt").unlink()
    build(url, corpus, embedder)
    assert state(url) == {"valid": True, "added": 0, "removed_chunks": 0, "removed_docs": 0}
    assert assert_same_as_sql(url, embedder) > 0


def test_damaged_packed_postings_are_reported_by_verify_and_rewritten_by_repair(pg_database, corpus, embedder):
    url = pg_database
    build(url, corpus, embedder)
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE chunk_packed SET tfs = substr(tfs, 5) WHERE term_id = (SELECT min(term_id) "
                     "FROM chunk_packed WHERE n > 1)")
    store = open_store(url)
    assert ("lexical", "1 packed postings whose arrays do not hold their count") in store.verify()
    store.repair()
    assert store.verify() == []
    assert assert_same_as_sql(url, embedder) > 0


def test_an_index_without_packed_postings_is_searched_over_its_rows(pg_database, corpus, embedder):
    """A database made before the packed postings: its readers search the row postings; its next build packs."""
    url = pg_database
    build(url, corpus, embedder)
    question = "Combien mesure le nouveau pont piéton de Lyon ?"
    want = [h.chunk_id for h in Retriever(Config(index_dir=url), embedder=embedder).search(question, 5, mode="bm25")]
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE " + ", ".join(pg_packed.PACKED_TABLES))
    got = Retriever(Config(index_dir=url), embedder=embedder).search(question, 5, mode="bm25")
    assert [h.chunk_id for h in got] == want
    status = rag("index", "status", "--index", url)
    assert "lexical_search: BM25 over the row postings (an index made before packed postings" in status.stdout
    (corpus / "pont.txt").write_text(ARTICLE_FR_2, encoding="utf-8")
    build(url, corpus, embedder)
    assert state(url)["valid"] and open_store(url).verify() == []
    assert assert_same_as_sql(url, embedder) > 0
