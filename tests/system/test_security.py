"""Nothing we load can run code: no pickle in the code, only inert formats in an index folder."""

import re

from conftest import ROOT

from rag.indexing import Indexer

RISKY = re.compile(r"^\s*(import pickle|from pickle|import dill|import joblib|import cloudpickle)|"
                   r"allow_pickle\s*=\s*True|torch\.load\(|pickle\.loads?\(|yaml\.load\(|(?<![.\w])eval\(|(?<![.\w])exec\(", re.M)


def test_no_code_running_loader_in_the_sources():
    offenders = []
    for folder in ("rag", "ui", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            for m in RISKY.finditer(path.read_text(encoding="utf-8")):
                offenders.append(f"{path.relative_to(ROOT)}: {m.group(0).strip()}")
    assert offenders == []


def test_an_index_folder_holds_only_inert_formats(config, corpus, embedder):
    Indexer(config, embedder).build([corpus], progress=False)
    suffixes = {p.suffix for p in (ROOT / config.index_dir).rglob("*") if p.is_file()}
    assert suffixes <= {".sqlite", ".faiss", ".npy", ".json", ".lock", ".sqlite-wal", ".sqlite-shm", ""}, suffixes
    assert not {p for p in (ROOT / config.index_dir).rglob("*") if p.suffix in {".pkl", ".pickle", ".pt", ".joblib"}}
