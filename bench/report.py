"""The benchmark's summary: rows of (measure, value, goal, met), printed as a table, and a plot."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Row:
    """One figure of the summary; ``met`` is None where the issue sets no goal."""

    section: str
    measure: str
    value: str
    goal: str = ""
    met: bool | None = None


def _pct(x: float) -> str:
    return f"{x * 100:+.1f} %"


def _build_rows(build: dict) -> list[Row]:
    rows = []
    for name, r in build.get("encoders", {}).items():
        rows += [
            Row("build", f"{name}: raw encode (the limit)", f"{r['raw_chunks_per_s']} chunks/s"),
            Row("build", f"{name}: rag index build, {r['chunks']} chunks", f"{r['build_chunks_per_s']} chunks/s",
                "≥ 60", r["build_chunks_per_s"] >= 60),
            Row("build", f"{name}: pipeline overhead over raw encode", _pct(r["pipeline_overhead"]), "≤ +10 %",
                r["pipeline_overhead"] <= 0.10),
            Row("build", f"{name}: raw encodes / builds, seconds (best of each compared)",
                f"{' '.join(map(str, r['raw_encode_s']))} / {' '.join(map(str, r.get('builds_s', [r['build_s']])))}"),
            Row("build", f"{name}: best build's time besides encoding (chunking, SQLite, BM25, FAISS)",
                f"{r.get('build_other_s', r['build_s'] - r['build_encode_s']):.2f} s"),
            Row("rebuild", f"{name}: unchanged rebuild / full build (in-process)", f"{r['unchanged_vs_full'] * 100:.2f} %",
                "≤ 5 %", r["unchanged_vs_full"] <= 0.05),
            Row("quality", f"{name}: PIAF-dev MRR@10 hybrid / dense",
                f"{r['quality']['hybrid']['mrr@10']:.3f} / {r['quality']['dense']['mrr@10']:.3f}"),
        ]
    cmp_ = build.get("int8_vs_torch")
    if cmp_:
        rows += [
            Row("encoder", "onnx-int8 / torch raw encoding speed", f"{cmp_['raw_speedup']:.2f}x", "≥ 2x",
                cmp_["raw_speedup"] >= 2),
            Row("encoder", "onnx-int8 / torch full build speed", f"{cmp_['build_speedup']:.2f}x"),
            Row("encoder", "onnx-int8 − torch MRR@10 (hybrid, dense)",
                f"{cmp_['hybrid_mrr@10_delta']:+.4f}, {cmp_['dense_mrr@10_delta']:+.4f}", "within ±0.01",
                abs(cmp_["hybrid_mrr@10_delta"]) <= 0.01 and abs(cmp_["dense_mrr@10_delta"]) <= 0.01),
        ]
    cli = build.get("cli")
    if cli:
        rows += [Row("rebuild", "rag index build (new process): full / unchanged",
                     f"{cli['full_s']} s / {cli['unchanged_s']} s ({cli['unchanged_vs_full'] * 100:.1f} %)", "≤ 5 %",
                     cli["unchanged_vs_full"] <= 0.05)]
    return rows


def summary_rows(results: dict) -> list[Row]:
    """Every figure the issue asks for, with its goal."""
    rows = _build_rows(results.get("build", {}))
    up = results.get("update")
    if up:
        n = up["documents"]
        rows += [Row("rebuild", f"one changed article in {n:,} documents (in-process)", f"{up['one_changed_s']} s",
                     "≤ 3 s", up["one_changed_s"] <= 3),
                 Row("rebuild", f"one changed article in {n:,} documents (new process)", f"{up['one_changed_cli_s']} s"),
                 Row("rebuild", f"nothing changed in {n:,} documents (in-process)", f"{up['unchanged_s']} s")]
        if "unchanged_again_s" in up:
            rows.append(Row("rebuild", f"nothing changed in {n:,} documents, files settled (in-process)",
                            f"{up['unchanged_again_s']} s"))
    for r in results.get("scale", {}).get("sizes", []):
        big = r["chunks"] >= 100_000
        kind = r["vectors"]["kind"]
        rows += [
            Row("latency", f"{r['chunks']:,} chunks ({kind}): retrieval p50 / p95",
                f"{r['retrieval_ms']['p50']} / {r['retrieval_ms']['p95']} ms", "p50 ≤ 30 ms" if big else "",
                r["retrieval_ms"]["p50"] <= 30 if big else None),
            Row("latency", f"{r['chunks']:,} chunks ({kind}): full answer p50 / p95",
                f"{r['answer_ms']['p50']} / {r['answer_ms']['p95']} ms", "p50 ≤ 80 ms" if big else "",
                r["answer_ms"]["p50"] <= 80 if big else None),
            Row("memory", f"{r['chunks']:,} chunks: memory / disk per chunk",
                f"{r['memory_per_chunk_kb']} KB / {r['disk_per_chunk_kb']} KB"),
        ]
    lc = results.get("langchain")
    if lc and "langchain" in lc:
        rows += [
            Row("langchain", "build time, rag / LangChain FAISS", f"{lc['build_time_ratio']:.2f}", "≤ 0.5",
                lc["build_time_ratio"] <= 0.5),
            Row("langchain", "query latency p50, rag / LangChain FAISS", f"{lc['query_latency_ratio']:.2f}", "≤ 0.5",
                lc["query_latency_ratio"] <= 0.5),
            Row("langchain", "PIAF-dev MRR@10, rag vs LangChain FAISS",
                f"{lc['rag']['quality']['mrr@10']:.3f} vs {lc['langchain']['quality']['mrr@10']:.3f}", "ahead",
                lc["mrr@10_delta"] > 0),
        ]
    ann = results.get("ann")
    if ann:
        for name, r in ann.items():
            if isinstance(r, dict) and "recall@10" in r:
                rows.append(Row("ann", f"IVF recall@10 vs exact, {name} ({r['vectors']:,} vectors, nprobe "
                                       f"{r['nprobe']}/{r['nlist']})", f"{r['recall@10']:.3f}", "≥ 0.95",
                                r["recall@10"] >= 0.95))
    return rows


def markdown(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    mark = {True: "yes", False: "**no**", None: ""}
    lines = ["| section | measure | value | goal | met |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r.section} | {r.measure} | {r.value} | {r.goal} | {mark[r.met]} |" for r in rows]
    return "\n".join(lines) + "\n"


def as_json(rows: list[Row]) -> list[dict]:
    """The rows as plain dictionaries."""
    return [asdict(r) for r in rows]


def plot(results: dict, path: Path) -> None:
    """Three panels: latency by size, encoding throughput, IVF recall by cells visited."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    sizes = results.get("scale", {}).get("sizes", [])
    ax = axes[0]
    if sizes:
        x = [r["chunks"] for r in sizes]
        for key, label, color in (("retrieval_ms", "retrieval", "tab:blue"), ("answer_ms", "full answer", "tab:orange")):
            ax.plot(x, [r[key]["p50"] for r in sizes], "o-", color=color, label=f"{label} p50")
            ax.plot(x, [r[key]["p95"] for r in sizes], "o--", color=color, alpha=0.6, label=f"{label} p95")
        ax.axhline(30, color="tab:blue", lw=0.8, ls=":")
        ax.axhline(80, color="tab:orange", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.legend(fontsize=8)
    ax.set(title="Query latency (goals dotted)", xlabel="chunks in the index", ylabel="ms")
    ax = axes[1]
    bars = []
    for name, r in results.get("build", {}).get("encoders", {}).items():
        bars += [(f"{name}\nraw encode", r["raw_chunks_per_s"]), (f"{name}\nrag build", r["build_chunks_per_s"])]
    lc = results.get("langchain", {}).get("langchain")
    if lc:
        bars.append(("LangChain\nFAISS build", lc["chunks"] / lc["build_s"]))
    if bars:
        ax.bar(range(len(bars)), [b[1] for b in bars], color="tab:green")
        ax.set_xticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
    ax.set(title="Indexing throughput, PIAF-dev", ylabel="chunks / s")
    ax = axes[2]
    for name, r in results.get("ann", {}).items():
        if isinstance(r, dict) and "sweep" in r:
            probes = sorted(r["sweep"], key=int)
            ax.plot([int(p) for p in probes], [r["sweep"][p]["recall@10"] for p in probes], "o-",
                    label=f"{name} ({r['vectors']:,}, nlist {r['nlist']})")
            ax.plot([r["nprobe"]], [r["recall@10"]], "k*", ms=12)
    ax.axhline(0.95, color="gray", lw=0.8, ls=":")
    ax.set_xscale("log", base=2)
    ax.set(title="IVF recall@10 vs exact (★ = the product's nprobe)", xlabel="cells visited (nprobe)", ylabel="recall@10")
    ax.legend(fontsize=8)
    load = results.get("machine", {}).get("load_average")
    fig.suptitle(f"rag benchmarks — {results.get('machine', {}).get('cpus')} CPUs, load average at start {load}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
