"""The ``rag`` command: ``index build|status|list|remove|verify|repair``, ``ask``, ``eval``, and plug-ins.

Exit codes: 0 success; 1 the work failed; 2 bad usage or bad input (unknown path, unreadable
or skipped file, index built with another model). Every error names the file or value at fault,
and index errors end with the command that fixes them.

Commands outside the library register themselves under the entry-point group ``rag.commands``
(the web chat's ``rag serve`` comes from the ``ui`` package that way): the library never imports
its user interfaces.
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
import traceback
from importlib.metadata import entry_points
from typing import Sequence

from .. import __version__
from ..errors import IndexCorrupt, RagError, Remedy
from . import ask, chats, evaluate, index
from .common import EXIT_FAILED, exit_code, explain

log = logging.getLogger("rag")
COMMAND_GROUP = "rag.commands"

EPILOG = """\
examples:
  rag index build                       index seeds/ into index/
  rag index build seeds/ more/ --index /data/idx
  rag index build https://example.org/article.html news.urls
  rag index status --json
  rag ask "Qui est le ministre iranien des Affaires étrangères ?"
  rag ask --questions questions.txt --json > answers.jsonl
  rag ask "Que dit le ministre ?" --since 2026-01-01 --until 2026-01-31
  rag eval eval/seed_qa.jsonl --docs seeds/ ../shared/data/piaf-dev.json
  rag serve --port 7860

settings come from rag.toml and RAG_* environment variables (see README, "Configuration").
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``rag`` command, plug-in commands included."""
    parser = argparse.ArgumentParser(
        prog="rag", description="Offline question answering over your articles, with cited sources.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"rag {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (default: ./rag.toml if present)")
    parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (index, ask, evaluate, chats):
        module.add_parser(sub)
    for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        entry.load()(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rag`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="rag: %(levelname)s: %(message)s")
    for noisy in ("sentence_transformers", "transformers", "httpx", "faiss", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING if args.verbose else logging.ERROR)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        return args.handler(args)
    except RagError as exc:
        print(f"rag: error: {explain(exc)}", file=sys.stderr)
        return exit_code(exc)
    except sqlite3.DatabaseError as exc:  # the index's SQLite file, damaged under a command that reads it
        where = getattr(args, "index", None) or os.environ.get("RAG_INDEX_DIR") or "index"
        damaged = IndexCorrupt(f"the index's SQLite file is damaged ({exc})", Remedy.REPAIR, where)
        print(f"rag: error: {explain(damaged)}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("rag: interrupted; the index is left at its last committed state", file=sys.stderr)
        return 130
    except Exception:  # a bug, not bad input: say so, with the trace to report
        traceback.print_exc()
        print("rag: internal error (a bug): please report it with the trace above", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
