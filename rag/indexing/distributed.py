"""Encoding on a Ray cluster: the build's model runs in actors spread over the cluster's nodes.

``rag index build --ray auto|ADDRESS`` gives the indexer a :class:`RayEmbedder` in place of its
local embedder. Everything but encoding (reading, chunking, the embedding-cache look-up, the
commit) stays on the driver, as in a local build; encoding, which is nearly all of a build's
time, is cut into batches that a pool of actors encodes in parallel, one actor per CPU of the
cluster, each holding the model loaded once. Batches come back in order, so the build writes
exactly what a local build writes: the int8 encoder quantises each token on its own, and a
text's vector does not depend on the batch it was encoded in.

A node lost in the middle (its actors die): its batches are encoded again by the actors that
remain; when none remains the build stops with :class:`ClusterLost`, and nothing of it is
committed (the vectors already encoded stay in the cache, so the next build starts from there).

Every node needs this package and the model installed, as the driver has (``pip install
'rag[ray]'``); each loads the model from its own installation and cache folder. Ray carries
texts and vectors between our own processes with its own serialisation; nothing is read
from files with it.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from typing import Any, Sequence

import numpy as np

from ..embedding import get_embedder
from ..errors import DependencyMissing, RagError
from ..lazy import lazy_import

try:
    ray = lazy_import("ray")  # the ray extra; imported when a build asks for it
except ModuleNotFoundError:
    ray = None
log = logging.getLogger(__name__)
BATCH = 64               # texts per task: large enough to keep an actor busy, small enough to spread
START_S = 600.0          # an encoder has this long to load its model (a first int8 export takes minutes)
INSTALL = "pip install 'rag[ray]'"
LOST = ("every encoder of the Ray cluster died; nothing of this build was committed "
        "(the vectors encoded so far are cached: build again to continue)")


class ClusterLost(RagError):
    """Every encoding actor of the Ray cluster died (nodes lost); nothing of the build was committed."""


class _EncodeActor:
    """One encoder on one CPU of the cluster (made a Ray actor class by :class:`RayEmbedder`).

    It keeps busy only the CPUs Ray gave it: Ray does not pin an actor to its cores, and an encoder
    left to its defaults would run as many threads as the node has cores, for each actor.
    """

    def __init__(self, model: str, encoder: str, cache_dir: str, batch_size: int):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a node never downloads a model either
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        self.cores = max(1, round(cpus))
        self.embedder = get_embedder(model, batch_size, encoder, cache_dir, cores=self.cores)

    def node(self) -> tuple[str, int]:
        """The id of the node this actor runs on, and the cores its encoder keeps busy."""
        return ray.get_runtime_context().get_node_id(), self.cores

    def encode(self, texts: list[str], kwargs: dict[str, Any]) -> np.ndarray:
        """Vectors of ``texts`` (the arguments of :meth:`Embedder.encode` besides the texts in ``kwargs``)."""
        return self.embedder.encode(texts, **kwargs)


class RayEmbedder:
    """An embedder whose ``encode`` runs on a Ray cluster; everything else is the local embedder's.

    Parameters
    ----------
    local : Embedder
        The driver's embedder (tokenizer, limits, dimension, name; it encodes nothing here).
    address : str
        ``auto`` (the cluster this machine belongs to, ``RAY_ADDRESS``) or ``HOST:PORT`` of its head.
    model, encoder, cache_dir : str
        What each actor loads (:func:`rag.embedding.get_embedder`).
    actors : int, optional
        How many encoders (default: one per CPU of the cluster).
    batch : int
        Texts per task.

    Raises
    ------
    DependencyMissing
        Ray is not installed.
    ClusterLost
        No node of the cluster could start an encoder.
    """

    def __init__(self, local: Any, address: str, model: str, encoder: str, cache_dir: str,
                 actors: int | None = None, batch: int = BATCH):
        if ray is None:
            raise DependencyMissing(f"--ray needs Ray: {INSTALL}")
        self._local = local
        self.batch = max(1, int(batch))
        if not ray.is_initialized():
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        count = max(1, int(actors or cpus))
        remote = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(_EncodeActor)
        encoder = getattr(encoder, "value", encoder)  # an Encoder member or its name
        self._actors = [remote.remote(model, encoder, str(cache_dir), int(getattr(local, "batch_size", 32)))
                        for _ in range(count)]
        try:  # wait for every encoder to load; an actor that cannot is dropped
            placed = self._alive(lambda a: a.node.remote())
        except ClusterLost:
            raise ClusterLost(f"no encoder could start on the Ray cluster at {address}") from None
        self.nodes = len({node for node, _ in placed})
        self.cores = sum(c for _, c in placed)
        log.info("encoding on %d actors over %d Ray nodes, %d cores in all", len(self._actors), self.nodes,
                 self.cores)

    def _alive(self, call) -> list:
        """Run ``call(actor)`` on every actor; keep those that answer, their answers in order."""
        answers, kept = [], []
        for actor, ref in [(a, call(a)) for a in self._actors]:
            try:
                answers.append(ray.get(ref, timeout=START_S))
                kept.append(actor)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
                log.warning("a Ray encoder could not start (%s); left out", type(exc).__name__)
                ray.kill(actor)
        self._actors = kept
        if not kept:
            raise ClusterLost(LOST)
        return answers

    @property
    def actors(self) -> int:
        """Encoders alive now."""
        return len(self._actors)

    def encode(self, texts: Sequence[str], progress: bool = False, **kwargs: Any) -> np.ndarray:
        """Vectors of ``texts``, in order, encoded by the cluster's actors (``progress`` is the driver's).

        Raises
        ------
        ClusterLost
            Every actor died before the texts were encoded.
        """
        texts = list(texts)
        if not texts:
            return np.zeros((0, self._local.dim), dtype=np.float32)
        size = max(8, min(self.batch, -(-len(texts) // len(self._actors))))  # every actor gets work
        todo = deque(range(0, len(texts), size))
        done: dict[int, np.ndarray] = {}
        running: dict[Any, tuple[Any, int]] = {}
        idle = list(self._actors)
        while todo or running:
            while todo and idle:
                start, actor = todo.popleft(), idle.pop()
                running[actor.encode.remote(texts[start:start + size], kwargs)] = (actor, start)
            ready, _ = ray.wait(list(running), num_returns=1)
            actor, start = running.pop(ready[0])
            try:
                done[start] = ray.get(ready[0])
                idle.append(actor)
            except ray.exceptions.RayActorError:
                log.warning("a Ray encoder died; its batch goes to the others (%d left)", len(self._actors) - 1)
                self._actors = [a for a in self._actors if a is not actor]
                todo.appendleft(start)
                if not self._actors:
                    raise ClusterLost(LOST) from None
        return np.concatenate([done[s] for s in sorted(done)]).astype(np.float32, copy=False)

    def close(self) -> None:
        """Stop the actors (the cluster itself keeps running)."""
        for actor in self._actors:
            ray.kill(actor)
        self._actors = []

    def __getattr__(self, name: str) -> Any:
        # tokenizer, limits, dimension, name, encoder...: the local embedder's
        return getattr(self._local, name)
