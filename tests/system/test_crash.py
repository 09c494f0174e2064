"""Crashes and concurrency: kill -9 mid-build, questions during a build, two builds at once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ARTICLE_FR_2, ROOT, SEEDS

from rag.indexing import verify
from rag.indexing.indexer import CRASH_POINTS, Indexer
from rag.retrieval import Retriever
from rag.store import Store


def synthetic_corpus(folder: Path, n: int, salt: str = "") -> Path:
    """``n`` small French articles made from the seed's sentences (distinct texts)."""
    sentences = [s.strip() + "." for s in SEEDS.joinpath("000_7bf8fbc2ce84b06f.txt").read_text(encoding="utf-8")
                 .replace("\n", " ").split(". ") if len(s) > 40]
    rng = random.Random(n)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = " ".join(rng.sample(sentences, 4))
        (folder / f"art{i:03d}.txt").write_text(f"Dépêche {i}{salt}\n\n{body} Dépêche numéro {i}{salt}.\n",
                                                  encoding="utf-8")
    return folder


def rag_cmd(*args: str, crash_at: str | None = None) -> list[str]:
    return [sys.executable, "-m", "rag", *args]


def env(**extra: str) -> dict:
    e = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    e.update(extra)
    return e


def snapshot(index_dir) -> tuple[int, list[tuple[str, str]]]:
    """(chunks, sorted (source, chunk text)) — the content a user can retrieve."""
    store = Store(index_dir)
    rows = store.db.execute("SELECT d.source, c.text FROM chunks c JOIN documents d ON d.id=c.doc_id").fetchall()
    return len(rows), sorted(rows)


@pytest.fixture
def base(tmp_path, embedder, config):
    """An index of a 3-article corpus, then the corpus changed (one added, one edited, one deleted)."""
    corpus = synthetic_corpus(tmp_path / "corpus", 3)
    Indexer(config, embedder).build([corpus], progress=False)
    before = snapshot(config.index_dir)
    (corpus / "greve.txt").write_text(ARTICLE_FR_2, encoding="utf-8")
    (corpus / "art001.txt").write_text("Dépêche modifiée\n\nLe sommet de Mascate est reporté à lundi.", encoding="utf-8")
    (corpus / "art002.txt").unlink()
    clean = tmp_path / "clean"
    Indexer(config.replace(index_dir=str(clean)), embedder).build([corpus], progress=False)
    return corpus, before, snapshot(clean)


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_kill_9_at_each_step_leaves_a_consistent_index_and_the_next_build_completes(base, config, embedder, point):
    corpus, before, after = base
    res = subprocess.run(rag_cmd("index", "build", str(corpus), "--index", config.index_dir, "-q"),
                         env=env(RAG_CRASH_AT=point), capture_output=True, text=True, timeout=300)
    assert res.returncode == -signal.SIGKILL, res.stderr
    assert verify(config.index_dir, config) == []
    state = snapshot(config.index_dir)
    assert state == (after if point == "committed" else before)
    assert Retriever(config, embedder=embedder).search("négociations Mascate", 3)
    Indexer(config, embedder).build([corpus], progress=False)
    assert verify(config.index_dir, config) == []
    assert snapshot(config.index_dir) == after  # nothing missing, nothing twice


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_kill_9_while_an_earlier_recipes_index_is_encoded_again_loses_nothing(tmp_path, config, embedder, point):
    from rag.embedding import cache_key, encoder_recipe

    corpus = synthetic_corpus(tmp_path / "corpus", 3)
    Indexer(config, embedder).build([corpus], progress=False)
    before = snapshot(config.index_dir)
    old_key, new_key = cache_key(config.model, "onnx-int8", 1), cache_key(config.model, "onnx-int8")
    store = Store(config.index_dir)
    with store.transaction() as db:  # as the release before wrote it: no recipe row, the plain cache key
        db.execute("DELETE FROM manifest WHERE key='encoder_recipe'")
        db.execute("UPDATE embedding_cache SET model=?", (old_key,))
    res = subprocess.run(rag_cmd("index", "build", str(corpus), "--index", config.index_dir, "-q"),
                         env=env(RAG_CRASH_AT=point), capture_output=True, text=True, timeout=300)
    assert res.returncode == -signal.SIGKILL, res.stderr
    keys = {k for (k,) in store.db.execute("SELECT DISTINCT model FROM embedding_cache")}
    done = point == "committed"
    # the old recipe's vectors go in the transaction that switches to the new ones, not before
    assert store.manifest().encoder_recipe == (encoder_recipe("onnx-int8") if done else 1)
    assert (old_key in keys) is not done
    assert verify(config.index_dir, config) == [] and snapshot(config.index_dir) == before
    assert Retriever(config, embedder=embedder).search("négociations Mascate", 3)
    report = Indexer(config, embedder).build([corpus], progress=False)
    assert bool(report.reencoded) is not done
    assert store.manifest().encoder_recipe == encoder_recipe("onnx-int8")
    assert {k for (k,) in store.db.execute("SELECT DISTINCT model FROM embedding_cache")} == {new_key}
    assert verify(config.index_dir, config) == [] and snapshot(config.index_dir) == before



