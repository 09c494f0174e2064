"""What a question asks for, and follow-up questions completed from the chat."""

import pytest

from rag.text.questions import (
    QuestionType,
    asked_noun,
    is_followup,
    question_type,
    rewrite_followup,
    strip_meta,
)

Q1 = "Qui est le ministre iranien des Affaires étrangères ?"


@pytest.mark.parametrize("question, lang, kind", [
    ("Qui est le secrétaire d'État américain ?", "fr", QuestionType.PERSON),
    ("Par qui la guerre a-t-elle été déclenchée ?", "fr", QuestionType.PERSON),
    ("Comment s'appelle l'envoyé spécial ?", "fr", QuestionType.PERSON),
    ("Quand Washington s'est-il joint au conflit ?", "fr", QuestionType.DATE),
    ("En quelle année le traité fut-il signé ?", "fr", QuestionType.DATE),
    ("Combien de manifestants sont morts ?", "fr", QuestionType.NUMBER),
    ("Quelle est la population d'Oman ?", "fr", QuestionType.NUMBER),
    ("Où ont eu lieu les discussions ?", "fr", QuestionType.PLACE),
    ("Dans quelle ville se sont déroulées les discussions ?", "fr", QuestionType.PLACE),
    ("Que craignent les États du Golfe ?", "fr", QuestionType.OTHER),
    ("Who is the White House press secretary?", "en", QuestionType.PERSON),
    ("When did the talks start?", "en", QuestionType.DATE),
    ("How many protesters died?", "en", QuestionType.NUMBER),
    ("In which city did the talks take place?", "en", QuestionType.PLACE),
    ("What does Iran want?", "en", QuestionType.OTHER),
])
def test_question_type_follows_the_question_word(question, lang, kind):
    assert question_type(question, lang) is kind


def test_pronoun_and_elliptic_questions_are_follow_ups_but_complete_ones_are_not():
    assert is_followup("Et qui l'a rencontré ?") and is_followup("Quand ?") and is_followup("What did he say?", "en")
    assert not is_followup("Quelle est la capitale d'Oman ?")


def test_follow_up_borrows_the_topic_of_the_previous_question():
    rewritten = rewrite_followup("Et qui l'a rencontré ?", [(Q1, "Abbas Araghchi [1]")])
    assert rewritten.startswith("Et qui l'a rencontré ?")
    assert "ministre" in rewritten and "iranien" in rewritten and "Affaires" in rewritten


def test_a_complete_question_or_no_history_is_left_alone():
    assert rewrite_followup("Quelle est la capitale d'Oman ?", [(Q1, "…")]) == "Quelle est la capitale d'Oman ?"
    assert rewrite_followup("Et qui l'a rencontré ?", []) == "Et qui l'a rencontré ?"


def test_the_topic_carries_over_several_follow_ups():
    history = [(Q1, "Abbas Araghchi [1]"), ("Et qui l'a rencontré ?", "Badr al-Busaidi [1]")]
    rewritten = rewrite_followup("Et quand ?", history)
    assert "iranien" in rewritten and "rencontré" in rewritten


@pytest.mark.parametrize("question, lang, core", [
    ("Quel groupe armé libanais est cité dans l'article ?", "fr", "Quel groupe armé libanais ?"),
    ("Selon le texte, qui a gagné ?", "fr", "qui a gagné ?"),
    ("Which group is mentioned in the article?", "en", "Which group?"),
    ("According to the article, who won?", "en", "who won?"),
    ("Qui est cité par Le Monde ?", "fr", "Qui est cité par Le Monde ?"),         # quoting is the subject
    ("Qui est mentionné ?", "fr", "Qui est mentionné ?"),                         # nothing else to look for
    ("Citer le premier lieu mentionné où la plante pousse ?", "fr",
     "Citer le premier lieu mentionné où la plante pousse ?"),                      # not at the end: content
])
def test_words_pointing_at_the_article_are_dropped_from_the_question(question, lang, core):
    assert strip_meta(question, lang) == core


@pytest.mark.parametrize("question, lang, noun", [
    ("Dans quelle ville se sont déroulées les discussions ?", "fr", "ville"),
    ("En quelle année le pont a-t-il ouvert ?", "fr", "année"),
    ("Quel pays a accueilli la rencontre ?", "fr", "pays"),
    ("In which city did the talks take place?", "en", "city"),
    ("Quelle est la population d'Oman ?", "fr", ""),   # a number's noun is said next to the number
    ("Qui a rencontré le ministre ?", "fr", ""),
])
def test_the_noun_a_place_or_date_question_asks_for_is_found(question, lang, noun):
    assert asked_noun(question, lang) == noun
