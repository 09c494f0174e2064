"""The web chat in a real browser (Debian's chromium through Playwright) against `rag serve`.

One server per module, started with the real command on a free port of 127.0.0.1 over an
index of seeds/ built in a temporary folder with the real model; it requires a login
(RAG_AUTH) and accepts uploads up to 1 MB.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rag.config import Config
from rag.indexing import Indexer
from tests.conftest import ROOT, SEEDS

browser_test = pytest.mark.browser
USER, PASSWORD = "tester", "s3cret-pass"
SEED_QUESTION = "Qui est le ministre iranien des Affaires étrangères ?"
SEED_FACT = "Araghchi"

QUIMPER = """# La médiathèque Les Ondines ouvre à Quimper

La nouvelle médiathèque de Quimper, baptisée Les Ondines, a ouvert ses portes mardi au bord de l'Odet.
Elle a coûté 14 millions d'euros et propose 80 000 ouvrages. Maëlle Tanguy dirige la médiathèque de Quimper
depuis 2021 et veut en faire « la maison de tous les habitants ». Le bâtiment a été dessiné par
l'architecte nantais Hervé Quéméner.
"""
CONCARNEAU = """# Les Filets bleus fêtent leurs 120 ans à Concarneau

Le festival des Filets bleus de Concarneau fête ses 120 ans cette semaine. Nolwenn Le Bihan préside le festival
des Filets bleus depuis 2019. Quarante cercles celtiques défileront dans la Ville close dimanche.
"""
HOSTILE_TXT = """<img src=x onerror="window.__pwned=1">Le phare de Kerzéon

<script>window.__pwned=2</script>Le phare de Kerzéon, construit en 1887, mesure 47 mètres de haut.
Son gardien s'appelle Yannick Le Goff <img src=y onerror="window.__pwned=3">. Il guide les navires vers Brest.
"""
HOSTILE_HTML = """<html><head><title>&lt;img src=x onerror=window.__pwned=4&gt; Cerfs-volants</title>
<script>window.__pwned=5</script></head><body><article><h1>Le festival des cerfs-volants de Dieppe</h1>
<p>Le festival des cerfs-volants de Dieppe accueille 40 pays. &lt;script&gt;window.__pwned=6&lt;/script&gt;
Son directeur, Olivier Fauvel, attend 500 000 visiteurs sur la pelouse du front de mer.</p>
<p>&lt;img src=z onerror="window.__pwned=7"&gt; Les cerfs-volants géants restent exposés neuf jours.</p>
<img src="q" onerror="window.__pwned=8"></article></body></html>
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder):
    """`rag serve` on a seeds index; yields (url, work folder)."""
    root = tmp_path_factory.mktemp("chat")
    index = root / "index"
    Indexer(Config(index_dir=str(index)), embedder=embedder).build([SEEDS], progress=False)
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_AUTH": f"{USER}:{PASSWORD}", "RAG_UPLOAD_MAX_MB": "1",
           "RAG_UPLOAD_DIR": str(root / "uploads"), "RAG_TOP_K": "5"}
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
    yield url, root, port
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def session_cookie(server, browser):
    """Log in once through the login form; later pages reuse the session cookie."""
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(server[0])
    page.locator("input[type=text]").first.fill(USER)
    page.locator("input[type=password]").fill(PASSWORD)
    page.locator("input[type=password]").press("Enter")
    page.wait_for_selector("#rag-head[data-lang]", timeout=60_000)
    state = ctx.storage_state()
    ctx.close()
    return state


@pytest.fixture
def open_chat(server, browser, session_cookie):
    """Open the chat, logged in, in a fresh browser context; returns the page."""
    url = server[0]
    contexts = []

    def _open(locale: str = "fr-FR", login: bool = True):
        ctx = browser.new_context(locale=locale, viewport={"width": 1400, "height": 1000},
                                  storage_state=session_cookie if login else None)
        contexts.append(ctx)
        page = ctx.new_page()
        page.goto(url)
        if login:
            page.wait_for_selector("#rag-head[data-lang]", timeout=60_000)
        return page

    yield _open
    for ctx in contexts:
        ctx.close()


def ask(page, question: str, timeout: float = 60_000) -> str:
    """Type a question, press Enter, wait until the answer has streamed; returns its text."""
    before = int(page.locator("#rag-sources-body").get_attribute("data-answers") or 0)
    box = page.locator("#rag-question textarea")
    box.fill(question)
    box.press("Enter")
    page.wait_for_selector(f'#rag-sources-body[data-answers="{before + 1}"][data-complete]', timeout=timeout)
    return page.locator("#rag-chat [data-testid=bot]").last.inner_text()


