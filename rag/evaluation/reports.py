"""Reports of ``rag eval``: terminal tables, JSON, Markdown with plots, comparisons, thresholds."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import BadInput
from ..retrieval.fusion import Mode
from .metrics import HIT_KS
from .plots import hit_curve_png, latency_png
from .runner import QuestionResult, result_rows

RETRIEVAL_KEYS = [f"hit@{k}" for k in HIT_KS] + ["mrr@10"]
SECTIONS = {"retrieval": RETRIEVAL_KEYS, "answer": ["contains", "f1", "citation_precision", "short_exact", "short_f1"],
            "abstention": ["abstained", "false_abstention", "unanswerable"], "latency_ms": ["p50", "p95"]}
MODES = tuple(m.value for m in Mode)
LOWER_IS_BETTER = {"abstention.false_abstention", "latency_ms.p50", "latency_ms.p95"}


# -- metric names ----------------------------------------------------------------------------
def flatten(report: Mapping[str, Any]) -> dict[str, float | None]:
    """The report's metrics by dotted name: ``retrieval.mrr@10``, ``modes.bm25.hit@5``..."""
    out: dict[str, float | None] = {}
    for section, keys in SECTIONS.items():
        for key in keys:
            if key in report.get(section, {}):
                out[f"{section}.{key}"] = report[section][key]
    for mode, table in report.get("modes", {}).items():
        for key in RETRIEVAL_KEYS:
            out[f"modes.{mode}.{key}"] = table.get(key)
        for key in ("p50", "p95"):
            out[f"modes.{mode}.latency_ms.{key}"] = table.get("latency_ms", {}).get(key)
    return out


def metric_name(name: str) -> str:
    """The full name of a metric (``mrr@10`` -> ``retrieval.mrr@10``); ValueError naming it if unknown."""
    known = [f"{s}.{k}" for s, keys in SECTIONS.items() for k in keys]
    known += [f"modes.{m}.{k}" for m in MODES for k in RETRIEVAL_KEYS]
    if name in known:
        return name
    matches = [k for k in known[: sum(map(len, SECTIONS.values()))] if k.endswith("." + name)]
    if len(matches) == 1:
        return matches[0]
    raise BadInput(f"unknown metric {name!r}; known: {', '.join(known[:12])}, modes.MODE.hit@k ...")


def parse_thresholds(specs: Sequence[str]) -> dict[str, float]:
    """``["retrieval.mrr@10=0.8", ...]`` -> ``{"retrieval.mrr@10": 0.8}``; ValueError naming a bad one."""
    out = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or number is None:
            raise BadInput(f"--fail-under {spec!r}: expected METRIC=VALUE, e.g. retrieval.mrr@10=0.8")
        full = metric_name(name.strip())
        if full in LOWER_IS_BETTER or full.endswith(".unanswerable"):
            raise BadInput(f"--fail-under {spec!r}: {full} is not a score where higher is better")
        out[full] = number
    return out


def check_thresholds(report: Mapping[str, Any], thresholds: Mapping[str, float]) -> list[str]:
    """Messages for every threshold not met (a metric this run did not measure fails too)."""
    values = flatten(report)
    failed = []
    for name, floor in thresholds.items():
        value = values.get(name)
        if value is None:
            failed.append(f"{name} was not measured in this run (threshold {floor})")
        elif value < floor:
            failed.append(f"{name} = {value:.4f} is under the threshold {floor}")
    return failed


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a JSON report written by ``rag eval --out`` (ValueError naming the file if it is not one)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"--compare {path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"--compare {path}: not a JSON report ({exc})") from None
    if not isinstance(data, dict) or "retrieval" not in data:
        raise BadInput(f'--compare {path}: not a rag eval report (no "retrieval" key)')
    return data


# -- text tables -----------------------------------------------------------------------------
def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _rows(header: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool = False) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip() for r in [header, *rows])


def mode_rows(report: Mapping[str, Any]) -> list[list[str]]:
    """One row per retrieval mode: hit@k, MRR@10, latency."""
    return [[mode, *(_fmt(t.get(k)) for k in RETRIEVAL_KEYS), _fmt(t["latency_ms"]["p50"], 1),
             _fmt(t["latency_ms"]["p95"], 1)] for mode, t in report["modes"].items()]


def answer_row(report: Mapping[str, Any]) -> list[str]:
    """Answer and abstention metrics, and answer latency."""
    a, b, lat = report["answer"], report["abstention"], report["latency_ms"]
    return [_fmt(a["contains"]), _fmt(a["f1"]), _fmt(a.get("short_exact")), _fmt(a.get("short_f1")),
            _fmt(a["citation_precision"]), _fmt(b["abstained"]), _fmt(b["false_abstention"]), _fmt(lat["p50"], 1),
            _fmt(lat["p95"], 1)]


MODE_HEADER = ["retriever", *RETRIEVAL_KEYS, "p50 ms", "p95 ms"]
ANSWER_HEADER = ["contains", "f1", "short exact", "short f1", "citation precision", "abstained (unanswerable)",
                 "false abstention", "p50 ms", "p95 ms"]


