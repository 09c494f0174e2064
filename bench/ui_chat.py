"""Measure the web chat in a real browser: Enter-to-first-answer-text, and several users at once.

Starts ``rag serve`` on a free port of 127.0.0.1 over an index of ``seeds/`` built in a
temporary folder (or ``--index DIR``), drives Debian's chromium through Playwright, prints
the figures, and with ``--screenshot FILE`` saves the page showing an answer and its sources.

    python bench/ui_chat.py                       # median of 7 questions, then 5 users at once
    python bench/ui_chat.py --repeat 9 --users 5 --screenshot docs/chat.png
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
QUESTIONS = [
    "Qui est le ministre iranien des Affaires étrangères ?",
    "Dans quelle ville se sont déroulées les discussions entre Iraniens et Américains ?",
    "Qui est l'envoyé spécial des États-Unis ?",
    "Quel porte-avions les États-Unis ont-ils envoyé dans la région ?",
    "Qui est la secrétaire de presse de la Maison Blanche ?",
    "Combien de manifestants sont morts selon Iran Human Rights ?",
    "Quel pays a accueilli la rencontre diplomatique ?",
    "Qui est chercheuse à l'Atlantic Council ?",
    "Que craignent les États du Golfe ?",
]
# Timestamps taken inside the page: the Enter keydown, then the first text of the new answer.
PROBE = """() => {
  window.__rag = {enter: 0, first: 0, bots: 0};
  const chat = document.querySelector('#rag-chat');
  new MutationObserver(() => {
    const r = window.__rag;
    if (!r.enter || r.first) return;
    const bots = chat.querySelectorAll('[data-testid=bot]');
    if (bots.length > r.bots && bots[bots.length - 1].innerText.trim()) r.first = performance.now();
  }).observe(chat, {subtree: true, childList: true, characterData: true});
  document.querySelector('#rag-question textarea').addEventListener('keydown', e => {
    if (e.key === 'Enter') {
      const r = window.__rag;
      r.bots = chat.querySelectorAll('[data-testid=bot]').length; r.first = 0; r.enter = performance.now();
    }
  }, true);
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index: Path, port: int, log: Path, args: list[str] | None = None) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("RAG_AUTH", None)
    env.pop("RAG_API_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--index", str(index), "--port", str(port),
                             *(args or [])], cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"rag serve exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return proc
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("rag serve did not start within 240 s")
            time.sleep(0.5)


def open_page(browser, url: str, locale: str = "fr-FR"):
    page = browser.new_context(locale=locale, viewport={"width": 1400, "height": 900}).new_page()
    page.goto(url)
    page.wait_for_selector("#rag-head[data-lang]", timeout=60_000)
    page.evaluate(PROBE)
    return page


def press_enter(page, question: str) -> int:
    answers = int(page.locator("#rag-sources-body").get_attribute("data-answers") or 0)
    box = page.locator("#rag-question textarea")
    box.fill(question)
    box.press("Enter")
    return answers + 1


def wait_answer(page, number: int, timeout: float = 180_000) -> tuple[float, float]:
    """(ms from Enter to the first answer text, ms from Enter to the complete answer)."""
    page.wait_for_function("() => window.__rag.first > 0", timeout=timeout)
    page.wait_for_selector(f'#rag-sources-body[data-answers="{number}"][data-complete]', timeout=timeout)
    done = page.evaluate("performance.now()")
    enter, first = page.evaluate("[window.__rag.enter, window.__rag.first]")
    return first - enter, done - enter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path,
                        help="an index folder to serve (default: seeds/ indexed in a temp folder)")
    parser.add_argument("--repeat", type=int, default=7, help="questions for the single-user median (default 7)")
    parser.add_argument("--users", type=int, default=5, help="simultaneous users (default 5)")
    parser.add_argument("--screenshot", type=Path, help="save the page with an answer and its sources here")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        index = args.index
        if index is None:
            from rag.config import Config
            from rag.indexing import Indexer

            index = Path(tmp) / "index"
            Indexer(Config(index_dir=str(index))).build([ROOT / "seeds"], progress=False)
        t0 = time.perf_counter()
        port = free_port()
        proc = start_server(index, port, Path(tmp) / "serve.log")
        url = f"http://127.0.0.1:{port}/"
        print(f"server up in {time.perf_counter() - t0:.1f} s at {url}")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = open_page(browser, url)
                wait_answer(page, press_enter(page, "Où ont eu lieu les discussions ?"))  # warm the page
                firsts, totals = [], []
                for q in (QUESTIONS * 3)[: args.repeat]:
                    first, total = wait_answer(page, press_enter(page, q))
                    firsts.append(first)
                    totals.append(total)
                print(f"one user, {len(firsts)} questions: Enter -> first answer text: median "
                      f"{statistics.median(firsts):.0f} ms (min {min(firsts):.0f}, max {max(firsts):.0f}); "
                      f"Enter -> complete answer and sources: median {statistics.median(totals):.0f} ms")
                if args.screenshot:
                    shoot(open_page(browser, url), args.screenshot)
                pages = [open_page(browser, url) for _ in range(args.users)]
                numbers = [press_enter(pg, QUESTIONS[i % len(QUESTIONS)]) for i, pg in enumerate(pages)]
                results = []
                for pg, n in zip(pages, numbers):
                    try:
                        results.append(wait_answer(pg, n))
                    except Exception as exc:  # report, do not hide
                        results.append(None)
                        print(f"  a user got no answer: {exc}")
                errors = sum("Error" in pg.locator("body").inner_text() for pg in pages)
                ok = [r for r in results if r]
                print(f"{args.users} users pressing Enter together: {len(ok)}/{args.users} answered, "
                      f"{errors} pages showing an error; first text after "
                      + ", ".join(f"{r[0]:.0f}" for r in ok) + " ms; complete after "
                      + ", ".join(f"{r[1]:.0f}" for r in ok) + " ms")
                browser.close()
        finally:
            proc.terminate()
            proc.wait(15)


def shoot(page, path: Path) -> None:
    """The page after a seed question, the supporting source opened."""
    number = press_enter(page, "Qui est le ministre iranien des Affaires étrangères ?")
    wait_answer(page, number)
    card = page.locator("#rag-sources section:not([hidden]) details.rag-src").filter(has_text="Araghchi").first
    link = page.locator(f'#rag-chat [data-testid=bot] a[href="#{card.get_attribute("id")}"]').last
    (link if link.count() else card.locator("summary")).click()
    page.wait_for_timeout(800)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")


if __name__ == "__main__":
    main()
