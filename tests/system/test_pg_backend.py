"""The PostgreSQL backend as deployed: a read replica serving questions, the primary stopped and back,
a build killed with SIGKILL and completed by the next one, two builds at once.

Each scenario starts its own servers (tests/servers/postgres.py) where it stops them, so the
session's primary stays up for the other tests.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import ARTICLE_FR_2, ROOT

from rag.config import Config
from rag.errors import IndexCorrupt, IndexReadOnly, IndexUnavailable
from rag.indexing import Indexer
from rag.retrieval.retriever import Retriever
from rag.store.factory import open_store
from rag.store.postgres import DEFERRED
from tests.servers import postgres
from tests.servers.rag_serve import call, start_serve
from tests.system.test_crash import synthetic_corpus

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[postgres]'")
QUESTION = "Combien mesure le nouveau pont piéton de Lyon ?"


def rag(*args, **env):
    full = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, env=full, timeout=300)


def wait_for(read, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = read()
        except (IndexUnavailable, IndexReadOnly, LookupError):
            value = None
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@pytest.fixture
def pair(servers_network):
    """A primary with database ``rag_pair`` and its streaming replica, both this test's own."""
    try:
        postgres.bin_dir()
    except Exception as exc:  # noqa: BLE001 - the server package is optional
        pytest.skip(f"no PostgreSQL server: {exc}")
    folders = [Path(tempfile.mkdtemp(prefix="rag-pgp-")), Path(tempfile.mkdtemp(prefix="rag-pgpr-"))]
    postgres.init_cluster(folders[0], fast=True)
    primary = postgres.start(folders[0])
    postgres.create_database(primary, "rag_pair")
    replica = postgres.start_replica(primary, folders[1])
    try:
        yield primary, replica
    finally:
        for server in (replica, primary):
            postgres.stop(server, "immediate")
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_a_replica_answers_and_keeps_answering_while_the_primary_is_down(pair, corpus, embedder, tmp_path):
    primary, replica = pair
    write_url, read_url = primary.dsn("rag_pair"), replica.dsn("rag_pair")
    Indexer(Config(index_dir=write_url), embedder).build([corpus], progress=False)
    assert wait_for(lambda: open_store(read_url).counts() == (3, open_store(write_url).counts()[1]))
    asked = rag("ask", QUESTION, "--index", read_url, "--json")
    assert asked.returncode == 0, asked.stderr
    assert "180 mètres" in json.loads(asked.stdout)["answer"]
    served = start_serve(read_url, tmp_path, {"RAG_CHATS_DIR": str(tmp_path / "chats")})
    try:
        status, _, body = call(served.url + "api/ask", "POST", {"question": QUESTION})
        assert status == 200 and "180 mètres" in json.loads(body)["answer"], body[:500]

        postgres.stop(primary, "fast")
        retriever = Retriever(Config(index_dir=read_url), embedder=embedder)
        assert retriever.search(QUESTION, 3)[0].source.endswith("pont.txt")
        status, _, body = call(served.url + "api/ask", "POST", {"question": QUESTION})
        assert status == 200 and "180 mètres" in json.loads(body)["answer"], body[:500]
        on_replica = rag("index", "build", str(corpus), "--index", read_url, "-q")
        assert on_replica.returncode == 1 and "read-only" in on_replica.stderr, on_replica.stderr
        on_primary = rag("index", "build", str(corpus), "--index", write_url, "-q")
        assert on_primary.returncode == 1 and "cannot reach the database" in on_primary.stderr, on_primary.stderr

        postgres.start(primary.folder, primary.port)
        assert wait_for(lambda: open_store(write_url).counts()[0] == 3)
        (corpus / "pont.txt").write_text(ARTICLE_FR_2, encoding="utf-8")
        report = Indexer(Config(index_dir=write_url), embedder).build([corpus], progress=False)
        assert len(report.updated) == 1 and len(report.unchanged) == 2
        assert wait_for(lambda: "contrôleurs" in Retriever(Config(index_dir=read_url), embedder=embedder)
                        .search("grève des contrôleurs aériens", 1)[0].text)
    finally:
        served.stop()


# where a build into a database can die: after encoding, inside the first document's transaction, after it
# (before the second), after everything
CRASH_POINTS = {"encoded": 0, "in-transaction": 0, "document-committed": 1, "committed": 2}


@pytest.mark.slow
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_build_killed_with_sigkill_loses_nothing_and_the_next_one_completes_it(pg_database, corpus, embedder, point):
    url = pg_database
    config = Config(index_dir=url)
    Indexer(config, embedder).build([corpus], progress=False)
    store = open_store(url)
    before = {d["id"]: d["sha256"] for d in store.documents()}
    (corpus / "pont.txt").write_text(ARTICLE_FR_2, encoding="utf-8")
    (corpus / "solar.md").write_text("# Wind farm\n\nA wind farm opened in Texas on Monday.\n", encoding="utf-8")
    res = rag("index", "build", str(corpus), "--index", url, "-q", RAG_CRASH_AT=point)
    assert res.returncode == -signal.SIGKILL, res.stderr
    assert store.verify() == []
    after_kill = {d["id"]: d["sha256"] for d in store.documents()}
    changed = {k for k in before if after_kill.get(k) != before[k]}
    assert len(changed) == CRASH_POINTS[point]  # whole documents, never half of one
    assert Retriever(config, embedder=embedder).search(QUESTION, 3)
    report = Indexer(config, embedder).build([corpus], progress=False)
    assert store.verify() == []
    assert len(report.updated) == 2 - len(changed)
    done = {d["id"]: d["sha256"] for d in store.documents()}
    assert len(done) == 3 and sum(done[k] != before[k] for k in before) == 2
    assert "contrôleurs" in Retriever(config, embedder=embedder).search("grève des contrôleurs aériens", 1)[0].text


