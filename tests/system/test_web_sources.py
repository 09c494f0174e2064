"""Dates and links in the chat, in a real browser: the date beside each source's title, the title a link to
the article (never a javascript: one), a date range in the settings, and addresses added from the page.

One `rag serve` for the module over a JSONL corpus of three dated articles, one of them with hostile
metadata; a loopback news site serves the page added by address (RAG_ALLOW_PRIVATE_URLS=1 lets the
server fetch from it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import ARTICLE_FR, ARTICLE_FR_2, ROOT
from news_site import NewsSite, Resource, article_html
from tests.system.test_web_chat import ask, free_port, open_documents

from rag.config import Config
from rag.indexing import Indexer

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PONT_URL = "https://journal.example/2026/01/17/pont-lyon"
PHARE = ("Le phare de Kerzéon, construit en 1887, mesure 47 mètres de haut. Son gardien s'appelle Yannick Le Goff. "
         "Il guide les navires vers le port de Brest depuis plus d'un siècle.")
BREST = ["Le port de Brest a accueilli mardi le plus grand porte-conteneurs de son histoire, long de 366 mètres.",
         "Le navire, parti de Shanghai, a déchargé 4 000 conteneurs en deux jours, selon la chambre de commerce."]


@pytest.fixture(scope="module")
def site():
    with NewsSite() as s:
        s.add("/2026/01/13/brest.html", Resource(article_html("Un géant des mers à Brest", BREST, "2026-01-13",
                                                              "Anne Le Bihan").encode()))
        yield s


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("dated-chat")
    feed = root / "articles" / "journal.jsonl"
    feed.parent.mkdir()
    records = [
        {"title": "Un nouveau pont à Lyon", "text": ARTICLE_FR, "date": "2026-01-17", "url": PONT_URL,
         "author": "Claire Martin"},
        {"title": '<img src=x onerror="window.__pwned=1">Le phare de Kerzéon', "text": PHARE, "date": "2025-12-02",
         "url": "javascript:window.__pwned=3", "author": '<script>window.__pwned=2</script>Jean Kerhervé'},
        {"title": "Grève des contrôleurs aériens", "text": ARTICLE_FR_2, "date": "2026-02-05",
         "url": "https://journal.example/2026/02/05/greve"},
    ]
    feed.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    index = root / "index"
    Indexer(Config(index_dir=str(index)), embedder=embedder).build([feed], progress=False)
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_ALLOW_PRIVATE_URLS": "1", "RAG_UPLOAD_DIR": str(root / "up")}
    env.pop("RAG_AUTH", None)
    log = open(root / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--index", str(index), "--port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            pytest.fail(f"rag serve exited with {proc.returncode}: {(root / 'serve.log').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("rag serve did not answer within 180 s")
            time.sleep(0.5)
    yield url
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture
def page(server, browser):
    ctx = browser.new_context(locale="fr-FR", viewport={"width": 1400, "height": 1000})
    p = ctx.new_page()
    p.goto(server)
    p.wait_for_selector("#rag-head[data-lang]", timeout=60_000)
    yield p
    ctx.close()


def card(page, text: str):
    return page.locator("#rag-sources details.rag-src").filter(has_text=text).first


def test_a_source_shows_its_date_beside_the_title_and_links_to_the_article(page):
    answer = ask(page, "Combien mesure le nouveau pont de Lyon ?")
    assert "180 mètres" in answer
    source = card(page, "Un nouveau pont à Lyon")
    title = source.locator(".rag-title")
    assert source.locator(".rag-head .rag-date").inner_text() == "2026-01-17"
    link = title.locator("a.rag-link")
    assert link.get_attribute("href") == PONT_URL and link.inner_text() == "Un nouveau pont à Lyon"
    assert link.get_attribute("target") == "_blank" and "noopener" in link.get_attribute("rel")
    assert "par Claire Martin" in source.locator(".rag-meta").inner_text()


def test_hostile_metadata_shows_as_text_and_a_javascript_address_makes_no_link(page):
    ask(page, "Combien mesure le phare de Kerzéon ?")
    source = card(page, "Le phare de Kerzéon")
    assert source.locator("a").count() == 0  # its javascript: address is not a link
    assert source.locator(".rag-date").inner_text() == "2025-12-02"
    assert "window.__pwned=2Jean Kerhervé" in source.locator(".rag-meta").inner_text()  # tags gone, text kept
    source.locator("summary").click()
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None
    assert page.locator('a[href^="javascript:"]').count() == 0


def test_a_date_range_in_the_settings_keeps_only_its_articles(page):
    def shown_dates():
        return set(page.locator("#rag-sources section:not([hidden]) .rag-date").all_inner_texts())

    page.locator("#rag-settings > button, #rag-settings .label-wrap").first.click()
    since = page.locator("#rag-since input, #rag-since textarea").first
    until = page.locator("#rag-until input, #rag-until textarea").first
    since.fill("2026-01-01")
    until.fill("2026-01-31")
    assert "180 mètres" in ask(page, "Combien mesure le nouveau pont de Lyon ?")
    assert shown_dates() == {"2026-01-17"}
    since.fill("2026-02-01")
    until.fill("2026-02-28")
    answer = ask(page, "Combien mesure le nouveau pont de Lyon ?")  # its article is out of the range now
    assert "180 mètres" not in answer and shown_dates() <= {"2026-02-05"}
    since.fill("2026-02-30")
    box = page.locator("#rag-question textarea")
    box.fill("Qui fait grève ?")
    box.press("Enter")
    error = page.locator("#rag-chat [data-testid=bot]").filter(has_text="Date invalide")
    error.wait_for(timeout=60_000)
    assert "2026-02-30" in error.inner_text()


def test_an_address_typed_in_the_documents_panel_is_fetched_and_answered_from(page, site):
    url = site.url("/2026/01/13/brest.html")
    open_documents(page)
    page.locator("#rag-addresses textarea").fill(f"{url}\nnot-an-address")
    page.locator("#rag-fetch").click()
    page.wait_for_function(
        "() => { const n = document.querySelector('#rag-upload-status .rag-notes');"
        " return n && !n.classList.contains('rag-busy') && n.innerText.includes('Ajouté'); }", timeout=120_000)
    notes = page.locator("#rag-upload-status").inner_text()
    assert url in notes and "not-an-address : pas une adresse" in notes
    assert "Un géant des mers à Brest" in page.locator("#rag-doc-list").inner_text()
    ask(page, "Combien de conteneurs le navire a-t-il déchargés à Brest ?")
    source = card(page, "Un géant des mers à Brest")
    assert source.locator("a.rag-link").get_attribute("href") == url
    assert source.locator(".rag-date").inner_text() == "2026-01-13"
