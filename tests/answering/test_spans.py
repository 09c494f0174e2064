"""Short answers: the words of the quoted sentence that answer, found by the fitted span model."""

import json

import numpy as np
import pytest
from conftest import SEEDS

from rag.answering import Request
from rag.answering import spans as sp
from rag.answering import syntax
from rag.answering.base import abstain
from rag.answering.extractive import ExtractiveAnswerer, choose, compose, short_answer
from rag.config import Config
from rag.retrieval import Retriever
from rag.schema import Short
from rag.text.normalize import detect_language, normalize_answer
from rag.text.questions import Asked, asked_for
from rag.text.sentences import dates, entities, numbers, quotes

SEED_TEXT = next(SEEDS.glob("*.txt")).read_text(encoding="utf-8")
# Without spaCy's parse (rag[syntax]) the weights fitted without it miss these (eval/fit_spans.py's figures).
WITHOUT_PARSE = pytest.mark.xfail(not syntax.available("fr"), strict=False,
                                  reason="the weights fitted without spaCy's parse miss this one")


def sentence_of(text: str, words: str) -> sp.Sentence:
    """The sentence of ``text`` holding ``words``, with its offset in ``text``."""
    from rag.text.sentences import split_sentences

    for s in split_sentences(text):
        if words in text[s.start:s.end]:
            return sp.Sentence(text[s.start:s.end], s.start, 1, detect_language(text))
    raise AssertionError(f"no sentence holds {words!r}")


def pick(question: str, document: str, *holding: str) -> sp.Pick:
    """The span found for ``question`` in the sentences of ``document`` holding ``holding`` (any confidence)."""
    sentences = [sentence_of(document, w) for w in holding]
    found = sp.find_span(question, detect_language(question), sentences, threshold=0.0)
    assert found is not None
    assert document[found.start:found.end] == found.text
    return found


ARTICLE_FR = ("Un nouveau pont à Lyon\n\nUn nouveau pont piéton a été inauguré samedi à Lyon, au-dessus de la "
              "Saône. Il mesure 180 mètres et a coûté 25 millions d’euros. La maire a salué « un lien entre les "
              "deux rives ».")
ARTICLE_EN = ("Solar farm opens in Nevada\n\nThe largest solar farm in the state opened on Monday near Las "
              "Vegas. The plant can power 120,000 homes, its operator said. Construction took three years and "
              "employed 900 workers.")


TYPED = [
    ("Qui est le ministre iranien des Affaires étrangères ?", SEED_TEXT, "Badr al", "Abbas Araghchi"),
    ("Qui est le ministre des Affaires étrangères d'Oman ?", SEED_TEXT, "Badr al", "Badr al‑Busaidi"),
    ("Quel jour les responsables sont-ils arrivés à Mascate ?", SEED_TEXT, "sont arrivés à Mascate", "6 février"),
    ("Dans quelle ville se sont déroulées les discussions ?", SEED_TEXT, "sont arrivés à Mascate", "Mascate"),
    ("Combien de manifestants sont morts selon Iran Human Rights ?", SEED_TEXT, "3 428", "3 428"),
    ("Quel porte-avions a été envoyé dans la région ?", SEED_TEXT, "USS Abraham", "USS Abraham Lincoln"),
    ("Combien mesure le nouveau pont de Lyon ?", ARTICLE_FR, "180 mètres", "180 mètres"),
    ("Quand le pont a-t-il été inauguré ?", ARTICLE_FR, "inauguré", "samedi"),
    ("When did the solar farm open?", ARTICLE_EN, "opened on Monday", "Monday"),
    ("Where did the largest solar farm of the state open?", ARTICLE_EN, "opened on Monday", "Las Vegas"),
    ("How many homes can the plant power?", ARTICLE_EN, "120,000", "120,000"),
    ("How many workers did the construction employ?", ARTICLE_EN, "900 workers", "900"),
]


@WITHOUT_PARSE
def test_who_when_where_how_many_mostly_get_the_name_date_place_number():
    # The fitted model is not always right (eval/fit_spans.py's figures); on these real sentences it gets
    # at least two questions in three, and each miss is named.
    misses = []
    for question, document, holding, gold in TYPED:
        found = pick(question, document, holding)
        got, want = normalize_answer(found.text).split(), normalize_answer(gold).split()
        if not (set(want) <= set(got) and len(got) <= len(want) + 2):
            misses.append(f"{question} -> {found.text!r} (want {gold!r})")
    assert len(misses) <= len(TYPED) // 3, misses