def open_documents(page) -> None:
    page.locator("#rag-documents > button, #rag-documents .label-wrap").first.click()
    page.wait_for_selector("#rag-upload input[type=file]", state="attached")


SEARCH_OF = {"#rag-remove-pick": "#rag-doc-search", "#rag-restrict": "#rag-restrict-search"}


def pick(page, dropdown: str, text: str) -> None:
    """Choose the option holding ``text`` in a Gradio dropdown, with the keyboard, after searching for it
    in the picker's search box (a picker offers only some documents of a large index)."""
    page.locator(f"{SEARCH_OF[dropdown]} input").fill(text)
    field = page.locator(f"{dropdown} input")
    field.click()
    field.fill(text)
    page.get_by_role("option").filter(has_text=text).first.wait_for()
    field.press("ArrowDown")
    field.press("Enter")


def upload_quimper(page, folder: Path) -> None:
    """Upload the Quimper article through the Documents panel."""
    article = folder / "quimper.md"
    article.write_text(QUIMPER, encoding="utf-8")
    open_documents(page)
    upload(page, article, expect="quimper.md")


def upload(page, *paths: Path, expect: str = "Ajouté", timeout: float = 120_000) -> str:
    """Upload files through the Documents panel and wait for the outcome note."""
    page.locator("#rag-upload input[type=file]").set_input_files([str(p) for p in paths])
    return notes_when_done(page, expect, timeout)


def notes_when_done(page, expect: str, timeout: float = 120_000) -> str:
    """The upload notes, once no update runs and they hold ``expect``."""
    page.wait_for_function(
        "t => { const n = document.querySelector('#rag-upload-status .rag-notes');"
        " return n && !n.classList.contains('rag-busy') && n.innerText.includes(t); }", arg=expect, timeout=timeout)
    return page.locator("#rag-upload-status").inner_text()


@browser_test
def test_seed_question_gets_the_fact_and_its_marker_opens_the_excerpt(open_chat):
    page = open_chat("fr-FR")
    answer = ask(page, SEED_QUESTION)
    assert SEED_FACT in answer
    cards = page.locator("#rag-sources details.rag-src")
    assert cards.count() >= 1
    supporting = cards.filter(has_text=SEED_FACT).first
    card_id = supporting.get_attribute("id")
    assert supporting.get_attribute("open") is None and not supporting.locator(".rag-excerpt").is_visible()
    page.locator(f'#rag-chat [data-testid=bot] a[href="#{card_id}"]').last.click()
    page.wait_for_function("id => document.getElementById(id).open", arg=card_id)
    excerpt = supporting.locator(".rag-excerpt")
    assert excerpt.is_visible() and SEED_FACT in excerpt.inner_text()
    # the short answer first, in bold, and marked in its sentence and in the excerpt
    last = page.locator("#rag-chat [data-testid=bot]").last
    assert SEED_FACT in last.locator("strong.rag-answer").inner_text()
    assert SEED_FACT in last.locator("mark.rag-short").inner_text()
    assert SEED_FACT in excerpt.locator("mark.rag-support mark.rag-short").inner_text()
    head = supporting.locator("summary").inner_text()
    assert "seeds/000_7bf8fbc2ce84b06f.txt" in head and re.search(r"\b[01]\.\d\d\b", head), head  # source, score
    assert page.evaluate("location.hash") == ""  # the page did not navigate away


@browser_test
def test_french_browser_gets_the_french_interface_and_the_toggle_switches_it(open_chat):
    page = open_chat("fr-FR")
    assert page.locator("#rag-head h1").inner_text() == "Questions sur vos articles"
    assert page.locator("#rag-send").inner_text() == "Envoyer"
    assert page.locator("#rag-question textarea").get_attribute("placeholder").startswith("Votre question")
    assert "extraits" in page.locator(".rag-status").inner_text()
    page.locator("#rag-lang").get_by_text("English").click()
    page.wait_for_function("() => document.querySelector('#rag-send').innerText.trim() === 'Send'")
    assert page.locator("#rag-head h1").inner_text() == "Ask your articles"
    assert "passages" in page.locator(".rag-status").inner_text()


@browser_test
def test_english_browser_gets_the_english_interface(open_chat):
    page = open_chat("en-US")
    assert page.locator("#rag-head h1").inner_text() == "Ask your articles"
    assert page.locator("#rag-clear").inner_text() == "New conversation"
    assert page.locator("#rag-head").get_attribute("data-lang") == "en"