def summary_table(report: Mapping[str, Any]) -> str:
    """What ``rag eval`` prints: the dataset, retrieval per mode, answers."""
    idx = report["index"]
    head = (f"{report['dataset']}: {report['questions']} questions ({report['answerable']} answerable, "
            f"{report['abstention']['unanswerable']} unanswerable), {_n(idx['documents'], 'document')}, "
            f"{_n(idx['chunks'], 'chunk')}, {report.get('seconds', 0)} s")
    parts = [head, "", _rows(MODE_HEADER, mode_rows(report))]
    if report["answer"]["contains"] is not None or report["abstention"]["abstained"] is not None:
        parts += ["", f"answers (k={report['k']}):", _rows(ANSWER_HEADER, [answer_row(report)])]
    return "\n".join(parts)


def compare_table(old: Mapping[str, Any], new: Mapping[str, Any], markdown: bool = False) -> str:
    """Each metric of both reports: old, new and the difference (marked better or worse)."""
    a, b = flatten(old), flatten(new)
    rows = []
    for name in [k for k in b if k in a] + [k for k in a if k not in b]:
        x, y = a.get(name), b.get(name)
        if x is None and y is None:
            continue
        diff, mark = "", ""
        if x is not None and y is not None:
            d = y - x
            digits = 1 if "latency" in name else 3
            diff = f"{d:+.{digits}f}"
            better = d < 0 if name.endswith(tuple(LOWER_IS_BETTER)) or ".latency_ms." in name else d > 0
            mark = "" if abs(d) < 10 ** -digits / 2 else ("better" if better else "worse")
        digits = 1 if "latency" in name else 3
        rows.append([name, _fmt(x, digits), _fmt(y, digits), diff, mark])
    title = f"against {old.get('dataset', '?')} of {old.get('created', '?')}:"
    return title + "\n" + _rows(["metric", "old", "new", "diff", ""], rows, markdown)


# -- files -----------------------------------------------------------------------------------
def write_json(report: dict[str, Any], results: list[QuestionResult], path: Path) -> None:
    """The JSON report at ``path`` and the per-question details next to it (``.questions.jsonl``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    details = path.with_suffix(".questions.jsonl")
    report["details"] = details.name
    path.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    with details.open("w", encoding="utf-8") as fh:
        for row in result_rows(results):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_markdown(report: Mapping[str, Any], results: list[QuestionResult], path: Path,
                   old: Mapping[str, Any] | None = None) -> list[Path]:
    """A Markdown report with plots (PNG files next to it); returns the plot files written."""

    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.with_suffix("")
    plots = [hit_curve_png(report, stem.with_name(stem.name + "_hits.png")),
             latency_png(report, results, stem.with_name(stem.name + "_latency.png"))]
    idx, abst = report["index"], report["abstention"]
    lines = [f"# Evaluation: {_md(report['dataset'])}", "",
             f"{report['questions']} questions ({report['answerable']} answerable, {abst['unanswerable']} that the "
             f"corpus cannot answer) over {_n(idx['documents'], 'document')} cut into {_n(idx['chunks'], 'chunk')}. "
             f"Retrieval looks at the first 10 passages; answers use k = {report['k']}. "
             f"Run of {report['created']}, {report.get('seconds', 0)} s.", "",
             "## Retrieval", "",
             "A question counts as found at k when a passage of its gold document is among the first k.", "",
             _rows(MODE_HEADER, mode_rows(report), markdown=True), ""]
    if plots[0]:
        lines += [f"![hit@k for k = 1..10]({plots[0].name})", ""]
    lines += ["## Answers", ""]
    if report["answer"]["contains"] is None and abst["abstained"] is None:
        lines += ["Not measured (retrieval only).", ""]
    else:
        lines += [_rows(ANSWER_HEADER, [answer_row(report)], markdown=True), ""]
    if plots[1]:
        lines += [f"![latency per question]({plots[1].name})", ""]
    if old is not None:
        lines += ["## Compared with the previous report", "", compare_table(old, report, markdown=True), ""]
    lines += _missed(report, results)
    cfg = report["config"]
    keys = ("model", "chunk_tokens", "chunk_overlap", "title_tokens", "candidates", "bm25_weight", "doc_weight", "top_k")
    lines += ["## Settings", "", ", ".join(f"`{k}` = {cfg[k]}" for k in keys if k in cfg) + ".", ""]
    if report.get("command"):
        lines += ["Reproduce with:", "", "```bash", report["command"], "```", ""]
    lines += [f"Index: `{idx['folder']}`" + (" (cached)" if idx.get("cached") else "") + ".", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return [p for p in plots if p]


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _md(text: str) -> str:
    """Text for a Markdown table cell: no HTML (document text is data), no cell breaks."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _missed(report: Mapping[str, Any], results: list[QuestionResult], limit: int = 10) -> list[str]:
    mode = report["retrieval_mode"]
    missed = [r for r in results if r.gold and (r.ranks.get(mode) is None or r.ranks[mode] >= 5)]
    if not missed:
        return []
    rows = [[_md(r.question), _md(" / ".join(r.answers)), "not in the first 10" if r.ranks[mode] is None
             else f"rank {r.ranks[mode] + 1}", _md(r.first.get(mode, ""))] for r in missed[:limit]]
    return [f"## Questions whose document is not in the first 5 ({len(missed)}; the first {len(rows)})", "",
            _rows(["question", "expected answer", "gold document", "first passage (title, source)"], rows,
                  markdown=True), ""]
