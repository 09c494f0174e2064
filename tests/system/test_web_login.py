"""Sign-ins against the real `rag serve --auth-file`: wrong passwords slow down, then lock out.

Different clients are told apart by their address: the tests connect from 127.0.0.2, 127.0.0.3,
... (all of 127.0.0.0/8 is the loopback) to the server listening on 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from rag.config import Config
from rag.indexing import Indexer
from tests.conftest import ROOT, SEEDS
from tests.servers.rag_serve import free_port, start_serve

ACCOUNTS = {"alice": "correct horse battery", "bob": "b0b:has:colons"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("login")
    index = root / "index"
    Indexer(Config(index_dir=str(index)), embedder=embedder).build([SEEDS], progress=False)
    users = root / "users"
    users.write_text("# who may sign in\n" + "".join(f"{u}:{p}\n" for u, p in ACCOUNTS.items()), encoding="utf-8")
    users.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k != "RAG_AUTH"}
    served = start_serve(index, root, env=env, args=["--auth-file", str(users)])
    yield served
    served.stop()


def client(address: str) -> httpx.Client:
    """An HTTP client whose requests come from ``address`` (one of 127.0.0.0/8)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def sign_in(http: httpx.Client, url: str, user: str, password: str) -> httpx.Response:
    return http.post(url + "login", data={"username": user, "password": password})


def test_a_hundred_wrong_passwords_in_a_burst_are_checked_five_times_then_locked_out(server):
    statuses, waits = [], []
    with client("127.0.0.2") as http:
        t0 = time.perf_counter()
        for _ in range(100):
            r = sign_in(http, server.url, "alice", "wrong")
            statuses.append(r.status_code)
            if r.status_code == 429:
                waits.append(int(r.headers["retry-after"]))
        burst = time.perf_counter() - t0
        checked = statuses.count(400)
        assert set(statuses) <= {400, 429}
        assert checked <= 6, f"{checked} of 100 wrong passwords checked in {burst:.2f} s"
        assert statuses[:5] == [400] * 5 and statuses.count(429) >= 94 and min(waits) >= 1
        locked = sign_in(http, server.url, "alice", ACCOUNTS["alice"])
        assert locked.status_code == 429  # locked: even the right password is not checked
        time.sleep(int(locked.headers["retry-after"]) + 0.2)
        ok = sign_in(http, server.url, "alice", ACCOUNTS["alice"])
        assert ok.status_code == 200 and ok.json() == {"success": True}
        again = sign_in(http, server.url, "alice", "wrong")
        assert again.status_code == 400  # the success cleared the count


def test_wrong_passwords_sent_at_the_same_moment_are_checked_one_at_a_time(server):
    with client("127.0.0.3") as http, ThreadPoolExecutor(25) as pool:
        statuses = list(pool.map(lambda _: sign_in(http, server.url, "carol", "guess").status_code, range(50)))
    assert set(statuses) <= {400, 429} and statuses.count(400) <= 6, statuses


def test_failures_for_one_user_from_many_addresses_lock_that_user_and_no_other(server):
    for i in range(10):  # one failure from each of ten addresses: no address is locked
        with client(f"127.0.0.{10 + i}") as http:
            assert sign_in(http, server.url, "bob", f"guess{i}").status_code == 400
    with client("127.0.0.30") as http:
        locked = sign_in(http, server.url, "bob", ACCOUNTS["bob"])
        assert locked.status_code == 429
        assert sign_in(http, server.url, "alice", ACCOUNTS["alice"]).status_code == 200
        time.sleep(int(locked.headers["retry-after"]) + 0.2)
        assert sign_in(http, server.url, "bob", ACCOUNTS["bob"]).status_code == 200


def test_every_account_of_the_file_signs_in_and_its_passwords_are_not_in_the_process_list(server):
    from gradio_client import Client

    for user, password in ACCOUNTS.items():
        with client("127.0.0.40") as http:
            assert sign_in(http, server.url, user, password).status_code == 200
    assert Client(server.url, auth=("bob", ACCOUNTS["bob"]), verbose=False).predict("Qui est Araghchi ?", 2,
                                                                                    api_name="/ask")["citations"]
    with open(f"/proc/{server.proc.pid}/cmdline", "rb") as fh:
        cmdline = fh.read().decode("utf-8", "replace")
    assert "--auth-file" in cmdline and not any(p in cmdline for p in ACCOUNTS.values())


def test_the_auth_option_is_warned_about_and_help_says_what_to_use_instead(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "rag", "serve", "--auth", "alice:pw", "--auth-file",
                           str(tmp_path / "missing"), "--port", str(free_port())],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    assert "process list" in proc.stderr and "RAG_AUTH" in proc.stderr  # the warning
    assert f"--auth-file {tmp_path / 'missing'}: cannot read it" in proc.stderr
    helped = subprocess.run([sys.executable, "-m", "rag", "serve", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env=env).stdout
    assert "RAG_AUTH" in helped and "--auth-file FILE" in helped and "`ps`" in helped
