"""Load on the web chat: N simultaneous clients asking questions for S seconds, on 127.0.0.1 only.

Starts ``rag serve`` on a free loopback port over an index of ``seeds/`` built in a temporary
folder (or ``--index DIR``), then runs ``--clients`` threads, each with its own
``gradio_client.Client``, asking the seed questions through the ``/ask`` endpoint (the same
queue and concurrency limit as the chat) until ``--seconds`` have passed. Every request loop
is bounded in count and time and stops by itself. Errors are counted by kind: a refusal by a
full queue ("Queue is full") apart from the others. With ``--api``, each client asks through the
HTTP API instead (``POST /api/ask``, one kept-alive connection each), and the answers' own
latency (inside the server) is reported beside the client's.

``--concurrency 1,2,3,4`` runs the load once per value of ``answer_concurrency`` (a server
started for each), which is how the default was chosen; ``--queue-size`` sets the queue.

    python bench/load.py                          # 20 clients, 60 s
    python bench/load.py --clients 100 --seconds 60 --out bench/results/load-100.json
    python bench/load.py --clients 20 --seconds 30 --concurrency 1,2,3,4
    python bench/load.py --api --clients 1 --seconds 30   # one API client: the API's own latency
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
QUEUE_FULL = "Queue is full"
CLIENT_TIMEOUT_S = 120.0  # a client gives up on a response after this


def client_loop(url: str, seconds: float, offset: int, latencies: list[float], errors: list[str],
                lock: threading.Lock, auth: tuple[str, str] | None = None) -> None:
    """One simulated user: connect, then ask questions back to back until the time is up."""
    from gradio_client import Client

    try:  # waits for the server as long as a browser would (gradio_client's own default: 20 s)
        client = Client(url, auth=auth, verbose=False, httpx_kwargs={"timeout": CLIENT_TIMEOUT_S})
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
                errors.append(str(ans)[:200] or type(ans).__name__)


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


def load(url: str, clients: int, seconds: float, auth: tuple[str, str] | None = None, api: bool = False) -> dict:
    """``clients`` threads asking questions of the server at ``url`` for ``seconds``; the figures.

    ``api``: through ``POST /api/ask`` (no login) instead of Gradio's ``/ask``.
    """
    latencies: list[float] = []
    pipeline: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    if api:  # warm: the first answers load what a question needs
        api_client_loop(url, 2.0, 0, [], [], threading.Lock())
    loop, extra = (api_client_loop, (pipeline,)) if api else (client_loop, (auth,))
    threads = [threading.Thread(target=loop, args=(url, seconds, i * 7, latencies, errors, lock, *extra),
                                daemon=True) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 300)
    wall = time.perf_counter() - t0
    full = sum(QUEUE_FULL in e for e in errors)
    return {"endpoint": "POST /api/ask" if api else "gradio /ask",
            "clients": clients, "seconds": seconds, "answered": len(latencies), "errors": len(errors),
            "queue_full": full, "error_samples": errors[:5], "p50_ms": round(percentile(latencies, 0.50), 1),
            "p95_ms": round(percentile(latencies, 0.95), 1), "p99_ms": round(percentile(latencies, 0.99), 1),
            "max_ms": round(max(latencies), 1) if latencies else float("nan"),
            "answers_per_s": round(len(latencies) / wall, 2), "wall_s": round(wall, 1),
            "threads_left": sum(t.is_alive() for t in threads),
            "pipeline_p50_ms": round(percentile(pipeline, 0.50), 1) if pipeline else None}


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used so far, from /proc (NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def run(clients: int, seconds: float, index: Path | None, concurrency: int | None = None,
        queue_size: int | None = None, api: bool = False) -> dict:
    """Start a server (``answer_concurrency`` and ``queue_size`` as given), run the load, return the figures."""
    from rag.config import Config
    from rag.indexing import Indexer

    with tempfile.TemporaryDirectory() as tmp:
        if index is None:
            index = Path(tmp) / "index"
            Indexer(Config(index_dir=str(index))).build([ROOT / "seeds"], progress=False)
        for name, value in (("RAG_ANSWER_CONCURRENCY", concurrency), ("RAG_QUEUE_SIZE", queue_size)):
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = str(value)
        port = free_port()
        server = start_server(index, port, Path(tmp) / "serve.log")
        try:
            cpu0 = cpu_seconds(server.pid)
            res = load(f"http://127.0.0.1:{port}/", clients, seconds, api=api)
            cpu = cpu_seconds(server.pid) - cpu0
        finally:
            server.terminate()
            server.wait(15)
    cfg = Config().replace(answer_concurrency=concurrency, queue_size=queue_size)
    # the server's own CPU time per answer does not depend on what else runs on the machine (its
    # wall-clock figures do): cores / CPU per answer bounds the answers per second of an idle machine
    per_answer = cpu * 1000 / res["answered"] if res["answered"] else float("nan")
    return {**res, "answer_concurrency": cfg.answer_concurrency, "queue_size": cfg.queue_size,
            "cpus": os.cpu_count(), "server_cpu_s": round(cpu, 1), "cpu_ms_per_answer": round(per_answer, 1),
            "cpu_bound_answers_per_s": round(os.cpu_count() * 1000 / per_answer, 1) if res["answered"] else 0.0,
            "load_average": round(os.getloadavg()[0], 1)}


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--index", type=Path, help="an existing index (default: seeds/ in a temporary folder)")
    parser.add_argument("--concurrency", help="answer_concurrency values to compare, e.g. 1,2,3,4 (default: the "
                                              "setting's)")
    parser.add_argument("--queue-size", type=int, help="queue_size of the server (default: the setting's)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    parser.add_argument("--api", action="store_true", help="ask through the HTTP API (POST /api/ask)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    values = [int(v) for v in args.concurrency.split(",")] if args.concurrency else [None]
    results = [run(args.clients, min(args.seconds, 600.0), args.index, v, args.queue_size, args.api) for v in values]
    print(f"{'clients':>8} {'seconds':>8} {'concur.':>8} {'queue':>6} {'answered':>9} {'errors':>7} {'full':>5} "
          f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'answers/s':>10} {'cpu ms/ans':>11} {'load':>5}")
    for res in results:
        print(f"{res['clients']:>8} {res['seconds']:>8.0f} {res['answer_concurrency']:>8} {res['queue_size']:>6} "
              f"{res['answered']:>9} {res['errors']:>7} {res['queue_full']:>5} {res['p50_ms']:>8.1f} "
              f"{res['p95_ms']:>8.1f} {res['p99_ms']:>8.1f} {res['answers_per_s']:>10.2f} "
              f"{res['cpu_ms_per_answer']:>11.1f} {res['load_average']:>5.1f}")
        if res["pipeline_p50_ms"] is not None:
            print(f"p50 of the answers' own latency_ms (retrieval and answer, in the server): "
                  f"{res['pipeline_p50_ms']} ms")
        for e in res["error_samples"]:
            print(f"error: {e}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results if len(results) > 1 else results[0], indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
