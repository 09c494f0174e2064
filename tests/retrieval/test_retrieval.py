"""Retrieval: hybrid search over a real index (real model, FAISS, bm25s), filters, top-k, collapse."""

import hashlib
import json
import shutil
import sqlite3

import numpy as np
import pytest
from conftest import ARTICLE_EN, ARTICLE_FR, ARTICLE_FR_2, SEEDS

from rag.config import Config
from rag.errors import IndexMismatch, Remedy
from rag.indexing import Indexer
from rag.retrieval import Mode, Retriever, collapse, fuse, minmax
from rag.schema import Hit


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder):
    folder = tmp_path_factory.mktemp("retrieval")
    docs = folder / "articles"
    docs.mkdir()
    shutil.copy(next(SEEDS.glob("*.txt")), docs / "seed.txt")
    (docs / "pont.txt").write_text(ARTICLE_FR, encoding="utf-8")
    (docs / "greve.txt").write_text(ARTICLE_FR_2, encoding="utf-8")
    (docs / "solar.md").write_text("# " + ARTICLE_EN, encoding="utf-8")
    cfg = Config(index_dir=str(folder / "index"))
    Indexer(cfg, embedder).build([docs], progress=False)
    return cfg, Retriever(cfg, embedder=embedder)


@pytest.mark.parametrize("mode", list(Mode))
def test_each_mode_finds_the_article_that_answers(built, mode):
    _, retriever = built
    hits = retriever.search("Combien mesure le nouveau pont piéton de Lyon ?", 3, mode=mode)
    assert hits[0].source.endswith("pont.txt")


def test_english_question_finds_the_english_article_in_a_french_corpus(built):
    _, retriever = built
    for mode in (Mode.BM25, Mode.HYBRID):
        assert retriever.search("How many homes can the solar plant power?", 3, mode=mode)[0].source.endswith("solar.md")


def test_top_k_is_respected(built):
    _, retriever = built
    for k in (1, 2, 4):
        hits = retriever.search("Iran États-Unis négociations", k)
        assert len(hits) == k
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize("mode", list(Mode))
def test_document_filter_keeps_only_that_document(built, mode):
    _, retriever = built
    question = "Les négociations entre l'Iran et les États-Unis ont-elles mené à une grève ?"
    assert not retriever.search(question, 1, mode=mode)[0].source.endswith("greve.txt")
    hits = retriever.search(question, 5, docs=[_source(retriever, "greve.txt")], mode=mode)
    assert hits and {h.source for h in hits} == {_source(retriever, "greve.txt")}


def _source(retriever, name):
    return next(d["source"] for d in retriever.store.documents() if d["source"].endswith(name))


def test_overlapping_chunks_of_a_document_come_back_once(built):
    _, retriever = built
    hits = retriever.search("Abbas Araghchi Steve Witkoff Mascate", 8)
    for i, a in enumerate(hits):
        for b in hits[i + 1:]:
            assert a.doc_id != b.doc_id or a.end <= b.start or b.end <= a.start


def _hit(doc, start, end, score, text=None):
    text = text or f"passage {start} à {end} du document {doc}"
    return Hit(f"{doc}-{start}", doc, f"{doc}.txt", doc, text, start, end, "fr", score)


def test_collapse_keeps_the_best_of_overlapping_and_near_duplicate_chunks():
    same = "le pont piéton de Lyon mesure 180 mètres et a coûté 25 millions d'euros"
    hits = [_hit("a", 0, 100, 0.9), _hit("a", 80, 200, 0.8), _hit("a", 200, 300, 0.7),
            _hit("b", 0, 50, 0.6, same), _hit("c", 0, 50, 0.5, same + " ."), _hit("d", 0, 10, 0.4)]
    kept = collapse(hits, 10)
    assert [(h.doc_id, h.start) for h in kept] == [("a", 0), ("a", 200), ("b", 0), ("d", 0)]
    assert len(collapse(hits, 2)) == 2


def test_fusion_weight_one_is_bm25_order_and_zero_is_dense_order():
    bm25 = (np.array([1, 2, 3]), np.array([9.0, 5.0, 1.0], dtype=np.float32))
    dense = (np.array([3, 2, 4]), np.array([0.8, 0.5, 0.4], dtype=np.float32))
    assert [c for c, *_ in fuse(bm25, dense, 1.0)][:3] == [1, 2, 3]
    assert [c for c, *_ in fuse(bm25, dense, 0.0)][:2] == [3, 2]
    assert [c for c, *_ in fuse(bm25, dense, 0.8)][0] == 1
    assert [c for c, *_ in fuse(bm25, dense, 0.2)][0] == 3
    assert minmax(np.array([2.0, 2.0])).tolist() == [1.0, 1.0]


def test_index_from_an_older_text_analysis_asks_for_a_rebuild(built, tmp_path, embedder):
    cfg, _ = built
    copy = tmp_path / "old"
    shutil.copytree(cfg.index_dir, copy)
    params = next(copy.glob("gen-*/lexical/params.json"))
    data = json.loads(params.read_text())
    params.write_text(json.dumps({**data, "analyzer": 1}))
    with sqlite3.connect(copy / "rag.sqlite") as db:  # as an older release wrote it: its checksum matches
        sums = json.loads(db.execute("SELECT value FROM manifest WHERE key='checksums'").fetchone()[0])
        sums[params.relative_to(params.parents[1]).as_posix()] = hashlib.sha256(params.read_bytes()).hexdigest()
        db.execute("UPDATE manifest SET value=? WHERE key='checksums'", (json.dumps(sums),))
    with pytest.raises(IndexMismatch, match="text analysis version 1") as err:
        Retriever(cfg, index_dir=copy, embedder=embedder)
    assert err.value.remedy is Remedy.REBUILD and err.value.where == str(copy)


@pytest.mark.piaf
def test_hybrid_is_never_below_bm25_on_the_piaf_slice(piaf_slice, embedder):
    from rag.evaluation import EvalRun, evaluate, load_qa, resolve_gold, summarize
    from rag.pipeline import RAG

    squad, index = piaf_slice
    cfg = Config(index_dir=str(index))
    qa = load_qa(squad)
    assert not resolve_gold(qa, Retriever(cfg, embedder=embedder).store)
    rag = RAG(cfg)  # shares the session's model (get_embedder caches it)
    run = EvalRun([Mode.HYBRID, Mode.BM25, Mode.DENSE], 5, answers=False, progress=False)
    report = summarize(qa, evaluate(qa, rag, run), run, cfg, {"documents": 0, "chunks": 0})
    hybrid, bm25, dense = (report["modes"][m] for m in ("hybrid", "bm25", "dense"))
    for key in ("hit@1", "hit@3", "hit@5", "hit@10", "mrr@10"):
        assert hybrid[key] >= max(bm25[key], dense[key]) - 0.01, (key, hybrid, bm25)
