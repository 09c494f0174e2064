"""The web server against a hostile or clumsy user, through the real `rag serve` and a real browser.

One server for the module, without a login (the case DNS rebinding aims at), over an index of
the seed article and of a JSONL file of RECORDS one-line articles ("Fiche 0000" ...), far more
than a page of the document list. It answers to the extra name chat.example.org
(RAG_ALLOWED_HOSTS). Uploads of each test use their own names and text.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from rag.config import Config
from rag.indexing import Indexer
from tests.conftest import SEEDS
from tests.servers.rag_serve import start_serve
from ui.doclist import CHOICES, PAGE

RECORDS = 300
browser_test = pytest.mark.browser
EXTRA_HOST = "chat.example.org"
VANNES = """Le marché aux puces de Vannes

Le marché aux puces de Vannes se tient chaque premier dimanche du mois place de la Libération.
Il réunit 180 exposants, selon son organisatrice, Gwenola Le Bihan.
"""
LORIENT = """La régate de Lorient

La grande régate de Lorient part le 14 juin de la base des sous-marins. Le skipper Erwan Kerhervé
la remporte depuis trois ans avec son voilier Penn Ar Bed.
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("hardening")
    corpus = root / "corpus"
    corpus.mkdir()
    with (corpus / "records.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(RECORDS):
            fh.write(json.dumps({"title": f"Fiche {i:04d}", "text": f"La fiche {i:04d} du registre."}) + "\n")
    index = root / "index"
    Indexer(Config(index_dir=str(index)), embedder=embedder).build([SEEDS, corpus], progress=False)
    served = start_serve(index, root, env={"RAG_ALLOWED_HOSTS": EXTRA_HOST, "RAG_AUTH": "", "RAG_UPLOAD_MAX_MB": "1"})
    yield served
    served.stop()


def get(url: str, headers: dict[str, str] | None = None, method: str = "GET", data: bytes | None = None):
    """(status, headers) of a request, whatever its status."""
    req = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers
    except urllib.error.HTTPError as err:
        return err.code, err.headers


# -- hosts and origins (item 18) -----------------------------------------------------------------
def test_a_request_naming_another_host_is_refused_and_its_origin_not_echoed(server):
    evil = {"Host": "evil.example", "Origin": "http://evil.example"}
    for path in ("", "config", "gradio_api/info"):
        status, headers = get(server.url + path, evil)
        assert status == 403 and headers.get("access-control-allow-origin") is None, path
    status, headers = get(server.url + "config", {"Host": "evil.example:%d" % server.port})
    assert status == 403
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", EXTRA_HOST):
        assert get(server.url + "config", {"Host": host})[0] == 200, host


def test_a_cross_origin_preflight_is_refused_before_gradio_answers_it(server):
    status, headers = get(server.url + "gradio_api/upload", {"Origin": "http://evil.example",
                                                             "Access-Control-Request-Method": "POST"}, "OPTIONS")
    assert status == 403 and headers.get("access-control-allow-origin") is None


def test_a_cross_origin_upload_is_refused_and_stored_nowhere(server, tmp_path):
    import gradio.utils

    cache = Path(gradio.utils.get_upload_folder())
    name = "cross-origin-probe-7f3e.txt"
    files = {"files": (name, b"Un article envoye par une autre page.", "text/plain")}
    with httpx.Client(timeout=30) as http:
        for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
            r = http.post(server.url + "gradio_api/upload", files=files, headers=headers)
            assert r.status_code == 403, headers
        assert not list(cache.glob(f"*/{name}"))
        same = http.post(server.url + "gradio_api/upload", files=files,
                         headers={"Origin": server.url.rstrip("/")})  # the server's own page may upload
        assert same.status_code == 200
        stored = Path(same.json()[0])
        assert stored.name == name and stored.is_file()
        stored.unlink()


# -- the document list (item 6) ------------------------------------------------------------------
@pytest.fixture
def open_page(server, browser):
    contexts = []

    def _open(watch: list | None = None):
        ctx = browser.new_context(locale="fr-FR", viewport={"width": 1400, "height": 1000})
        contexts.append(ctx)
        page = ctx.new_page()
        if watch is not None:
            page.on("response", lambda r: watch.append(r))
        page.goto(server.url)
        page.wait_for_selector("#rag-head[data-lang]", timeout=60_000)
        page.locator("#rag-documents > button, #rag-documents .label-wrap").first.click()
        page.wait_for_selector("#rag-upload input[type=file]", state="attached")
        return page

    yield _open
    for ctx in contexts:
        ctx.close()


def type_into(page, box: str, text: str) -> None:
    """Type ``text`` into a search box key by key, as a user does."""
    field = page.locator(f"{box} input")
    field.fill("")
    field.press_sequentially(text, delay=20)


def search(page, text: str) -> int:
    """Search the document list; returns how many documents match."""
    type_into(page, "#rag-doc-search", text)
    caption = page.locator(f'#rag-doc-list .rag-doc-range[data-query="{text}"]')
    caption.wait_for(timeout=30_000)
    return int(caption.get_attribute("data-total"))


PICKERS = {"#rag-remove-pick": "#rag-doc-search", "#rag-restrict": "#rag-restrict-search"}


def offered(page, dropdown: str, text: str, keep_open: bool = False) -> list[str]:
    """Search ``text`` with the picker's search box; the options the picker then offers."""
    if PICKERS[dropdown] == "#rag-doc-search":
        search(page, text)
    else:
        type_into(page, PICKERS[dropdown], text)
    page.locator(f"{dropdown} input").click()
    try:  # the picker's choices follow its search box
        page.wait_for_function("t => { const o = [...document.querySelectorAll('[role=option]')]; "
                               "return o.length > 0 && o.every(e => e.innerText.includes(t)); }", arg=text,
                               timeout=20_000)
    except Exception:  # noqa: BLE001 - the options are returned as they are, for the test to judge
        pass
    found = page.get_by_role("option").all_inner_texts()
    if not keep_open:
        page.locator(f"{dropdown} input").press("Escape")
    return found


def listed(page, dropdown: str, text: str) -> bool:
    """Whether a picker, as the page loaded it (nothing searched), offers the document holding ``text``."""
    field = page.locator(f"{dropdown} input")
    field.click()
    field.fill(text)  # filters the picker's own choices in the page
    try:
        page.get_by_role("option").filter(has_text=text).first.wait_for(timeout=10_000)
        return True
    except Exception:  # noqa: BLE001
        return False
    finally:
        field.press("Escape")


def choose(page, dropdown: str, text: str) -> None:
    """Pick the document holding ``text`` in a picker, found through its search box."""
    offered(page, dropdown, text, keep_open=True)
    pick_listed(page, dropdown, text)


def pick_listed(page, dropdown: str, text: str) -> None:
    """Choose, with the keyboard, the option holding ``text`` among those the picker offers."""
    field = page.locator(f"{dropdown} input")
    field.click()
    field.fill("")
    field.press_sequentially(text, delay=20)
    page.get_by_role("option").filter(has_text=text).first.wait_for()
    field.press("ArrowDown")
    field.press("Enter")


def upload(page, *files: Path) -> str:
    """Upload through the Documents panel; returns the status note once the job is over."""
    page.evaluate("() => { for (const li of document.querySelectorAll('#rag-upload-status li')) li.remove(); }")
    page.locator("#rag-upload input[type=file]").set_input_files([str(f) for f in files])
    page.wait_for_selector("#rag-upload-status li", timeout=30_000)
    page.wait_for_function("() => { const n = document.querySelector('#rag-upload-status'); "
                           "return n.innerText.trim() && !n.querySelector('.rag-busy'); }", timeout=180_000)
    return page.locator("#rag-upload-status").inner_text()


def doc_range(page) -> tuple[int, int]:
    """(offset, total) of the table's page."""
    caption = page.locator("#rag-doc-list .rag-doc-range")
    return int(caption.get_attribute("data-offset")), int(caption.get_attribute("data-total"))


@browser_test
def test_a_page_receives_one_page_of_a_long_document_list_and_search_finds_any_document(open_page):
    responses: list = []
    page = open_page(responses)
    sent = set()
    for r in responses:  # the page itself (its configuration is inside) and the first update after it loads
        if urlsplit(r.url).path in ("/", "/config", "/gradio_api/run/predict"):
            sent |= set(re.findall(r"Fiche \d{4}", r.text()))
    assert 0 < len(sent) <= max(PAGE, CHOICES), f"{len(sent)} of {RECORDS} records sent with the page"
    rows = page.locator("#rag-doc-list tbody tr")
    offset, total = doc_range(page)
    assert rows.count() == PAGE and offset == 0 and total >= RECORDS + 1
    page.locator("#rag-doc-next").click()
    page.wait_for_function(f"() => document.querySelector('#rag-doc-list .rag-doc-range').dataset.offset == '{PAGE}'")
    assert f"{PAGE + 1} à {2 * PAGE} sur" in page.locator("#rag-doc-list").inner_text()
    assert search(page, "Fiche 0277") == 1
    assert "Fiche 0277" in page.locator("#rag-doc-list tbody").inner_text() and rows.count() == 1
    assert len(offered(page, "#rag-remove-pick", "Fiche 0277")) == 1
    found = offered(page, "#rag-remove-pick", "Fiche 01")  # 100 match: the picker offers a bounded number
    assert 0 < len(found) <= CHOICES and all("Fiche 01" in f for f in found)


@browser_test
def test_any_document_can_be_found_in_the_pickers_and_removed(open_page):
    page = open_page()
    page.locator("#rag-settings > button, #rag-settings .label-wrap").first.click()
    assert any("Fiche 0123" in o for o in offered(page, "#rag-restrict", "Fiche 0123"))
    choose(page, "#rag-remove-pick", "Fiche 0199")
    page.locator("#rag-remove").click()
    page.wait_for_function("() => document.querySelector('#rag-upload-status').innerText.includes('Retiré')",
                           timeout=120_000)
    assert "Fiche 0199" in page.locator("#rag-upload-status").inner_text()
    assert search(page, "Fiche 0199") == 0


# -- uploads (items 7, 8, 9, 19) -----------------------------------------------------------------
@browser_test
def test_after_an_upload_and_a_reload_the_table_and_both_pickers_list_it_and_remove_accepts_it(open_page, tmp_path):
    article = tmp_path / "vannes.txt"
    article.write_text(VANNES, encoding="utf-8")
    note = upload(open_page(), article)
    assert "Ajouté : vannes.txt" in note
    page = open_page()  # the page loaded again
    assert "Le marché aux puces de Vannes" in page.locator("#rag-doc-list").inner_text()
    page.locator("#rag-settings > button, #rag-settings .label-wrap").first.click()
    assert listed(page, "#rag-restrict", "Vannes") and listed(page, "#rag-remove-pick", "Vannes")
    pick_listed(page, "#rag-remove-pick", "Vannes")
    page.locator("#rag-remove").click()
    page.wait_for_function("() => document.querySelector('#rag-upload-status').innerText.includes('Retiré')",
                           timeout=120_000)
    assert "Vannes" not in page.locator("#rag-doc-list").inner_text()


@browser_test
def test_two_users_uploading_different_notes_txt_both_keep_their_document(open_page, server, tmp_path):
    first, second, third = (tmp_path / d for d in ("a", "b", "c"))
    for folder in (first, second, third):
        folder.mkdir()
    (first / "notes.txt").write_text(VANNES, encoding="utf-8")
    (second / "notes.txt").write_text(LORIENT, encoding="utf-8")
    (third / "notes:.txt").write_text(VANNES.replace("180 exposants", "181 exposants"), encoding="utf-8")
    alice, bob = open_page(), open_page()
    assert "Ajouté : notes.txt" in upload(alice, first / "notes.txt")
    note = upload(bob, second / "notes.txt")
    assert "autre contenu" in note and "Ajouté" in note
    note = upload(bob, third / "notes:.txt")
    assert "Ajouté" in note
    stored = sorted(p.name for p in (server.root / "uploads").glob("notes*.txt"))
    assert len(stored) == 3 and "notes.txt" in stored
    texts = {p.read_text(encoding="utf-8") for p in (server.root / "uploads").glob("notes*.txt")}
    assert VANNES in texts and LORIENT in texts
    from gradio_client import Client

    client = Client(server.url, verbose=False)
    for question, fact in (("Qui organise le marché aux puces de Vannes ?", "Le Bihan"),
                           ("Qui remporte la régate de Lorient ?", "Kerhervé")):  # both documents answer
        cited = client.predict(question, 3, api_name="/ask")["citations"]
        assert any(fact in c["excerpt"] and "notes" in c["source"] for c in cited), (question, cited)
    again = upload(alice, first / "notes.txt")  # the same content again: one document
    assert "même contenu que notes.txt" in again and "Inchangé" in again
    assert search(alice, "Le marché aux puces de Vannes") == 2  # notes.txt and notes_.txt, not a third


@browser_test
def test_an_upload_that_fails_to_index_is_removed_and_the_page_says_why(open_page, server, tmp_path, embedder):
    bad = tmp_path / "repeated.txt"  # base64-like data, not an article: the loader skips it
    bad.write_text("TGUgbWluaXN0cmUgYSByZW5jb250cmU" * 2000, encoding="utf-8")
    page = open_page()
    note = upload(page, bad)
    assert "repeated.txt" in note and ("Non gardé" in note or "Refusé" in note), note
    uploads = server.root / "uploads"
    assert not (uploads / "repeated.txt").exists()
    assert search(page, "repeated") == 0
    report = Indexer(Config(index_dir=str(tmp_path / "later")), embedder=embedder).build([uploads], progress=False)
    assert not [s for s in report.skipped if "repeated" in s.path]  # a later build of uploads/ has nothing to stop on


@browser_test
def test_a_removed_upload_cannot_be_downloaded_from_the_servers_cache(open_page, server, tmp_path):
    article = tmp_path / "lorient-cache.txt"
    article.write_text(LORIENT.replace("14 juin", "15 juin"), encoding="utf-8")
    page = open_page()
    with page.expect_response(lambda r: "/gradio_api/upload" in r.url and r.request.method == "POST") as info:
        page.locator("#rag-upload input[type=file]").set_input_files(str(article))
    received = info.value.json()[0]
    page.wait_for_function("() => document.querySelector('#rag-upload-status').innerText.includes('Ajouté')",
                           timeout=180_000)
    file_url = f"{server.url}gradio_api/file={received}"
    gone = (403, 404)  # Gradio answers 403 "File not allowed" for any path it does not serve, a deleted one too
    assert page.request.get(file_url).status in gone and not Path(received).exists()
    choose(page, "#rag-remove-pick", "lorient-cache.txt")
    page.locator("#rag-remove").click()
    page.wait_for_function("() => document.querySelector('#rag-upload-status').innerText.includes('Retiré')",
                           timeout=120_000)
    assert page.request.get(file_url).status in gone
    assert not (server.root / "uploads" / "lorient-cache.txt").exists()


# -- load (item 20) ------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_hundred_clients_at_once_all_get_answers_and_none_is_refused(server):
    from bench.load import load

    res = load(server.url, clients=100, seconds=20)
    assert res["errors"] == 0 and res["queue_full"] == 0, res["error_samples"]
    assert res["answered"] >= 100 and res["threads_left"] == 0
