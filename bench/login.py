"""Guessing passwords against `rag serve --auth-file`: how many guesses are checked, how fast.

Starts ``rag serve`` on a free loopback port over an index of ``seeds/`` built in a temporary
folder, with one account, then measures from 127.0.0.2 (all of 127.0.0.0/8 is the loopback):

1. a burst: ``--burst`` wrong passwords sent back to back, as fast as the server answers;
2. a patient guesser: wrong passwords for another user name during ``--seconds``, each sent as
   soon as ``Retry-After`` allows, and how many of them the server actually checked;
3. the same for a third user name, spread over ``--addresses`` addresses (127.0.1.x) in turn.

    python bench/login.py                      # burst of 100, then 60 s of each guesser
    python bench/login.py --seconds 120 --out bench/results/login.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ui_chat import free_port, start_server  # noqa: E402  (one way to start the server)

USER, PASSWORD = "alice", "a-long-and-secret-passphrase"


def attempt(http, url: str, user: str, password: str) -> tuple[int, float]:
    """(status, Retry-After seconds or 0) of one sign-in."""
    r = http.post(url + "login", data={"username": user, "password": password})
    return r.status_code, float(r.headers.get("retry-after", 0) or 0)


def burst(url: str, n: int) -> dict:
    """``n`` wrong passwords back to back from one address."""
    import httpx

    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30) as http:
        t0 = time.perf_counter()
        codes = [attempt(http, url, USER, f"wrong{i}")[0] for i in range(n)]
        seconds = time.perf_counter() - t0
    return {"sent": n, "checked": codes.count(400), "refused_429": codes.count(429), "seconds": round(seconds, 2)}


def patient(url: str, seconds: float, addresses: list[str], user: str) -> dict:
    """Wrong passwords for ``user`` during ``seconds``, from ``addresses`` in turn, each when Retry-After allows."""
    import httpx

    clients = [httpx.Client(transport=httpx.HTTPTransport(local_address=a), timeout=30) for a in addresses]
    checked = refused = 0
    end = time.monotonic() + seconds
    i = 0
    try:
        while time.monotonic() < end:
            code, wait = attempt(clients[i % len(clients)], url, user, f"guess{i}")
            i += 1
            if code == 400:
                checked += 1
            elif code == 429:
                refused += 1
                time.sleep(min(wait, max(0.0, end - time.monotonic())))
    finally:
        for c in clients:
            c.close()
    return {"seconds": seconds, "addresses": len(addresses), "checked": checked, "refused_429": refused,
            "checked_per_minute": round(checked * 60 / seconds, 1)}


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--addresses", type=int, default=20)
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rag.config import Config
    from rag.indexing import Indexer

    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        Indexer(Config(index_dir=str(index))).build([ROOT / "seeds"], progress=False)
        users = Path(tmp) / "users"
        users.write_text(f"{USER}:{PASSWORD}\n", encoding="utf-8")
        users.chmod(0o600)
        port = free_port()
        server = start_server(index, port, Path(tmp) / "serve.log", ["--auth-file", str(users)])
        url = f"http://127.0.0.1:{port}/"
        try:
            res = {"burst": burst(url, args.burst)}
            time.sleep(1)
            # other user names: each measure starts with no failure counted (the server does not tell
            # names that exist from the others, so it counts them alike)
            res["one_address"] = patient(url, args.seconds, ["127.0.0.3"], "bob")
            res["many_addresses"] = patient(url, args.seconds, [f"127.0.1.{i + 1}" for i in range(args.addresses)],
                                            "carol")
        finally:
            server.terminate()
            server.wait(15)
    b = res["burst"]
    print(f"burst: {b['sent']} wrong passwords in {b['seconds']} s: {b['checked']} checked, "
          f"{b['refused_429']} refused (429)")
    for name in ("one_address", "many_addresses"):
        r = res[name]
        print(f"{name.replace('_', ' ')} ({r['addresses']}), {r['seconds']:.0f} s obeying Retry-After: "
              f"{r['checked']} guesses checked ({r['checked_per_minute']}/min), {r['refused_429']} refused")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
