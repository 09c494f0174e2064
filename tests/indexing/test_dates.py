"""Dates on every document, the date filters inside retrieval, and indexes made before dates were kept.

The corpus: nine council articles of three months (December 2025, January and February 2026),
the December ones closest to the question, so that filtering after retrieval would leave
fewer than k passages; filtering inside it still gives k.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import ARTICLE_FR, ROOT

from rag.config import Config
from rag.indexing import Indexer, verify
from rag.pipeline import RAG
from rag.retrieval import Retriever
from rag.store import Store

QUESTION = "Quel budget le conseil municipal a-t-il voté pour les écoles ?"
CITIES = {"2025-12": ["Rennes", "Nantes", "Brest"], "2026-01": ["Vannes", "Lorient", "Quimper"],
          "2026-02": ["Angers", "Laval", "Cholet"]}


EXTRA = ["La majorité a salué un effort sans précédent, l'opposition a dénoncé un budget de communication.",
         "Les parents d'élèves réclamaient depuis longtemps des travaux d'isolation dans les bâtiments anciens.",
         "Le vote s'est tenu tard dans la soirée, après quatre heures de débats parfois tendus entre les groupes."]


def council(city: str, month: str, n: int) -> dict:
    day = f"{month}-{10 + n:02d}"
    if month == "2025-12":  # the closest to the question
        text = (f"Le conseil municipal de {city} a voté jeudi le budget des écoles : {n + 3} millions d'euros pour "
                f"les écoles de la ville. Le budget des écoles voté par le conseil municipal finance la rénovation "
                f"de {n + 4} écoles et les cantines. {EXTRA[n]}")
    else:
        text = (f"À {city}, les élus ont adopté l'enveloppe de l'an prochain. Le conseil municipal consacre "
                f"{n + 10} millions d'euros aux écoles de {city}. {EXTRA[(n + len(month)) % 3]} "
                f"{EXTRA[(n + 1) % 3]}")
    return {"title": f"{city} : le conseil vote son budget", "text": text, "date": day,
            "url": f"https://journal.example/{month}/{city.lower()}-budget", "author": "Rédaction"}


@pytest.fixture(scope="module")
def dated_index(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("dated")
    feed = root / "conseils.jsonl"
    records = [council(city, month, n) for month, cities in CITIES.items() for n, city in enumerate(cities)]
    feed.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    note = root / "note.txt"  # no date of its own: the file's, marked as such
    note.write_text(ARTICLE_FR, encoding="utf-8")
    noon = time.mktime((2026, 1, 25, 12, 0, 0, 0, 0, -1))
    os.utime(note, (noon, noon))
    cfg = Config(index_dir=str(root / "index"))
    Indexer(cfg, embedder).build([feed, note], progress=False)
    return cfg


def months(hits) -> set[str]:
    return {h.date[:7] for h in hits}


def test_filter_inside_retrieval_still_gives_k_passages(dated_index):
    retriever = Retriever(dated_index)
    everything = retriever.search(QUESTION, k=3)
    assert months(everything) != {"2026-01"}  # unfiltered, other months come first...
    january = retriever.search(QUESTION, k=3, since="2026-01-01", until="2026-01-31")
    assert len(january) == 3 and months(january) == {"2026-01"}  # ...yet k January passages come back
    assert all("conseil" in h.title for h in january)
    assert len([h for h in everything if h.date.startswith("2026-01")]) < 3  # what filtering after would give


def test_open_ended_ranges_and_both_days_included(dated_index):
    retriever = Retriever(dated_index)
    assert months(retriever.search(QUESTION, k=10, since="2026-02-01")) == {"2026-02"}
    assert months(retriever.search(QUESTION, k=10, until="2025-12-31")) == {"2025-12"}
    exact = retriever.search(QUESTION, k=10, since="2026-01-11", until="2026-01-11")
    assert [h.date for h in exact] == ["2026-01-11"]
    assert retriever.search(QUESTION, k=5, since="2030-01-01") == []


def test_ask_carries_dates_and_links_into_citations_and_json(dated_index):
    ans = RAG(dated_index).ask(QUESTION, since="2026-02-01", until="2026-02-28")
    assert ans.citations and all(c.date.startswith("2026-02") for c in ans.citations)
    first = ans.to_json()["citations"][0]
    assert first["url"].startswith("https://journal.example/2026-02/") and first["date_source"] == "published"
    assert first["author"] == "Rédaction"


def test_a_document_without_a_date_of_its_own_takes_its_files_marked_as_such(dated_index):
    note = next(d for d in Store(dated_index.index_dir).documents() if d["source"].endswith("note.txt"))
    assert (note["date"], note["date_source"], note["url"]) == ("2026-01-25", "file", "")
    hits = Retriever(dated_index).search("pont piéton Lyon", k=1, since="2026-01-25", until="2026-01-25")
    assert hits[0].source.endswith("note.txt") and hits[0].date_source == "file"


@pytest.mark.parametrize("since,until,message", [
    ("2026-13-01", None, "since '2026-13-01' is not a date"),
    ("01/02/2026", None, "expected YYYY-MM-DD"),
    (None, "demain", "until 'demain' is not a date"),
    ("2026-02-01", "2026-01-01", "since 2026-02-01 is after until 2026-01-01"),
])
def test_bad_dates_are_errors_naming_the_value(dated_index, since, until, message):
    with pytest.raises(ValueError, match=message):
        RAG(dated_index).ask(QUESTION, since=since, until=until)


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, env=env, timeout=300)


def test_cli_ask_filters_by_date_and_shows_dates_and_links(dated_index):
    run = _cli("ask", QUESTION, "--index", dated_index.index_dir, "--since", "2026-01-01", "--until", "2026-01-31")
    assert run.returncode == 0, run.stderr
    sources = [ln for ln in run.stdout.splitlines() if ln.startswith("[")]
    assert sources and all(" — 2026-01-" in ln for ln in sources)
    assert "https://journal.example/2026-01/" in run.stdout
    bad = _cli("ask", QUESTION, "--index", dated_index.index_dir, "--since", "2026-02-30")
    assert bad.returncode == 2 and "--since '2026-02-30' is not a date" in bad.stderr


def test_index_list_shows_the_date_and_marks_a_files(dated_index):
    out = _cli("index", "list", "--index", dated_index.index_dir).stdout
    line = next(ln for ln in out.splitlines() if "note.txt" in ln)
    assert "2026-01-25*" in line
    assert any("2025-12-10" in ln and "https://journal.example/2025-12/rennes-budget" in ln for ln in out.splitlines())


# -- indexes made before dates were kept ---------------------------------------------------------------
OLD_DOCUMENTS = """CREATE TABLE documents (
    id TEXT PRIMARY KEY, key TEXT UNIQUE NOT NULL, source TEXT NOT NULL, title TEXT NOT NULL,
    lang TEXT NOT NULL, sha256 TEXT NOT NULL, text TEXT NOT NULL, meta TEXT NOT NULL DEFAULT '{}',
    chunks INTEGER NOT NULL DEFAULT 0, indexed TEXT NOT NULL)"""


def make_old_index(folder, feed, note, embedder) -> dict:
    """An index as the version before dates wrote it: no date/url/author columns, no pages table, and a
    JSONL record's url and date in ``meta``. Returns what it held."""
    Indexer(Config(index_dir=str(folder)), embedder).build([feed, note], progress=False)
    db = sqlite3.connect(folder / "rag.sqlite")
    rows = db.execute("SELECT id, key, source, title, lang, sha256, text, url, date, date_source, chunks, indexed "
                      "FROM documents").fetchall()
    db.execute("DROP TABLE pages")
    db.execute("DROP INDEX documents_date")
    db.execute("ALTER TABLE documents RENAME TO documents_new")
    db.execute(OLD_DOCUMENTS)
    for (i, key, source, title, lang, sha, text, url, date, date_source, chunks, indexed) in rows:
        meta = json.dumps({"url": url, "date": date}) if date_source == "published" else "{}"
        db.execute("INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?)",
                   (i, key, source, title, lang, sha, text, meta, chunks, indexed))
    db.execute("DROP TABLE documents_new")
    db.commit()
    chunks = db.execute('SELECT id, doc_id, text, start, "end" FROM chunks ORDER BY rowid').fetchall()
    db.close()
    return {"documents": {r[0]: (r[6], r[7], r[8], r[9]) for r in rows}, "chunks": chunks}