@pytest.mark.slow
@pytest.mark.parametrize("batch", [4, 20])
def test_a_first_build_killed_in_the_middle_of_its_load_is_completed_by_the_next(pg_database, embedder, tmp_path,
                                                                                  batch):
    """Killed (SIGKILL) once its first batch is committed: with 4 documents a batch, in the middle of the load;
    with 20, after the last batch, before the search indexes and the manifest."""
    url = pg_database
    corpus = synthetic_corpus(tmp_path / "corpus", 10)
    res = rag("index", "build", str(corpus), "--index", url, "-q", RAG_CRASH_AT="document-committed",
              RAG_PG_BULK_BATCH=str(batch))
    assert res.returncode == -signal.SIGKILL, res.stderr
    store = open_store(url)
    kept = min(batch, 10)
    assert store.counts()[0] == kept and store.manifest() is None
    with pytest.raises(IndexCorrupt, match="no committed build"):  # nothing of it is visible to readers
        Retriever(Config(index_dir=url), embedder=embedder).search(QUESTION, 3)
    committed = {d["id"]: d["sha256"] for d in store.documents()}
    report = Indexer(Config(index_dir=url, pg_bulk_batch=batch), embedder).build([corpus], progress=False)
    assert len(report.unchanged) == kept and len(report.added) == 10 - kept
    assert report.encoded == 0  # the killed build had cached every vector
    assert store.verify() == [] and store.manifest() is not None
    done = {d["id"]: d["sha256"] for d in store.documents()}
    assert len(done) == 10 and all(done[k] == v for k, v in committed.items())
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT (doc_no, ordinal)) FROM chunks").fetchone() == (
            store.counts()[1],) * 2
        names = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert {name for name, *_ in DEFERRED} <= names
    hits = Retriever(Config(index_dir=url), embedder=embedder).search("Dépêche numéro 7", 10, mode="bm25")
    assert any(h.source.endswith("art007.txt") for h in hits)


@pytest.mark.slow
def test_a_build_killed_while_packing_its_postings_answers_from_the_rows_and_the_next_build_packs(
        pg_database, corpus, embedder):
    url = pg_database
    res = rag("index", "build", str(corpus), "--index", url, "-q", RAG_CRASH_AT="packing")
    assert res.returncode == -signal.SIGKILL, res.stderr  # a first load packs once everything is committed
    store = open_store(url)
    assert store.counts()[0] == 3 and store.verify() == []
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT valid, (SELECT count(*) FROM chunk_packed) FROM packed_state").fetchone() == (
            False, 0)  # the packing rolled back: searches read the row postings
    hits = Retriever(Config(index_dir=url), embedder=embedder).search(QUESTION, 3, mode="bm25")
    assert hits[0].source.endswith("pont.txt")
    report = Indexer(Config(index_dir=url), embedder).build([corpus], progress=False)
    assert not report.changed and report.encoded == 0
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT valid, (SELECT count(*) FROM chunk_packed) > 0 FROM packed_state").fetchone() == (
            True, True)
    assert [h.chunk_id for h in Retriever(Config(index_dir=url), embedder=embedder).search(QUESTION, 3, mode="bm25")
            ] == [h.chunk_id for h in hits]


def test_a_second_build_on_the_same_database_is_refused_while_one_runs(pg_database, corpus):
    url = pg_database
    store = open_store(url, create=True)
    with store.build_lock():
        res = rag("index", "build", str(corpus), "--index", url, "-q")
    assert res.returncode == 1 and "another build is running" in res.stderr, res.stderr


@pytest.mark.piaf
def test_rag_eval_through_a_database_scores_as_the_local_index(piaf_slice, pg_database, tmp_path):
    squad, folder = piaf_slice
    copied = rag("index", "copy", str(folder), pg_database)
    assert copied.returncode == 0 and "nothing encoded" in copied.stdout, copied.stderr
    scores = {}
    for name, where in (("local", str(folder)), ("postgres", pg_database)):
        res = rag("eval", str(squad), "--index", where, "--retrieval-only", "--out", str(tmp_path / name), "-q")
        assert res.returncode == 0, res.stderr
        scores[name] = json.loads((tmp_path / name).read_text(encoding="utf-8"))["retrieval"]
    assert scores["postgres"] == pytest.approx(scores["local"], abs=0.002)


def test_readers_during_a_build_see_whole_documents_and_their_statistics(pg_database, embedder, tmp_path):
    import threading

    corpus = synthetic_corpus(tmp_path / "corpus", 30)
    config = Config(index_dir=pg_database)
    Indexer(config, embedder).build([corpus], progress=False)
    synthetic_corpus(corpus, 30, salt=" bis")  # every article changes
    snapshot = ("SELECT (SELECT count(*) FROM documents), "
                "(SELECT chunks FROM lexical_stats) = (SELECT count(*) FROM chunks), "
                "(SELECT count(*) FROM documents d WHERE d.chunks != (SELECT count(*) FROM chunks c "
                "WHERE c.doc_no = d.doc_no)), "
                "(SELECT count(*) FROM terms t WHERE t.doc_df != (SELECT count(*) FROM doc_postings p "
                "WHERE p.term_id = t.term_id))")
    seen, done = [], threading.Event()

    def read():
        with psycopg.connect(pg_database, autocommit=True) as conn:
            while not done.is_set():
                seen.append(conn.execute(snapshot).fetchone())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        report = Indexer(config, embedder).build([corpus], progress=False)
    finally:
        done.set()
        reader.join()
    assert len(report.updated) == 30 and len(seen) > 10
    assert all(docs == 30 and totals and not bad_counts and not bad_df for docs, totals, bad_counts, bad_df in seen)
