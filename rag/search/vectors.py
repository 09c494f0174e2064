"""Vectors: a FAISS inner-product index over unit vectors, addressed by chunk id (int64).

The index type follows the size. Up to ``exact_limit`` vectors the search is exact (a flat
index, a few milliseconds per query at 50,000 vectors on 2 cores). Beyond it the vectors move to
an inverted-file index (IVF): k-means cells, of which a query visits ``nprobe``; chosen so that
recall@10 against exact search stays at 0.95 or more on real embeddings (README,
"Performance"). Both support removal by id, so incremental builds work the same on either. The
index retrains itself when it has grown four times past the size it was trained at, and goes
back to exact search when it shrinks below half the limit.

Each saved index has a small ``.json`` beside it saying which kind it is (for ``rag index status``).
"""

from __future__ import annotations

import enum
import json
import math
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from ..lazy import lazy_import

faiss = lazy_import("faiss")  # 0.2 s: only when vectors are loaded, built or searched

EXACT_LIMIT = 50_000
PROBE_FRACTION = 3  # nprobe = nlist / PROBE_FRACTION (at least MIN_PROBE): recall@10 >= 0.95, see README
MIN_PROBE = 16
TRAIN_PER_CELL = 64  # k-means training points per cell
MIN_POINTS_PER_CELL = 39  # FAISS's own minimum for a meaningful k-means
GROWTH_BEFORE_RETRAIN = 4


class Kind(str, enum.Enum):
    """The FAISS index type in use."""

    FLAT = "flat"
    IVF = "ivf"


MAX_COMPONENT = 10.0  # a vector component beyond this is damage (vectors have unit length)


def _trained_for(nlist: int) -> int:
    """The size an IVF index of ``nlist`` cells was trained for (inverse of :func:`ivf_shape`)."""
    return int(max(nlist ** 2, nlist * MIN_POINTS_PER_CELL))