@browser_test
def test_an_uploaded_article_is_answered_from_once_indexed(open_chat, tmp_path):
    page = open_chat("fr-FR")
    article = tmp_path / "quimper.md"
    article.write_text(QUIMPER, encoding="utf-8")
    open_documents(page)
    note = upload(page, article)
    assert "quimper.md" in note
    assert "La médiathèque Les Ondines ouvre à Quimper" in page.locator("#rag-doc-list").inner_text()
    answer = ask(page, "Qui dirige la médiathèque de Quimper ?")
    assert "Tanguy" in answer
    assert page.locator("#rag-sources .rag-title").first.inner_text() == "La médiathèque Les Ondines ouvre à Quimper"


@browser_test
def test_the_chat_keeps_answering_while_an_upload_is_indexed(open_chat, tmp_path):
    page = open_chat("fr-FR")
    bulk = tmp_path / "bulk.jsonl"
    with bulk.open("w", encoding="utf-8") as fh:
        for i in range(30):
            text = " ".join(f"Dans la commune numéro {i}, le conseil municipal a voté le budget {j} du projet "
                            f"{i * 100 + j}, consacré aux écoles, aux routes et aux jardins partagés."
                            for j in range(24))
            fh.write(json.dumps({"title": f"Conseil municipal {i}", "text": text}, ensure_ascii=False) + "\n")
    open_documents(page)
    page.locator("#rag-upload input[type=file]").set_input_files(str(bulk))
    page.wait_for_selector("#rag-upload-status .rag-busy", timeout=30_000)
    answer = ask(page, SEED_QUESTION)
    still_indexing = page.locator("#rag-upload-status .rag-busy").count() == 1
    progress = page.locator("#rag-upload-status").inner_text()
    assert SEED_FACT in answer
    assert still_indexing, f"indexing ended before the answer came: {progress}"
    assert "Indexation de bulk.jsonl" in progress  # the progress shows while it runs
    page.wait_for_function("() => document.querySelector('#rag-upload-status').innerText.includes('Ajouté')",
                           timeout=180_000)
    assert "Ajouté : bulk.jsonl (" in page.locator("#rag-upload-status").inner_text()  # one name per file


@browser_test
def test_a_file_uploaded_while_another_is_indexed_is_indexed_too(open_chat, tmp_path):
    page = open_chat("fr-FR")
    council = tmp_path / "conseil.md"  # long enough to be still indexing when the second file comes
    council.write_text("# Le conseil municipal de Landerneau\n\n" + "\n\n".join(
        f"Le conseil municipal de Landerneau a voté la dépense {j} pour la piscine et la bibliothèque." * 8
        for j in range(300)), encoding="utf-8")
    article = tmp_path / "concarneau.md"
    article.write_text(CONCARNEAU, encoding="utf-8")
    open_documents(page)
    page.locator("#rag-upload input[type=file]").set_input_files(str(council))
    page.wait_for_selector("#rag-upload-status .rag-busy", timeout=30_000)
    page.locator("#rag-upload input[type=file]").set_input_files(str(article))
    page.wait_for_function("() => ['Landerneau', 'Concarneau'].every("
                           "t => document.querySelector('#rag-doc-list').innerText.includes(t))",
                           timeout=180_000)  # the second upload is indexed too, not dropped
    notes = notes_when_done(page, "Ajouté : concarneau.md")  # once both are over, both outcomes show
    assert "Ajouté : conseil.md (" in notes and notes.index("conseil.md") < notes.index("concarneau.md")
    assert "Refusé" not in notes  # the first file, still listed by the box, is not sent again as gone
    assert "Le Bihan" in ask(page, "Qui préside le festival des Filets bleus ?")


@browser_test
def test_a_hostile_article_shows_as_text_and_runs_nothing(open_chat, tmp_path):
    page = open_chat("fr-FR")
    (tmp_path / "phare.txt").write_text(HOSTILE_TXT, encoding="utf-8")
    (tmp_path / "festival.html").write_text(HOSTILE_HTML, encoding="utf-8")
    open_documents(page)
    upload(page, tmp_path / "phare.txt", tmp_path / "festival.html")
    answer = ask(page, "Combien mesure le phare de Kerzéon et qui est son gardien ?")
    ask(page, "Combien de visiteurs attend le directeur du festival des cerfs-volants de Dieppe ?")
    for card in page.locator("#rag-sources section:not([hidden]) details.rag-src").all():
        card.locator("summary").click()
    page.locator("#rag-remove-pick input").click()
    shown = page.locator("body").inner_text()
    assert "<script>window.__pwned=2</script>" in answer  # shown as text, in the answer
    assert 'onerror="window.__pwned=1"' in page.locator("#rag-doc-list").inner_text()  # and in the title
    assert "<script>window.__pwned=6</script>" in page.locator("#rag-sources").inner_text()  # and in excerpts
    assert "Kerzéon" in shown
    assert page.evaluate("window.__pwned") is None
    shown_text = "#rag-chat .message-content, #rag-sources, #rag-doc-list, #rag-upload-status, #rag-header"
    assert page.locator(f":is({shown_text}) :is(script, img, iframe, object)").count() == 0


