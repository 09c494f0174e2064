"""Saved conversations in the web chat, in a real browser (Debian's chromium through Playwright).

One server for the module (`rag serve` over a seeds index, two logins); what the page shows is
checked against what the HTTP API says is saved.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from rag.chats import ChatStore
from rag.config import Config
from rag.indexing import Indexer
from tests.conftest import SEEDS
from tests.servers.rag_serve import basic, call, start_serve
from tests.system.test_web_chat import SEED_FACT, SEED_QUESTION, ask

browser_test = pytest.mark.browser
ALICE, BOB = ("alice", "pw-alice-1"), ("bob", "pw-bob-2")
OMAN_QUESTION = "Qui est le ministre des Affaires étrangères d'Oman ?"


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder):
    """`rag serve` on a seeds index with two logins; yields (url, work folder)."""
    root = tmp_path_factory.mktemp("ui-chats")
    index = root / "index"
    Indexer(Config(index_dir=str(index)), embedder=embedder).build([SEEDS], progress=False)
    served = start_serve(index, root, {"RAG_AUTH": f"{ALICE[0]}:{ALICE[1]},{BOB[0]}:{BOB[1]}"})
    yield served.url, root
    served.stop()


@pytest.fixture
def login(server, browser):
    """Open the chat logged in as a user, in a fresh browser context; returns the page."""
    contexts = []

    def _open(user: tuple[str, str] = ALICE, locale: str = "fr-FR", storage: dict | None = None):
        ctx = browser.new_context(locale=locale, viewport={"width": 1400, "height": 1000}, accept_downloads=True,
                                  storage_state=storage)
        contexts.append(ctx)
        page = ctx.new_page()
        page.goto(server[0])
        if page.locator("#rag-head[data-lang]").count() == 0:
            page.locator("input[type=text]").first.fill(user[0])
            page.locator("input[type=password]").fill(user[1])
            page.locator("input[type=password]").press("Enter")
        page.wait_for_selector("#rag-head[data-lang]", timeout=60_000)
        return page

    yield _open
    for ctx in contexts:
        ctx.close()


def api(server, path: str, user: tuple[str, str] = ALICE, method: str = "GET", body: object = None):
    status, _, data = call(server[0] + path, method, body, basic(*user))
    return status, (json.loads(data) if data and data[:1] in b"{[" else data)


def listed(page) -> list[str]:
    """The conversation list's labels, as shown."""
    return page.locator("#rag-convs label").all_inner_texts()


def wait_listed(page, text: str, present: bool = True, timeout: float = 20_000) -> None:
    page.wait_for_function(
        "([t, p]) => [...document.querySelectorAll('#rag-convs label')].some(l => l.innerText.includes(t)) === p",
        arg=[text, present], timeout=timeout)


def open_listed(page, text: str, answers: int) -> None:
    """Click the conversation whose label holds ``text``; wait until its ``answers`` answers are shown."""
    page.locator("#rag-convs label").filter(has_text=text).first.click()
    page.wait_for_selector(f'#rag-sources-body[data-answers="{answers}"][data-complete]', timeout=20_000)


def newest(server, user=ALICE) -> dict:
    return api(server, "api/chats", user)[1]["conversations"][0]


@browser_test
def test_an_answer_is_saved_and_a_reload_reopens_it_with_working_markers(server, login):
    page = login()
    answer = ask(page, SEED_QUESTION)
    wait_listed(page, SEED_QUESTION)
    conv = newest(server)
    saved = api(server, f"api/chats/{conv['id']}")[1]["turns"]
    assert len(saved) == 1 and saved[0]["answer"]["question"] == SEED_QUESTION and SEED_FACT in answer
    page.reload()
    page.wait_for_selector('#rag-sources-body[data-answers="1"][data-complete]', timeout=30_000)
    assert SEED_FACT in page.locator("#rag-chat [data-testid=bot]").last.inner_text()
    assert page.locator("#rag-convs input:checked").count() == 1
    link = page.locator("#rag-chat [data-testid=bot] a.rag-cite").first
    target = link.get_attribute("href").lstrip("#")
    link.click()
    page.wait_for_function("id => document.getElementById(id).open", arg=target)
    assert page.locator(f"#{target} .rag-excerpt").inner_text().strip() == \
        saved[0]["answer"]["citations"][0]["excerpt"].strip()


