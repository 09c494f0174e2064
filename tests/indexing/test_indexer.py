"""Indexing: incremental add/update/delete with exact counts, the cache, atomic updates, mismatches."""

import shutil

import pytest
from conftest import ARTICLE_FR_2

from rag.errors import IndexBusy, IndexMismatch, Remedy
from rag.indexing import Indexer
from rag.retrieval import Retriever
from rag.store import Store


def _state(index_dir):
    store = Store(index_dir)
    rows = store.db.execute("SELECT d.source, COUNT(c.rowid) FROM documents d LEFT JOIN chunks c ON c.doc_id=d.id "
                            "GROUP BY d.id ORDER BY d.source").fetchall()
    return store.manifest().generation, rows


def test_first_build_indexes_every_article(config, corpus, embedder):
    report = Indexer(config, embedder).build([corpus], progress=False)
    assert len(report.added) == 3 and not report.updated and not report.removed and not report.skipped
    assert report.encoded == report.chunks_new == report.chunks_total > 3
    docs, chunks = Store(config.index_dir).counts()
    assert (docs, chunks) == (3, report.chunks_total)


def test_incremental_add_update_delete_with_exact_counts(config, corpus, embedder):
    indexer = Indexer(config, embedder)
    first = indexer.build([corpus], progress=False)
    seed_chunks = dict(_state(config.index_dir)[1])
    (corpus / "greve.txt").write_text(ARTICLE_FR_2, encoding="utf-8")                       # add
    (corpus / "pont.txt").write_text("Un nouveau pont à Lyon\n\nIl mesure 200 mètres.", encoding="utf-8")  # edit
    (corpus / "solar.md").unlink()                                                      # delete
    second = indexer.build([corpus], progress=False)
    assert [s.rsplit("/", 1)[1] for s in second.added] == ["greve.txt"]
    assert [s.rsplit("/", 1)[1] for s in second.updated] == ["pont.txt"]
    assert [s.rsplit("/", 1)[1] for s in second.removed] == ["solar.md"]
    assert [s.rsplit("/", 1)[1] for s in second.unchanged] == ["seed.txt"]
    assert second.chunks_new == 2 and second.encoded == 2 and second.cached == 0
    gen, rows = _state(config.index_dir)
    assert gen == first.generation + 1
    counts = {src.rsplit("/", 1)[1]: n for src, n in rows}
    assert counts == {"seed.txt": seed_chunks[next(s for s in seed_chunks if s.endswith("seed.txt"))],
                      "greve.txt": 1, "pont.txt": 1}
    assert second.chunks_total == sum(counts.values())
    hits = Retriever(config, embedder=embedder).search("grève des contrôleurs aériens à Nantes", 3)
    assert hits[0].source.endswith("greve.txt")
    assert not any(h.source.endswith("solar.md") for h in Retriever(config, embedder=embedder).search("solar farm Nevada", 10))


def test_rebuild_of_unchanged_corpus_encodes_nothing_and_keeps_the_generation(config, corpus, embedder):
    indexer = Indexer(config, embedder)
    first = indexer.build([corpus], progress=False)
    again = indexer.build([corpus], progress=False)
    assert (again.encoded, again.chunks_new, len(again.unchanged)) == (0, 0, 3)
    assert again.generation == first.generation
    assert again.seconds < 5


def test_cache_serves_text_seen_before_even_under_another_name(config, corpus, embedder):
    indexer = Indexer(config, embedder)
    indexer.build([corpus], progress=False)
    shutil.copy(corpus / "pont.txt", corpus / "pont-copie.txt")
    report = indexer.build([corpus], progress=False)
    assert report.added and report.chunks_new == report.cached > 0 and report.encoded == 0


def test_exception_mid_build_leaves_the_previous_index_usable(config, corpus, embedder, monkeypatch):
    indexer = Indexer(config, embedder)
    indexer.build([corpus], progress=False)
    before = _state(config.index_dir)
    (corpus / "greve.txt").write_text(ARTICLE_FR_2, encoding="utf-8")
    (corpus / "solar.md").unlink()

    from rag.search import lexical

    def boom(self, folder):
        raise RuntimeError("disk full (injected)")

    monkeypatch.setattr(lexical.LexicalIndex, "save", boom)
    with pytest.raises(RuntimeError, match="injected"):
        indexer.build([corpus], progress=False)
    assert _state(config.index_dir) == before
    hits = Retriever(config, embedder=embedder).search("solar farm Nevada homes", 3)
    assert hits and hits[0].source.endswith("solar.md")
    monkeypatch.undo()
    report = indexer.build([corpus], progress=False)
    assert report.added and report.removed
    assert report.encoded == 0 and report.cached == report.chunks_new  # encoded before the crash, cached
    assert Retriever(config, embedder=embedder).search("grève contrôleurs aériens", 1)[0].source.endswith("greve.txt")


def test_exception_in_the_commit_transaction_rolls_back(config, corpus, embedder, monkeypatch):
    indexer = Indexer(config, embedder)
    indexer.build([corpus], progress=False)
    before = _state(config.index_dir)
    (corpus / "greve.txt").write_text(ARTICLE_FR_2, encoding="utf-8")
    from rag.store import layout as store_mod

    real = store_mod.Manifest.to_rows
    monkeypatch.setattr(store_mod.Manifest, "to_rows", lambda self: (_ for _ in ()).throw(OSError("injected")))
    with pytest.raises(OSError, match="injected"):
        indexer.build([corpus], progress=False)
    assert _state(config.index_dir) == before
    assert Retriever(config, embedder=embedder).search("pont Lyon", 1)[0].source.endswith("pont.txt")
    monkeypatch.setattr(store_mod.Manifest, "to_rows", real)
    assert indexer.build([corpus], progress=False).added