@browser_test
def test_restricting_to_a_document_answers_from_it_only(open_chat, tmp_path):
    page = open_chat("fr-FR")
    upload_quimper(page, tmp_path)
    page.locator("#rag-settings > button, #rag-settings .label-wrap").first.click()
    pick(page, "#rag-restrict", "Ondines")
    page.keyboard.press("Escape")
    ask(page, SEED_QUESTION)  # answered elsewhere: restricted, it may only abstain or cite Quimper
    titles = page.locator("#rag-sources section:not([hidden]) .rag-title").all_inner_texts()
    assert set(titles) <= {"La médiathèque Les Ondines ouvre à Quimper"}
    ask(page, "Qui dirige la médiathèque de Quimper ?")
    titles = page.locator("#rag-sources section:not([hidden]) .rag-title").all_inner_texts()
    assert titles and set(titles) == {"La médiathèque Les Ondines ouvre à Quimper"}


@browser_test
def test_markers_of_an_earlier_answer_bring_up_that_answer_sources(open_chat):
    page = open_chat("en-US")
    ask(page, SEED_QUESTION)
    ask(page, "Où ont eu lieu les discussions ?")
    assert page.locator("#rag-sources section[data-turn='2']").is_visible()
    first = page.locator("#rag-chat [data-testid=bot]").first.locator("a.rag-cite").first
    target = first.get_attribute("href").lstrip("#")
    assert target.startswith("rag-src-1-")
    first.click()
    page.wait_for_function("id => document.getElementById(id).open", arg=target)
    assert page.locator("#rag-sources section[data-turn='1']").is_visible()
    assert not page.locator("#rag-sources section[data-turn='2']").is_visible()
    assert page.locator(f"#{target} .rag-excerpt").is_visible()


@browser_test
def test_a_question_asked_while_the_previous_answer_is_still_being_saved_is_answered(open_chat, server):
    """The answer shows before it is saved; a question asked in between waits for the saving, then is answered."""
    page = open_chat("fr-FR")
    box = page.locator("#rag-question textarea")
    chats = sqlite3.connect(server[1] / "chats" / "chats.sqlite", timeout=30, isolation_level=None)
    made = chats.execute("SELECT count(*) FROM sqlite_master WHERE name = 'turns'").fetchone()[0]
    last_id = chats.execute("SELECT coalesce(max(id), 0) FROM turns").fetchone()[0] if made else 0
    try:
        chats.execute("BEGIN EXCLUSIVE")  # another writer holds the file: the first answer's saving waits
        box.fill(SEED_QUESTION)
        box.press("Enter")
        page.wait_for_selector('#rag-sources-body[data-answers="1"][data-complete]', timeout=60_000)
        box.fill("Où ont eu lieu les discussions ?")
        box.press("Enter")
        page.wait_for_function("() => document.querySelectorAll('#rag-chat [data-testid=user]').length === 2")
        time.sleep(1)
    finally:
        chats.execute("ROLLBACK")
        chats.close()
    page.wait_for_selector('#rag-sources-body[data-answers="2"][data-complete]', timeout=60_000)
    assert page.locator("#rag-chat [data-testid=bot]").count() == 2
    assert page.locator("#rag-question textarea").input_value() == ""
    saved, deadline = [], time.monotonic() + 30  # both answers saved, in order, in one conversation
    while len(saved) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        with sqlite3.connect(server[1] / "chats" / "chats.sqlite") as db:
            saved = db.execute("SELECT question FROM turns WHERE id > ? AND conversation_id ="
                               " (SELECT conversation_id FROM turns WHERE id > ?) ORDER BY number",
                               (last_id, last_id)).fetchall()
    assert [q for q, in saved] == [SEED_QUESTION, "Où ont eu lieu les discussions ?"]


@browser_test
def test_an_example_question_asks_itself_and_clear_starts_over(open_chat):
    page = open_chat("fr-FR")
    page.locator("#rag-chat button").filter(has_text=SEED_QUESTION).first.click()
    page.wait_for_selector('#rag-sources-body[data-answers="1"][data-complete]', timeout=60_000)
    assert SEED_FACT in page.locator("#rag-chat [data-testid=bot]").last.inner_text()
    page.locator("#rag-clear").click()
    page.wait_for_function("() => !document.querySelector('#rag-chat [data-testid=bot]')")
    assert "s’afficheront ici" in page.locator("#rag-sources").inner_text()
    assert page.locator("#rag-chat button").filter(has_text=SEED_QUESTION).count() == 1
    answer = ask(page, "Où ont eu lieu les discussions ?")  # a fresh conversation numbers from 1 again
    assert page.locator("#rag-chat [data-testid=user]").count() == 1 and answer


