"""Small measuring tools shared by the benchmarks: timers, percentiles, ranks, memory."""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np


@dataclass
class Timer:
    """Seconds spent in a ``with`` block (``timer.seconds``)."""

    seconds: float = 0.0
    _t0: float = field(default=0.0, repr=False)

    def __enter__(self) -> "Timer":
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._t0


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50 and p95 of durations, in milliseconds."""
    if not len(seconds):
        return {"p50": float("nan"), "p95": float("nan")}
    ms = np.asarray(seconds) * 1000
    return {"p50": round(float(np.percentile(ms, 50)), 2), "p95": round(float(np.percentile(ms, 95)), 2)}


def latencies(fn: Callable[[Any], object], queries: Sequence[Any], warmup: int = 3) -> list[float]:
    """Seconds taken by ``fn(q)`` for each query, after ``warmup`` untimed calls."""
    for q in queries[:warmup]:
        fn(q)
    out = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        out.append(time.perf_counter() - t0)
    return out


def rank_metrics(ranked: Sequence[Sequence[str]], gold: Sequence[str], k: int = 10) -> dict[str, float]:
    """hit@1, hit@10 and MRR@10 of ranked document ids against one gold id per question.

    A question scores at the first position holding its gold document (repeats of a document
    in the ranking count as positions, as the evaluation contract does for chunks).
    """
    rr, hit1, hitk = [], 0, 0
    for docs, g in zip(ranked, gold):
        rank = next((i for i, d in enumerate(docs[:k], 1) if d == g), None)
        rr.append(1.0 / rank if rank else 0.0)
        hit1 += rank == 1
        hitk += rank is not None
    n = max(len(rr), 1)
    return {"questions": len(rr), "hit@1": round(hit1 / n, 4), f"hit@{k}": round(hitk / n, 4),
            f"mrr@{k}": round(float(np.mean(rr)) if rr else 0.0, 4)}


def rss_mb() -> float:
    """Resident memory of this process, in MB (Linux ``/proc``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def folder_mb(folder: Path) -> float:
    """Bytes under ``folder``, in MB."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 1e6


def emit(out: dict, path: Path | None) -> None:
    """Print a run's figures as JSON, and write them to ``path`` when given."""
    text = json.dumps(out, indent=1)
    print(text)
    if path:
        path.write_text(text + "\n", encoding="utf-8")


def machine() -> dict:
    """CPU count, model name and load average when measured (the machine may be shared)."""
    cpu = ""
    try:
        cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                    if ln.startswith("model name")), "")
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "load_average": [round(x, 2) for x in os.getloadavg()]}


@contextmanager
def quiet() -> Iterator[None]:
    """Silence deprecation and user warnings of third-party libraries (LangChain, transformers)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
