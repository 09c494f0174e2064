"""A damaged index is a clear error; `rag index verify` says what is wrong; `repair` brings it back."""

import os
import shutil
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

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
    assert {p.part for p in problems} == {"vectors"} and any("unreadable" in p.message for p in problems)
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


def rag(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, env=env, timeout=300)


def _overwrite(path, data: bytes, at: float = 0.5):
    raw = bytearray(path.read_bytes())
    start = int(len(raw) * at)
    raw[start:start + len(data)] = data
    path.write_bytes(bytes(raw))


def test_the_manifest_holds_the_checksum_of_every_search_file(built):
    config, _ = built
    files = Store(config.index_dir).manifest().files()
    gen = _gen_dir(config)
    on_disk = {p.relative_to(gen).as_posix() for p in gen.rglob("*") if p.is_file()}
    assert set(files) == on_disk
    assert {"vectors.faiss", "lexical/groups.npy", "lexical/bm25/data.csc.index.npy"} <= on_disk
    assert all(len(v) == 64 for v in files.values())


def test_random_bytes_in_the_bm25_groups_are_caught_and_ask_says_repair(built, embedder):
    config, _ = built
    _overwrite(_gen_dir(config) / "lexical" / "groups.npy", os.urandom(64), 0.6)
    problems = verify(config.index_dir, config)
    assert any(p.part == "lexical" and "groups.npy is damaged" in p.message for p in problems), problems
    with pytest.raises(IndexCorrupt, match="groups.npy") as err:
        Retriever(config, embedder=embedder)
    assert err.value.remedy is Remedy.REPAIR
    res = rag("ask", "Quel pont ?", "--index", config.index_dir)
    assert res.returncode == 1 and "repair it with: rag index repair --index" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("value", [np.nan, np.inf, 3e38])
def test_nan_infinite_or_huge_vectors_fail_verify(built, value):
    config, _ = built
    import faiss

    path = _gen_dir(config) / "vectors.faiss"
    index = faiss.read_index(str(path))
    flat = faiss.downcast_index(index.index)
    stored = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d)  # the vectors, in place
    stored[5 * flat.d:5 * flat.d + 4] = value
    faiss.write_index(index, str(path))
    problems = verify(config.index_dir, config)
    assert any("vectors.faiss is damaged" in p.message for p in problems), problems
    _forget_checksums(config)  # an index made before checksums: the values themselves are checked
    messages = [p.message for p in verify(config.index_dir, config)]
    assert any("NaN or infinite" in m or "values above" in m for m in messages), messages


def _forget_checksums(config):
    db = sqlite3.connect(Store(config.index_dir).db_path)
    db.execute("DELETE FROM manifest WHERE key='checksums'")
    db.commit()
    db.close()


def test_nan_in_the_bm25_weights_fails_verify_without_checksums(built):
    config, _ = built
    _forget_checksums(config)
    path = _gen_dir(config) / "lexical" / "bm25" / "data.csc.index.npy"
    data = np.load(path)
    data[len(data) // 2] = np.nan
    np.save(path, data)
    messages = [p.message for p in verify(config.index_dir, config)]
    assert any("BM25 weights of the rows hold NaN" in m for m in messages), messages


@pytest.mark.parametrize("at", [0.0, 0.02, 0.3, 0.6, 0.9])
def test_flipped_bytes_in_sqlite_are_a_damaged_report_never_a_crash(built, at):
    config, _ = built
    db_path = Store(config.index_dir).db_path
    _overwrite(db_path, bytes(b ^ 0xFF for b in db_path.read_bytes()[int(db_path.stat().st_size * at):][:16]), at)
    problems = verify(config.index_dir, config)  # never raises
    res = rag("index", "verify", "--index", config.index_dir)
    assert "Traceback" not in res.stderr
    if problems:
        assert res.returncode == 1 and "repair it with: rag index repair" in res.stderr
    ask = rag("ask", "Quel pont ?", "--index", config.index_dir)
    assert "Traceback" not in ask.stderr, ask.stderr
    assert ask.returncode == 0 or "rag index repair" in ask.stderr, ask.stderr


def test_a_truncated_vectors_file_is_mended_by_build_not_left_broken(built, embedder):
    config, corpus = built
    path = _gen_dir(config) / "vectors.faiss"
    path.write_bytes(path.read_bytes()[:500])
    res = rag("ask", "Quel pont ?", "--index", config.index_dir)
    assert res.returncode == 1 and "repair it with: rag index repair --index" in res.stderr, res.stderr
    res = rag("index", "build", str(corpus), "--index", config.index_dir, "-q")
    assert res.returncode == 0, res.stderr
    assert "search files damaged or missing: made again from the stored chunks" in res.stdout
    assert verify(config.index_dir, config) == [] and _answers_again(config, embedder)
    _forget_checksums(config)  # an index made before checksums: the build tries loading them
    path = _gen_dir(config) / "vectors.faiss"
    path.write_bytes(path.read_bytes()[:500])
    report = Indexer(config, embedder).build([corpus], progress=False)
    assert report.search_files_rebuilt and verify(config.index_dir, config) == []