@pytest.mark.slow
def test_an_older_index_is_upgraded_on_open_without_losing_anything(tmp_path, embedder):
    feed = tmp_path / "conseils.jsonl"
    feed.write_text("\n".join(json.dumps(council(c, "2026-01", n), ensure_ascii=False)
                              for n, c in enumerate(CITIES["2026-01"])) + "\n", encoding="utf-8")
    note = tmp_path / "note.txt"
    note.write_text(ARTICLE_FR, encoding="utf-8")
    folder = tmp_path / "index"
    before = make_old_index(folder, feed, note, embedder)
    cols = {r[1] for r in sqlite3.connect(folder / "rag.sqlite").execute("PRAGMA table_info(documents)")}
    assert "date" not in cols
    store = Store(folder)  # opening it upgrades it
    docs = {d["id"]: d for d in store.documents()}
    assert set(docs) == set(before["documents"])
    for doc_id, (text, url, date, date_source) in before["documents"].items():
        assert store.document_text(doc_id) == text
        assert (docs[doc_id]["url"], docs[doc_id]["date"], docs[doc_id]["date_source"]) == (url, date, date_source)
    chunks = store.db.execute('SELECT id, doc_id, text, start, "end" FROM chunks ORDER BY rowid').fetchall()
    assert chunks == before["chunks"]
    assert verify(folder) == []
    cfg = Config(index_dir=str(folder))
    ans = RAG(cfg).ask("Combien le conseil municipal de Lorient consacre-t-il aux écoles ?", since="2026-01-01")
    assert "11 millions" in ans.answer and ans.citations[0].url == "https://journal.example/2026-01/lorient-budget"
    again = Indexer(cfg, embedder).build([feed, note], progress=False)
    assert again.encoded == 0 and not again.added and not again.removed
