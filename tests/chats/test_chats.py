"""Saved conversations (rag/chats.py, rag chats ...): real SQLite, real answers of a real index."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from rag.chats import (
    LOCAL_USER,
    ChatError,
    ChatNotFound,
    ChatStore,
    Rating,
    chats_dir,
    export,
    feedback_sets,
    gold_answers,
    to_markdown,
)
from rag.cli import main
from rag.config import Config
from rag.indexing import Indexer
from rag.pipeline import RAG
from tests.conftest import ARTICLE_FR, ROOT

SEED_QUESTION = "Qui est le ministre iranien des Affaires étrangères ?"
PONT_QUESTION = "Combien mesure le nouveau pont piéton de Lyon ?"
MARS_QUESTION = "Quelle est la couleur du ciel sur Mars ?"


@pytest.fixture(scope="module")
def rag(answer_index) -> RAG:
    return RAG(Config(index_dir=str(answer_index)))


@pytest.fixture
def store(tmp_path) -> ChatStore:
    return ChatStore(tmp_path / "chats")


def test_a_saved_turn_reads_back_as_it_was_answered(store, rag):
    answer = rag.ask(SEED_QUESTION).to_json()
    conv, turn = store.add_turn("alice", answer)
    assert turn.number == 1 and conv.title == SEED_QUESTION and conv.n_turns == 1
    again = store.get(conv.id, "alice")
    saved = again.turns[0]
    assert saved.answer_json() == {**answer, "short": answer.get("short")}
    assert saved.citations[0]["excerpt"] == answer["citations"][0]["excerpt"] and "Araghchi" in saved.answer
    assert saved.mode == "extractive" and saved.created and saved.feedback is None
    assert saved.to_answer().citations[0].excerpt == answer["citations"][0]["excerpt"]
    follow = rag.ask("Et celui d'Oman ?", history=[(saved.question, saved.answer)]).to_json()
    _, second = store.add_turn("alice", follow, conv.id)
    assert second.number == 2 and [t.number for t in store.get(conv.id, "alice").turns] == [1, 2]


def test_a_short_answer_and_unknown_keys_are_kept(store):
    answer = {"question": "Où ?", "answer": "À Mascate [1].", "abstained": False, "mode": "extractive", "lang": "fr",
              "short": {"text": "Mascate", "n": 1, "start": 151, "end": 158}, "latency_ms": 4.2, "notice": "",
              "citations": [{"n": 1, "doc_id": "d1", "source": "seeds/a.txt", "title": "T", "chunk_id": "c1",
                             "excerpt": "Ils sont arrivés à Mascate.", "start": 130, "end": 160, "score": 0.9,
                             "date": "2026-02-06", "url": "https://example.org/a"}]}
    conv, _ = store.add_turn(LOCAL_USER, answer)
    turn = store.get(conv.id, LOCAL_USER).turns[0]
    assert turn.short == {"text": "Mascate", "n": 1, "start": 151, "end": 158}
    assert turn.citations[0]["url"] == "https://example.org/a" and turn.extra == {"latency_ms": 4.2, "notice": ""}
    assert turn.to_answer().citations[0].source == "seeds/a.txt"  # keys the dataclasses lack are left out


def test_conversations_list_newest_first_rename_and_delete(store):
    first, _ = store.add_turn("alice", _answer("Première question ?"))
    time.sleep(0.01)
    second, _ = store.add_turn("alice", _answer("Deuxième question ?"))
    assert [c.id for c in store.conversations("alice")] == [second.id, first.id]
    time.sleep(0.01)
    store.add_turn("alice", _answer("Suite de la première ?"), first.id)  # activity brings it up
    assert [c.id for c in store.conversations("alice")] == [first.id, second.id]
    renamed = store.rename(first.id, "alice", "  Enquête\nsur   Oman  ")
    assert renamed.title == "Enquête sur Oman" and store.get(first.id, "alice").title == "Enquête sur Oman"
    with pytest.raises(ChatError, match="empty"):
        store.rename(first.id, "alice", " \t ")
    with pytest.raises(ChatError, match="at most 200"):
        store.rename(first.id, "alice", "x" * 201)
    store.rate(first.id, 1, "alice", "up")
    store.delete(first.id, "alice")
    assert [c.id for c in store.conversations("alice")] == [second.id]
    with pytest.raises(ChatNotFound):
        store.get(first.id, "alice")
    assert store.db.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 1  # its turns went with it
    assert store.db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 0


def test_a_user_never_reaches_another_users_conversation(store):
    conv, _ = store.add_turn("alice", _answer("Question d'Alice ?"))
    assert store.conversations("bob") == []
    for attempt in (lambda: store.get(conv.id, "bob"), lambda: store.rename(conv.id, "bob", "volé"),
                    lambda: store.delete(conv.id, "bob"), lambda: store.rate(conv.id, 1, "bob", "down"),
                    lambda: store.add_turn("bob", _answer("Ajout ?"), conv.id)):
        with pytest.raises(ChatNotFound, match="for user 'bob'"):
            attempt()
    assert store.get(conv.id, "alice").n_turns == 1 and store.get(conv.id, "alice").title == "Question d'Alice ?"
    assert [c.user for c in store.conversations(None)] == ["alice"]  # the command line sees every user's


def test_feedback_is_stored_with_the_turn_and_checked(store):
    conv, _ = store.add_turn("alice", _answer("Q ?"))
    fb = store.rate(conv.id, 1, "alice", Rating.DOWN, "  la source ne dit pas ça  ", not_in_articles=True)
    assert fb.comment == "la source ne dit pas ça" and fb.not_in_articles
    assert store.get(conv.id, "alice").turns[0].feedback.rating is Rating.DOWN
    store.rate(conv.id, 1, "alice", "up", "finalement oui")
    assert store.get(conv.id, "alice").turns[0].feedback.to_json()["rating"] == "up"
    with pytest.raises(ChatError, match="thumbs-down"):
        store.rate(conv.id, 1, "alice", "up", not_in_articles=True)
    with pytest.raises(ChatError, match="expected 'up' or 'down'"):
        store.rate(conv.id, 1, "alice", "meh")
    with pytest.raises(ChatNotFound, match="no turn 7"):
        store.rate(conv.id, 7, "alice", "up")
    assert store.rate(conv.id, 1, "alice", None) is None and store.get(conv.id, "alice").turns[0].feedback is None


def test_chats_live_beside_the_index_never_inside_it(tmp_path):
    assert chats_dir(Config(index_dir=str(tmp_path / "idx"))) == tmp_path / "chats"
    assert chats_dir(Config(index_dir=str(tmp_path / "idx"), chats_dir=str(tmp_path / "elsewhere"))) == \
        tmp_path / "elsewhere"
    for inside in (tmp_path / "idx", tmp_path / "idx" / "chats"):
        with pytest.raises(ChatError, match="inside the index folder"):
            chats_dir(Config(index_dir=str(tmp_path / "idx"), chats_dir=str(inside)))


def test_a_file_that_is_not_a_conversations_database_is_named(tmp_path):
    folder = tmp_path / "chats"
    folder.mkdir()
    (folder / "chats.sqlite").write_bytes(b"this is not SQLite at all" * 100)
    with pytest.raises(ChatError, match="chats.sqlite: not a readable conversations database"):
        ChatStore(folder)


def test_the_markdown_export_holds_every_question_answer_and_source(store, rag):
    conv, _ = store.add_turn("alice", rag.ask(SEED_QUESTION, k=3).to_json())
    hostile = _answer("Et <script>alert(1)</script> ?", excerpt="Un [lien](javascript:alert(1)) <img src=x onerror=y>",
                      date="2026-02-06", url="https://example.org/article")
    store.add_turn("alice", hostile, conv.id)
    store.rate(conv.id, 1, "alice", "up", "parfait")
    full = store.get(conv.id, "alice")
    md = to_markdown(full)
    assert md.startswith(f"# {SEED_QUESTION}\n") and "## 1. " + SEED_QUESTION in md
    for turn in full.turns:
        assert inert(turn.answer) in md
        for c in turn.citations:
            assert f"[{c['n']}] **{inert(c['title'])}** — " in md and inert(c.get("url") or c["source"]) in md
            for line in c["excerpt"].splitlines():
                if line.strip():
                    assert "> " + inert(line) in md
    assert "— 2026-02-06 — https://example.org/article" in md  # the date and URL, when the citation has them
    assert "Feedback: 👍 — parfait" in md
    assert "<script>" not in md and "<img" not in md and "](javascript" not in md


def test_the_json_export_round_trips_the_answers(store, rag):
    answer = rag.ask(SEED_QUESTION).to_json()
    conv, _ = store.add_turn("alice", answer)
    data = json.loads(export(store.get(conv.id, "alice"), "json"))
    assert data["format"] == "rag-conversation" and data["id"] == conv.id and data["user"] == "alice"
    assert data["turns"][0]["answer"] == {**answer, "short": answer.get("short")}
    with pytest.raises(ChatError, match="md or json"):
        export(store.get(conv.id, "alice"), "pdf")


def test_feedback_becomes_a_qa_set_and_a_review_list(store):
    conv, _ = store.add_turn("alice", _answer("Qui dirige ?", answer="Maëlle Tanguy dirige la médiathèque [1]. "
                                              "Elle est là depuis 2021 [2]."))
    store.add_turn("alice", _answer("Et la couleur du ciel ?"), conv.id)
    store.add_turn("alice", _answer("Et le budget ?"), conv.id)
    abst = {**_answer("Et la météo ?"), "abstained": True, "answer": "Les articles ne le disent pas.", "citations": []}
    store.add_turn("alice", abst, conv.id)
    store.add_turn("alice", {**_answer("Où ?"), "short": {"text": "Quimper", "n": 1, "start": 0, "end": 7}}, conv.id)
    store.rate(conv.id, 1, "alice", "up")
    store.rate(conv.id, 2, "alice", "down", not_in_articles=True)
    store.rate(conv.id, 3, "alice", "down", "le chiffre est faux")
    store.rate(conv.id, 4, "alice", "up")
    store.rate(conv.id, 5, "alice", "up")
    qa, review = feedback_sets(store.rated())
    by_q = {line["question"]: line for line in qa}
    assert by_q["Qui dirige ?"]["answers"] == ["Maëlle Tanguy dirige la médiathèque", "Elle est là depuis 2021"]
    assert by_q["Qui dirige ?"]["doc"] == "articles/quimper.md"
    assert by_q["Et la couleur du ciel ?"]["answers"] == [] and "doc" not in by_q["Et la couleur du ciel ?"]
    assert by_q["Et la météo ?"]["answers"] == []  # an approved abstention: the articles cannot answer
    assert by_q["Où ?"]["answers"] == ["Quimper"]  # the short answer when there is one
    assert [r["question"] for r in review] == ["Et le budget ?"] and review[0]["comment"] == "le chiffre est faux"
    assert review[0]["sources"][0]["excerpt"]
    assert gold_answers(store.get(conv.id, "alice").turns[0]) == by_q["Qui dirige ?"]["answers"]


def test_feedback_exported_by_rag_chats_is_read_back_by_rag_eval(tmp_path, rag, answer_index, capsys):
    chats = tmp_path / "chats"
    store = ChatStore(chats)
    conv, _ = store.add_turn("alice", rag.ask(SEED_QUESTION).to_json())
    store.add_turn("alice", rag.ask(PONT_QUESTION).to_json(), conv.id)
    store.add_turn("alice", rag.ask(MARS_QUESTION).to_json(), conv.id)
    store.add_turn("alice", rag.ask("Qui a inauguré le pont ?").to_json(), conv.id)
    store.rate(conv.id, 1, "alice", "up")
    store.rate(conv.id, 2, "alice", "up", "bon chiffre")
    store.rate(conv.id, 3, "alice", "down", not_in_articles=True)
    store.rate(conv.id, 4, "alice", "down", "ce n'est pas la bonne personne")
    qa, review = tmp_path / "feedback.jsonl", tmp_path / "feedback.review.jsonl"
    assert main(["chats", "feedback", "--jsonl", str(qa), "--chats", str(chats)]) == 0
    assert "3 questions (2 with a gold answer, 1 not in the articles)" in capsys.readouterr().out
    assert json.loads(review.read_text(encoding="utf-8"))["comment"] == "ce n'est pas la bonne personne"
    report = tmp_path / "report.json"
    assert main(["eval", str(qa), "--index", str(answer_index), "--out", str(report), "-q"]) == 0
    r = json.loads(report.read_text(encoding="utf-8"))
    assert (r["questions"], r["answerable"], r["with_gold_document"]) == (3, 2, 2)
    assert r["retrieval"]["hit@1"] == 1.0  # each gold document (the cited article) resolves in the index
    assert r["answer"]["contains"] == 1.0  # the approved answers are given again
    assert r["abstention"]["unanswerable"] == 1


def test_rag_chats_lists_and_exports_and_names_what_is_wrong(tmp_path, capsys):
    chats = tmp_path / "chats"
    assert main(["chats", "list", "--chats", str(chats)]) == 2
    assert "no saved conversations in" in capsys.readouterr().err
    store = ChatStore(chats)
    conv, _ = store.add_turn("alice", _answer("Qui dirige la médiathèque ?"))
    store.add_turn("bob", _answer("Question de Bob ?"))
    assert main(["chats", "list", "--chats", str(chats), "--user", "alice", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(c["id"], c["user"], c["turns"]) for c in listed] == [(conv.id, "alice", 1)]
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    assert main(["chats", "export", conv.id, "--chats", str(chats), "--out", str(out_dir)]) == 0
    written = list(out_dir.glob("*.md"))
    assert [p.name for p in written] == [f"qui-dirige-la-mediatheque-{conv.id}.md"]
    assert "Maëlle Tanguy" in written[0].read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["chats", "export", conv.id, "--chats", str(chats), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["turns"][0]["answer"]["question"] == "Qui dirige la médiathèque ?"
    assert main(["chats", "export", "feedfacefeedface", "--chats", str(chats)]) == 2
    assert "no conversation 'feedfacefeedface'" in capsys.readouterr().err
    assert main(["chats", "export", conv.id, "--chats", str(chats), "--user", "bob"]) == 2
    assert f"no conversation '{conv.id}' for user 'bob'" in capsys.readouterr().err


def test_an_index_rebuild_changes_no_saved_answer(tmp_path, embedder):
    folder = tmp_path / "articles"
    folder.mkdir()
    article = folder / "pont.txt"
    article.write_text(ARTICLE_FR, encoding="utf-8")
    cfg = Config(index_dir=str(tmp_path / "index"))
    Indexer(cfg, embedder=embedder).build([folder], progress=False)
    rag = RAG(cfg)
    store = ChatStore.from_config(cfg)
    conv, _ = store.add_turn(LOCAL_USER, rag.ask(PONT_QUESTION).to_json())
    before = store.get(conv.id, LOCAL_USER).turns[0].answer_json()
    assert "180 mètres" in before["answer"]
    article.write_text(ARTICLE_FR.replace("180 mètres", "240 mètres"), encoding="utf-8")
    Indexer(cfg, embedder=embedder).build([folder], rebuild=True, progress=False)
    now = rag.ask(PONT_QUESTION).to_json()
    assert "240 mètres" in now["answer"]  # the index changed...
    after = store.get(conv.id, LOCAL_USER).turns[0].answer_json()
    assert after == before and "180 mètres" in after["citations"][0]["excerpt"]  # ...history did not
    assert store.folder == tmp_path / "chats" and not (tmp_path / "index" / "chats").exists()


WRITER = r"""
import sys
from rag.chats import ChatStore
store = ChatStore(sys.argv[1])
excerpt = "Un long extrait d'article. " * 4000
conv = None
for i in range(100000):
    answer = {"question": f"Question {i} ?", "answer": f"Réponse {i} [1].", "abstained": False, "lang": "fr",
              "mode": "extractive", "citations": [{"n": n, "excerpt": excerpt, "source": "a.txt"} for n in range(1, 6)]}
    conv, turn = store.add_turn("alice", answer, conv.id if conv else None)
    print(turn.number, flush=True)