@browser_test
def test_a_conversation_reopened_from_the_list_shows_its_answers_and_sources_as_saved(server, login):
    page = login()
    ask(page, SEED_QUESTION)
    ask(page, OMAN_QUESTION)
    wait_listed(page, SEED_QUESTION)
    first = newest(server)
    page.locator("#rag-clear").click()
    page.wait_for_function("() => !document.querySelector('#rag-chat [data-testid=bot]')")
    ask(page, "Qui est la secrétaire de presse de la Maison Blanche ?")
    wait_listed(page, "secrétaire de presse")
    assert listed(page)[0].startswith("Qui est la secrétaire de presse")  # newest first
    open_listed(page, SEED_QUESTION, answers=2)
    bots = page.locator("#rag-chat [data-testid=bot]")
    saved = api(server, f"api/chats/{first['id']}")[1]["turns"]
    assert bots.count() == 2 and "Busaidi" in bots.nth(1).inner_text()
    assert page.locator("#rag-sources section[data-turn='2']").is_visible()
    shown = page.locator("#rag-sources section[data-turn='2'] .rag-excerpt").all_text_contents()
    assert [s.strip() for s in shown] == [c["excerpt"].strip() for c in saved[1]["answer"]["citations"]]
    bots.first.locator("a.rag-cite").first.click()  # an earlier answer's marker brings up its own sources
    page.wait_for_function("() => !document.querySelector(\"#rag-sources section[data-turn='1']\").hidden")
    assert not page.locator("#rag-sources section[data-turn='2']").is_visible()
    follow = ask(page, "Et celui d'Iran ?")  # the reopened conversation goes on, its history known
    assert "Araghchi" in follow
    assert api(server, f"api/chats/{first['id']}")[1]["turns"][2]["number"] == 3


@browser_test
def test_rename_and_delete_from_the_sidebar(server, login):
    page = login()
    ask(page, "Quel porte-avions les États-Unis ont-ils envoyé dans la région ?")
    wait_listed(page, "porte-avions")
    conv = newest(server)
    title = page.locator("#rag-conv-title input, #rag-conv-title textarea").first
    title.fill("Armada <b>américaine</b>")
    page.locator("#rag-rename").click()
    wait_listed(page, "Armada <b>américaine</b>")  # shown as text
    assert api(server, f"api/chats/{conv['id']}")[1]["title"] == "Armada <b>américaine</b>"
    assert page.locator("#rag-convs b").count() == 0
    page.locator("#rag-delete").click()
    wait_listed(page, "Armada", present=False)
    assert page.locator("#rag-chat [data-testid=bot]").count() == 0
    assert api(server, f"api/chats/{conv['id']}")[0] == 404
    page.reload()
    page.wait_for_selector("#rag-head[data-lang]")
    page.wait_for_timeout(1500)
    assert page.locator("#rag-chat [data-testid=bot]").count() == 0  # the browser forgot the deleted one


@browser_test
def test_the_exports_hold_every_source_of_the_conversation(server, login):
    page = login()
    ask(page, SEED_QUESTION)
    ask(page, "Quelle organisation a compté les décès de manifestants ?")
    wait_listed(page, SEED_QUESTION)
    conv = newest(server)
    saved = api(server, f"api/chats/{conv['id']}")[1]
    page.wait_for_function("() => !document.querySelector('#rag-export-md').disabled")
    with page.expect_download() as dl:
        page.locator("#rag-export-md").click()
    md = open(dl.value.path(), encoding="utf-8").read()
    assert dl.value.suggested_filename.endswith(f"{conv['id']}.md")
    for turn in saved["turns"]:
        assert f". {turn['answer']['question']}" in md and turn["answer"]["answer"] in md
        for c in turn["answer"]["citations"]:
            lines = [ln for ln in md.splitlines() if ln.startswith(f"[{c['n']}] **{c['title']}** — ")]
            assert any(c["source"] in ln and (c.get("date") or "") in ln for ln in lines), c
            assert all(f"> {line}" in md for line in c["excerpt"].splitlines() if line.strip())
    with page.expect_download() as dl:
        page.locator("#rag-export-json").click()
    data = json.loads(open(dl.value.path(), encoding="utf-8").read())
    assert data["turns"] == saved["turns"] and data["id"] == conv["id"]


@browser_test
def test_thumbs_flag_and_comment_are_saved_with_the_answer(server, login):
    page = login(locale="en-US")
    ask(page, SEED_QUESTION)
    ask(page, "Quelle est la couleur du ciel sur Mars ?")
    wait_listed(page, SEED_QUESTION)
    conv = newest(server)
    page.get_by_role("button", name="Like", exact=True).first.click()
    page.locator("#rag-comment textarea").wait_for(state="visible")
    assert "answer 1" in page.locator("#rag-comment").inner_text()
    page.locator("#rag-comment textarea").fill("Vérifié dans l'article <i>original</i>")
    page.locator("#rag-comment-save").click()
    deadline = time.monotonic() + 15
    while (fb := api(server, f"api/chats/{conv['id']}")[1]["turns"][0]["feedback"]) is None or not fb["comment"]:
        assert time.monotonic() < deadline, fb
        time.sleep(0.3)
    assert fb == {**fb, "rating": "up", "comment": "Vérifié dans l'article <i>original</i>", "not_in_articles": False}
    page.get_by_role("button", name="Feedback", exact=True).last.click()
    page.get_by_text("Not in the articles").last.click()
    deadline = time.monotonic() + 15
    while (fb2 := api(server, f"api/chats/{conv['id']}")[1]["turns"][1]["feedback"]) is None:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert fb2["rating"] == "down" and fb2["not_in_articles"]
    page.reload()  # reopened: the marks are shown as saved
    page.wait_for_selector('#rag-sources-body[data-answers="2"][data-complete]', timeout=30_000)
    assert page.get_by_role("button", name="Liked", exact=True).count() == 1


