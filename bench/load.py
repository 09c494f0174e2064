"""Load on the web chat: N simultaneous clients asking questions for S seconds, on 127.0.0.1 only.

Starts ``rag serve`` on a free loopback port over an index of ``seeds/`` built in a temporary
folder (or ``--index DIR``), then runs ``--clients`` threads, each with its own
``gradio_client.Client``, asking the seed questions through the ``/ask`` endpoint (the same
queue and concurrency limit as the chat) until ``--seconds`` have passed. With ``--api``, each
client asks through the HTTP API instead (``POST /api/ask``, one kept-alive connection each).
Every request loop is bounded in count and time and stops by itself.

    python bench/load.py                          # 20 clients, 60 s
    python bench/load.py --clients 5 --seconds 10 --out bench/results/load.json
    python bench/load.py --api                    # 20 API clients, 60 s
    python bench/load.py --api --clients 1 --seconds 30   # one client: the API's own latency
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ui_chat import free_port, start_server  # noqa: E402  (one way to start the server)

QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "eval" / "seed_qa.jsonl").read_text("utf-8").splitlines()]
MAX_REQUESTS_PER_CLIENT = 10_000


def client_loop(url: str, seconds: float, offset: int, latencies: list[float], errors: list[str],
                lock: threading.Lock) -> None:
    """One simulated user: ask questions back to back until the time is up."""
    from gradio_client import Client

    try:
        client = Client(url, verbose=False)
    except Exception as exc:  # noqa: BLE001 - a failed connection is a measured error
        with lock:
            errors.append(f"connect: {exc}")
        return
    end = time.monotonic() + seconds
    for i in range(MAX_REQUESTS_PER_CLIENT):
        if time.monotonic() >= end:
            break
        question = QUESTIONS[(offset + i) % len(QUESTIONS)]
        t0 = time.perf_counter()
        try:
            ans = client.predict(question, 5, api_name="/ask")
            ok = isinstance(ans, dict) and "answer" in ans
        except Exception as exc:  # noqa: BLE001
            ok, ans = False, exc
        ms = (time.perf_counter() - t0) * 1000
        with lock:
            if ok:
                latencies.append(ms)
            else:
                errors.append(str(ans)[:200])


def api_client_loop(url: str, seconds: float, offset: int, latencies: list[float], errors: list[str],
                    lock: threading.Lock, pipeline: list[float] | None = None) -> None:
    """One API client: ``POST /api/ask`` back to back on one kept-alive connection until the time is up.

    ``pipeline`` receives each answer's own ``latency_ms`` (retrieval and answer, inside the server).
    """
    host, port = url.split("//", 1)[1].strip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    end = time.monotonic() + seconds
    for i in range(MAX_REQUESTS_PER_CLIENT):
        if time.monotonic() >= end:
            break
        body = json.dumps({"question": QUESTIONS[(offset + i) % len(QUESTIONS)], "k": 5})
        t0 = time.perf_counter()
        try:
            conn.request("POST", "/api/ask", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            answer = json.loads(data) if resp.status == 200 else {}
            ok = "answer" in answer
            why = "" if ok else f"HTTP {resp.status}: {data[:150]!r}"
        except (OSError, http.client.HTTPException, ValueError) as exc:
            ok, why = False, f"{type(exc).__name__}: {exc}"
            conn.close()
            conn = http.client.HTTPConnection(host, int(port), timeout=120)
        ms = (time.perf_counter() - t0) * 1000
        with lock:
            if ok:
                latencies.append(ms)
                if pipeline is not None:
                    pipeline.append(float(answer.get("latency_ms", 0.0)))
            else:
                errors.append(why[:200])
    conn.close()


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation."""
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1] if len(values) > 1 else values[0]


def run(clients: int, seconds: float, index: Path | None, api: bool = False) -> dict:
    """Run the load (through Gradio's ``/ask``, or the HTTP API with ``api``) and return the figures."""
    from rag.config import Config
    from rag.indexing import Indexer

    with tempfile.TemporaryDirectory() as tmp:
        if index is None:
            index = Path(tmp) / "index"
            Indexer(Config(index_dir=str(index))).build([ROOT / "seeds"], progress=False)
        port = free_port()
        server = start_server(index, port, Path(tmp) / "serve.log")
        url = f"http://127.0.0.1:{port}/"
        latencies: list[float] = []
        pipeline: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        try:
            loop = api_client_loop if api else client_loop
            if api:  # warm: the first answers load what a question needs
                api_client_loop(url, 2.0, 0, [], [], threading.Lock())
            extra = (pipeline,) if api else ()
            threads = [threading.Thread(target=loop, args=(url, seconds, i * 7, latencies, errors, lock, *extra))
                       for i in range(clients)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join(seconds + 120)
            wall = time.perf_counter() - t0
        finally:
            server.terminate()
            server.wait(15)
    return {"endpoint": "POST /api/ask" if api else "gradio /ask", "clients": clients, "seconds": seconds,
            "answered": len(latencies), "errors": len(errors),
            "error_samples": errors[:5], "p50_ms": round(percentile(latencies, 0.50), 1),
            "p95_ms": round(percentile(latencies, 0.95), 1), "answers_per_s": round(len(latencies) / wall, 2),
            "pipeline_p50_ms": round(percentile(pipeline, 0.50), 1) if pipeline else None,
            "cpus": os.cpu_count(), "load_average": round(os.getloadavg()[0], 1)}


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--index", type=Path, help="an existing index (default: seeds/ in a temporary folder)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    parser.add_argument("--api", action="store_true", help="ask through the HTTP API (POST /api/ask)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    res = run(args.clients, min(args.seconds, 600.0), args.index, api=args.api)
    print(f"{'clients':>8} {'seconds':>8} {'answered':>9} {'errors':>7} {'p50 ms':>8} {'p95 ms':>8} {'answers/s':>10}")
    print(f"{res['clients']:>8} {res['seconds']:>8.0f} {res['answered']:>9} {res['errors']:>7} "
          f"{res['p50_ms']:>8.1f} {res['p95_ms']:>8.1f} {res['answers_per_s']:>10.2f}")
    if res["pipeline_p50_ms"] is not None:
        print(f"p50 of the answers' own latency_ms (retrieval and answer in the server): {res['pipeline_p50_ms']} ms; "
              f"load average {res['load_average']} on {res['cpus']} cores")
    for e in res["error_samples"]:
        print(f"error: {e}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
