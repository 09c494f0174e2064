"""The HTTP API (/api) and the OpenAI-compatible API (/v1) of `rag serve`, against the real server.

One server for the module, started with the real command over an index of seeds/ built in a
temporary folder with the real model; two logins (RAG_AUTH) and an API token (RAG_API_TOKEN);
uploads up to 1 MB.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import unicodedata
from pathlib import Path

import pytest

from rag.chats import ChatStore
from rag.config import Config
from rag.indexing import Indexer
from rag.pipeline import RAG
from tests.conftest import ROOT, SEEDS
from tests.servers.rag_serve import basic, call, start_serve

ALICE, BOB = ("alice", "pw-alice-1"), ("bob", "pw-bob-2")
TOKEN = "test-token-0123456789abcdef"
ALICE_H, BOB_H, TOKEN_H = basic(*ALICE), basic(*BOB), {"Authorization": f"Bearer {TOKEN}"}
SEED_QUESTION = "Qui est le ministre iranien des Affaires étrangères ?"
SEED_QA = [json.loads(line) for line in (ROOT / "eval" / "seed_qa.jsonl").read_text("utf-8").splitlines()]
QUIMPER = """# La médiathèque Les Ondines ouvre à Quimper

La nouvelle médiathèque de Quimper, baptisée Les Ondines, a ouvert ses portes mardi au bord de l'Odet.
Elle a coûté 14 millions d'euros. Maëlle Tanguy dirige la médiathèque de Quimper depuis 2021.
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder):
    """`rag serve` on a seeds index; yields (url, index folder, work folder)."""
    root = tmp_path_factory.mktemp("api")
    index = root / "index"
    Indexer(Config(index_dir=str(index)), embedder=embedder).build([SEEDS], progress=False)
    served = start_serve(index, root, {"RAG_AUTH": f"{ALICE[0]}:{ALICE[1]},{BOB[0]}:{BOB[1]}", "RAG_API_TOKEN": TOKEN,
                                       "RAG_UPLOAD_MAX_MB": "1", "RAG_UPLOAD_DIR": str(root / "uploads")})
    yield served.url, index, root
    served.stop()


