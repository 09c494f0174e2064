"""Sentence cutting and what a sentence holds (dates, numbers, names, places)."""

from conftest import SEEDS
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.text.sentences import has_date, has_number, names, places, split_sentences


def cut(text):
    return [text[s.start:s.end] for s in split_sentences(text)]


def test_abbreviations_and_initials_do_not_end_a_sentence():
    text = "M. Dupont a vu J. K. Rowling en 300 av. J.-C. à Paris. Mme Durand aussi ! Et vous ?"
    assert cut(text) == ["M. Dupont a vu J. K. Rowling en 300 av. J.-C. à Paris.", "Mme Durand aussi !", "Et vous ?"]


def test_closing_quotes_stay_with_their_sentence_and_lowercase_does_not_start_one():
    text = "« Ils négocient. » Il l'a dit jeudi. \"Nous verrons.\" a-t-il ajouté, etc. et puis rien."
    assert cut(text) == ["« Ils négocient. »", "Il l'a dit jeudi.", "\"Nous verrons.\" a-t-il ajouté, etc. et puis rien."]


def test_every_line_is_its_own_sentence_so_headings_are_not_glued_to_text():
    text = "Des tensions encore présentes\nIl s'agit de la première rencontre. Elle a eu lieu à Mascate"
    assert cut(text) == ["Des tensions encore présentes", "Il s'agit de la première rencontre.", "Elle a eu lieu à Mascate"]


def test_seed_article_offsets_slice_its_text():
    text = next(SEEDS.glob("*.txt")).read_text(encoding="utf-8")
    spans = split_sentences(text)
    assert len(spans) > 30
    assert cut(text)[2].startswith("Oman a indiqué que le ministre") and cut(text)[2].endswith("Donald Trump.")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab AÉ.!?…\n«»\"'-1")), max_size=80))
def test_sentences_are_ordered_trimmed_and_cover_all_the_text(text):
    spans = split_sentences(text)
    for a, b in zip(spans, spans[1:]):
        assert a.end <= b.start
    for s in spans:
        piece = text[s.start:s.end]
        assert piece and piece == piece.strip()
    covered = "".join(text[s.start:s.end] for s in spans)
    assert "".join(covered.split()) == "".join(text.split())


def test_dates_are_recognised_in_french_and_english():
    assert has_date("arrivés ce vendredi 6 février")
    assert has_date("depuis juin 2025") and has_date("au XIXe siècle") and has_date("on Monday")
    assert not has_date("Oman a indiqué que le ministre a rencontré son homologue.")


def test_a_date_or_les_deux_is_not_an_answer_to_combien():
    assert has_number("au moins 3 428 décès de manifestants") and has_number("la guerre des 12 jours")
    assert has_number("trois millions d'habitants")
    assert not has_number("arrivés ce vendredi 6 février, en 2025")
    assert not has_number("les tensions restent vives entre les deux pays")


def test_names_skip_the_first_word_and_places_follow_a_preposition():
    sentence = "Le ministre américain Marco Rubio est arrivé à Mascate, la capitale d'Oman."
    assert names(sentence) == ["Marco", "Rubio", "Mascate"]
    assert places(sentence) == ["Mascate", "Oman"]


def test_hard_wrapped_lines_are_joined_but_headings_stand_alone():
    text = "Solar farm opens in Nevada\n\nThe largest solar farm opened on Monday near Las Vegas. The plant can power\n" \
           "120,000 homes, its operator said.\nA new heading\nConstruction took three years."
    assert cut(text) == ["Solar farm opens in Nevada", "The largest solar farm opened on Monday near Las Vegas.",
                         "The plant can power\n120,000 homes, its operator said.", "A new heading",
                         "Construction took three years."]
