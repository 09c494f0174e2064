"""What every answerer shares: the mode, the abstention in the question's language, citations."""

import pytest

from rag.answering import ExtractiveAnswerer, default_mode, make_answerer, parse_mode
from rag.answering.base import NO_ANSWER, NO_QUESTION, AnswerMode, abstain, citation_for
from rag.config import Config
from rag.schema import Hit


def test_extractive_is_the_default_and_llm_once_an_endpoint_is_configured():
    assert default_mode(Config()) is AnswerMode.EXTRACTIVE
    assert default_mode(Config(llm_base_url="http://127.0.0.1:1/v1")) is AnswerMode.EXTRACTIVE  # no model yet
    assert default_mode(Config(llm_base_url="http://127.0.0.1:1/v1", llm_model="m")) is AnswerMode.LLM
    assert parse_mode("LLM", Config()) is AnswerMode.LLM and parse_mode(None, Config()) is AnswerMode.EXTRACTIVE


def test_an_unknown_mode_is_an_error_listing_the_valid_ones():
    with pytest.raises(ValueError, match=r"'generative'.*extractive, llm"):
        parse_mode("generative", Config())


def test_llm_mode_without_an_endpoint_names_the_settings_to_give():
    with pytest.raises(ValueError, match="RAG_LLM_BASE_URL"):
        make_answerer(Config(), "llm")
    assert isinstance(make_answerer(Config(), "extractive"), ExtractiveAnswerer)


def test_abstention_speaks_the_question_language():
    fr = abstain("Quel est le prix du baril ?", "fr")
    en = abstain("What is the price of oil?", "en")
    assert fr.abstained and fr.answer == NO_ANSWER["fr"] and not fr.citations
    assert en.abstained and en.answer == NO_ANSWER["en"]
    assert abstain("   ", "fr").answer == NO_QUESTION["fr"]
    assert abstain("Wie spät ist es?", "de").answer == NO_ANSWER["en"]  # a language we do not speak: English


def test_citation_carries_the_excerpt_and_the_supporting_sentence():
    text = "Le pont a été inauguré samedi. Il mesure 180 mètres."
    hit = Hit("c1", "d1", "pont.txt", "Un pont", text, 100, 100 + len(text), "fr", 0.8)
    c = citation_for(2, hit, (131, 152))
    assert (c.n, c.excerpt, c.start, c.end, c.sentence_start, c.sentence_end) == (2, text, 100, 100 + len(text), 131, 152)
    assert text[c.sentence_start - c.start:c.sentence_end - c.start] == "Il mesure 180 mètres."


def test_answer_settings_come_from_the_environment_and_are_checked():
    from rag.config import ConfigError, load_config

    cfg = load_config(env={"RAG_LLM_BASE_URL": "http://127.0.0.1:11434/v1", "RAG_LLM_MODEL": "qwen2.5:3b",
                           "RAG_LLM_TIMEOUT": "5", "RAG_ABSTAIN_THRESHOLD": "0.4"})
    assert default_mode(cfg) is AnswerMode.LLM and cfg.llm_timeout == 5.0 and cfg.abstain_threshold == 0.4
    with pytest.raises(ConfigError, match="RAG_ABSTAIN_THRESHOLD.*between 0 and 1"):
        load_config(env={"RAG_ABSTAIN_THRESHOLD": "30"})
    with pytest.raises(ConfigError, match="RAG_LLM_TIMEOUT.*positive"):
        load_config(env={"RAG_LLM_TIMEOUT": "0"})
