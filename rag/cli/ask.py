"""``rag ask``: answers with their sources, for a terminal or as Answer JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..answering.base import AnswerMode
from ..dates import day_range, parse_day
from ..errors import BadInput
from ..pipeline import RAG
from ..schema import Answer, Citation
from ..store.sqlite import Store, docs_under
from ..text.normalize import jsonl_lines
from .common import EXIT_BAD_INPUT, EXIT_OK, config_of, index_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``rag ask``."""
    a = sub.add_parser("ask", help="answer questions with cited passages",
                       description="Answer a question (or a file of questions) from the index.")
    a.add_argument("question", nargs="?", help="the question (omit with --questions)")
    a.add_argument("--questions", metavar="FILE",
                   help='JSONL (objects with "question") or plain text, one question a line; "-" for stdin')
    index_arg(a)
    a.add_argument("--json", action="store_true", help="print one Answer JSON object per line")
    a.add_argument("-k", type=int, metavar="N", help="passages to retrieve (default: top_k = 5)")
    a.add_argument("--doc", action="append", metavar="NAME",
                   help="restrict to a document (source, folder, id or title); repeatable")
    a.add_argument("--since", metavar="YYYY-MM-DD", help="only articles dated from this day on (included)")
    a.add_argument("--until", metavar="YYYY-MM-DD", help="only articles dated up to this day (included)")
    a.add_argument("--mode", choices=[m.value for m in AnswerMode],
                   help="extractive (quoted sentences, offline) or llm (RAG_LLM_BASE_URL + RAG_LLM_MODEL); "
                        "default: llm when an endpoint is configured")
    a.set_defaults(handler=cmd_ask)


def read_questions(path: str) -> list[str]:
    """Questions from a JSONL file (objects with "question") or plain text, one a line."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from None
    out = []
    for lineno, line in jsonl_lines(text):
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BadInput(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(obj.get("question"), str):
                raise BadInput(f'{path}:{lineno}: no "question" string')
            out.append(obj["question"])
        else:
            out.append(line)
    return out


def format_answer(ans: Answer) -> str:
    """An answer and its sources, for a terminal: the short answer first (when there is one), the
    quoted sentences, then each marker's title and date, its address, and its excerpt around the
    supporting sentence."""
    lines = ([f"→ {ans.short.text} [{ans.short.n}]"] if ans.short else []) + [ans.answer, ""]
    for c in ans.citations:
        lines.append(f"[{c.n}] {c.title}{dated(c)} ({c.source}, chars {c.start}-{c.end}, score {c.score:.2f})")
        if c.url and c.url != c.source:
            lines.append(f"    {c.url}")
        lines.append(f"    {excerpt_around(c)}")
    if ans.notice:
        lines.append(f"note: {ans.notice}")
    return "\n".join(lines)


def dated(c: Citation) -> str:
    """`` — 2026-01-31`` (`` (file date)`` when it is the file's time), or nothing when undated."""
    if not c.date:
        return ""
    return f" — {c.date}" + (" (file date)" if c.date_source == "file" else "")


def excerpt_around(c: Citation, width: int = 400) -> str:
    """At most ``width`` characters of the excerpt, centred on the supporting sentence when known."""
    lo, hi = 0, len(c.excerpt)
    if c.sentence_start is not None and c.sentence_end is not None:
        lo, hi = c.sentence_start - c.start, c.sentence_end - c.start
    pad = max(0, (width - (hi - lo)) // 2)
    a, b = max(0, lo - pad), min(len(c.excerpt), hi + pad)
    text = " ".join(c.excerpt[a:b].split())
    return ("…" if a > 0 else "") + text + ("…" if b < len(c.excerpt) else "")


def resolve_doc_names(store: Store, names: list[str]) -> tuple[list[str], list[str]]:
    """Document ids for ``--doc`` names, and the names that match nothing.

    A name is an id, a title, or a source or folder as ``rag index list`` shows it; a path that
    exists here also matches the documents read from it (or from below it), wherever the index
    was built from.
    """
    ids: list[str] = []
    unknown: list[str] = []
    docs = None
    for name in names:
        found = store.resolve_docs([name])
        if Path(name).exists():
            docs = docs if docs is not None else store.documents()
            found += docs_under(docs, [str(Path(name).resolve())])
        ids.extend(found)
        if not found:
            unknown.append(name)
    return sorted(set(ids)), unknown


def cmd_ask(args: argparse.Namespace) -> int:
    """``rag ask``."""
    if bool(args.question) == bool(args.questions):
        print("rag ask: give a QUESTION or --questions FILE (one of them)", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.questions and args.questions != "-" and not Path(args.questions).is_file():
        print(f"rag ask: no such file: {args.questions}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.k is not None and args.k < 1:
        print(f"rag ask: -k {args.k}: must be at least 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    since, until = day_range(parse_day(args.since, "--since"), parse_day(args.until, "--until"))
    questions = read_questions(args.questions) if args.questions else [args.question]
    rag = RAG(config_of(args))
    docs = None
    if args.doc:
        docs, unknown = resolve_doc_names(rag.retriever.store, args.doc)
        if unknown:
            print(f"rag ask: --doc {unknown[0]!r} matches no indexed document; give an id, a title, a folder "
                  f"or a source as `rag index list --index {rag.retriever.store.folder}` shows it", file=sys.stderr)
            return EXIT_BAD_INPUT
    for q in questions:
        ans = rag.ask(q, k=args.k, docs=docs, mode=args.mode, since=since, until=until)
        if args.json:
            print(json.dumps(ans.to_json(), ensure_ascii=False), flush=True)
        else:
            if len(questions) > 1:
                print(f"Q: {q}")
            print(format_answer(ans) + ("\n" if len(questions) > 1 else ""), flush=True)
    return EXIT_OK
