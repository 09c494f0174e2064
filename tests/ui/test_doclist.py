"""The document list and its pickers read a bounded number of documents from a real index."""

from __future__ import annotations

import json

import pytest

from rag.indexing import Indexer
from rag.store import Store
from ui.doclist import DocumentList

N = 120


@pytest.fixture(scope="module")
def store(tmp_path_factory, embedder):
    from rag.config import Config

    root = tmp_path_factory.mktemp("doclist")
    corpus = root / "corpus"
    corpus.mkdir()
    with (corpus / "lot.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(N):
            title = "Taux 100% garanti" if i == 7 else "Ligne_sous_tirets" if i == 8 else f"Fiche {i:03d}"
            fh.write(json.dumps({"title": title, "text": f"La fiche {i:03d} du registre."}) + "\n")
    (corpus / "dernier.txt").write_text("Le dernier article\n\nIl arrive après les fiches.", encoding="utf-8")
    index = root / "index"
    cfg = Config(index_dir=str(index))
    Indexer(cfg, embedder=embedder).build([corpus / "lot.jsonl"], progress=False)
    Indexer(cfg, embedder=embedder).build([corpus], progress=False)  # dernier.txt indexed last
    return Store(index)


def test_pages_cover_every_document_once_latest_indexed_first(store):
    docs = DocumentList(store, page_size=50)
    first = docs.page()
    assert first.total == N + 1 and len(first.rows) == 50 and first.rows[0]["title"] == "Le dernier article"
    seen = [d["id"] for off in range(0, first.total, 50) for d in docs.page("", off).rows]
    assert len(seen) == len(set(seen)) == N + 1
    past = docs.page("", 10_000)  # beyond the end: the last page
    assert past.offset == 100 and len(past.rows) == N + 1 - 100


def test_search_matches_titles_and_sources_and_takes_wildcards_literally(store):
    docs = DocumentList(store)
    assert docs.page("fiche 01").total == 10  # Fiche 010..019, in any letter case
    assert docs.page("dernier.txt").total == 1
    assert [d["title"] for d in docs.page("100%").rows] == ["Taux 100% garanti"]
    assert [d["title"] for d in docs.page("e_s").rows] == ["Ligne_sous_tirets"]
    assert docs.page("introuvable").total == 0


def test_a_picker_offers_a_bounded_number_and_keeps_the_documents_chosen(store):
    docs = DocumentList(store, choices=10)
    chosen = docs.page("Fiche 000").rows[0]["id"]
    offered = docs.choices("Fiche 1", keep=[chosen])
    assert len(offered) == 11 and offered[0][1] == chosen
    assert all("Fiche 1" in label for label, _ in offered[1:])
    assert docs.label(chosen).startswith("Fiche 000 — ") and docs.label("nope") is None


def test_a_file_has_documents_until_its_last_record_is_gone(store):
    key = store.documents_by_id([store.find_documents("Fiche 000")[0][0]["id"]])[0]["key"]
    path = key.split("#", 1)[0]
    assert store.has_documents_from(path) and not store.has_documents_from(path + "x")
    assert not store.has_documents_from(path[:-1])  # a prefix of the name is another file
