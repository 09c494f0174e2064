"""Query latency and memory at growing sizes (1k, 10k, 100k chunks by default).

Each size has its own index of synthetic French articles (see :mod:`bench.corpus`), added
through ``Indexer.add_documents`` with composed vectors, so SQLite, BM25 and FAISS (exact or
IVF, as the size decides) are the product's own. Each index is then measured by
:mod:`bench.probe` in a fresh process with real PIAF questions, encoded by the real encoder.
An index left by an earlier run in the same work folder is reused when it is big enough.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from rag.config import Config
from rag.embedding import get_embedder
from rag.indexing import Indexer

from .corpus import ComposedEmbedder, Piaf, piece_vectors, synthetic_documents
from .measure import Timer, folder_mb

ROOT = Path(__file__).resolve().parents[1]


def _reusable(config: Config, target: int) -> bool:
    """True when an earlier run left an index made for this size, encoder and search limit."""
    stamp = Path(config.index_dir) / "bench.json"
    wanted = {"target": target, "encoder": config.encoder, "exact_search_limit": config.exact_search_limit}
    try:
        return json.loads(stamp.read_text(encoding="utf-8")) == wanted
    except (OSError, ValueError):
        return False


def grow(piaf: Piaf, config: Config, composed: ComposedEmbedder, target: int) -> dict:
    """An index of synthetic articles holding ``target`` chunks or a few more.

    A first batch of articles measures chunks per article; the rest is added in one go
    (and topped up if it falls short).
    """
    if _reusable(config, target):
        return {"reused": True, "build_s": None}
    shutil.rmtree(config.index_dir, ignore_errors=True)
    indexer = Indexer(config, composed)
    have, made, seconds = 0, 0, 0.0
    n = max(10, target // 20)
    while have < target:
        with Timer() as t:
            report = indexer.add_documents(synthetic_documents(piaf, n, seed=11, first=made))
        seconds += t.seconds
        made += n
        have = report.chunks_total
        per_doc = have / made
        n = max(1, int(np.ceil((target - have) / per_doc)))
    stamp = {"target": target, "encoder": config.encoder, "exact_search_limit": config.exact_search_limit}
    (Path(config.index_dir) / "bench.json").write_text(json.dumps(stamp), encoding="utf-8")
    return {"reused": False, "build_s": round(seconds, 1)}


def probe(index_dir: str, encoder: str, questions_file: Path, lexical: str | None = None) -> dict:
    """Run :mod:`bench.probe` on one index in a new process."""
    cmd = [sys.executable, "-m", "bench.probe", "--index", index_dir, "--questions", str(questions_file),
           "--encoder", encoder] + (["--lexical", lexical] if lexical else [])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"bench.probe failed on {index_dir}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(piaf: Piaf, workdir: Path, sizes: list[int], encoder: str, questions: int) -> dict:
    """One row per size: latencies, memory per chunk, disk per chunk, vector index kind."""
    real = get_embedder(encoder=encoder)
    composed = ComposedEmbedder(real, *piece_vectors(real, piaf))
    questions_file = workdir / "questions.json"
    questions_file.write_text(json.dumps([q.text for q in piaf.questions[:questions]], ensure_ascii=False),
                              encoding="utf-8")
    rows = []
    for size in sizes:
        config = Config(index_dir=str(workdir / f"scale-{size}"), encoder=encoder)
        built = grow(piaf, config, composed, size)
        row = {"target_chunks": size, **built, **probe(config.index_dir, encoder, questions_file)}
        row["disk_mb"] = round(folder_mb(Path(config.index_dir)), 1)
        row["disk_per_chunk_kb"] = round(row["disk_mb"] * 1e3 / max(row["chunks"], 1), 2)
        rows.append(row)
    largest = f"{workdir}/scale-{sizes[-1]}"
    lexical = {mode: probe(largest, encoder, questions_file, lexical=mode) for mode in ("ram", "mmap")}
    return {"sizes": rows, "bm25_memory_at_largest": lexical, "composed_pieces_encoded_for_real": composed.encoded_for_real}
