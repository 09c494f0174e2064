"""Term statistics of an index: how rare each BM25 term is, to weigh a question's words."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from ..text.analysis import terms_of


class TermStats:
    """Inverse document frequencies of BM25 terms over the indexed chunks.

    Parameters
    ----------
    df : mapping of str to int
        Chunks holding each term.
    n_docs : int
        Chunks in the index.
    """

    def __init__(self, df: Mapping[str, int], n_docs: int):
        self.df = df
        self.n_docs = max(int(n_docs), 1)

    def idf(self, term: str) -> float:
        """BM25 (Lucene) inverse document frequency; an unknown term gets the highest."""
        df = int(self.df.get(term, 0))
        return math.log(1.0 + (self.n_docs - df + 0.5) / (df + 0.5))

    @classmethod
    def from_texts(cls, texts: Sequence[str], lang: str = "fr") -> "TermStats":
        """Count document frequencies over ``texts`` (passages without an index)."""
        df: dict[str, int] = {}
        for text in texts:
            for t in set(terms_of(text, lang)):
                df[t] = df.get(t, 0) + 1
        return cls(df, len(texts))
