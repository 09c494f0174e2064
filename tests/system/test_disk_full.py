"""A full disk, for real (a small tmpfs): "disk full" said plainly, nothing half-written left, the old index usable.

Needs root and the right to mount (skipped otherwise); falls back to nothing: RLIMIT_FSIZE
would test a file size limit, which FAISS and SQLite report the same way, but not a full disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ARTICLE_EN, ARTICLE_FR, ROOT, SEEDS

from rag.indexing import verify


def rag(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def small_disk(tmp_path):
    """A 9 MiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=9m", "tmpfs", str(mount)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"mount not permitted here: {res.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` up to ``leave`` bytes free."""
    filler = disk / "filler.bin"
    free = shutil.disk_usage(disk).free
    with open(filler, "ab") as fh:
        fh.write(b"\0" * max(0, free - leave))
    return filler


def articles(folder: Path, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        (folder / f"depeche-{i:03d}.txt").write_text(f"Dépêche {i}\n\n" + (ARTICLE_FR + ARTICLE_EN) * 6,
                                                     encoding="utf-8")


def assert_said_plainly(res):
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "disk full" in res.stderr and "previous state" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and "RuntimeError" not in res.stderr, res.stderr
    assert "OperationalError" not in res.stderr, res.stderr


def test_a_full_disk_leaves_the_index_as_it_was_and_the_retry_works(small_disk):
    corpus, index = small_disk / "corpus", small_disk / "index"
    corpus.mkdir()
    shutil.copy(next(SEEDS.glob("*.txt")), corpus / "seed.txt")
    articles(corpus, 5)
    assert rag("index", "build", str(corpus), "--index", str(index), "-q").returncode == 0
    articles(corpus, 40, start=5)
    for leave in (4_000, 60_000, 400_000):  # full in SQLite's cache writes, in the search files, in the commit
        filler = fill(small_disk, leave)
        res = rag("index", "build", str(corpus), "--index", str(index), "-q")
        filler.unlink()
        if res.returncode == 0:  # enough room after all: start the next size from the old state
            pytest.fail(f"{leave} bytes free were enough for the update: make it bigger")
        assert_said_plainly(res)
        assert not list(index.glob("gen-*.tmp")) and len(list(index.glob("gen-*"))) == 1
        assert verify(index) == []
        ask = rag("ask", "Quel pont a été inauguré à Lyon ?", "--index", str(index), "--json")
        assert ask.returncode == 0 and "pont" in ask.stdout, ask.stderr
    res = rag("index", "build", str(corpus), "--index", str(index), "-q")
    assert res.returncode == 0, res.stderr
    assert "40 added" in res.stdout and verify(index) == []


def test_a_first_build_on_a_full_disk_says_so(small_disk):
    corpus = small_disk / "corpus"
    corpus.mkdir()
    articles(corpus, 20)
    fill(small_disk, 30_000)
    res = rag("index", "build", str(corpus), "--index", str(small_disk / "index"), "-q")
    assert_said_plainly(res)
