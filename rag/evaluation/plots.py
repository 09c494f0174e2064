"""Plots of ``rag eval`` reports (matplotlib, Agg backend): the hit@k curve and latencies.

matplotlib is the optional extra ``rag[eval]``; without it the Markdown report has no plots.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

log = logging.getLogger(__name__)
COLORS = {"hybrid": "#1b6ca8", "bm25": "#e07b39", "dense": "#7a9a3a", "answer": "#6d4c9f"}
STYLES = {"hybrid": ("-", "o", 3), "bm25": ("--", "s", 2), "dense": (":", "^", 1)}  # line, marker, z-order


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed (pip install 'rag[eval]'): the report has no plots")
        return None
    return plt


def hit_curve_png(report: Mapping[str, Any], path: Path) -> Path | None:
    """hit@k for k = 1..10, one line per retrieval mode, MRR@10 in the legend."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    ks = list(range(1, 11))
    lows = []
    for i, (mode, table) in enumerate(report["modes"].items()):
        curve = table.get("hit_curve") or []
        if not curve:
            continue
        lows.append(min(curve))
        line, marker, z = STYLES.get(mode, ("-", "o", 1))
        ax.plot(ks, curve, ls=line, marker=marker, ms=5, lw=2, color=COLORS.get(mode), zorder=z,
                label=f"{mode}  (MRR@10 {table['mrr@10']:.3f}, hit@5 {table['hit@5']:.3f})")
        ax.annotate(f"{curve[-1]:.3f}", (10, curve[-1]), textcoords="offset points", xytext=(6, 5 - 9 * i),
                    fontsize=8, color=COLORS.get(mode))  # staggered: close curves end at close values
    ax.set_xticks(ks)
    ax.set_xlim(0.7, 11.2)
    ax.set_ylim(max(0.0, min(lows, default=0.0) - 0.05), 1.01)
    ax.set_xlabel("k (passages looked at)")
    ax.set_ylabel("share of questions whose document is found")
    ax.set_title(f"{report['dataset']}: gold document in the first k ({report['with_gold_document']} questions)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def latency_png(report: Mapping[str, Any], results: Sequence[Any], path: Path) -> Path | None:
    """Histogram of per-question latency (answers, or each retrieval mode), p50 and p95 marked."""
    plt = _pyplot()
    if plt is None:
        return None
    import numpy as np

    series = {}
    for name in ("answer", *report["modes"]):
        values = [r.latency_ms[name] for r in results if name in r.latency_ms]
        if values:
            series[name] = np.asarray(values)
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    low = max(0.1, min(float(v.min()) for v in series.values()))
    high = max(float(v.max()) for v in series.values())
    bins = np.geomspace(low * 0.9, high * 1.1 + 1e-6, 40)
    for name, values in series.items():
        p50, p95 = np.percentile(values, [50, 95])
        ax.hist(np.clip(values, bins[0], bins[-1]), bins=bins, histtype="step", lw=1.8, color=COLORS.get(name),
                label=f"{name}: p50 {p50:.0f} ms, p95 {p95:.0f} ms")
        ax.axvline(p95, color=COLORS.get(name), lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds per question (log scale; dashed: p95)")
    ax.set_ylabel("questions")
    ax.set_title(f"{report['dataset']}: latency", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