def ivf_shape(n: int) -> tuple[int, int]:
    """(cells, cells visited per query) for an IVF index over ``n`` vectors."""
    nlist = max(1, min(int(round(math.sqrt(n))), n // MIN_POINTS_PER_CELL))
    return nlist, min(nlist, max(MIN_PROBE, nlist // PROBE_FRACTION))


class VectorIndex:
    """Inner-product search (cosine on unit vectors) with removal by id; exact or IVF by size.

    Parameters
    ----------
    dim : int
        Vector dimension.
    index : faiss.Index, optional
        An existing index (from :meth:`load`).
    exact_limit : int
        Largest size searched exactly; beyond it an IVF index is trained.
    """

    def __init__(self, dim: int, index: faiss.Index | None = None, exact_limit: int = EXACT_LIMIT):
        self.dim = dim
        self.exact_limit = exact_limit
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.trained_size = _trained_for(self.index.nlist) if self.kind is Kind.IVF else len(self)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def kind(self) -> Kind:
        """:attr:`Kind.IVF` or :attr:`Kind.FLAT`."""
        return Kind.IVF if isinstance(self.index, faiss.IndexIVF) else Kind.FLAT

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add unit vectors under chunk ids (switching to IVF when the index grows past the limit)."""
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                    np.ascontiguousarray(ids, dtype=np.int64))
        self._fit_size()

    def remove(self, ids: np.ndarray) -> int:
        """Remove chunk ids; returns how many were removed."""
        if not len(ids):
            return 0
        removed = int(self.index.remove_ids(faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))))
        self._fit_size()
        return removed

    def search(self, query: np.ndarray, n: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Best ``n`` chunk ids for one unit query vector: (ids, cosine scores), best first.

        ``allowed`` restricts the search to those chunk ids (exhaustively, also on IVF, so a
        filter never loses the chunks it allows).
        """
        if len(self) == 0 or n <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        params = None
        if allowed is not None:
            if not len(allowed):
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            if self.kind is Kind.IVF:
                params = faiss.SearchParametersIVF(sel=sel, nprobe=self.index.nlist)
            else:
                params = faiss.SearchParameters(sel=sel)
        with _one_thread():
            scores, ids = self.index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32),
                                            min(n, len(self)), params=params)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def ids(self) -> np.ndarray:
        """The chunk ids held."""
        return self.contents()[0]

    def contents(self) -> tuple[np.ndarray, np.ndarray]:
        """All (ids, vectors) held, in no particular order."""
        if self.kind is Kind.FLAT:
            ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
            return ids, self.index.index.reconstruct_n(0, len(self)) if len(self) else np.zeros((0, self.dim), np.float32)
        invlists = self.index.invlists
        all_ids, all_vecs = [], []
        for cell in range(self.index.nlist):
            size = invlists.list_size(cell)
            if not size:
                continue
            all_ids.append(faiss.rev_swig_ptr(invlists.get_ids(cell), size).copy())
            codes = faiss.rev_swig_ptr(invlists.get_codes(cell), size * invlists.code_size).copy()
            all_vecs.append(codes.view(np.float32).reshape(size, self.dim))
        if not all_ids:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(all_ids).astype(np.int64), np.vstack(all_vecs)

    def problems(self, bound: float = MAX_COMPONENT) -> list[str]:
        """What is wrong with the values held: NaN, infinity, or components above ``bound`` in size
        (the model's vectors have unit length). Empty when sound."""
        _, vecs = self.contents()
        if not len(vecs):
            return []
        bad = int((~np.isfinite(vecs)).any(axis=1).sum())
        out = [f"{bad} vectors hold NaN or infinite values"] if bad else []
        huge = int((np.abs(np.nan_to_num(vecs, nan=0.0, posinf=0.0, neginf=0.0)) > bound).any(axis=1).sum())
        if huge:
            out.append(f"{huge} vectors hold values above {bound:g} (vectors have unit length)")
        return out

    def _fit_size(self) -> None:
        n = len(self)
        if self.kind is Kind.FLAT and n > self.exact_limit:
            self._rebuild(Kind.IVF)
        elif self.kind is Kind.IVF and n < self.exact_limit // 2:
            self._rebuild(Kind.FLAT)
        elif self.kind is Kind.IVF and n > GROWTH_BEFORE_RETRAIN * max(self.trained_size, 1):
            self._rebuild(Kind.IVF)

    def _rebuild(self, kind: Kind) -> None:
        ids, vectors = self.contents()
        if kind is Kind.FLAT:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        else:
            index = train_ivf(vectors, self.dim)
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        self.index, self.trained_size = index, len(ids)

    def describe(self) -> dict:
        """Kind, size and, for IVF, cells and cells visited per query."""
        out = {"kind": self.kind.value, "vectors": len(self), "dimensions": self.dim}
        if self.kind is Kind.IVF:
            out.update(nlist=int(self.index.nlist), nprobe=int(self.index.nprobe))
        return out

    def save(self, path: Path) -> None:
        """Write the FAISS file (FAISS's own binary format, no pickle) and its ``.json`` description."""
        faiss.write_index(self.index, str(path))
        path.with_suffix(".json").write_text(json.dumps(self.describe()), encoding="utf-8")

    @staticmethod
    def description(path: Path) -> dict:
        """The ``.json`` description :meth:`save` wrote beside ``path`` (empty when unreadable)."""
        try:
            info = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    @classmethod
    def load(cls, path: Path, exact_limit: int = EXACT_LIMIT) -> "VectorIndex":
        """Read a FAISS file written by :meth:`save`."""
        index = faiss.read_index(str(path))
        return cls(index.d, index, exact_limit)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run FAISS on this thread alone: for one query, OpenMP threads cost more than they give
    (measured 2-3x slower at 50k-100k vectors on a busy 2-core machine). The setting is per
    calling thread, so concurrent searches do not disturb each other."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def train_ivf(vectors: np.ndarray, dim: int) -> faiss.IndexIVFFlat:
    """An empty IVF index trained on (a sample of) ``vectors``, with ``nprobe`` set by :func:`ivf_shape`."""
    nlist, nprobe = ivf_shape(len(vectors))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    sample = vectors
    if len(vectors) > TRAIN_PER_CELL * nlist:
        rng = np.random.default_rng(0)
        sample = vectors[rng.choice(len(vectors), TRAIN_PER_CELL * nlist, replace=False)]
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    index.nprobe = nprobe
    return index