@browser_test
def test_two_logins_do_not_see_each_others_conversations_in_the_page(server, login):
    alice = login(ALICE)
    ask(alice, "Qui est l'envoyé spécial des États-Unis ?")
    wait_listed(alice, "envoyé spécial")
    mine = newest(server)
    bob = login(BOB)
    bob.wait_for_timeout(1000)
    assert not any("envoyé spécial" in label for label in listed(bob))
    assert mine["id"] not in {c["id"] for c in api(server, "api/chats", BOB)[1]["conversations"]}
    stolen = alice.context.storage_state()  # alice's browser storage (which conversation is open) given to bob
    origin = next(o for o in stolen["origins"] if o["localStorage"])
    bob.evaluate("items => items.forEach(i => localStorage.setItem(i.name, i.value))", origin["localStorage"])
    bob.reload()
    bob.wait_for_selector("#rag-head[data-lang]")
    bob.wait_for_timeout(2000)
    assert bob.locator("#rag-chat [data-testid=bot]").count() == 0  # the server checked the owner
    assert not any("envoyé spécial" in label for label in listed(bob))


@browser_test
@pytest.mark.slow
def test_a_conversation_of_100_turns_opens_within_a_second_showing_its_last_30(server, login):
    url, root = server
    answers = [api(server, "api/ask", method="POST", body={"question": q})[1] for q in
               (SEED_QUESTION, OMAN_QUESTION, "Quel porte-avions les États-Unis ont-ils envoyé dans la région ?")]
    store = ChatStore(root / "chats")  # the server's own conversations folder (beside its index)
    conv = None
    for i in range(100):
        answer = {**answers[i % 3], "question": f"Question {i + 1} : {answers[i % 3]['question']}"}
        conv, _ = store.add_turn("alice", answer, conv.id if conv else None)
    store.rename(conv.id, "alice", "Cent questions")
    page = login()
    page.locator("#rag-clear").click()
    wait_listed(page, "Cent questions", timeout=30_000)
    timings = []
    for _ in range(3):
        page.evaluate("""() => { window.__open = {t0: 0, t1: 0};
          new MutationObserver((_, obs) => {
            const n = document.querySelectorAll('#rag-chat [data-testid=bot]').length;
            const body = document.querySelector('#rag-sources-body[data-answers="100"]');
            if (window.__open.t0 && n === 30 && body && !window.__open.t1) { window.__open.t1 = performance.now();
              obs.disconnect(); }
          }).observe(document.body, {subtree: true, childList: true, characterData: true});
          document.querySelector('#rag-convs').addEventListener('click', () => {
            if (!window.__open.t0) window.__open.t0 = performance.now(); }, {capture: true, once: true}); }""")
        page.locator("#rag-convs label").filter(has_text="Cent questions").click()
        page.wait_for_function("() => window.__open.t1 > 0", timeout=30_000)
        timings.append(page.evaluate("() => window.__open.t1 - window.__open.t0"))
        assert page.locator("#rag-chat [data-testid=bot]").count() == 30  # the answers whose sources are on the page
        page.locator("#rag-clear").click()
        page.wait_for_function("() => !document.querySelector('#rag-chat [data-testid=bot]')")
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    budget = 1000 if load <= 1 else 3000  # the goal on a machine of its own; others' jobs share these cores
    print(f"opening 100 turns, click to the last 30 answers and their sources painted: {sorted(timings)} ms "
          f"(load {load:.1f} per core)")
    assert sorted(timings)[1] <= budget, timings
    page.locator("#rag-convs label").filter(has_text="Cent questions").click()
    page.wait_for_selector('#rag-sources-body[data-answers="100"][data-complete]')
    assert "100 questions" in page.locator("#rag-conv-title").inner_text()  # the page says it shows the end
    bots = page.locator("#rag-chat [data-testid=bot]")
    assert bots.first.inner_text().strip() == answers[70 % 3]["answer"].strip() or "[1]" in bots.first.inner_text()
    page.get_by_role("button", name="J'aime", exact=True).last.click()
    deadline = time.monotonic() + 15
    while api(server, f"api/chats/{conv.id}")[1]["turns"][99]["feedback"] is None:  # the last answer is turn 100
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert all(t["feedback"] is None for t in api(server, f"api/chats/{conv.id}")[1]["turns"][:99])
