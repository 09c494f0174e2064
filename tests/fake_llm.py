"""A small OpenAI-compatible chat server on 127.0.0.1 for the LLM tests (the only stand-in we allow).

``POST /v1/chat/completions`` answers from the prompt it receives, the way a careful model
would: it reads the fenced passages and question, quotes the passage sentence sharing most
words with the question followed by its marker ``[n]``, or replies ``NO_ANSWER`` when no
sentence shares at least two words. ``stream: true`` sends the reply word by word as
server-sent events. ``FakeLLM.behaviour`` makes it misbehave on purpose:

- ``"answer"``: the reply above;
- ``"extra_citation"``: the reply plus a sentence citing a passage that was not given;
- ``"no_markers"``: the reply without any marker;
- ``"error"``: HTTP 500;
- ``"slow"``: sleeps ``delay`` seconds before answering;
- ``"garbage"``: HTTP 200 whose body is not a chat completion.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_WORD = re.compile(r"\w{4,}")


def reply_for(prompt: str) -> str:
    """What the fake model says to a user message built by ``rag.llm.build_messages``."""
    passages = re.findall(r'<passage n="(\d+)"[^>]*>\n(.*?)\n</passage>', prompt, re.S)
    m = re.search(r"<question>\n(.*?)\n</question>", prompt, re.S)
    question = set(w.casefold() for w in _WORD.findall(m.group(1) if m else ""))
    best, best_n, best_overlap = "", 0, 0
    for n, text in passages:
        for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
            overlap = len(question & {w.casefold() for w in _WORD.findall(sentence)})
            if overlap > best_overlap:
                best, best_n, best_overlap = sentence.strip(), int(n), overlap
    if best_overlap < 2:
        return "NO_ANSWER"
    return f"{best.rstrip('.')} [{best_n}]."


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # a client that gave up (timeout test)
        pass


class FakeLLM:
    """The server; ``url`` is its OpenAI base URL, ``requests`` what it received."""

    def __init__(self) -> None:
        self.behaviour = "answer"
        self.delay = 0.0
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                fake.requests.append(body)
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, "application/json", b'{"error": {"message": "not found"}}')
                if fake.behaviour == "error":
                    return self._send(500, "application/json", b'{"error": {"message": "model crashed"}}')
                if fake.behaviour == "slow":
                    time.sleep(fake.delay)
                if fake.behaviour == "garbage" and body.get("stream"):
                    return self._send(200, "text/event-stream", b"data: <html>oops</html>\n\ndata: [DONE]\n\n")
                if fake.behaviour == "garbage":
                    return self._send(200, "application/json", b'{"unexpected": true, "choices": "none"}')
                text = reply_for(body["messages"][-1]["content"])
                if fake.behaviour == "extra_citation" and text != "NO_ANSWER":
                    text += " Voir aussi [9]."
                if fake.behaviour == "no_markers":
                    text = re.sub(r"\s*\[\d+\]", "", text)
                if body.get("stream"):
                    return self._stream(text, body.get("model", "fake"))
                out = {"id": "cmpl-1", "object": "chat.completion", "created": 0, "model": body.get("model", "fake"),
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": text}}]}
                self._send(200, "application/json", json.dumps(out).encode())

            def _send(self, status: int, kind: str, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, text: str, model: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for word in re.findall(r"\S+\s*", text):
                    chunk = {"id": "cmpl-1", "object": "chat.completion.chunk", "created": 0, "model": model,
                             "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeLLM":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
