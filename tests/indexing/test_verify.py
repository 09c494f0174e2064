"""A damaged index is a clear error; `rag index verify` says what is wrong; `repair` brings it back."""

import shutil
import sqlite3

import pytest

from rag.errors import IndexCorrupt, IndexMismatch, Remedy
from rag.indexing import Indexer, repair, verify
from rag.retrieval import Retriever
from rag.store import Store


@pytest.fixture
def built(config, corpus, embedder):
    Indexer(config, embedder).build([corpus], progress=False)
    return config, corpus


def _gen_dir(config):
    store = Store(config.index_dir)
    return store.gen_dir(store.manifest().generation)


def _answers_again(config, embedder):
    hits = Retriever(config, embedder=embedder).search("pont piéton Lyon Saône", 1)
    return hits[0].source.endswith("pont.txt")


def test_a_sound_index_verifies_clean(built):
    config, _ = built
    assert verify(config.index_dir, config) == []


def test_truncated_faiss_file(built, embedder):
    config, _ = built
    path = _gen_dir(config) / "vectors.faiss"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(IndexCorrupt, match="vectors.faiss"):
        Retriever(config, embedder=embedder)
    problems = verify(config.index_dir, config)
    assert [p.part for p in problems] == ["vectors"] and "unreadable" in problems[0].message
    report = repair(config.index_dir, config, progress=False)
    assert report.encoded == 0 and report.cached > 0
    assert verify(config.index_dir, config) == [] and _answers_again(config, embedder)


def test_sqlite_table_with_wrong_columns(built, embedder):
    config, _ = built
    db = sqlite3.connect(Store(config.index_dir).db_path)
    db.executescript("DROP TABLE chunks; CREATE TABLE chunks (x TEXT);")
    db.close()
    with pytest.raises(IndexCorrupt, match="table chunks lacks column"):
        Retriever(config, embedder=embedder)
    assert verify(config.index_dir, config)[0].part == "sqlite"
    repair(config.index_dir, config, progress=False)
    assert verify(config.index_dir, config) == [] and _answers_again(config, embedder)
    assert Store(config.index_dir).counts()[0] == 3


@pytest.mark.parametrize("key,value,error", [
    ("dimensions", "512", IndexCorrupt),
    ("generation", "999", IndexCorrupt),
    ("format_version", "abc", IndexCorrupt),
    ("model", "sentence-transformers/all-MiniLM-L6-v2", IndexMismatch),
])
def test_edited_manifest(built, embedder, key, value, error):
    config, _ = built
    if key == "model":  # the configuration names its model: the manifest's other one is then a mismatch
        config = config.replace(model=embedder.name)
    db = sqlite3.connect(Store(config.index_dir).db_path)
    db.execute("UPDATE manifest SET value=? WHERE key=?", (value, key))
    db.commit()
    db.close()
    with pytest.raises(error):
        Retriever(config, embedder=embedder)
    assert verify(config.index_dir, config)
    repair(config.index_dir, config, progress=False)
    assert verify(config.index_dir, config) == [] and _answers_again(config, embedder)


def test_lost_sqlite_file_is_rebuilt_from_the_articles_on_disk(built, embedder):
    config, corpus = built
    db_path = Store(config.index_dir).db_path
    db_path.write_bytes(b"this is not a database" * 100)
    for extra in ("-wal", "-shm"):
        db_path.with_name(db_path.name + extra).unlink(missing_ok=True)
    assert verify(config.index_dir, config)[0].part == "sqlite"
    with pytest.raises(IndexCorrupt, match="article files are needed") as err:
        repair(config.index_dir, config, progress=False)
    assert err.value.remedy is Remedy.REPAIR_FROM_FILES
    report = repair(config.index_dir, config, [corpus], progress=False)
    assert len(report.added) == 3
    assert verify(config.index_dir, config) == [] and _answers_again(config, embedder)
    assert list(db_path.parent.glob("rag.sqlite.broken-*"))


def test_verify_and_repair_from_the_command_line(built):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    config, _ = built
    shutil.rmtree(_gen_dir(config) / "lexical")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "rag", "index", "verify", "--index", config.index_dir, "--json"],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 1 and '"part": "lexical"' in res.stdout
    res = subprocess.run([sys.executable, "-m", "rag", "index", "repair", "--index", config.index_dir],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    res = subprocess.run([sys.executable, "-m", "rag", "index", "verify", "--index", config.index_dir],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0 and "ok" in res.stdout
