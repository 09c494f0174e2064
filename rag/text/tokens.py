"""Token spans: a text tokenized once, so the length of any piece of it can be read off.

The chunker measures thousands of pieces of each document (paragraphs, sentences, their
merges). With a tokenizer that cuts words at white space and punctuation before splitting
them (BERT's), a piece that begins and ends between words has exactly the tokens of the
whole text that lie inside it, so tokenizing the document once, in a batch, is enough. A
piece that cuts a word in two is measured by the tokenizer, as before.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

WORD_SPLITTING = ("BertPreTokenizer",)  # pre-tokenizers whose words never span white space or punctuation


class TokenSpans(NamedTuple):
    """The tokens of one text: character start and end, and word number, of each (int32 arrays)."""

    starts: np.ndarray
    ends: np.ndarray
    words: np.ndarray


def splits_words(tokenizer) -> bool:
    """True if ``tokenizer`` (a ``tokenizers.Tokenizer``) cuts words at white space and punctuation first."""
    return type(getattr(tokenizer, "pre_tokenizer", None)).__name__ in WORD_SPLITTING


def token_spans(tokenizer, texts: Sequence[str]) -> list[TokenSpans]:
    """Tokenize ``texts`` in one batch (no special tokens) and keep where each token lies.

    Parameters
    ----------
    tokenizer : tokenizers.Tokenizer
        Without truncation or padding.
    texts : sequence of str
        Whole documents.
    """
    out = []
    for enc in tokenizer.encode_batch(list(texts), add_special_tokens=False):
        offsets = np.array(enc.offsets, dtype=np.int32).reshape(-1, 2)
        words = np.array([-1 if w is None else w for w in enc.word_ids], dtype=np.int32)
        out.append(TokenSpans(offsets[:, 0].copy(), offsets[:, 1].copy(), words))
    return out


def count_between(spans: TokenSpans, start: int, end: int) -> int | None:
    """Tokens of ``text[start:end]``, or None where the span cuts a word (then tokenize the piece).

    Examples
    --------
    >>> spans = TokenSpans(np.array([0, 4, 6]), np.array([4, 6, 9]), np.array([0, 0, 1]))  # "play##ed out"
    >>> count_between(spans, 0, 9), count_between(spans, 6, 9), count_between(spans, 4, 9)
    (3, 1, None)
    """
    starts, ends, words = spans
    first, stop = (int(i) for i in np.searchsorted(starts, (start, end)))  # tokens first .. stop-1 begin inside
    if first > 0 and (ends[first - 1] > start or (first < len(words) and words[first - 1] == words[first])):
        return None  # a token or a word runs across the span's start
    if stop > first and (ends[stop - 1] > end or (stop < len(words) and words[stop] == words[stop - 1])):
        return None  # a token or a word runs across the span's end
    return stop - first
