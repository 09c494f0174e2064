"""The index contract, run against both backends: an index folder and a PostgreSQL database.

Each test takes ``location``: a fresh folder, or a fresh database on the test server
(tests/servers/); the same build, update, removal, questions, status and verify must hold for both.
The cross-backend tests then check that both answer alike, and that a copy moves an index
either way without encoding again.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
from conftest import ARTICLE_FR_2, ROOT

from rag.config import Config
from rag.indexing import Indexer
from rag.indexing.copy import copy_index
from rag.retrieval.pg_search import DENSE_SQL
from rag.retrieval.retriever import Retriever
from rag.store.factory import open_store
from rag.store.postgres import vec_literal


@pytest.fixture(params=["folder", "postgres"])
def location(request, tmp_path) -> str:
    """Where the index under test lives: a folder, or a PostgreSQL database."""
    if request.param == "folder":
        return str(tmp_path / "index")
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[postgres]'")
    return request.getfixturevalue("pg_database")


def rag(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, env=env, timeout=300)


def sources(location) -> set[str]:
    return {os.path.basename(d["source"]) for d in open_store(location).documents()}


def top_source(location, embedder, question: str) -> str:
    return os.path.basename(Retriever(Config(index_dir=location), embedder=embedder).search(question, 3)[0].source)


def test_a_build_indexes_every_article_and_answers_from_it(location, corpus, embedder):
    report = Indexer(Config(index_dir=location), embedder).build([corpus], progress=False)
    assert len(report.added) == 3 and report.encoded == report.chunks_new > 0
    status = open_store(location).status()
    assert status["documents"] == 3 and status["chunks"] == report.chunks_total == report.chunks_new
    assert status["dimensions"] == 384 and status["languages"] == {"fr": 2, "en": 1}
    assert top_source(location, embedder, "Combien mesure le nouveau pont piéton de Lyon ?") == "pont.txt"
    assert top_source(location, embedder, "How many homes can the Nevada solar farm power?") == "solar.md"


def test_updating_one_changed_article_encodes_only_its_new_text(location, corpus, embedder):
    config = Config(index_dir=location)
    Indexer(config, embedder).build([corpus], progress=False)
    (corpus / "pont.txt").write_text(ARTICLE_FR_2, encoding="utf-8")
    report = Indexer(config, embedder).build([corpus], progress=False)
    assert [os.path.basename(s) for s in report.updated] == ["pont.txt"] and not report.added
    assert 0 < report.encoded <= report.chunks_new
    assert len(report.unchanged) == 2
    hits = Retriever(config, embedder=embedder).search("grève des contrôleurs aériens à Nantes", 3)
    assert os.path.basename(hits[0].source) == "pont.txt" and "contrôleurs" in hits[0].text
    assert all("Saône" not in h.text for h in Retriever(config, embedder=embedder).search("pont piéton Saône", 5))
    again = Indexer(config, embedder).build([corpus], progress=False)
    assert not again.changed and again.encoded == 0


def test_removing_an_article_takes_it_out_of_the_list_and_the_answers(location, corpus, embedder):
    config = Config(index_dir=location)
    Indexer(config, embedder).build([corpus], progress=False)
    pont = next(d["source"] for d in open_store(location).documents() if d["source"].endswith("pont.txt"))
    report = Indexer(config, embedder).remove([pont])
    assert [os.path.basename(s) for s in report.removed] == ["pont.txt"]
    assert sources(location) == {"seed.txt", "solar.md"}
    hits = Retriever(config, embedder=embedder).search("Combien mesure le nouveau pont piéton de Lyon ?", 5)
    assert all(not h.source.endswith("pont.txt") for h in hits)


def test_a_document_filter_keeps_the_answers_to_that_document(location, corpus, embedder):
    config = Config(index_dir=location)
    Indexer(config, embedder).build([corpus], progress=False)
    solar = next(d["id"] for d in open_store(location).documents() if d["source"].endswith("solar.md"))
    hits = Retriever(config, embedder=embedder).search("Combien mesure le nouveau pont piéton de Lyon ?", 3,
                                                       docs=[solar])
    assert hits and {h.doc_id for h in hits} == {solar}


def test_the_command_line_builds_lists_verifies_and_answers(location, corpus, embedder):
    res = rag("index", "build", str(corpus), "--index", location, "-q")
    assert res.returncode == 0, res.stderr
    assert "3 added" in res.stdout
    listed = rag("index", "list", "--index", location, "--json")
    assert sorted(os.path.basename(json.loads(line)["source"]) for line in listed.stdout.splitlines()) == [
        "pont.txt", "seed.txt", "solar.md"]
    status = json.loads(rag("index", "status", "--index", location, "--json").stdout)
    assert status["documents"] == 3
    verified = rag("index", "verify", "--index", location)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    answer = rag("ask", "Combien mesure le nouveau pont piéton de Lyon ?", "--index", location, "--json")
    assert answer.returncode == 0, answer.stderr
    assert "180 mètres" in json.loads(answer.stdout)["answer"]


def test_both_backends_return_the_same_passages_in_the_same_order(tmp_path, pg_database, corpus, embedder):
    folder = str(tmp_path / "index")
    for where in (folder, pg_database):
        Indexer(Config(index_dir=where), embedder).build([corpus], progress=False)
    local = Retriever(Config(index_dir=folder), embedder=embedder)
    pg = Retriever(Config(index_dir=pg_database), embedder=embedder)
    for question in ("Combien mesure le nouveau pont piéton de Lyon ?", "solar farm Nevada workers",
                     "Qui a salué un lien entre les deux rives ?", "négociations"):
        for mode in ("hybrid", "bm25", "dense"):
            a, b = local.search(question, 5, mode=mode), pg.search(question, 5, mode=mode)
            assert [h.chunk_id for h in a] == [h.chunk_id for h in b], (question, mode)
            assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=2e-3)


def test_a_copy_either_way_answers_as_the_original_without_encoding(tmp_path, pg_database, corpus, embedder):
    folder, back = str(tmp_path / "index"), str(tmp_path / "back")
    Indexer(Config(index_dir=folder), embedder).build([corpus], progress=False)
    there = copy_index(folder, pg_database, Config())
    assert (there.documents, there.chunks) == (3, open_store(folder).counts()[1]) and there.vectors >= there.chunks
    copy_index(pg_database, back, Config())
    question = "Combien mesure le nouveau pont piéton de Lyon ?"
    want = [(h.chunk_id, round(h.score, 3)) for h in Retriever(Config(index_dir=folder), embedder=embedder)
            .search(question, 5)]
    for where in (pg_database, back):
        got = Retriever(Config(index_dir=where), embedder=embedder).search(question, 5)
        assert [(h.chunk_id, round(h.score, 3)) for h in got] == want, where
        assert rag("index", "verify", "--index", where).returncode == 0
        report = Indexer(Config(index_dir=where), embedder).build([corpus], progress=False)
        assert report.encoded == 0 and not report.changed  # the stamps and cache came along
    with pytest.raises(ValueError, match="already holds an index"):
        copy_index(folder, pg_database, Config())


def test_a_database_address_without_psycopg_says_what_to_install():
    code = ("import sys; sys.modules['psycopg'] = None; from rag.cli.main import main; "
            "sys.exit(main(['index', 'status', '--index', 'postgresql://rag@127.0.0.1:1/news']))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 1
    assert "pip install 'rag[postgres]'" in res.stderr


def test_an_unreachable_database_is_named_without_its_password():
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[postgres]'")
    res = rag("index", "status", "--index", "postgresql://rag:s3cret@127.0.0.1:1/news")
    assert res.returncode == 1
    assert "cannot reach the database postgresql://rag@127.0.0.1:1/news" in res.stderr and "s3cret" not in res.stderr


def test_above_the_exact_search_limit_a_database_searches_by_hnsw_with_the_same_best_passages(
        tmp_path, pg_database, corpus, embedder):
    import psycopg

    Indexer(Config(index_dir=pg_database), embedder).build([corpus], progress=False)
    exact = Retriever(Config(index_dir=pg_database), embedder=embedder)
    hnsw = Retriever(Config(index_dir=pg_database, exact_search_limit=1), embedder=embedder)
    vector = exact.query_vector("Combien mesure le nouveau pont piéton de Lyon ?")
    assert list(hnsw.index.dense_search(vector, 5, None)[0]) == list(exact.index.dense_search(vector, 5, None)[0])
    with psycopg.connect(pg_database) as conn:
        conn.execute("SET enable_seqscan = off")  # 10 rows: the planner would rather scan them
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN " + DENSE_SQL.replace("%(q)s", "%s").replace("%(n)s", "5"),
            (vec_literal(vector), vec_literal(vector))).fetchall())
        assert "chunks_hnsw" in plan  # the statement can use the HNSW index


def test_a_changed_and_a_removed_jsonl_record_are_updated_and_removed(location, tmp_path, embedder):
    folder = tmp_path / "feed"
    folder.mkdir()
    feed = folder / "feed.jsonl"
    records = [{"title": "Pont de Lyon", "url": "https://example.org/pont", "text": ARTICLE_FR_2.replace(
                   "Grève des contrôleurs aériens", "Un pont piéton de 180 mètres")},
               {"title": "Grève", "url": "https://example.org/greve", "text": ARTICLE_FR_2},
               {"title": "Solar", "url": "https://example.org/solar",
                "text": "A solar farm opened in Nevada on Monday; it can power 50,000 homes."}]

    def write():
        feed.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")

    write()
    config = Config(index_dir=location)
    assert len(Indexer(config, embedder).build([folder], progress=False).added) == 3
    records[0]["text"] += " Les travaux ont pris fin en mars, avec un mois de retard."
    del records[2]
    write()
    report = Indexer(config, embedder).build([folder], progress=False)
    assert len(report.updated) == 1 and len(report.removed) == 1 and len(report.unchanged) == 1, report.summary()
    assert 0 < report.encoded <= report.chunks_new
    store = open_store(location)
    assert sorted(d["url"] for d in store.documents()) == ["https://example.org/greve", "https://example.org/pont"]
    hits = Retriever(config, embedder=embedder).search("Quand les travaux ont-ils pris fin ?", 1)
    assert hits[0].url == "https://example.org/pont" and "retard" in hits[0].text
    assert all("Nevada" not in h.text for h in Retriever(config, embedder=embedder).search("solar farm Nevada", 5))
    assert rag("index", "verify", "--index", location).returncode == 0
    again = Indexer(config, embedder).build([folder], progress=False)
    assert not again.changed and again.encoded == 0


def test_an_unchanged_jsonl_record_indexed_without_its_digest_gets_it(location, tmp_path, embedder):
    feed = tmp_path / "feed" / "feed.jsonl"
    feed.parent.mkdir()
    lines = [json.dumps({"title": f"Article {i}", "url": f"https://example.org/{i}",
                         "text": f"Le conseil municipal a voté le budget numéro {i} mardi soir."}, ensure_ascii=False)
             for i in range(2)]
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = Config(index_dir=location)
    Indexer(config, embedder).build([feed.parent], progress=False)
    store = open_store(location)
    ids = {d["url"]: d["id"] for d in store.documents()}
    with store.transaction():
        store.record_digests({ids["https://example.org/0"]: "0" * 64})  # as an index made before digests
    feed.write_text("\n".join(lines + [lines[0].replace("Article 0", "Article 0 bis")]) + "\n", encoding="utf-8")
    report = Indexer(config, embedder).build([feed.parent], progress=False)
    assert len(report.unchanged) == 2 and not report.added and not report.updated  # the third line repeats a url
    want = hashlib.sha256(lines[0].encode("utf-8")).hexdigest()
    metas = {d["url"]: d["meta"] for d in open_store(location).documents()}
    assert want in str(metas["https://example.org/0"])
