"""Interface language: French or English, from the browser's Accept-Language."""

from __future__ import annotations

import pytest

from ui.i18n import EXAMPLES, STRINGS, pick_lang, t, tn


@pytest.mark.parametrize("header, lang", [
    ("fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7", "fr"),
    ("en-US,en;q=0.9", "en"),
    ("de-DE,de;q=0.9,en;q=0.8", "en"),          # the first supported language the browser accepts
    ("en;q=0.5,fr;q=0.8", "fr"),                # weights, not order, decide
    ("fr-CA", "fr"),
    ("es-ES", "fr"),                            # neither: French, the product's first language
    ("", "fr"),
    (None, "fr"),
    ("en;q=abc,fr", "fr"),                      # a broken weight does not break the page
])
def test_interface_language_follows_the_browser(header, lang):
    assert pick_lang(header) == lang


def test_every_interface_string_exists_in_both_languages():
    assert set(STRINGS["fr"]) == set(STRINGS["en"])
    assert len(EXAMPLES["fr"]) == len(EXAMPLES["en"]) > 0


def test_strings_are_formatted_and_counts_agree_with_their_noun():
    assert t("en", "upload_encoding", names="a.txt", done=3, total=11) == "Indexing a.txt: 3/11 passages encoded…"
    assert tn("fr", "n_chunks", 1) == "1 extrait" and tn("fr", "n_chunks", 0) == "0 extrait"
    assert tn("en", "n_chunks", 0) == "0 passages" and tn("en", "n_documents", 1) == "1 document"


EXPECTED = {  # what each example question must find in the seed article
    "Qui est le ministre iranien des Affaires étrangères ?": "Araghchi",
    "Dans quelle ville se sont déroulées les discussions entre Iraniens et Américains ?": "Mascate",
    "Qui est l'envoyé spécial des États-Unis ?": "Witkoff",
    "Quel porte-avions les États-Unis ont-ils envoyé dans la région ?": "Abraham Lincoln",
    "Who is the Iranian foreign minister?": "Araghchi",
    "Who is the White House press secretary?": "Leavitt",
    "Who is Karoline Leavitt?": "Karoline Leavitt",
    "What did the Iran Human Rights organisation count?": "3 428",
}


def test_example_questions_find_their_answer_in_the_seeds(config, embedder):
    from rag.indexing import Indexer
    from rag.pipeline import RAG
    from tests.conftest import SEEDS

    Indexer(config, embedder=embedder).build([SEEDS], progress=False)
    rag = RAG(config)
    questions = EXAMPLES["fr"] + EXAMPLES["en"]
    assert set(questions) == set(EXPECTED)
    for q in questions:
        answer = rag.ask(q, k=3)
        assert any(EXPECTED[q] in c.excerpt for c in answer.citations), q
