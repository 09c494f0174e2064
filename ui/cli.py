"""``rag serve``: the web chat's command, registered with the ``rag`` command as a plug-in.

The ``rag`` command finds it through the entry point ``rag.commands: serve`` (pyproject.toml);
gradio is imported only when the command runs, so other commands do not pay for it.
"""

from __future__ import annotations

import argparse
import logging
import os

from rag.cli.common import config_of, index_arg
from rag.errors import DependencyMissing

log = logging.getLogger(__name__)
SERVE_EPILOG = """\
logins:
  RAG_AUTH=alice:pw1,bob:pw2 rag serve     logins from the environment (not shown by `ps`)
  rag serve --auth-file logins.txt         one USER:PASSWORD a line (chmod 600 logins.txt)
  --auth USER:PASSWORD also works, but every local user sees it in `ps`.
  Failed sign-ins are slowed down (per client and per user); the API takes the same logins
  (basic auth) or a bearer token of RAG_API_TOKEN.

hosts:
  The server answers only requests naming localhost, 127.0.0.1, ::1 or --host (DNS rebinding);
  more names with RAG_ALLOWED_HOSTS=chat.example.org,.example.org ('*': any). Cross-origin
  requests are refused.

capacity:
  RAG_ANSWER_CONCURRENCY answers are computed at once (default 2, one per core); RAG_QUEUE_SIZE
  requests may wait (default 1000) before one is refused as "queue full" (docs/reliability.md).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``rag serve``."""
    sv = sub.add_parser("serve", help="serve the web chat and its HTTP API",
                        description="Serve the Gradio web chat, and beside it the HTTP API (/api, schema at "
                                    "/api/openapi.json) and an OpenAI-compatible /v1 (see docs/api.md).",
                        epilog=SERVE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    index_arg(sv)
    sv.add_argument("--host", help="interface to listen on (default: 127.0.0.1; 0.0.0.0 exposes it)")
    sv.add_argument("--port", type=int, help="port (default: 7860)")
    sv.add_argument("--auth", metavar="USER:PASSWORD", help="require a login; several separated by ','; "
                    "prefer RAG_AUTH or --auth-file (a value given here shows in `ps`)")
    sv.add_argument("--auth-file", metavar="FILE",
                    help="require a login: the accounts of FILE, one USER:PASSWORD a line")
    sv.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """``rag serve``."""
    try:
        from .app import serve  # gradio: the ui extra, imported only to serve
    except ImportError as exc:
        raise DependencyMissing(f"rag serve needs the web chat's packages ({exc.name}): "
                                "pip install 'rag[ui]'") from None

    if args.auth:
        log.warning("--auth: the password shows in the process list (ps) to every user of this machine; "
                    "prefer RAG_AUTH or --auth-file")
    cfg = config_of(args).replace(host=args.host, port=args.port)
    return serve(cfg, auth=args.auth or os.environ.get("RAG_AUTH"), auth_file=args.auth_file)
