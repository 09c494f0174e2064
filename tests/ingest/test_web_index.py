"""Indexing web addresses: a rebuild asks each page again, parses only what changed, keeps what fails.

The pages come from a real HTTP server on 127.0.0.1 (tests/news_site.py); the index is real
(the embedding model, FAISS, SQLite); ``allow_private_urls`` lets the indexer reach that server.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT
from news_site import NewsSite, Resource, article_html

from rag.config import Config
from rag.indexing import Indexer
from rag.pipeline import RAG
from rag.store import Store

pytestmark = pytest.mark.slow  # several real builds each

BREST = ["Le port de Brest a accueilli mardi le plus grand porte-conteneurs de son histoire, long de 366 mètres.",
         "Le navire, parti de Shanghai, a déchargé 4 000 conteneurs en deux jours, selon la chambre de commerce.",
         "Les dockers ont travaillé jour et nuit pour tenir les délais annoncés par l'armateur."]
VANNES = ["La ville de Vannes a inauguré samedi une nouvelle médiathèque de trois étages près du port.",
          "Elle propose 60 000 ouvrages et une salle de concert de 200 places, pour 18 millions d'euros.",
          "Le maire a promis des horaires d'ouverture élargis le dimanche dès le printemps."]
LORIENT = ["Le festival de Lorient attend cette année 800 000 visiteurs sur dix jours au mois d'août.",
           "Les organisateurs ont invité l'Acadie comme nation d'honneur, avec 1 200 musiciens et danseurs.",
           "Les billets pour les grands concerts du stade seront mis en vente le 15 mars."]


@pytest.fixture
def site():
    with NewsSite() as s:
        s.add("/brest.html", Resource(article_html("Un géant des mers à Brest", BREST, "2026-01-13", "Anne Le Bihan")
                                      .encode(), etag='"brest-1"'))
        s.add("/vannes.html", Resource(article_html("La médiathèque de Vannes", VANNES, "2026-01-20").encode(),
                                       last_modified="Tue, 20 Jan 2026 08:00:00 GMT"))
        s.add("/lorient.html", Resource(article_html("Le festival de Lorient", LORIENT, "2026-02-02").encode()))
        yield s


@pytest.fixture
def cfg(tmp_path):
    return Config(index_dir=str(tmp_path / "index"), allow_private_urls=True, fetch_timeout=3.0)


def urls_file(tmp_path, site, *paths) -> str:
    listing = tmp_path / "veille.urls"
    listing.write_text("# pages suivies\n" + "".join(site.url(p) + "\n" for p in paths), encoding="utf-8")
    return str(listing)


def test_a_rebuild_asks_again_conditionally_and_parses_nothing_unchanged(tmp_path, site, cfg, embedder):
    listing = urls_file(tmp_path, site, "/brest.html", "/vannes.html", "/lorient.html")
    indexer = Indexer(cfg, embedder)
    first = indexer.build([listing], progress=False)
    assert len(first.added) == 3 and first.pages_fetched == 3 and not first.skipped
    again = indexer.build([listing], progress=False)
    assert not again.changed and again.encoded == 0
    assert again.pages_fetched == 0 and again.pages_unchanged == 3  # no page parsed again
    brest, vannes, lorient = (site.hits(p)[-1] for p in ("/brest.html", "/vannes.html", "/lorient.html"))
    assert brest.headers.get("if-none-match") == '"brest-1"' and brest.status == 304
    assert vannes.headers.get("if-modified-since") == "Tue, 20 Jan 2026 08:00:00 GMT" and vannes.status == 304
    assert lorient.status == 200  # no validators: sent again, recognised byte for byte
    assert "0 pages parsed, 3 not modified" in again.summary()


def test_a_changed_page_is_indexed_again_alone(tmp_path, site, cfg, embedder):
    listing = urls_file(tmp_path, site, "/brest.html", "/vannes.html", "/lorient.html")
    indexer = Indexer(cfg, embedder)
    indexer.build([listing], progress=False)
    changed = BREST[:1] + ["Le navire a finalement déchargé 5 500 conteneurs en trois jours."] + BREST[2:]
    site.resources["/brest.html"] = Resource(article_html("Un géant des mers à Brest", changed, "2026-01-13")
                                             .encode(), etag='"brest-2"')
    report = indexer.build([listing], progress=False)
    assert report.updated == [site.url("/brest.html")] and report.pages_fetched == 1
    assert report.pages_unchanged == 2 and len(report.unchanged) == 2
    ans = RAG(cfg).ask("Combien de conteneurs le navire a-t-il déchargés à Brest ?")
    assert "5 500" in ans.answer and ans.citations[0].url == site.url("/brest.html")
    third = indexer.build([listing], progress=False)
    assert site.hits("/brest.html")[-1].headers.get("if-none-match") == '"brest-2"' and not third.changed


def test_an_address_that_fails_keeps_its_previous_version_with_a_warning(tmp_path, site, cfg, embedder):
    listing = urls_file(tmp_path, site, "/brest.html", "/vannes.html")
    indexer = Indexer(cfg, embedder)
    indexer.build([listing], progress=False)
    site.resources["/brest.html"] = Resource(b"maintenance", status=503)
    report = indexer.build([listing], progress=False)
    assert report.kept == [site.url("/brest.html")] and not report.removed
    assert [s.path for s in report.skipped] == [site.url("/brest.html")] and "HTTP 503" in report.skipped[0].reason
    ans = RAG(cfg).ask("Quelle est la longueur du porte-conteneurs arrivé à Brest ?")
    assert "366 mètres" in ans.answer
    # back up: unchanged since the version kept, asked with the validators of that version
    site.resources["/brest.html"] = Resource(article_html("Un géant des mers à Brest", BREST, "2026-01-13",
                                                          "Anne Le Bihan").encode(), etag='"brest-1"')
    back = indexer.build([listing], progress=False)
    assert not back.changed and back.pages_unchanged == 2


def test_a_line_taken_out_of_the_list_removes_its_page(tmp_path, site, cfg, embedder):
    listing = urls_file(tmp_path, site, "/brest.html", "/vannes.html")
    indexer = Indexer(cfg, embedder)
    indexer.build([listing], progress=False)
    urls_file(tmp_path, site, "/vannes.html")
    report = indexer.build([listing], progress=False)
    assert report.removed == [site.url("/brest.html")]
    store = Store(cfg.index_dir)
    assert [d["source"] for d in store.documents()] == [site.url("/vannes.html")]
    kept = f"{os.path.realpath(listing)}#{site.url('/vannes.html')}"
    assert list(store.page_validators(indexer.page_reader)) == [kept]


def test_index_list_and_ask_show_date_and_address(tmp_path, site, cfg, embedder):
    Indexer(cfg, embedder).build([site.url("/brest.html")], progress=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "rag", "index", "list", "--index", cfg.index_dir, "--json"],
                         capture_output=True, text=True, env=env, timeout=120)
    import json

    row = json.loads(run.stdout.splitlines()[0])
    assert (row["date"], row["date_source"], row["url"], row["author"]) == (
        "2026-01-13", "published", site.url("/brest.html"), "Anne Le Bihan")
    text = subprocess.run([sys.executable, "-m", "rag", "index", "list", "--index", cfg.index_dir],
                          capture_output=True, text=True, env=env, timeout=120).stdout
    assert "2026-01-13" in text and site.url("/brest.html") in text
    ask = subprocess.run([sys.executable, "-m", "rag", "ask", "Combien de conteneurs ont été déchargés à Brest ?",
                          "--index", cfg.index_dir], capture_output=True, text=True, env=env, timeout=300)
    assert ask.returncode == 0, ask.stderr
    assert "Un géant des mers à Brest — 2026-01-13" in ask.stdout and site.url("/brest.html") in ask.stdout


def test_cli_build_of_an_address_refuses_loopback_unless_allowed(tmp_path, site):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("RAG_ALLOW_PRIVATE_URLS", None)
    index = str(tmp_path / "index")
    cmd = [sys.executable, "-m", "rag", "index", "build", site.url("/brest.html"), "--index", index, "-q"]
    refused = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert refused.returncode == 2
    assert f"skipped: {site.url('/brest.html')}: " in refused.stderr and "loopback" in refused.stderr
    assert site.requests == []
    allowed = subprocess.run(cmd, capture_output=True, text=True, env={**env, "RAG_ALLOW_PRIVATE_URLS": "1"},
                             timeout=300)
    assert allowed.returncode == 0, allowed.stderr
    assert f"added: {site.url('/brest.html')}" in allowed.stdout
