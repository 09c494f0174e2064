"""Country and region names across languages (CLDR through Babel): what an English question about French
articles is searched with besides its own words."""

from rag.text.analysis import query_terms
from rag.text.places import translated_places


def test_countries_named_in_english_are_given_in_french_and_back():
    assert translated_places("Which aircraft carrier did the United States send?", "en", "fr") == ["États-Unis"]
    assert translated_places("Qui représente le Royaume-Uni et l'Allemagne ?", "fr", "en") == [
        "United Kingdom", "Germany"]


def test_only_whole_names_count_and_each_once():
    assert translated_places("Norwayan norway NORWAY, Norway.", "en", "fr") == ["Norvège"]
    assert translated_places("The chinaware of Spainish kings", "en", "fr") == []


def test_names_alike_in_both_languages_and_a_same_language_question_add_nothing():
    assert translated_places("Who met in Oman and Iran?", "en", "fr") == []
    assert translated_places("Qui est allé en Norvège ?", "fr", "fr") == []
    assert translated_places("Who went to Norway?", "en", "xx") == []  # a language the CLDR does not know


def test_an_english_question_searched_in_french_holds_the_french_name():
    terms = query_terms("Which organization is based in Norway?", "fr", "en")
    assert "norway" in terms and "=norvege" in terms
    assert "=norvege" not in query_terms("Which organization is based in Norway?", "en", "en")