def ask(url: str, body: dict, headers: dict = ALICE_H) -> dict:
    status, _, data = call(url + "api/ask", "POST", body, headers)
    assert status == 200, data
    return json.loads(data)


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body with ``files`` in the field ``files``."""
    boundary = "rag-test-boundary-7f3a"
    parts = []
    for name, content in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def norm(text: str) -> str:
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join("".join(c if c.isalnum() else " " for c in text).split())


def test_the_api_answers_the_seed_questions_as_the_library_does(server):
    url, index, _ = server
    rag = RAG(Config(index_dir=str(index)))
    found = answerable = 0
    for item in SEED_QA:
        got = ask(url, {"question": item["question"]})
        want = rag.ask(item["question"]).to_json()
        assert (got["answer"], got["abstained"]) == (want["answer"], want["abstained"]), item["id"]
        assert [c["excerpt"] for c in got["citations"]] == [c["excerpt"] for c in want["citations"]]
        if item["answers"]:
            answerable += 1
            found += any(norm(a) in norm(got["answer"]) for a in item["answers"])
    # 42 answerable seed questions; README's evaluation (with PIAF distractors) gives contains 0.857
    assert found / answerable >= 0.8, f"{found}/{answerable}"


def test_the_api_needs_a_login_and_says_how(server):
    url = server[0]
    for headers in ({}, basic("alice", "wrong"), basic("mallory", "x"), {"Authorization": "Bearer not-the-token"},
                    {"Authorization": "Basic !!!not-base64"}):
        status, h, body = call(url + "api/status", headers=headers)
        assert status == 401 and "basic" in h.get("www-authenticate", "").lower()
        assert "a login is needed" in json.loads(body)["error"]
    for headers, who in ((ALICE_H, "alice"), (TOKEN_H, "api"), ({"Authorization": f"Bearer {ALICE[0]}:{ALICE[1]}"},
                                                                  "alice")):
        status, _, body = call(url + "api/status", headers=headers)
        data = json.loads(body)
        assert status == 200 and data["user"] == who and data["ready"] and data["index"]["documents"] == 1


def test_errors_are_json_with_the_right_status_and_no_trace(server):
    url = server[0]
    cases = [
        ("POST", "api/ask", None, b"{not json", 400, "not valid JSON"),
        ("POST", "api/ask", {"question": SEED_QUESTION, "docs": ["nowhere.txt"]}, None, 400,
         "'nowhere.txt' matches no"),
        ("POST", "api/ask", {"question": SEED_QUESTION, "mode": "llm"}, None, 400, "mode llm needs"),
        ("POST", "api/ask", {"question": "   "}, None, 422, "blank"),
        ("POST", "api/ask", {"question": SEED_QUESTION, "k": 0}, None, 422, "body.k"),
        ("POST", "api/ask", {"k": 3}, None, 422, "body.question"),
        ("POST", "api/ask", {"question": SEED_QUESTION, "conversation": "0123456789abcdef"}, None, 404,
         "no conversation"),
        ("GET", "api/chats/../../etc/passwd", None, None, 404, ""),
        ("GET", "api/chats/feedfacefeedface/export?format=pdf", None, None, 422, "format"),
        ("DELETE", "api/documents/nope", None, None, 404, "no indexed document 'nope'"),
        ("GET", "api/jobs/999999", None, None, 404, "no index job"),
        ("GET", "api/nothing-here", None, None, 404, "no such endpoint"),
        ("DELETE", "api/status", None, None, 405, "allowed: GET"),
        ("POST", "v1/chat/completions", {"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}, None, 404,
         "model 'gpt-4' does not exist"),
        ("POST", "v1/chat/completions", {"model": "rag", "messages": [{"role": "assistant", "content": "x"}]}, None,
         400, "last message must be the user's question"),
    ]
    for method, path, body, raw, status, message in cases:
        got, h, data = call(url + path, method, body, {**ALICE_H, "Content-Type": "application/json"}, raw=raw)
        assert got == status, (path, data)
        assert h.get("content-type", "").startswith("application/json"), path
        text = data.decode()
        assert "Traceback" not in text and 'File "' not in text
        payload = json.loads(text)
        err = payload["error"]["message"] if path.startswith("v1") else payload["error"]
        assert message in err, (path, err)


def test_uploads_are_checked_indexed_answered_from_and_removed(server, tmp_path):
    url, _, root = server
    body, h = multipart([("tool.exe", b"MZ\x90\x00")])
    status, _, data = call(url + "api/documents", "POST", headers={**ALICE_H, **h}, raw=body)
    assert status == 400 and "tool.exe" in json.loads(data)["error"]
    body, h = multipart([("ok.md", QUIMPER.encode()), ("huge.txt", ("mot " * 300_000).encode())])
    status, _, data = call(url + "api/documents", "POST", headers={**ALICE_H, **h}, raw=body)
    assert status == 413 and "huge.txt" in json.loads(data)["error"] and "1 MB" in json.loads(data)["error"]
    assert not (root / "uploads" / "ok.md").exists()  # refused as a whole: nothing saved
    body, h = multipart([("quimper.md", QUIMPER.encode())])
    status, _, data = call(url + "api/documents?wait=true", "POST", headers={**ALICE_H, **h}, raw=body)
    job = json.loads(data)
    assert status == 200 and job["state"] == "done" and job["report"]["added"], job
    status, _, data = call(url + f"api/jobs/{job['id']}", headers=TOKEN_H)
    assert status == 200 and json.loads(data)["state"] == "done"
    docs = json.loads(call(url + "api/documents", headers=ALICE_H)[2])["documents"]
    quimper = [d for d in docs if d["title"] == "La médiathèque Les Ondines ouvre à Quimper"]
    assert len(quimper) == 1 and quimper[0]["chunks"] >= 1
    got = ask(url, {"question": "Qui dirige la médiathèque de Quimper ?", "docs": [quimper[0]["id"]]})
    assert "Tanguy" in got["answer"] and {c["doc_id"] for c in got["citations"]} == {quimper[0]["id"]}
    status, _, data = call(url + f"api/documents/{quimper[0]['id']}?wait=true", "DELETE", headers=ALICE_H)
    assert status == 200 and json.loads(data)["state"] == "done"
    docs = json.loads(call(url + "api/documents", headers=ALICE_H)[2])["documents"]
    assert quimper[0]["id"] not in {d["id"] for d in docs} and not (root / "uploads" / "quimper.md").exists()


def test_ask_streams_server_sent_events_ending_with_the_answer(server):
    url = server[0]
    status, h, data = call(url + "api/ask", "POST", {"question": SEED_QUESTION, "stream": True, "k": 3}, ALICE_H)
    assert status == 200 and h["content-type"].startswith("text/event-stream")
    events = [(block.split("\n")[0].removeprefix("event: "), json.loads(block.split("\n")[1].removeprefix("data: ")))
              for block in data.decode().strip().split("\n\n")]
    assert events[-1][0] == "answer" and all(kind == "partial" for kind, _ in events[:-1])
    final = events[-1][1]
    assert "Araghchi" in final["answer"] and "[1]" in final["answer"] and 1 <= len(final["citations"]) <= 3


def test_conversations_saved_through_the_api_follow_up_rate_export_delete(server):
    url = server[0]
    first = ask(url, {"question": SEED_QUESTION, "conversation": "new"})
    conv = first["conversation"]["id"]
    assert first["conversation"]["number"] == 1
    follow = ask(url, {"question": "Et celui d'Oman ?", "conversation": conv})
    assert follow["conversation"] == {"id": conv, "number": 2} and "Busaidi" in follow["answer"]  # history was used
    listed = json.loads(call(url + "api/chats", headers=ALICE_H)[2])["conversations"]
    assert listed[0]["id"] == conv and listed[0]["turns"] == 2 and listed[0]["title"] == SEED_QUESTION
    status, _, data = call(url + f"api/chats/{conv}/turns/1/feedback", "PUT",
                           {"rating": "up", "comment": "vérifié"}, ALICE_H)
    assert status == 200 and json.loads(data)["rating"] == "up"
    status, _, data = call(url + f"api/chats/{conv}/turns/9/feedback", "PUT", {"rating": "up"}, ALICE_H)
    assert status == 404 and "no turn 9" in json.loads(data)["error"]
    status, _, data = call(url + f"api/chats/{conv}", "PATCH", {"title": "Oman, février"}, ALICE_H)
    assert status == 200 and json.loads(data)["title"] == "Oman, février"
    full = json.loads(call(url + f"api/chats/{conv}", headers=ALICE_H)[2])
    assert [t["answer"]["answer"] for t in full["turns"]] == [first["answer"], follow["answer"]]
    assert full["turns"][0]["answer"]["citations"] == first["citations"] and full["turns"][0]["feedback"]["comment"]
    status, h, md = call(url + f"api/chats/{conv}/export?format=md", headers=ALICE_H)
    assert status == 200 and h["content-type"].startswith("text/markdown") and "attachment" in h["content-disposition"]
    assert md.decode().startswith("# Oman, février") and first["citations"][0]["source"] in md.decode()
    status, _, js = call(url + f"api/chats/{conv}/export?format=json", headers=ALICE_H)
    assert json.loads(js)["turns"][1]["answer"]["answer"] == follow["answer"]
    empty = json.loads(call(url + "api/chats", "POST", {"title": "Vide"}, ALICE_H)[2])
    assert empty["turns"] == 0 and empty["title"] == "Vide"
    assert call(url + f"api/chats/{conv}", "DELETE", headers=ALICE_H)[0] == 204
    assert call(url + f"api/chats/{conv}", headers=ALICE_H)[0] == 404
    assert call(url + f"api/chats/{empty['id']}", "DELETE", headers=ALICE_H)[0] == 204


def test_two_logins_do_not_see_each_others_conversations_through_the_api(server):
    url = server[0]
    mine = ask(url, {"question": SEED_QUESTION, "conversation": "new"})["conversation"]["id"]
    theirs = json.loads(call(url + "api/chats", headers=BOB_H)[2])["conversations"]
    assert mine not in {c["id"] for c in theirs}
    for method, path, body in (("GET", f"api/chats/{mine}", None), ("GET", f"api/chats/{mine}/export", None),
                               ("PATCH", f"api/chats/{mine}", {"title": "pris"}), ("DELETE", f"api/chats/{mine}", None),
                               ("PUT", f"api/chats/{mine}/turns/1/feedback", {"rating": "down"}),
                               ("POST", "api/ask", {"question": "Et alors ?", "conversation": mine})):
        status, _, data = call(url + path, method, body, BOB_H)
        assert status == 404 and "for user 'bob'" in json.loads(data)["error"], path
    assert json.loads(call(url + f"api/chats/{mine}", headers=ALICE_H)[2])["title"] == SEED_QUESTION
    assert len(json.loads(call(url + f"api/chats/{mine}", headers=ALICE_H)[2])["turns"]) == 1
    assert mine not in {c["id"] for c in json.loads(call(url + "api/chats", headers=TOKEN_H)[2])["conversations"]}


def test_the_openai_client_gets_answers_with_markers_and_sources(server):
    import openai

    url = server[0]
    client = openai.OpenAI(base_url=url + "v1", api_key=TOKEN, max_retries=0, timeout=120)
    assert {m.id for m in client.models.list()} == {"rag", "rag-extractive"}  # no LLM endpoint on this server
    reply = client.chat.completions.create(model="rag", messages=[{"role": "user", "content": SEED_QUESTION}])
    text = reply.choices[0].message.content
    assert "Araghchi" in text and "[1]" in text and "\n\nSources :\n[1] **" in text
    citations = reply.model_extra["citations"]
    assert citations and "Araghchi" in citations[0]["excerpt"] and reply.model_extra["abstained"] is False
    history = [{"role": "user", "content": SEED_QUESTION}, {"role": "assistant", "content": text},
               {"role": "user", "content": "Et celui d'Oman ?"}]
    chunks = list(client.chat.completions.create(model="rag-extractive", messages=history, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Busaidi" in streamed and "[1]" in streamed and "Sources :" in streamed
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].model_extra["citations"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=url + "v1", api_key="wrong", max_retries=0).models.list()
    as_alice = openai.OpenAI(base_url=url + "v1", api_key=f"{ALICE[0]}:{ALICE[1]}", max_retries=0, timeout=120)
    assert "[1]" in as_alice.chat.completions.create(model="rag", messages=[{"role": "user", "content": [
        {"type": "text", "text": SEED_QUESTION}]}]).choices[0].message.content


@pytest.mark.slow
def test_an_index_rebuild_during_a_conversation_changes_no_saved_answer(server):
    url, index, root = server
    body, h = multipart([("ondines.md", QUIMPER.encode())])
    assert call(url + "api/documents?wait=true", "POST", headers={**ALICE_H, **h}, raw=body)[0] == 200
    question = "Qui dirige la médiathèque de Quimper ?"
    first = ask(url, {"question": question, "conversation": "new"})
    conv = first["conversation"]["id"]
    assert "Tanguy" in first["answer"]
    (root / "uploads" / "ondines.md").write_text(QUIMPER.replace("Maëlle Tanguy", "Yann Kervella"), encoding="utf-8")
    build = subprocess.run([sys.executable, "-m", "rag", "index", "build", str(SEEDS), str(root / "uploads"),
                            "--index", str(index), "--rebuild", "--wait", "120", "-q"], cwd=ROOT, capture_output=True,
                           text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    deadline = time.monotonic() + 60
    while "Kervella" not in (second := ask(url, {"question": question, "conversation": conv}))["answer"]:
        assert time.monotonic() < deadline, "the server did not pick up the rebuilt index"
        time.sleep(1)
    saved = json.loads(call(url + f"api/chats/{conv}", headers=ALICE_H)[2])["turns"]
    assert saved[0]["answer"]["answer"] == first["answer"] and saved[0]["answer"]["citations"] == first["citations"]
    assert "Tanguy" in saved[0]["answer"]["citations"][0]["excerpt"] and "Kervella" in saved[-1]["answer"]["answer"]
    assert second["conversation"]["number"] == len(saved)
    docs = json.loads(call(url + "api/documents", headers=ALICE_H)[2])["documents"]
    for d in docs:
        if d["source"].endswith("ondines.md"):
            assert call(url + f"api/documents/{d['id']}?wait=true", "DELETE", headers=ALICE_H)[0] == 200


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(server, tmp_path):
    url = server[0]
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")), "run", url + "api/openapi.json", "--checks",
         "not_a_server_error", "--max-examples", "12", "--seed", "1", "--workers", "1", "--no-color",
         "--generation-database", "none", "--request-timeout", "120", "-H", f"Authorization: Bearer {TOKEN}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    tail = proc.stdout[-4000:]
    assert proc.returncode == 0, tail
    assert "passed" in tail and "Tested: 17" in tail


@pytest.mark.slow
def test_kill_9_while_saving_turns_leaves_the_chats_database_readable(tmp_path, embedder):
    index = tmp_path / "index"
    Indexer(Config(index_dir=str(index)), embedder=embedder).build([SEEDS], progress=False)
    served = start_serve(index, tmp_path)
    acknowledged: list[tuple[str, int, dict]] = []
    stop = threading.Event()

    def client(offset: int) -> None:
        conv = "new"
        for i in range(10_000):
            if stop.is_set():
                return
            try:
                status, _, data = call(served.url + "api/ask", "POST",
                                       {"question": SEED_QA[(offset + i) % len(SEED_QA)]["question"],
                                        "conversation": conv}, timeout=30)
            except OSError:
                return
            if status != 200:
                return
            answer = json.loads(data)
            saved = answer.pop("conversation")
            acknowledged.append((saved["id"], saved["number"], answer))
            conv = saved["id"] if i % 7 else "new"

    threads = [threading.Thread(target=client, args=(k * 11,)) for k in range(4)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        served.proc.send_signal(signal.SIGKILL)  # while the clients keep saving
        served.proc.wait(10)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        served.stop()
    assert len(acknowledged) >= 40
    db = sqlite3.connect(tmp_path / "chats" / "chats.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    store = ChatStore(tmp_path / "chats")
    convs = {c.id: store.get(c.id, "local") for c in store.conversations("local")}
    for conv_id, number, answer in acknowledged:  # every save the server confirmed is there, whole
        turn = convs[conv_id].turns[number - 1]
        assert turn.number == number and turn.answer_json() == {**answer, "short": answer.get("short")}
    for conv in convs.values():
        assert [t.number for t in conv.turns] == list(range(1, len(conv.turns) + 1))
