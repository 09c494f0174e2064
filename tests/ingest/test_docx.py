"""Word files: text in reading order (paragraphs and tables, headings), title, date and author from the properties."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timezone

import docx
import pytest

from rag.config import Config
from rag.indexing import Indexer
from rag.ingest import load_paths
from rag.pipeline import RAG


def write_report(path, props: bool = True):
    """A Word file as an editor writes one: a title, headings, paragraphs, and a table between them."""
    d = docx.Document()
    if props:
        d.core_properties.title = "Bilan 2025 de la médiathèque de Quimper"
        d.core_properties.author = "Maëlle Tanguy"
        d.core_properties.created = datetime(2026, 1, 20, 9, 30, tzinfo=timezone.utc)
    d.add_heading("La médiathèque en 2025", level=1)
    d.add_paragraph("La médiathèque Les Ondines a accueilli 212 000 visiteurs en 2025, sa première année pleine.")
    table = d.add_table(rows=3, cols=2)
    for row, (what, value) in zip(table.rows, [("Prêts", "486 000 documents"), ("Inscrits", "18 400 lecteurs"),
                                               ("Animations", "1 150 séances")]):
        row.cells[0].text, row.cells[1].text = what, value
    d.add_heading("Projets pour 2026", level=2)
    d.add_paragraph("Un bibliobus desservira les quartiers de Kerfeunteun et d'Ergué-Armel dès le mois de mai.")
    d.save(path)
    return path


def test_text_comes_in_reading_order_with_headings_and_table_rows(tmp_path):
    res = load_paths([write_report(tmp_path / "bilan.docx")])
    assert not res.skipped
    doc = res.documents[0]
    order = ["La médiathèque en 2025", "212 000 visiteurs", "Prêts | 486 000 documents",
             "Inscrits | 18 400 lecteurs", "Projets pour 2026", "bibliobus"]
    positions = [doc.text.find(s) for s in order]
    assert -1 not in positions and positions == sorted(positions), positions
    assert (doc.title, doc.author) == ("Bilan 2025 de la médiathèque de Quimper", "Maëlle Tanguy")
    assert (doc.date, doc.date_source, doc.lang) == ("2026-01-20", "document", "fr")


def test_without_properties_the_first_heading_and_the_files_date_are_used(tmp_path):
    doc = load_paths([write_report(tmp_path / "bilan.docx", props=False)]).documents[0]
    assert doc.title == "La médiathèque en 2025"
    assert doc.author == "" and doc.date_source == "file"  # not python-docx's template's 2013 date


@pytest.mark.slow
def test_the_answer_is_found_in_a_table_of_a_word_file(tmp_path, embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    write_report(folder / "bilan.docx")
    cfg = Config(index_dir=str(tmp_path / "index"))
    report = Indexer(cfg, embedder).build([folder], progress=False)
    assert report.added and not report.skipped
    ans = RAG(cfg).ask("Combien de lecteurs sont inscrits à la médiathèque de Quimper ?")
    assert "18 400" in ans.answer
    top = ans.citations[0]
    assert top.source.endswith("bilan.docx") and top.date == "2026-01-20" and top.author == "Maëlle Tanguy"


@pytest.mark.parametrize("name,data,reason", [
    ("notes.docx", b"PK\x03\x04 not really a docx", "not a valid Word file"),
    ("empty.docx", None, "holds no text"),
    ("bomb.docx", "bomb", "expands to"),
])
def test_bad_word_files_are_skipped_with_a_reason(tmp_path, name, data, reason):
    path = tmp_path / name
    if data is None:
        docx.Document().save(path)
    elif data == "bomb":  # a few kB on disk, 30 MB of XML once unzipped
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("[Content_Types].xml", "<Types/>")
            z.writestr("word/document.xml", "<w:document>" + " " * 30_000_000 + "</w:document>")
        path.write_bytes(buf.getvalue())
    else:
        path.write_bytes(data)
    res = load_paths([path], max_file_mb=1)
    assert not res.documents and res.skipped[0].path.endswith(name)
    assert reason in res.skipped[0].reason