def test_the_span_comes_from_the_sentence_that_answers_among_those_quoted():
    found = pick("Quel porte-avions a été envoyé dans la région ?", SEED_TEXT, "Badr al", "USS Abraham")
    assert found.sentence == 1 and "Lincoln" in found.text


@pytest.mark.parametrize("question, holding, echoed", [
    ("Qui est Abbas Araghchi ?", "Badr al", {"abbas", "araghchi"}),
    ("Qui a rencontré le ministre iranien des Affaires étrangères ?", "Badr al",
     {"rencontre", "ministre", "iranien", "des", "affaires", "etrangeres", "le"}),
    ("Combien de décès de manifestants ?", "3 428", {"deces", "de", "manifestants"}),
])
def test_a_candidate_made_of_the_questions_words_is_never_the_span(question, holding, echoed):
    sentence = sentence_of(SEED_TEXT, holding)
    cands = sp.candidates(sp.analyse_question(question, "fr"), [sentence])
    assert len(cands.start)
    for a, b in zip(cands.start.tolist(), cands.end.tolist()):
        assert not set(normalize_answer(SEED_TEXT[a:b]).split()) <= echoed, SEED_TEXT[a:b]
    found = sp.find_span(question, "fr", [sentence], threshold=0.0)
    assert found is not None and not set(normalize_answer(found.text).split()) <= echoed


def test_offsets_point_into_the_document_text_whatever_the_sentence_offset():
    document = "Titre\n\n" + "Préambule sans rapport. " * 30 + ARTICLE_FR
    found = pick("Combien a coûté le nouveau pont de Lyon ?", document, "25 millions")
    assert document[found.start:found.end] == found.text and "25 millions" in found.text
    assert found.start > len("Titre\n\n" + "Préambule sans rapport. " * 30)


def test_a_span_is_given_only_from_the_fitted_confidence_on():
    sentences = [sentence_of(SEED_TEXT, "USS Abraham")]
    question = "Quel porte-avions a été envoyé dans la région ?"
    found = sp.find_span(question, "fr", sentences, threshold=0.0)
    assert found is not None and 0.0 < found.confidence < 1.0
    assert sp.find_span(question, "fr", sentences, threshold=found.confidence) == found
    assert sp.find_span(question, "fr", sentences, threshold=found.confidence + 1e-6) is None


@WITHOUT_PARSE
def test_a_sentence_with_nothing_the_question_asks_for_gets_less_confidence_than_one_with_the_answer():
    # no shape gate (eval/fit_spans.py: it costs short_f1): the confidence, not the candidate's shape, decides
    question = "Qui a gagné la finale du tournoi de tennis ?"
    rain = sp.find_span(question, "fr", [sp.Sentence("Il pleuvait beaucoup ce jour-là et les rues étaient vides.",
                                                     0, 1, "fr")], threshold=0.0)
    nadal = sp.find_span(question, "fr", [sp.Sentence("Dimanche, Rafael Nadal a gagné la finale du tournoi de tennis "
                                                      "de Roland-Garros.", 0, 1, "fr")])
    assert nadal is not None and nadal.text == "Rafael Nadal"  # shown at the fitted threshold
    assert rain is not None and rain.confidence < nadal.confidence
    assert sp.find_span("Qui a gagné la finale ?", "fr", []) is None


def test_the_weights_file_is_checked_against_the_features(tmp_path):
    shipped = json.loads(sp.WEIGHTS_FILE.read_text(encoding="utf-8"))
    assert shipped["span"]["features"] == list(sp.FEATURES)
    assert shipped["confidence"]["features"] == list(sp.CONFIDENCE_FEATURES)
    assert 0.0 <= sp.load_model().threshold < 1.0
    stale = dict(shipped, span={**shipped["span"], "features": shipped["span"]["features"][:-1] + ["renamed"]})
    path = tmp_path / "span_weights.json"
    path.write_text(json.dumps(stale), encoding="utf-8")
    with pytest.raises(ValueError, match="refit with eval/fit_spans.py"):
        sp.load_model(path)


@pytest.fixture(scope="module")
def retriever(answer_index, embedder):
    return Retriever(Config(index_dir=str(answer_index)), embedder=embedder)


