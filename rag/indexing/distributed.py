"""Encoding on a Ray cluster: ``rag index build --ray auto|ADDRESS``.

The driver (the ``rag index build`` process) reads the files, chunks them and looks the chunks up
in the index's embedding cache, as a local build does; only the texts never encoded go to the
cluster, through a Ray Data pipeline whose actor pool holds the encoder (loaded once per actor,
one CPU each, as many actors as the cluster has nodes at most). The vectors come back to the
driver, which caches them and writes every document's change itself: nothing is written from a
worker, so a worker that dies writes nothing half-way. Ray Data runs the lost tasks again on
the nodes left; a cluster that cannot finish raises :class:`RayFailed`.

The workers need this package importable (the same virtualenv, or ``rag`` installed on every
node); the driver passes its own ``PYTHONPATH`` to them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..embedding import Encoder, get_embedder
from ..errors import DependencyMissing, RagError, first_line
from ..lazy import lazy_import

try:
    ray = lazy_import("ray")
except ModuleNotFoundError:  # the base install
    ray = None

BATCH = 32  # texts per actor call
PROJECT = str(Path(__file__).resolve().parents[2])  # the folder holding this package


class RayFailed(RagError):
    """The Ray cluster could not be reached or could not finish the encoding."""


class EncodeActor:
    """A Ray Data actor: the encoder, loaded once, encoding batches of texts."""

    def __init__(self, model: str, batch_size: int, encoder: str, cache_dir: str | None):
        self.embedder = get_embedder(model, batch_size, encoder, cache_dir)

    def __call__(self, batch: dict) -> dict:
        """Vectors of a batch's ``text`` column, kept beside its ``i``."""
        return {"i": batch["i"], "v": self.embedder.encode(list(batch["text"]))}


class RayEncoder:
    """Encodes texts on a Ray cluster for :class:`rag.indexing.Indexer` (its ``remote`` argument).

    Parameters
    ----------
    address : str
        ``auto`` (a cluster started on this machine, or ``RAY_ADDRESS``) or ``host:port`` of its head.
    batch_size, cache_dir
        As :func:`rag.embedding.get_embedder` takes them, for the actors.

    Raises
    ------
    DependencyMissing
        Ray is not installed (``pip install 'rag[ray]'``).
    RayFailed
        The cluster cannot be reached.
    """

    step = 2048  # texts per pipeline run: each run costs about a second to plan and start

    def __init__(self, address: str, batch_size: int = BATCH, cache_dir: str | None = None):
        if ray is None:
            raise DependencyMissing("--ray needs Ray Data: pip install 'rag[ray]'")
        self.address, self.batch_size, self.cache_dir = address, batch_size, cache_dir
        self._started = False

    def _start(self) -> None:
        if self._started:
            return
        paths = [PROJECT, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        env = {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)), "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        try:
            ray.init(address=self.address, logging_level="ERROR", log_to_driver=False,
                     runtime_env={"env_vars": env}, ignore_reinit_error=True)
            ray.data.DataContext.get_current().enable_progress_bars = False
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RayFailed(f"cannot reach the Ray cluster at {self.address}: {first_line(exc)}") from None
        self._started = True

    @property
    def nodes(self) -> int:
        """Nodes of the cluster alive now."""
        self._start()
        return sum(1 for n in ray.nodes() if n.get("Alive"))

    def __call__(self, texts: Sequence[str], model: str, encoder: Encoder) -> np.ndarray:
        """The vectors of ``texts`` (in their order), encoded by ``model`` run by ``encoder`` on the cluster."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        self._start()
        actors = max(1, min(self.nodes, -(-len(texts) // self.batch_size)))
        ds = ray.data.from_items([{"i": i, "text": t} for i, t in enumerate(texts)],
                                 override_num_blocks=max(1, min(4 * actors, -(-len(texts) // self.batch_size))))
        try:
            batches = ds.map_batches(
                EncodeActor, fn_constructor_kwargs={"model": model, "batch_size": self.batch_size,
                                                    "encoder": Encoder(encoder).value, "cache_dir": self.cache_dir},
                batch_size=self.batch_size, compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
                num_cpus=1).iter_batches(batch_size=None)
            got: dict[int, np.ndarray] = {}
            for batch in batches:
                got.update(zip(batch["i"].tolist(), batch["v"]))
        except Exception as exc:  # noqa: BLE001 - Ray's own errors have no common base
            raise RayFailed(f"the Ray cluster at {self.address} could not encode {len(texts)} chunks: "
                            f"{first_line(exc)}") from None
        if len(got) != len(texts):
            raise RayFailed(f"the Ray cluster at {self.address} returned {len(got)} vectors for {len(texts)} chunks")
        return np.vstack([got[i] for i in range(len(texts))]).astype(np.float32)

    def close(self) -> None:
        """Disconnect from the cluster (it keeps running)."""
        if self._started:
            ray.shutdown()
            self._started = False

