"""What every command shares: the configuration, the index argument, exit codes, terminal text."""

from __future__ import annotations

import argparse
import unicodedata

from ..config import Config, load_config
from ..errors import ErrorKind, RagError, Remedy

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_CODES = {ErrorKind.BAD_INPUT: EXIT_BAD_INPUT, ErrorKind.FAILED: EXIT_FAILED}


def index_arg(p: argparse.ArgumentParser) -> None:
    """Add ``--index DIR`` to a command."""
    p.add_argument("--index", metavar="DIR", help="index folder or postgresql://user@host:port/database address "
                                                  "(default: index/, or RAG_INDEX_DIR)")


def config_of(args: argparse.Namespace) -> Config:
    """The configuration: ``--config`` (or rag.toml, RAG_*), with ``--index`` applied."""
    cfg = load_config(getattr(args, "config", None))
    return cfg.replace(index_dir=getattr(args, "index", None))


def printable(name: str) -> str:
    """A file name fit for one terminal line: control characters shown as escapes (``\\n``)."""
    return "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) == "Cc" else c for c in name)


def hint(error: RagError) -> str:
    """The command that would fix ``error``, or "" (library errors say what, the command line says how)."""
    where = error.where or "DIR"
    commands = {
        Remedy.BUILD: f"build it with: rag index build --index {where}",
        Remedy.REBUILD: f"rebuild it with: rag index build --rebuild --index {where} PATH ...",
        Remedy.REPAIR: f"repair it with: rag index repair --index {where}",
        Remedy.REPAIR_FROM_FILES: f"repair it from the article files with: rag index repair --index {where} PATH ...",
        Remedy.WAIT: "try again when it ends, or wait for it with --wait SECONDS",
    }
    return commands.get(error.remedy, "") if error.remedy else ""


def explain(error: RagError) -> str:
    """The error's message, then the command that fixes it, if any."""
    fix = hint(error)
    return f"{error}; {fix}" if fix else str(error)


def exit_code(error: RagError) -> int:
    """The exit code of ``error``'s kind (2 bad input, 1 failure)."""
    return EXIT_CODES[error.kind]