def test_kill_9_at_random_moments(tmp_path, config, embedder):
    corpus = synthetic_corpus(tmp_path / "corpus", 30)
    Indexer(config, embedder).build([corpus], progress=False)
    synthetic_corpus(corpus, 30, salt=" bis")  # every article changes: a long update
    rng = random.Random(42)
    survived = 0
    for _ in range(3):
        proc = subprocess.Popen(rag_cmd("index", "build", str(corpus), "--index", config.index_dir, "-q"),
                                env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(2.0, 12.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert verify(config.index_dir, config) == []
        assert Retriever(config, embedder=embedder).search("Abbas Araghchi", 3)
        survived += 1
    report = Indexer(config, embedder).build([corpus], progress=False)
    assert verify(config.index_dir, config) == []
    clean = tmp_path / "clean"
    Indexer(config.replace(index_dir=str(clean)), embedder).build([corpus], progress=False)
    assert snapshot(config.index_dir) == snapshot(clean)
    assert survived == 3 and report.chunks_total == snapshot(clean)[0]


def test_questions_during_a_build_always_get_answers(tmp_path, config, embedder):
    corpus = synthetic_corpus(tmp_path / "corpus", 5)
    Indexer(config, embedder).build([corpus], progress=False)
    synthetic_corpus(corpus, 60, salt=" ter")
    retriever = Retriever(config, embedder=embedder)
    generations = set()
    proc = subprocess.Popen(rag_cmd("index", "build", str(corpus), "--index", config.index_dir, "-q"),
                            env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    asked = 0
    while proc.poll() is None or asked < 5:
        hits = retriever.search("Abbas Araghchi ministre iranien", 3)
        assert hits and all(h.text for h in hits)
        generations.add(retriever.manifest.generation)
        asked += 1
    assert proc.returncode == 0, proc.stderr.read()
    retriever.search("Dépêche 59 ter", 1)
    generations.add(retriever.manifest.generation)
    assert len(generations) >= 2 and asked > 5  # answered before, during and after the switch


def test_two_builds_at_once_one_refuses_with_a_clear_message(tmp_path, config):
    corpus = synthetic_corpus(tmp_path / "corpus", 20)
    cmd = rag_cmd("index", "build", str(corpus), "--index", config.index_dir, "-q")
    first = subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    lock = Path(config.index_dir) / "build.lock"
    while time.time() < deadline and not (lock.exists() and lock.read_text().strip()):
        time.sleep(0.1)
    second = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)
    first_out, first_err = first.communicate(timeout=300)
    codes = sorted([first.returncode, second.returncode])
    assert codes == [0, 1], (first_err, second.stderr)
    assert "another build is running" in second.stderr
    assert verify(config.index_dir, config) == []
    waiting = subprocess.run(cmd + ["--wait", "120"], env=env(), capture_output=True, text=True, timeout=300)
    assert waiting.returncode == 0


@pytest.mark.parametrize("point", ["written", "in-transaction", "committed"])
def test_kill_9_while_moving_an_index_to_the_new_model_keeps_the_old_one_answering(tmp_path, config, point):
    """An index built with all-MiniLM-L6-v2 keeps answering with it until its rebuild on the default model commits."""
    from rag.config import DEFAULT_MODEL, MINILM_MODEL
    from rag.embedding import get_embedder

    corpus = synthetic_corpus(tmp_path / "corpus", 3)
    Indexer(config, get_embedder(MINILM_MODEL)).build([corpus], progress=False)
    before = snapshot(config.index_dir)
    # the default configuration follows the index's model: it answers, and grows, with MiniLM
    retriever = Retriever(config)
    assert retriever.embedder.name == MINILM_MODEL and retriever.search("négociations Mascate", 3)
    res = subprocess.run(rag_cmd("index", "build", str(corpus), "--index", config.index_dir, "--rebuild", "-q"),
                         env=env(RAG_CRASH_AT=point), capture_output=True, text=True, timeout=600)
    assert res.returncode == -signal.SIGKILL, res.stderr
    store = Store(config.index_dir)
    done = point == "committed"
    assert store.manifest().model == (DEFAULT_MODEL if done else MINILM_MODEL)
    assert verify(config.index_dir, config) == []
    if not done:
        assert snapshot(config.index_dir) == before
    hits = Retriever(config).search("négociations Mascate", 3)
    assert hits and hits[0].source.endswith(".txt")
    Indexer(config).build([corpus], rebuild=not done, progress=False)
    manifest = store.manifest()
    assert (manifest.model, manifest.query_prompt, manifest.passage_prompt) == (DEFAULT_MODEL, "query: ", "passage: ")
    assert verify(config.index_dir, config) == [] and snapshot(config.index_dir)[0] > 0
    assert Retriever(config).embedder.name == DEFAULT_MODEL
