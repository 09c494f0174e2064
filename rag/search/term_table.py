"""The BM25 terms of every chunk of a generation, numbered, so that an update need not read them again.

BM25 scores depend on the whole collection, so every update rebuilds the index over all
chunks. Splitting the stored term strings of tens of thousands of chunks and numbering
millions of terms took over a second of a one-article update; with the numbered terms of the
previous generation kept beside its BM25 files, an update drops the rows that go, numbers the
terms of the rows that come, and rebuilds from arrays. Stored as numpy arrays and JSON (no
pickle); an index without them (older versions) is rebuilt from the term strings, as before.
"""

from __future__ import annotations

import json
from itertools import chain
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

FILES = ("term_vocab.json", "term_ids.npy", "term_starts.npy")


class TermTable(NamedTuple):
    """Numbered terms: row ``i``'s term ids are ``ids[starts[i]:starts[i + 1]]``, ``vocab[id]`` the term."""

    vocab: list[str]
    ids: np.ndarray     # int32, every row's term ids end to end
    starts: np.ndarray  # int64, len(rows) + 1 offsets into ids

    @property
    def rows(self) -> int:
        """Rows in the table."""
        return len(self.starts) - 1

    def occurrences(self) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
        """(term -> id, the id of each occurrence, its row), as :func:`rag.bm25_build.term_ids` gives them."""
        rows = np.repeat(np.arange(self.rows, dtype=np.int64), np.diff(self.starts))
        return {t: i for i, t in enumerate(self.vocab)}, self.ids.astype(np.int64), rows


def table_of(tokens: Sequence[list[str]]) -> TermTable:
    """Number the terms of ``tokens`` (one list per row), in order of first appearance."""
    return extend(TermTable([], np.zeros(0, np.int32), np.zeros(1, np.int64)), tokens)


def extend(table: TermTable, tokens: Sequence[list[str]]) -> TermTable:
    """``table`` with rows for ``tokens`` appended; new terms get new ids."""
    vocab = {t: i for i, t in enumerate(table.vocab)}
    flat = list(chain.from_iterable(tokens))
    for term in flat:
        vocab.setdefault(term, len(vocab))
    ids = np.fromiter(map(vocab.__getitem__, flat), dtype=np.int32, count=len(flat))
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    starts = np.concatenate([table.starts, table.starts[-1] + np.cumsum(lengths)])
    return TermTable(list(vocab), np.concatenate([table.ids, ids]), starts)


def keep(table: TermTable, rows: np.ndarray) -> TermTable:
    """Only the rows where the boolean mask ``rows`` is true, and only the terms they still use."""
    lengths = np.diff(table.starts)[rows]
    ids = table.ids[np.repeat(rows, np.diff(table.starts))]
    used = np.bincount(ids, minlength=len(table.vocab)) > 0
    renumber = (np.cumsum(used) - 1).astype(np.int32)
    vocab = [t for t, u in zip(table.vocab, used.tolist()) if u]
    return TermTable(vocab, renumber[ids], np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))


def save(table: TermTable, folder: Path) -> None:
    """Write ``table`` into ``folder`` (beside the BM25 files of its generation)."""
    (folder / FILES[0]).write_text(json.dumps(table.vocab, ensure_ascii=False), encoding="utf-8")
    np.save(folder / FILES[1], table.ids, allow_pickle=False)
    np.save(folder / FILES[2], table.starts, allow_pickle=False)


def load(folder: Path, rows: int) -> TermTable | None:
    """The table saved in ``folder``, or None if it is absent, unreadable or not of ``rows`` rows."""
    try:
        vocab = json.loads((folder / FILES[0]).read_text(encoding="utf-8"))
        ids = np.load(folder / FILES[1], allow_pickle=False)
        starts = np.load(folder / FILES[2], allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    ok = (isinstance(vocab, list) and ids.dtype == np.int32 and starts.dtype == np.int64 and len(starts) == rows + 1
          and starts[0] == 0 and starts[-1] == len(ids) and (not len(ids) or 0 <= ids.min() <= ids.max() < len(vocab)))
    return TermTable(vocab, ids, starts) if ok else None
