"""Command line: ``rag index build|status|list|remove``, ``rag ask``, ``rag eval``, ``rag serve``.

Exit codes: 0 success; 1 the work failed; 2 bad usage or bad input (unknown path, unreadable
or skipped file, index built with another model). Every error names the file or value at fault.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import unicodedata
from pathlib import Path
from typing import Sequence

from . import __version__, chats_cli
from .config import ConfigError, load_config
from .loading import PathNotFound
from .store import IndexBusy, IndexCorrupt, IndexMismatch, IndexMissing, Store, docs_under
from .text import jsonl_lines

log = logging.getLogger("rag")
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

EPILOG = """\
examples:
  rag index build                       index seeds/ into index/
  rag index build seeds/ more/ --index /data/idx
  rag index status --json
  rag ask "Qui est le ministre iranien des Affaires étrangères ?"
  rag ask --questions questions.txt --json > answers.jsonl
  rag eval eval/seed_qa.jsonl --docs seeds/ ../shared/data/piaf-dev.json
  rag serve --port 7860

settings come from rag.toml and RAG_* environment variables (see README, "Configuration").
"""


def _index_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", metavar="DIR", help="index folder (default: index/, or RAG_INDEX_DIR)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``rag`` command."""
    parser = argparse.ArgumentParser(
        prog="rag", description="Offline question answering over your articles, with cited sources.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"rag {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (default: ./rag.toml if present)")
    parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_index = sub.add_parser("index", help="build and inspect the index", description="Build and inspect the index.")
    isub = p_index.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    b = isub.add_parser("build", help="add new, re-index changed and remove deleted articles",
                        description="Index the articles under PATH (files or folders, recursively): .txt .md .html "
                                    ".pdf .jsonl and SQuAD-format .json. Incremental: unchanged articles are not "
                                    "encoded again (except once, from their stored text, when the index's vectors "
                                    "were made by an earlier int8 encoder recipe). Exit 2 if a file was skipped "
                                    "(the rest is indexed).")
    b.add_argument("paths", nargs="*", metavar="PATH", help="files or folders (default: seeds/)")
    _index_arg(b)
    b.add_argument("--rebuild", action="store_true", help="start over (after changing the model or chunking)")
    b.add_argument("--no-prune", action="store_true", help="keep indexed articles whose file is gone")
    b.add_argument("--wait", type=float, default=0.0, metavar="SEC",
                   help="wait up to SEC seconds for another build to finish (default: refuse at once)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar, summary only")
    s = isub.add_parser("status", help="documents, chunks, model, dimensions, last update")
    _index_arg(s)
    s.add_argument("--json", action="store_true", help="print JSON (keys: documents, chunks, model, dimensions, updated)")
    ls = isub.add_parser("list", help="the indexed documents")
    _index_arg(ls)
    ls.add_argument("--json", action="store_true", help="print JSON lines")
    vf = isub.add_parser("verify", help="check the index and say what is damaged",
                         description="Check the SQLite file, manifest, search files, chunk offsets and cache. "
                                     "Exit 0 when sound, 1 when damaged (run rag index repair).")
    _index_arg(vf)
    vf.add_argument("--json", action="store_true", help="print the problems as JSON")
    rp = isub.add_parser("repair", help="rebuild damaged search files and manifest",
                         description="Rebuild the search files and manifest from the documents kept in SQLite "
                                     "(vectors from the cache). If the SQLite file itself is lost, it is moved "
                                     "aside and the articles under PATH are indexed again.")
    rp.add_argument("paths", nargs="*", metavar="PATH", help="article folders (needed only if SQLite is lost)")
    _index_arg(rp)
    rm = isub.add_parser("remove", help="remove documents by source, folder, id or title")
    rm.add_argument("names", nargs="+", metavar="NAME")
    _index_arg(rm)

    a = sub.add_parser("ask", help="answer questions with cited passages",
                       description="Answer a question (or a file of questions) from the index.")
    a.add_argument("question", nargs="?", help="the question (omit with --questions)")
    a.add_argument("--questions", metavar="FILE",
                   help='JSONL (objects with "question") or plain text, one question a line; "-" for stdin')
    _index_arg(a)
    a.add_argument("--json", action="store_true", help="print one Answer JSON object per line")
    a.add_argument("-k", type=int, metavar="N", help="passages to retrieve (default: top_k = 5)")
    a.add_argument("--doc", action="append", metavar="NAME", help="restrict to a document (source, folder, id or title); repeatable")
    a.add_argument("--mode", choices=["extractive", "llm"],
                   help="extractive (quoted sentences, offline) or llm (RAG_LLM_BASE_URL + RAG_LLM_MODEL); "
                        "default: llm when an endpoint is configured")

    e = sub.add_parser("eval", help="measure retrieval and answers on a Q&A set",
                       description="Evaluate on a Q&A set: JSONL (id, question, answers, doc) or SQuAD-format JSON.")
    e.add_argument("qa_file", metavar="QA_FILE")
    e.add_argument("--docs", nargs="+", metavar="PATH",
                   help="index these for the run (a SQuAD .json adds its paragraphs); kept in a cache folder, "
                        "or in --index DIR if given, so later runs encode only what changed")
    _index_arg(e)
    e.add_argument("--out", metavar="REPORT.json", help="write the JSON report")
    e.add_argument("--markdown", metavar="REPORT.md", help="write a Markdown report with plots")
    e.add_argument("-k", type=int, default=None, metavar="N", help="passages per question for the answer (default: top_k)")
    e.add_argument("--limit", type=int, metavar="N", help="only the first N questions")
    e.add_argument("--mode", choices=["hybrid", "bm25", "dense", "all"], default="hybrid",
                   help="retriever to evaluate; 'all' reports the three side by side")
    e.add_argument("--compare", metavar="OLD.json", help="print the difference per metric against an older report")
    e.add_argument("--fail-under", action="append", default=[], metavar="METRIC=VALUE",
                   help="exit 1 if METRIC (e.g. retrieval.mrr@10) is below VALUE; repeatable")
    e.add_argument("--retrieval-only", action="store_true", help="measure retrieval only, do not answer")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    sv = sub.add_parser("serve", help="serve the web chat and its HTTP API",
                        description="Serve the Gradio web chat, and beside it the HTTP API (/api, schema at "
                                    "/api/openapi.json) and an OpenAI-compatible /v1 (see docs/api.md).")
    _index_arg(sv)
    sv.add_argument("--host", help="interface to listen on (default: 127.0.0.1; 0.0.0.0 exposes it)")
    sv.add_argument("--port", type=int, help="port (default: 7860)")
    sv.add_argument("--auth", metavar="USER:PASSWORD", help="require a login (or RAG_AUTH); several separated by ','; "
                    "the HTTP API (/api, /v1) takes the same logins, or a bearer token of RAG_API_TOKEN")
    chats_cli.add_parser(sub)
    return parser


def _config(args: argparse.Namespace):
    cfg = load_config(args.config)
    return cfg.replace(index_dir=getattr(args, "index", None))


def printable(name: str) -> str:
    """A file name fit for one terminal line: control characters shown as escapes (``\\n``)."""
    return "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) == "Cc" else c for c in name)


def cmd_build(args: argparse.Namespace) -> int:
    """``rag index build``."""
    from .indexer import Indexer

    cfg = _config(args)
    paths = args.paths or ["seeds"]
    report = Indexer(cfg).build(paths, rebuild=args.rebuild, prune=not args.no_prune, wait=args.wait,
                                progress=not args.quiet)
    limit = None if args.verbose else 10
    for label, names in (("added", report.added), ("updated", report.updated), ("removed", report.removed)):
        for name in names[:limit]:
            print(f"{label}: {printable(name)}")
        if limit and len(names) > limit:
            print(f"{label}: ... and {len(names) - limit} more (-v lists all)")
    if report.unchanged:
        shown = ", ".join(report.unchanged[:5]) + (f" and {len(report.unchanged) - 5} more" if len(report.unchanged) > 5 else "")
        print(f"unchanged: {len(report.unchanged)} ({shown})")
    for name in report.kept:
        print(f"kept previous version: {printable(name)} (its file could not be read this time)")
    for s in report.skipped:
        print(f"skipped: {printable(s.path)}: {s.reason}", file=sys.stderr)
    print(report.summary())
    if report.skipped:
        print(f"rag: {len(report.skipped)} file(s) or record(s) skipped, see above; the rest is indexed", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """``rag index status``."""
    status = Store(_config(args).index_dir).status()
    if args.json:
        print(json.dumps(status, ensure_ascii=False))
    else:
        if status["encoder"] != "torch":
            status["encoder"] = f"{status['encoder']} (recipe {status['encoder_recipe']})"
        for key in ("index", "documents", "chunks", "model", "encoder", "dimensions", "vector_search", "updated",
                    "languages"):
            print(f"{key + ':':14} {status[key]}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    """``rag index list``."""
    for d in Store(_config(args).index_dir).documents():
        if args.json:
            print(json.dumps({k: d[k] for k in ("id", "source", "title", "lang", "chunks", "indexed")}, ensure_ascii=False))
        else:
            print(f"{d['id']}  {d['lang']}  {d['chunks']:4d} chunks  {d['source']}  {d['title']}")
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    """``rag index remove``."""
    from .indexer import Indexer

    report = Indexer(_config(args)).remove(args.names)
    if not report.removed:
        print(f"rag: no indexed document matches {', '.join(args.names)} (see: rag index list)", file=sys.stderr)
        return EXIT_BAD_INPUT
    for name in report.removed:
        print(f"removed: {name}")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    """``rag index verify``."""
    from .verify import verify

    cfg = _config(args)
    problems = verify(cfg.index_dir, cfg)
    if args.json:
        print(json.dumps({"ok": not problems, "problems": [p._asdict() for p in problems]}, ensure_ascii=False))
    elif problems:
        for p in problems:
            print(f"{p.part}: {p.message}")
        print(f"rag: {cfg.index_dir}/ is damaged; repair with: rag index repair --index {cfg.index_dir}", file=sys.stderr)
    else:
        print(f"{cfg.index_dir}/: ok")
    return EXIT_FAILED if problems else EXIT_OK


def cmd_repair(args: argparse.Namespace) -> int:
    """``rag index repair``."""
    from .verify import repair, verify

    cfg = _config(args)
    report = repair(cfg.index_dir, cfg, args.paths)
    print(f"repaired: {len(report.updated) + len(report.added)} documents re-indexed, "
          f"{report.encoded} chunks encoded, {report.cached} from cache")
    left = verify(cfg.index_dir, cfg)
    for p in left:
        print(f"still wrong: {p.part}: {p.message}", file=sys.stderr)
    return EXIT_FAILED if left else EXIT_OK


def read_questions(path: str) -> list[str]:
    """Questions from a JSONL file (objects with "question") or plain text, one a line."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    out = []
    for lineno, line in jsonl_lines(text):
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(obj.get("question"), str):
                raise ValueError(f'{path}:{lineno}: no "question" string')
            out.append(obj["question"])
        else:
            out.append(line)
    return out


def format_answer(ans) -> str:
    """An answer and its sources, for a terminal: each marker's excerpt, around its supporting sentence."""
    lines = [ans.answer, ""]
    for c in ans.citations:
        lines.append(f"[{c.n}] {c.title} ({c.source}, chars {c.start}-{c.end}, score {c.score:.2f})")
        lines.append(f"    {_excerpt_around(c)}")
    if ans.notice:
        lines.append(f"note: {ans.notice}")
    return "\n".join(lines)


def _excerpt_around(c, width: int = 400) -> str:
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
    from .pipeline import RAG

    if bool(args.question) == bool(args.questions):
        print("rag ask: give a QUESTION or --questions FILE (one of them)", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.questions and args.questions != "-" and not Path(args.questions).is_file():
        print(f"rag ask: no such file: {args.questions}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.k is not None and args.k < 1:
        print(f"rag ask: -k {args.k}: must be at least 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    questions = read_questions(args.questions) if args.questions else [args.question]
    rag = RAG(_config(args))
    docs = None
    if args.doc:
        docs, unknown = resolve_doc_names(rag.retriever.store, args.doc)
        if unknown:
            print(f"rag ask: --doc {unknown[0]!r} matches no indexed document; give an id, a title, a folder "
                  f"or a source as `rag index list --index {rag.retriever.store.folder}` shows it", file=sys.stderr)
            return EXIT_BAD_INPUT
    for q in questions:
        ans = rag.ask(q, k=args.k, docs=docs, mode=args.mode)
        if args.json:
            print(json.dumps(ans.to_json(), ensure_ascii=False), flush=True)
        else:
            if len(questions) > 1:
                print(f"Q: {q}")
            print(format_answer(ans) + ("\n" if len(questions) > 1 else ""), flush=True)
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    """``rag eval``."""
    from .evaluation import run_cli

    return run_cli(args, _config(args))


def cmd_serve(args: argparse.Namespace) -> int:
    """``rag serve``."""
    from ui.app import serve

    cfg = _config(args).replace(host=args.host, port=args.port)
    return serve(cfg, auth=args.auth or os.environ.get("RAG_AUTH"))


COMMANDS = {("index", "build"): cmd_build, ("index", "status"): cmd_status, ("index", "list"): cmd_list,
            ("index", "remove"): cmd_remove, ("index", "verify"): cmd_verify, ("index", "repair"): cmd_repair, ("ask", None): cmd_ask, ("eval", None): cmd_eval,
            ("serve", None): cmd_serve}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rag`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="rag: %(levelname)s: %(message)s")
    for noisy in ("sentence_transformers", "transformers", "httpx", "faiss", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING if args.verbose else logging.ERROR)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    handler = getattr(args, "handler", None) or COMMANDS[(args.command, getattr(args, "index_command", None))]
    try:
        return handler(args)
    except (PathNotFound, IndexMismatch, IndexMissing, ConfigError, ValueError, UnicodeDecodeError) as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (IndexBusy, IndexCorrupt) as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("rag: interrupted; the index is left at its last committed state", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
