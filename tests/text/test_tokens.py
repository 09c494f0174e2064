"""Token spans: lengths of pieces read off one tokenization of the whole text."""

import re

import pytest

from rag.text.tokens import count_between, splits_words

TEXT = ("Les négociations entre l’Iran et les États-Unis ont repris à Mascate, la capitale d'Oman. "
        "« C’était attendu », a dit le ministre ; rien n’a été signé.\n\nFin du 2e round (12,5 %).")


@pytest.fixture(scope="module")
def minilm():
    """all-MiniLM-L6-v2: its BERT tokenizer cuts words at white space and punctuation first."""
    from rag.config import MINILM_MODEL
    from rag.embedding import get_embedder

    return get_embedder(MINILM_MODEL)


@pytest.fixture(scope="module")
def spans(minilm):
    return minilm.token_spans([TEXT])[0]


def test_a_sentencepiece_model_gives_no_spans_and_is_counted_piece_by_piece(embedder):
    assert embedder.token_spans([TEXT]) is None  # multilingual-e5-small: metaspace, words not cut at punctuation


def test_every_piece_between_words_is_counted_like_the_tokenizer(minilm, spans):
    bounds = sorted({0, len(TEXT), *(m.start() for m in re.finditer(r"\S+", TEXT)),
                     *(m.end() for m in re.finditer(r"\S+", TEXT))})
    for i, a in enumerate(bounds):
        for b in bounds[i:]:
            assert count_between(spans, a, b) == minilm.count_tokens(TEXT[a:b]), TEXT[a:b]


def test_a_piece_that_cuts_a_word_is_left_to_the_tokenizer(spans):
    start = TEXT.index("négociations")
    assert count_between(spans, start + 3, start + 12) is None  # "ociations"
    assert count_between(spans, start, start + 4) is None       # "négo"


def test_both_encoders_give_the_same_spans(minilm):
    from rag.embedding import get_embedder

    other = get_embedder(minilm.name, encoder="torch" if minilm.encoder.value != "torch" else "onnx-int8")
    for a, b in zip(other.token_spans([TEXT])[0], minilm.token_spans([TEXT])[0]):
        assert a.tolist() == b.tolist()


def test_a_tokenizer_that_does_not_cut_at_words_first_gives_no_spans():
    from tokenizers import Tokenizer, models, pre_tokenizers

    sentencepiece_like = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    sentencepiece_like.pre_tokenizer = pre_tokenizers.Metaspace()
    assert not splits_words(sentencepiece_like)
    bert_like = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    bert_like.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    assert splits_words(bert_like)
