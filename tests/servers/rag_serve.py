"""`rag serve` for tests: the real command on a free port of 127.0.0.1, stopped at the end."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT


def free_port() -> int:
    """A port nobody listens on, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    """A running `rag serve`: its process, base URL, port, log file and the folder it was given."""

    proc: subprocess.Popen
    url: str
    port: int
    log: Path
    root: Path

    def stop(self) -> None:
        """Terminate the server (kill it after 15 s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_serve(index: Path, root: Path, env: dict[str, str] | None = None, args: list[str] | None = None,
                timeout: float = 180) -> Served:
    """Start `rag serve --index INDEX ARGS` with ``env`` added, wait until it answers, return it.

    Its log goes in ``root``; uploads too unless ``env`` says otherwise (``RAG_UPLOAD_DIR``).

    Raises ``RuntimeError`` with the end of its log when it exits or does not answer in time.
    """
    port = free_port()
    log = root / f"serve-{port}.log"
    full = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_UPLOAD_DIR": str(root / "uploads"), **(env or {})}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--index", str(index), "--port", str(port),
                                 *(args or [])], cwd=ROOT, env=full, stdout=out, stderr=subprocess.STDOUT)
    served = Served(proc, f"http://127.0.0.1:{port}/", port, log, root)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"rag serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(served.url, timeout=2)
            return served
        except urllib.error.HTTPError:
            return served  # it answers (a login page or an error is an answer)
        except OSError:
            if time.monotonic() > deadline:
                served.stop()
                raise RuntimeError(f"rag serve did not answer within {timeout:.0f} s: {log.read_text()[-2000:]}")
            time.sleep(0.5)


def basic(user: str, password: str) -> dict[str, str]:
    """The Authorization header of a login."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def call(url: str, method: str = "GET", body: object = None, headers: dict[str, str] | None = None,
         raw: bytes | None = None, timeout: float = 120) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request: (status, headers, body bytes); error statuses are returned, not raised."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    h = {"Content-Type": "application/json"} if body is not None else {}
    req = urllib.request.Request(url, data=data, method=method, headers={**h, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