def test_unreadable_file_keeps_its_previous_version(config, corpus, embedder):
    indexer = Indexer(config, embedder)
    indexer.build([corpus], progress=False)
    (corpus / "pont.txt").write_bytes("Un pont à Lyon, 180 mètres".encode("latin-1"))
    report = indexer.build([corpus], progress=False)
    assert not report.removed and report.kept[0].endswith("pont.txt") and len(report.skipped) == 1
    assert Store(config.index_dir).counts()[0] == 3


@pytest.mark.parametrize("root", ["folder", "file"])
def test_a_file_named_with_a_hash_is_kept_when_unreadable_and_removed_when_gone(config, corpus, embedder, root):
    (corpus / "pont.txt").rename(corpus / "pont#2.txt")
    target = corpus if root == "folder" else corpus / "pont#2.txt"
    indexer = Indexer(config, embedder)
    indexer.build([target], progress=False)
    (corpus / "pont#2.txt").write_bytes("Un pont à Lyon, 180 mètres".encode("latin-1"))
    report = indexer.build([target], progress=False, prune=True)
    assert not report.removed and report.kept[0].endswith("pont#2.txt")
    assert "180 mètres" in Retriever(config, embedder=embedder).search("pont Lyon", 1)[0].text
    (corpus / "pont#2.txt").unlink()
    if root == "file":
        return  # a path that no longer exists is refused before anything is read
    report = indexer.build([target], progress=False, prune=True)
    assert report.removed[0].endswith("pont#2.txt")


def test_documents_under_a_path_holding_a_hash_are_found():
    from rag.store import docs_under

    docs = [{"id": "a", "key": "/x/notes#1.txt"}, {"id": "b", "key": "/x/set.jsonl#7"}, {"id": "c", "key": "/x/notes"}]
    assert docs_under(docs, ["/x/notes#1.txt"]) == ["a"]
    assert docs_under(docs, ["/x/set.jsonl"]) == ["b"]
    assert docs_under(docs, ["/x"]) == ["a", "b", "c"]


def test_another_model_is_a_clear_error_saying_how_to_rebuild(config, corpus):
    from rag.config import MINILM_MODEL
    from rag.embedding import get_embedder

    minilm = get_embedder(MINILM_MODEL)
    Indexer(config, minilm).build([corpus], progress=False)
    # the default configuration follows the index's model; asking for another one explicitly is an error
    assert Retriever(config).embedder.name == MINILM_MODEL
    other = config.replace(model="intfloat/multilingual-e5-small")
    with pytest.raises(IndexMismatch, match="built with model") as err:
        Retriever(other)
    assert err.value.remedy is Remedy.REBUILD
    with pytest.raises(IndexMismatch, match=f"built with model={MINILM_MODEL}.*RAG_MODEL={MINILM_MODEL}") as err:
        Indexer(other).build([corpus], progress=False)
    with pytest.raises(IndexMismatch, match=f"chunk_tokens={config.chunk_tokens}.*chunk_tokens=100") as err:
        Indexer(other.replace(model=MINILM_MODEL, chunk_tokens=100), minilm).build([corpus], progress=False)
    assert err.value.remedy is Remedy.REBUILD


def test_rebuild_after_a_chunking_change(config, corpus, embedder):
    Indexer(config, embedder).build([corpus], progress=False)
    small = config.replace(chunk_tokens=60, chunk_overlap=10)
    report = Indexer(small, embedder).build([corpus], rebuild=True, progress=False)
    assert len(report.updated) == 3
    store = Store(config.index_dir)
    assert store.manifest().chunk_tokens == 60
    assert max(embedder.count_tokens(t) for (t,) in store.db.execute("SELECT text FROM chunks")) <= 60


def test_a_second_build_refuses_while_one_holds_the_lock(config, corpus, embedder):
    indexer = Indexer(config, embedder)
    indexer.build([corpus], progress=False)
    with Store(config.index_dir).build_lock():
        with pytest.raises(IndexBusy, match="another build is running"):
            indexer.build([corpus], progress=False)


def test_remove_by_source(config, corpus, embedder):
    indexer = Indexer(config, embedder)
    indexer.build([corpus], progress=False)
    report = indexer.remove([str(corpus / "pont.txt").replace(str(corpus), next(
        d["source"] for d in Store(config.index_dir).documents() if d["source"].endswith("pont.txt")).rsplit("/", 1)[0])])
    assert len(report.removed) == 1
    assert Store(config.index_dir).counts()[0] == 2


def test_lost_search_files_are_rebuilt_from_sqlite_and_cache(config, corpus, embedder):
    indexer = Indexer(config, embedder)
    first = indexer.build([corpus], progress=False)
    store = Store(config.index_dir)
    shutil.rmtree(store.gen_dir(store.manifest().generation))
    report = indexer.build([corpus], progress=False)
    assert report.encoded == 0 and report.generation == first.generation + 1
    assert Retriever(config, embedder=embedder).search("pont Lyon Saône", 1)[0].source.endswith("pont.txt")
