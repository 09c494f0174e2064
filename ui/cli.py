"""``rag serve``: the web chat's command, registered with the ``rag`` command as a plug-in.

The ``rag`` command finds it through the entry point ``rag.commands: serve`` (pyproject.toml);
gradio is imported only when the command runs, so other commands do not pay for it.
"""

from __future__ import annotations

import argparse
import os

from rag.cli.common import config_of, index_arg
from rag.errors import DependencyMissing


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``rag serve``."""
    sv = sub.add_parser("serve", help="serve the web chat and its HTTP API",
                        description="Serve the Gradio web chat, and beside it the HTTP API (/api, schema at "
                                    "/api/openapi.json) and an OpenAI-compatible /v1 (see docs/api.md).")
    index_arg(sv)
    sv.add_argument("--host", help="interface to listen on (default: 127.0.0.1; 0.0.0.0 exposes it)")
    sv.add_argument("--port", type=int, help="port (default: 7860)")
    sv.add_argument("--auth", metavar="USER:PASSWORD", help="require a login (or RAG_AUTH); several separated by ','; "
                    "the HTTP API (/api, /v1) takes the same logins, or a bearer token of RAG_API_TOKEN")
    sv.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """``rag serve``."""
    try:
        from .app import serve  # gradio: the ui extra, imported only to serve
    except ImportError as exc:
        raise DependencyMissing(f"rag serve needs the web chat's packages ({exc.name}): pip install 'rag[ui]'") from None

    cfg = config_of(args).replace(host=args.host, port=args.port)
    return serve(cfg, auth=args.auth or os.environ.get("RAG_AUTH"))