@browser_test
def test_refused_uploads_say_why(open_chat, tmp_path):
    page = open_chat("fr-FR")
    open_documents(page)
    (tmp_path / "tool.exe").write_bytes(b"MZ\x90\x00")
    page.locator("#rag-upload input[type=file]").set_input_files(str(tmp_path / "tool.exe"))
    page.get_by_text("Invalid file type: tool.exe").first.wait_for(timeout=15_000)
    (tmp_path / "huge.txt").write_text("mot " * 300_000, encoding="utf-8")  # 1.2 MB > 1 MB
    page.locator("#rag-upload input[type=file]").set_input_files(str(tmp_path / "huge.txt"))
    page.get_by_text("huge.txt").first.wait_for(timeout=15_000)
    assert "maximum allowed size" in page.locator("body").inner_text()


@browser_test
def test_removing_a_document_takes_it_out_of_the_list_and_the_answers(open_chat, tmp_path):
    page = open_chat("fr-FR")
    upload_quimper(page, tmp_path)
    pick(page, "#rag-remove-pick", "Ondines")
    page.locator("#rag-remove").click()
    page.wait_for_function("() => document.querySelector('#rag-upload-status').innerText.includes('Retiré')")
    assert "Ondines" not in page.locator("#rag-doc-list").inner_text()
    ask(page, "Qui dirige la médiathèque de Quimper ?")
    assert "Ondines" not in page.locator("#rag-sources section:not([hidden])").inner_text()


@browser_test
def test_five_users_at_once_all_get_answers(open_chat):
    pages = [open_chat("fr-FR") for _ in range(5)]
    for page in pages:
        box = page.locator("#rag-question textarea")
        box.fill(SEED_QUESTION)
    for page in pages:
        page.locator("#rag-question textarea").press("Enter")
    for page in pages:
        page.wait_for_selector('#rag-sources-body[data-answers="1"][data-complete]', timeout=120_000)
        assert SEED_FACT in page.locator("#rag-chat [data-testid=bot]").last.inner_text()


@browser_test
def test_the_page_needs_a_login(open_chat):
    page = open_chat("fr-FR", login=False)
    page.locator("input[type=password]").wait_for()
    assert page.locator("#rag-question").count() == 0
    page.locator("input[type=text]").first.fill(USER)
    page.locator("input[type=password]").fill("wrong")
    page.locator("input[type=password]").press("Enter")
    page.wait_for_timeout(1500)
    assert page.locator("#rag-question").count() == 0


def test_the_server_listens_on_loopback_only(server):
    port = server[2]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            own = s.getsockname()[0]
        except OSError:
            own = "127.0.0.1"
    if own.startswith("127."):
        pytest.skip("this machine has no address besides loopback")
    with pytest.raises(OSError):
        socket.create_connection((own, port), timeout=2).close()


def test_a_bad_login_value_is_refused_before_serving():
    from ui.auth import parse_logins as parse_auth

    assert parse_auth("alice:s3:cret") == {"alice": "s3:cret"} and parse_auth(None) == {}
    assert parse_auth("alice:pw1,bob:pw2") == {"alice": "pw1", "bob": "pw2"}
    for value in ("alice:", ":secret", "alice:pw,"):
        with pytest.raises(ValueError, match="USER:PASSWORD"):
            parse_auth(value)
    with pytest.raises(ValueError, match="'alice' is given twice"):
        parse_auth("alice:pw1,alice:pw2")
    proc = subprocess.run([sys.executable, "-m", "rag", "serve", "--auth", "alice", "--port", str(free_port())],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2 and "USER:PASSWORD" in proc.stderr


def test_the_ask_api_answers_with_the_answer_json_and_needs_the_login(server):
    from gradio_client import Client

    url = server[0]
    ans = Client(url, auth=(USER, PASSWORD), verbose=False).predict(SEED_QUESTION, 3, api_name="/ask")
    assert SEED_FACT in ans["answer"] and not ans["abstained"]
    assert 1 <= len(ans["citations"]) <= 3 and {"excerpt", "start", "end", "source"} <= ans["citations"][0].keys()
    with pytest.raises(Exception):
        Client(url, auth=(USER, "wrong"), verbose=False)
