"""Updating a large index: nothing changed, then one changed article, in a folder of N articles.

The N synthetic articles are ``.txt`` files built from PIAF sentences; the first build gets
their vectors from :class:`bench.corpus.ComposedEmbedder`. The measured builds are real: the
loader walks the N files (reading those whose size or times changed: the first unchanged
rebuild reads them all, as they were written less than 2 s before the first build read them,
too recently for their times to be trusted; the second passes over them), the changed article is
chunked and encoded by the real encoder, and a new generation (FAISS and BM25 over all chunks)
is written and committed. Timed in-process (model loaded) and as a user runs it, ``rag index
build`` in a new process.

Every run starts from a new articles folder and a new index folder, so a new embedding cache:
the changed articles' chunks must be encoded, never served from a previous run's cache (the
run fails if they were).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rag.config import Config
from rag.embedding import get_embedder
from rag.indexing import Indexer

from .corpus import (
    ComposedEmbedder,
    Piaf,
    piece_vectors,
    synthetic_texts,
    write_synthetic_files,
)
from .measure import Timer

ROOT = Path(__file__).resolve().parents[1]


def _rewrite(piaf: Piaf, path: Path, seed: int) -> None:
    title, text = synthetic_texts(piaf, 1, seed=seed, first=10**9)[0]
    path.write_text(f"{title}\n\n{text}\n", encoding="utf-8")


def _encoded_by_cli(summary: str) -> int:
    """Chunks encoded, from the summary line of ``rag index build``."""
    m = re.search(r"(\d+) encoded", summary)
    if m is None:
        raise RuntimeError(f"no encoded count in the build summary {summary!r}")
    return int(m.group(1))


def run(piaf: Piaf, workdir: Path, documents: int, encoder: str) -> dict:
    """Build an index of ``documents`` articles, then time an unchanged and a one-article rebuild.

    Parameters
    ----------
    piaf : Piaf
        Source of the synthetic articles' sentences and titles.
    workdir : Path
        A fresh folder (articles and index) is made below it, and deleted afterwards.
    documents : int
        Articles in the folder.
    encoder : str
        ``onnx-int8`` or ``torch``.

    Raises
    ------
    RuntimeError
        If a rebuild did not see exactly one updated article, or the changed article's chunks
        were not encoded (served from a cache, which would flatter the timing).
    """
    real = get_embedder(encoder=encoder)
    workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"update-{documents}-", dir=workdir))
    try:
        return _measure(piaf, work, documents, encoder, real)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _measure(piaf: Piaf, work: Path, documents: int, encoder: str, real) -> dict:
    folder = work / "articles"
    paths = write_synthetic_files(piaf, folder, documents, seed=7)
    config = Config(index_dir=str(work / "index"), encoder=encoder)
    composed = ComposedEmbedder(real, *piece_vectors(real, piaf))
    with Timer() as first:
        built = Indexer(config, composed).build([folder], rebuild=True, progress=False)
    indexer = Indexer(config, real)
    with Timer() as unchanged:  # reads the files written just before the first build, too new to be passed over then
        same = indexer.build([folder], progress=False)
    with Timer() as unchanged_again:  # passes over every file
        indexer.build([folder], progress=False)
    _rewrite(piaf, paths[0], seed=1)
    with Timer() as one:
        changed = indexer.build([folder], progress=False)
    if len(changed.updated) != 1 or changed.added or changed.removed:
        raise RuntimeError(f"expected one updated article, got {changed.summary()}")
    if changed.encoded < 1:
        raise RuntimeError(f"the changed article was not encoded (cache hit?): {changed.summary()}")
    _rewrite(piaf, paths[1], seed=2)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "RAG_ENCODER": encoder}
    with Timer() as cli:
        proc = subprocess.run([sys.executable, "-m", "rag", "index", "build", str(folder), "--index",
                               config.index_dir, "-q"], cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"rag index build failed ({proc.returncode}): {proc.stderr[-2000:]}")
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if _encoded_by_cli(summary) < 1:
        raise RuntimeError(f"the article changed before the CLI build was not encoded (cache hit?): {summary}")
    return {
        "documents": documents, "chunks": built.chunks_total, "encoder": encoder,
        "first_build_s (composed vectors)": round(first.seconds, 2),
        "unchanged_s": round(unchanged.seconds, 3), "unchanged_encoded": same.encoded,
        "unchanged_files_read": same.files_read, "unchanged_again_s": round(unchanged_again.seconds, 3),
        "one_changed_s": round(one.seconds, 3), "one_changed_encoded": changed.encoded,
        "one_changed_files_read": changed.files_read,
        "one_changed_cli_s": round(cli.seconds, 2),
        "cli_summary": summary,
    }
