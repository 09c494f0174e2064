"""Scanned PDFs: pages without a text layer are read by OCR (Debian's tesseract), within bounds.

The scans are made here (tests/scans.py): Pillow draws the text of an article on a white page
with a DejaVu font, saved as a PDF that holds nothing but that image (no text layer), as a
scanner makes.
"""

from __future__ import annotations

import io
import shutil

import pytest
from conftest import ARTICLE_FR, make_pdf
from scans import FONT, make_scan

from rag.config import Config
from rag.indexing import Indexer
from rag.ingest import load_paths
from rag.ingest.ocr import OcrSettings, clean_ocr_text
from rag.pipeline import RAG

PHARE = ["Le phare de Kerzéon rouvre au public", "",
         "Construit en 1887, le phare de Plouarzel a rouvert samedi",
         "après deux ans de travaux. Le phare de Kerzéon mesure 47",
         "mètres de haut. Son gardien, Yannick Le Goff, accueillera",
         "les visiteurs à partir du 3 mars. L'entrée coûte 6 euros,",
         "a précisé la mairie de Plouarzel dans un communiqué."]
CANAL = ["Le canal de Nantes à Brest", "", "Les péniches de plaisance reviennent sur le canal de Nantes à Brest.",
         "L'écluse de Guerlédan a été restaurée pour 2 millions d'euros."]
GARE = ["La gare de Morlaix agrandie", "", "La gare de Morlaix aura deux quais de plus en 2027.",
        "Les travaux coûteront 31 millions d'euros, selon la région."]

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None,
                                     reason="tesseract is not installed (scripts/setup.sh --test installs it)")


@pytest.fixture(autouse=True)
def _font():
    if not FONT.is_file():
        pytest.skip(f"{FONT} is absent (apt-get install fonts-dejavu-core; scripts/setup.sh --test does it)")


@needs_tesseract
@pytest.mark.slow
def test_a_scanned_article_is_read_and_its_answer_found_by_rag_ask(tmp_path, embedder):
    folder = tmp_path / "articles"
    folder.mkdir()
    make_scan(folder / "scan.pdf", PHARE)
    (folder / "pont.txt").write_text(ARTICLE_FR, encoding="utf-8")
    cfg = Config(index_dir=str(tmp_path / "index"))
    report = Indexer(cfg, embedder).build([folder], progress=False)
    assert not report.skipped and len(report.added) == 2
    ans = RAG(cfg).ask("Combien mesure le phare de Kerzéon ?")
    assert "47 mètres" in ans.answer
    assert ans.citations[0].source.endswith("scan.pdf")


@needs_tesseract
def test_ocr_text_keeps_accents_and_sentences(tmp_path):
    doc = load_paths([make_scan(tmp_path / "scan.pdf", PHARE)]).documents[0]
    assert "Construit en 1887, le phare de Plouarzel a rouvert samedi après deux ans de travaux." in doc.text
    assert "L'entrée coûte 6 euros, a précisé la mairie de Plouarzel dans un communiqué." in doc.text
    assert doc.lang == "fr" and doc.title == "Le phare de Kerzéon rouvre au public"


@needs_tesseract
def test_a_pdf_with_a_text_page_and_a_scanned_page_gives_both_in_order(tmp_path):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for part in (make_pdf(tmp_path / "text.pdf", ["La gare de Rennes accueille 30 millions de voyageurs par an."]),
                 make_scan(tmp_path / "scan.pdf", CANAL)):
        for page in PdfReader(str(part)).pages:
            writer.add_page(page)
    with open(tmp_path / "mixed.pdf", "wb") as fh:
        writer.write(fh)
    text = load_paths([tmp_path / "mixed.pdf"]).documents[0].text
    assert 0 <= text.find("30 millions de voyageurs") < text.find("écluse de Guerlédan")


@needs_tesseract
def test_ocr_stops_at_its_page_bound_and_says_which_pages_were_left(tmp_path):
    scan = make_scan(tmp_path / "three.pdf", PHARE, CANAL, GARE)
    res = load_paths([scan], ocr=OcrSettings(max_pages=1))
    doc = res.documents[0]
    assert "47 mètres" in doc.text and "Guerlédan" not in doc.text
    assert len(res.warnings) == 1 and "ocr_max_pages = 1: page(s) 2-3 not read" in res.warnings[0].reason


@needs_tesseract
def test_ocr_stops_at_its_time_bound(tmp_path):
    res = load_paths([make_scan(tmp_path / "scan.pdf", PHARE)], ocr=OcrSettings(max_seconds=0.01))
    assert not res.documents and "ocr_max_seconds = 0.01" in res.skipped[0].reason


def test_without_tesseract_the_skip_says_how_to_install_it(tmp_path, monkeypatch):
    scan = make_scan(tmp_path / "scan.pdf", PHARE)
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH where no tesseract is found
    res = load_paths([scan])
    assert not res.documents
    reason = res.skipped[0].reason
    assert "no text layer" in reason and "apt-get install tesseract-ocr tesseract-ocr-fra tesseract-ocr-eng" in reason


@needs_tesseract
def test_a_language_not_installed_is_named_with_its_package(tmp_path):
    res = load_paths([make_scan(tmp_path / "scan.pdf", PHARE)], ocr=OcrSettings(lang="xyz"))
    assert "apt-get install tesseract-ocr-xyz" in res.skipped[0].reason


@needs_tesseract
def test_a_blank_page_is_still_a_pdf_without_text(tmp_path):
    res = load_paths([make_pdf(tmp_path / "blank.pdf", None)])
    assert not res.documents and "no text layer" in res.skipped[0].reason


def test_ocr_off_skips_scans_as_before(tmp_path):
    res = load_paths([make_scan(tmp_path / "scan.pdf", PHARE)], ocr=None)
    assert "no text layer" in res.skipped[0].reason and "OCR is off" in res.skipped[0].reason


def test_ocr_lines_are_joined_into_paragraphs_and_broken_words_rejoined():
    raw = "Le phare a rou-\nvert samedi\naprès travaux.\n\nLe gardien est\nYannick Le Goff,\n\nnommé en 2019.\n\f"
    assert clean_ocr_text(raw) == ("Le phare a rouvert samedi après travaux.\n\n"
                                   "Le gardien est Yannick Le Goff, nommé en 2019.")


def test_the_scans_made_here_have_no_text_layer(tmp_path):
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(make_scan(tmp_path / "s.pdf", PHARE, CANAL).read_bytes()))
    assert len(reader.pages) == 2 and all(not (p.extract_text() or "").strip() for p in reader.pages)
