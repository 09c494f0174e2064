"""Numbered BM25 terms kept with each generation: updates rebuild BM25 without re-reading term strings."""

import numpy as np
import pytest
from conftest import ARTICLE_FR_2

from rag.indexing import Indexer
from rag.search import term_table
from rag.search.lexical import LexicalIndex
from rag.search.term_table import extend, keep, table_of
from rag.store import Store, layout

QUESTIONS = ["pont Lyon 180 mètres", "Abbas Araghchi Mascate", "grève contrôleurs aériens", "solar panels"]


def _rows(table):
    return [[table.vocab[i] for i in table.ids[a:b]] for a, b in zip(table.starts[:-1], table.starts[1:])]


def test_dropping_and_adding_rows_keeps_every_rows_terms_and_only_used_terms():
    tokens = [["pont", "lyon"], [], ["lyon", "gare", "gare"], ["oman"]]
    table = extend(keep(table_of(tokens), np.array([True, False, True, False])), [["mascate", "lyon"]])
    assert _rows(table) == [["pont", "lyon"], ["lyon", "gare", "gare"], ["mascate", "lyon"]]
    assert sorted(table.vocab) == ["gare", "lyon", "mascate", "pont"]


def _scores_against_a_fresh_build(config):
    store = Store(config.index_dir)
    rows, _ = store.lexical_rows()
    fresh = LexicalIndex().build([r.rowid for r in rows], [r.terms.split() for r in rows], [r.doc_id for r in rows],
                                 [r.lang for r in rows])
    saved = layout.load_lexical(store.folder, store.manifest())
    assert np.array_equal(saved.ids, fresh.ids)
    for q in QUESTIONS:
        assert np.allclose(saved.scores(q), fresh.scores(q), atol=1e-6), q
    return store


@pytest.mark.parametrize("table_files", ["kept", "lost"])
def test_an_update_scores_as_a_build_from_the_term_strings(config, corpus, embedder, table_files):
    indexer = Indexer(config, embedder)
    indexer.build([corpus], progress=False)
    store = Store(config.index_dir)
    folder = layout.lexical_path(store.folder, store.manifest().generation)
    assert store.lexical_rows(folder)[1] is not None
    if table_files == "lost":  # an index written before the table existed: rebuilt from the strings
        for name in term_table.FILES:
            (folder / name).unlink()
        assert store.lexical_rows(folder)[1] is None
    (corpus / "pont.txt").unlink()
    (corpus / "greve.txt").write_text(ARTICLE_FR_2, encoding="utf-8")
    report = indexer.build([corpus], progress=False)
    assert report.added and report.removed
    _scores_against_a_fresh_build(config)


def test_a_damaged_table_is_not_trusted(tmp_path):
    table = table_of([["a", "b"], ["b"]])
    term_table.save(table, tmp_path)
    assert term_table.load(tmp_path, 2) is not None
    assert term_table.load(tmp_path, 3) is None  # other rows
    np.save(tmp_path / "term_ids.npy", np.array([0, 5, 1], dtype=np.int32))  # an id past the vocabulary
    assert term_table.load(tmp_path, 2) is None
    (tmp_path / "term_vocab.json").write_text("{not json", encoding="utf-8")
    assert term_table.load(tmp_path, 2) is None