"""


@pytest.mark.slow
def test_a_writer_killed_while_saving_leaves_a_readable_database(tmp_path):
    chats = tmp_path / "chats"
    rng = random.Random(7)
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(chats)], cwd=ROOT, stdout=subprocess.PIPE,
                                text=True)
        saved = 0
        deadline = time.monotonic() + rng.uniform(1.0, 2.5)
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            saved = int(line)
        proc.kill()  # SIGKILL: no clean-up of any kind
        proc.wait()
        for line in proc.stdout.read().splitlines():  # saves reported before the kill, still in the pipe
            if line.strip().isdigit():
                saved = int(line)
        proc.stdout.close()
        db = sqlite3.connect(chats / "chats.sqlite")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
        store = ChatStore(chats)
        conv = store.conversations("alice")[0]
        turns = store.get(conv.id, "alice").turns
        assert [t.number for t in turns] == list(range(1, len(turns) + 1))  # whole turns, none half-written
        assert all(len(t.citations) == 5 and t.citations[4]["excerpt"].startswith("Un long") for t in turns)
        assert saved <= len(turns) <= saved + 1  # every reported save is there; at most the one in flight more
        store.close()
        shutil.rmtree(chats)


def inert(text: str) -> str:
    """Document text as the Markdown export writes it: no tag can open, no link can form."""
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("](", "]\\(")


def _answer(question: str, answer: str = "Maëlle Tanguy dirige la médiathèque de Quimper depuis 2021 [1].",
            excerpt: str = "Maëlle Tanguy dirige la médiathèque de Quimper depuis 2021.", **cite: str) -> dict:
    """An Answer JSON with one citation (for the store's own behaviour; real answers are used elsewhere)."""
    return {"question": question, "answer": answer, "abstained": False, "mode": "extractive", "lang": "fr",
            "latency_ms": 3.0, "notice": "",
            "citations": [{"n": 1, "doc_id": "d1", "source": "articles/quimper.md", "title": "Les Ondines",
                           "chunk_id": "d1-0000", "excerpt": excerpt, "start": 0, "end": len(excerpt), "score": 0.8,
                           "sentence_start": None, "sentence_end": None, **cite},
                          {"n": 2, "doc_id": "d1", "source": "articles/quimper.md", "title": "Les Ondines",
                           "chunk_id": "d1-0001", "excerpt": "Elle est là depuis 2021.", "start": 100, "end": 124,
                           "score": 0.5, "sentence_start": None, "sentence_end": None}]}
