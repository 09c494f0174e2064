"""Nobody loses their documents: a rebuild keeps the chat's uploads, and removals say what they match."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ARTICLE_EN, ARTICLE_FR, ROOT

from rag.config import Config
from rag.indexing import Indexer, verify
from rag.store.sqlite import Store


def rag(*args, cwd=None, stdin=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300, input=stdin)


def sources(index) -> list[str]:
    return sorted(d["source"] for d in Store(index).documents())


@pytest.fixture
def served(tmp_path, embedder, monkeypatch):
    """An index with a corpus folder and, in ``uploads/`` beside it, what chat users uploaded (one JSONL file).

    Built in this process from ``/``, as ``rag index build`` run there would (the model is loaded
    once for the session); the tests' own commands run ``rag``.
    """
    corpus, uploads, index = tmp_path / "corpus", tmp_path / "uploads", tmp_path / "index"
    corpus.mkdir()
    uploads.mkdir()
    for i in range(8):
        (corpus / f"depeche-{i}.txt").write_text(f"Dépêche numéro {i}.\n\n{ARTICLE_FR}", encoding="utf-8")
    (uploads / "notes.txt").write_text(ARTICLE_EN, encoding="utf-8")
    records = [{"title": f"Trimestre {i}", "text": f"Le chiffre d'affaires du trimestre {i} a progressé de {i} %."}
               for i in range(1, 4)]
    (uploads / "quarter.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n",
                                           encoding="utf-8")
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    (elsewhere / "old.txt").write_text("Un ancien article venu d'un autre dossier, sur le port de Brest.",
                                       encoding="utf-8")
    monkeypatch.chdir("/")
    for paths in ([corpus], [uploads / "notes.txt"], [uploads / "quarter.jsonl"], [elsewhere]):
        assert not Indexer(Config(index_dir=str(index))).build(paths, progress=False).skipped
    monkeypatch.undo()
    return tmp_path, corpus, uploads, index


def test_a_rebuild_keeps_the_uploaded_documents_and_says_so(served):
    root, corpus, uploads, index = served
    before = sources(index)
    assert len(before) == 8 + 1 + 3 + 1
    res = rag("index", "build", str(corpus), "--rebuild", "--index", str(index), "-q", cwd="/")
    assert res.returncode == 0, res.stderr
    assert f"kept: 4 document(s) uploaded in the chat, under {uploads}" in res.stdout
    after = sources(index)
    assert [s for s in before if "/other/" not in s] == after  # only the other folder's document went
    assert "1 removed" in res.stdout
    assert verify(index) == []


def test_removing_a_jsonl_file_removes_its_articles(served):
    root, _, uploads, index = served
    res = rag("index", "remove", "uploads/quarter.jsonl", "--index", str(index), cwd=root)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("removed: ") == 3 and "quarter.jsonl#" in res.stdout
    assert not any("quarter" in s for s in sources(index))
    assert verify(index) == []


def test_an_empty_name_removes_nothing(served):
    _, _, _, index = served
    res = rag("index", "remove", "", "--index", str(index), cwd="/")
    assert res.returncode == 2 and "an empty NAME matches nothing" in res.stderr
    assert len(sources(index)) == 13


def test_removing_many_documents_asks_first(served):
    root, corpus, _, index = served
    res = rag("index", "remove", str(corpus), "--index", str(index), cwd="/")  # not a terminal: refused
    assert res.returncode == 2 and "matches 8 documents" in res.stderr and "--yes" in res.stderr
    assert len(sources(index)) == 13
    res = rag("index", "remove", str(corpus), "--yes", "--index", str(index), cwd="/")
    assert res.returncode == 0 and res.stdout.count("removed: ") == 8
    assert len(sources(index)) == 5 and verify(index) == []