@pytest.mark.parametrize("question, gold", [
    pytest.param("Quelle est la capitale d'Oman ?", "Mascate", marks=WITHOUT_PARSE),
    ("Qui est la secrétaire de presse de la Maison Blanche ?", "Karoline Leavitt"),
    pytest.param("Combien mesure le nouveau pont de Lyon ?", "180 mètres", marks=WITHOUT_PARSE),
    ("How many homes can the plant power?", "120,000"),
])
def test_the_answerer_gets_a_short_answer_under_its_citation(retriever, question, gold):
    config = Config(index_dir=str(retriever.store.folder))
    lang = detect_language(question)
    hits = retriever.search(question, 5, lang=lang)
    request = Request(question, hits, lang, stats=retriever.term_stats())
    answerer = ExtractiveAnswerer.from_config(config)
    choice = choose(answerer.rank(request), hits)
    answer = compose(question, lang, hits, choice.sentences)
    short = short_answer(request, choice, answer)
    assert answerer.answer(request).short == short  # the answerer gives it in its answer
    assert isinstance(short, Short) and normalize_answer(gold) in normalize_answer(short.text)
    citation = next(c for c in answer.citations if c.n == short.n)
    text = retriever.store.document_text(citation.doc_id)
    assert text[short.start:short.end] == short.text
    assert citation.sentence_start <= short.start < short.end <= citation.sentence_end
    assert 0.0 <= short.score <= 1.0


def test_an_abstention_has_no_short_answer(retriever):
    question = "Quelle est la population du Brésil ?"
    hits = retriever.search(question, 5, lang="fr")
    request = Request(question, hits, "fr", stats=retriever.term_stats())
    answerer = ExtractiveAnswerer.from_config(Config(index_dir=str(retriever.store.folder)))
    choice = choose(answerer.rank(request), hits)
    answer = answerer.answer(request)
    assert answer.abstained and answer.short is None
    assert short_answer(request, choice, abstain(question, "fr")) is None


@pytest.mark.parametrize("question, lang, asked", [
    ("Quel porte-avions a été envoyé dans la région ?", "fr", Asked.WHICH),
    ("Pourquoi Böhme enfle-t-il ?", "fr", Asked.WHY),
    ("Comment l'empereur est-il mort ?", "fr", Asked.HOW),
    ("Qu'a introduit la série de lois ?", "fr", Asked.WHAT),
    ("Qui a rencontré Abbas Araghchi ?", "fr", Asked.PERSON),
    ("Which carrier was sent to the region?", "en", Asked.WHICH),
    ("Why did the talks fail?", "en", Asked.WHY),
    ("What did Trump say?", "en", Asked.WHAT),
])
def test_the_kind_of_answer_follows_the_question_word(question, lang, asked):
    assert asked_for(question, lang) is asked


def test_dates_numbers_names_and_quotes_are_found_in_french_and_english():
    def texts(text, spans):
        return [text[s.start:s.end] for s in spans]

    fr = ("Le 6 février 2026, après la guerre de juin dernier, l'Organisation des Nations unies a versé "
          "25 millions d'euros.")
    assert texts(fr, dates(fr)) == ["6 février 2026", "juin dernier"]
    assert ("25 millions", "25 millions d'euros") in [(fr[a.start:a.end], fr[b.start:b.end]) for a, b in numbers(fr)]
    assert "Organisation des Nations" in texts(fr, entities(fr))
    en = 'Last Friday, in 1998 terms, the "armada" of USS Abraham Lincoln sailed 180 miles.'
    assert {"Last Friday", "1998"} <= set(texts(en, dates(en)))
    assert "USS Abraham Lincoln" in texts(en, entities(en)) and texts(en, quotes(en)) == ["armada"]
    assert ("180", "180 miles") in [(en[a.start:a.end], en[b.start:b.end]) for a, b in numbers(en)]


def test_candidates_carry_every_feature_and_stay_within_the_word_limit():
    q = sp.analyse_question("Quel porte-avions a été envoyé dans la région ?", "fr")
    sentence = sentence_of(SEED_TEXT, "USS Abraham")
    cands = sp.candidates(q, [sentence])
    assert cands.features.shape == (len(cands.start), len(sp.FEATURES)) and np.isfinite(cands.features).all()
    for a, b in zip(cands.start.tolist(), cands.end.tolist()):
        words = SEED_TEXT[a:b].split()
        assert 1 <= len(words) <= sp.MAX_WORDS and not any(c in SEED_TEXT[a:b] for c in ".;!?")
