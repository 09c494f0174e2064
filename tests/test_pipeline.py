"""RAG.ask and RAG.ask_stream on a real index: the Answer contract, chats, restrictions, modes."""

import shutil

import pytest
from conftest import ARTICLE_FR_2, SEEDS

from rag.answering.base import NO_ANSWER, NO_QUESTION
from rag.config import Config
from rag.indexing import Indexer
from rag.pipeline import RAG

Q1 = "Qui est le ministre iranien des Affaires étrangères ?"


@pytest.fixture(scope="module")
def rag(answer_index, embedder):
    rag = RAG(Config(index_dir=str(answer_index)))
    rag.retriever._embedder = embedder
    return rag


def test_answer_json_is_the_design_contract(rag):
    ans = rag.ask(Q1)
    out = ans.to_json()
    assert {"question", "answer", "abstained", "citations", "latency_ms", "lang", "mode", "notice"} <= out.keys()
    assert out["question"] == Q1 and out["lang"] == "fr" and out["mode"] == "extractive" and out["latency_ms"] > 0
    assert "Abbas Araghchi" in out["answer"] and not out["abstained"]
    c = out["citations"][0]
    assert {"n", "doc_id", "source", "title", "chunk_id", "excerpt", "start", "end", "score", "sentence_start",
            "sentence_end"} <= c.keys()
    assert c["source"].endswith("seed.txt") and c["start"] <= c["sentence_start"] < c["sentence_end"] <= c["end"]


def test_stream_ends_with_the_same_answer_as_ask(rag):
    parts = list(rag.ask_stream("Quelle est la capitale d'Oman ?"))
    assert parts and parts[-1].answer == rag.ask("Quelle est la capitale d'Oman ?").answer
    assert "Mascate" in parts[-1].answer


def test_a_follow_up_question_uses_the_conversation(rag):
    first = rag.ask(Q1)
    follow = rag.ask("Et qui l'a rencontré ?", history=[(Q1, first.answer)])
    assert not follow.abstained and "Badr al‑Busaidi, a rencontré séparément le ministre iranien" in follow.answer
    alone = rag.ask("Et qui l'a rencontré ?")
    assert alone.answer != follow.answer


def test_a_second_follow_up_keeps_the_topic(rag):
    first = rag.ask(Q1)
    history = [(Q1, first.answer), ("Et qui l'a rencontré ?", rag.ask("Et qui l'a rencontré ?",
                                                                     history=[(Q1, first.answer)]).answer)]
    ans = rag.ask("Et quand sont-ils arrivés à Mascate ?", history=history)
    assert "6 février" in ans.answer


def test_a_short_follow_up_takes_the_chat_language(rag):
    history = [("Who is the White House press secretary?", "Karoline Leavitt [1]")]
    assert rag.ask("Steve Witkoff ?", history=history).lang == "en"
    assert rag.ask("Steve Witkoff ?").lang == "fr"


def test_restricting_to_a_document_cites_only_it(rag):
    ans = rag.ask("Combien mesure le nouveau pont de Lyon ?", docs=["Un nouveau pont à Lyon"])
    assert "180 mètres" in ans.answer and {c.title for c in ans.citations} == {"Un nouveau pont à Lyon"}
    outside = rag.ask(Q1, docs=[c.doc_id for c in ans.citations])
    assert outside.abstained or "Araghchi" not in outside.answer


def test_blank_question_asks_for_a_question_and_unknown_mode_is_an_error(rag):
    ans = rag.ask("   ")
    assert ans.abstained and ans.answer == NO_QUESTION["fr"] and not ans.citations
    with pytest.raises(ValueError, match="'oracle'"):
        rag.ask(Q1, mode="oracle")


def test_english_question_over_french_articles_abstains_in_english(rag):
    ans = rag.ask("What is the name of the Israeli prime minister?")
    assert ans.abstained and ans.answer == NO_ANSWER["en"] and ans.lang == "en"


def test_a_rebuilt_index_is_answered_from_its_new_articles(tmp_path, embedder):
    folder = tmp_path / "articles"
    folder.mkdir()
    shutil.copy(next(SEEDS.glob("*.txt")), folder / "seed.txt")
    config = Config(index_dir=str(tmp_path / "index"))
    Indexer(config).build([folder], progress=False)
    rag = RAG(config)
    rag.retriever._embedder = embedder
    question = "Quelle aéroport la DGAC a-t-elle demandé de réduire de moitié ?"
    assert rag.ask(question).abstained
    n_before = rag.retriever.term_stats().n_docs
    (folder / "greve.txt").write_text(ARTICLE_FR_2, encoding="utf-8")
    Indexer(config).build([folder], progress=False)
    ans = rag.ask(question)
    assert rag.retriever.term_stats().n_docs > n_before
    assert not ans.abstained and "Nantes" in ans.answer
