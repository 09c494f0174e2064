"""Text utilities: answer normalisation (the evaluation contract), accents, language detection."""

import pytest

from rag.text.normalize import detect_language, normalize_answer, strip_accents


@pytest.mark.parametrize("a, b", [
    ("Badr al-Busaidi", "badr al busaidi"),
    ("Badr al‑Busaidi", "BADR AL BUSAIDI"),          # non-breaking hyphen
    ("beau–fils", "beau fils"),                      # en dash
    ("l’Atlantic Council", "l'Atlantic Council"),    # typographic and straight apostrophes
    ("Égalité de statut.", "egalite de statut"),
    ("«  armada  »", "armada"),
    ("ﬁn", "fin"),                                   # NFKC ligature
    ("3\u202f428", "3 428"),                         # narrow no-break space
])
def test_answers_that_differ_only_in_form_normalise_the_same(a, b):
    assert normalize_answer(a) == normalize_answer(b)


def test_normalised_text_is_alphanumeric_words_separated_by_single_spaces():
    assert normalize_answer("  Qu'est-ce que « l'USS Abraham Lincoln » ? ") == "qu est ce que l uss abraham lincoln"


def test_strip_accents_keeps_letters():
    assert strip_accents("États-Unis, Norvège, Téhéran") == "Etats-Unis, Norvege, Teheran"


@pytest.mark.parametrize("text, lang", [
    ("Qui est le ministre iranien des Affaires étrangères ?", "fr"),
    ("Who is the Iranian foreign minister?", "en"),
    ("Quelle est la capitale d'Oman ?", "fr"),
    ("Which aircraft carrier did the United States send to the region?", "en"),
    ("l'Iran", "fr"),
])
def test_questions_are_told_french_or_english(text, lang):
    assert detect_language(text) == lang


def test_text_without_a_telling_word_gets_the_default():
    assert detect_language("Mascate", "fr") == "fr"
    assert detect_language("Mascate", "en") == "en"
