"""Lexical side: French and English analysis, the BM25 index, its persistence and its checks."""

import json

import bm25s
import numpy as np
import pytest
from conftest import ARTICLE_EN, ARTICLE_FR, ARTICLE_FR_2, SEEDS

from rag.search.bm25_build import bm25_postings
from rag.search.lexical import K1, B, LexicalIndex, LexicalMismatch, bm25s_index
from rag.search.term_table import table_of
from rag.text.analysis import analyze, index_terms, query_terms


@pytest.mark.parametrize("text", ["l'État", "l’État", "lʼÉtat", "L'ETAT", "État", "etat"])
def test_elision_case_and_accents_give_one_term(text):
    assert analyze(text, "fr") == ["etat"]


@pytest.mark.parametrize("text", ["qu'il", "jusqu'à", "d’Israël", "presqu'île"])
def test_french_elisions_are_removed_with_any_apostrophe(text):
    terms = analyze(text, "fr")
    assert not any(t in {"qu", "jusqu", "d", "presqu"} for t in terms)


@pytest.mark.parametrize("dash", ["-", "\u2010", "\u2011", "\u2013", "\u2014"])
def test_hyphens_of_every_kind_split_words(dash):
    assert analyze(f"États{dash}Unis", "fr") == analyze("États Unis", "fr") == ["etat", "unis"]


def test_stopwords_go_numbers_stay():
    assert analyze("Il y a au moins 3 428 décès de manifestants", "fr") == ["moin", "3", "428", "deces", "manifest"]


def test_english_text_is_stemmed_in_english():
    assert analyze("The negotiations were running", "en") == ["negoti", "run"]


def test_each_indexed_word_gives_its_stem_its_form_and_its_prefix():
    assert index_terms("Les négociations", "fr") == ["negoci", "=negociations", "~negoc"]


def test_questions_lose_their_interrogatives_but_articles_keep_them():
    question = "Combien de jours a duré la guerre ?"
    assert "=combien" not in query_terms(question, "fr")
    assert "=combien" in index_terms(question, "fr")
    assert [t for t in query_terms("Who is the White House press secretary?", "fr", "en") if t.startswith("=")] == \
        ["=white", "=house", "=press", "=secretary"]


def _index(texts, docs=None, langs=None):
    terms = [index_terms(t, (langs or ["fr"] * len(texts))[i]) for i, t in enumerate(texts)]
    return LexicalIndex().build(list(range(10, 10 + len(texts))), terms, docs, langs)


def test_the_exact_word_ranks_above_a_mere_stem_match():
    idx = _index(["Les négociations reprennent à Mascate", "Ils négocient à Mascate"])
    ids, _ = idx.search("négociations", 2)
    assert ids.tolist() == [10, 11]


def test_a_passage_whose_article_holds_the_other_words_ranks_first():
    # rows 10 and 12 have the same text; row 10's article also speaks of "mètres"
    idx = _index(["Un pont sur la Saône", "Il mesure 180 mètres", "Un pont sur la Saône"], docs=["a", "a", "b"])
    ids, scores = idx.search("pont Saône mètres", 3)
    assert ids[0] == 10 and scores[0] > scores[list(ids).index(12)]
    flat, _ = idx.search("pont Saône mètres", 3, doc_weight=0.0)
    assert set(flat[:2].tolist()) == {10, 12}


def test_an_english_question_finds_the_french_passage_naming_its_country_in_french():
    idx = _index(["Une organisation protestante compte ses morts en Irlande.",
                  "Iran Human Rights, basée en Norvège, a compté les morts."])
    ids, _ = idx.search("Which organization based in Norway counted the deaths?", 2, lang="en")
    assert ids.tolist()[0] == 11
    ids, _ = idx.search("Quelle organisation basée en Norvège a compté les morts ?", 2, lang="fr")
    assert ids.tolist()[0] == 11  # in the articles' own language nothing is added


def test_mask_restricts_rows_and_unmatched_rows_are_left_out():
    idx = _index(["pont Lyon", "pont Nantes", "grève Nantes"])
    ids, _ = idx.search("pont", 10, mask=np.array([0, 1, 1], dtype=np.float32))
    assert ids.tolist() == [11]


def test_save_and_load_give_the_same_scores_without_pickle(tmp_path):
    idx = _index(["pont Lyon Saône", "solar farm Nevada", "grève Nantes"], langs=["fr", "en", "fr"])
    idx.save(tmp_path / "lex")
    again = LexicalIndex.load(tmp_path / "lex")
    for q in ("pont", "farms in Nevada", "grève à Nantes"):
        assert np.allclose(idx.scores(q, "fr"), again.scores(q, "fr"))
    assert not list((tmp_path / "lex").rglob("*.pkl")) and not list((tmp_path / "lex").rglob("*.pickle"))


def test_an_index_written_by_another_analysis_is_refused(tmp_path):
    _index(["pont Lyon"]).save(tmp_path / "lex")
    params = json.loads((tmp_path / "lex" / "params.json").read_text())
    params["analyzer"] = 1
    (tmp_path / "lex" / "params.json").write_text(json.dumps(params))
    with pytest.raises(LexicalMismatch, match="analysis version 1"):
        LexicalIndex.load(tmp_path / "lex")


def test_empty_index_and_empty_question_find_nothing():
    assert LexicalIndex().build([], []).search("pont", 5)[0].size == 0
    assert _index(["pont Lyon"]).search("le la les ?", 5)[0].size == 0


def test_numpy_built_bm25_scores_equal_bm25s_own_index():
    texts = [*next(SEEDS.glob("*.txt")).read_text(encoding="utf-8").split("\n\n"), ARTICLE_FR, ARTICLE_FR_2]
    tokens = [index_terms(t, "fr") for t in texts] + [[], index_terms(ARTICLE_EN, "en")]  # an empty row too
    ref = bm25s.BM25(k1=K1, b=B)
    ref.index([t or ["\u2205"] for t in tokens], show_progress=False)
    ours = bm25s_index(bm25_postings(*table_of(tokens).occurrences(), len(tokens), K1, B), K1, B)
    assert ours.vocab_dict.keys() == ref.vocab_dict.keys()
    for term in ref.vocab_dict:
        if term:
            assert np.array_equal(ours.get_scores([term]), ref.get_scores([term])), term
    assert {k: v.dtype for k, v in ours.scores.items() if k != "num_docs"} == \
        {k: v.dtype for k, v in ref.scores.items() if k != "num_docs"}
