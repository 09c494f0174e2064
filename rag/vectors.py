"""Vectors: a FAISS inner-product index over unit vectors, addressed by chunk id (int64)."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np


class VectorIndex:
    """Exact inner-product search (cosine on unit vectors) with removal by id.

    Parameters
    ----------
    dim : int
        Vector dimension.
    """

    def __init__(self, dim: int, index: faiss.Index | None = None):
        self.dim = dim
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add unit vectors under chunk ids."""
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                    np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        """Remove chunk ids; returns how many were removed."""
        if not len(ids):
            return 0
        return int(self.index.remove_ids(faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))))

    def search(self, query: np.ndarray, n: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Best ``n`` chunk ids for one unit query vector: (ids, cosine scores), best first.

        ``allowed`` restricts the search to those chunk ids.
        """
        if len(self) == 0 or n <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        params = None
        if allowed is not None:
            if not len(allowed):
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64)))
        scores, ids = self.index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32),
                                        min(n, len(self)), params=params)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def ids(self) -> np.ndarray:
        """The chunk ids held."""
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def save(self, path: Path) -> None:
        """Write the FAISS file (FAISS's own binary format, no pickle)."""
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path) -> "VectorIndex":
        """Read a FAISS file written by :meth:`save`."""
        index = faiss.read_index(str(path))
        return cls(index.d, index)
