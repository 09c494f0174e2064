"""The web chat (Gradio): asks the library, shows answers with their cited passages.

The UI calls the library, never the other way round. Document text is HTML-escaped.
"""

from __future__ import annotations

import html
import logging
from typing import Iterator

from rag.config import Config
from rag.pipeline import RAG

log = logging.getLogger(__name__)


def render_answer(ans) -> str:
    """Markdown of an answer and its sources, document text escaped."""
    parts = [html.escape(ans.answer)]
    for c in ans.citations:
        parts.append(f"\n\n**[{c.n}] {html.escape(c.title)}** — `{html.escape(c.source)}` "
                     f"(score {c.score:.2f})\n\n> {html.escape(' '.join(c.excerpt.split()))}")
    return "".join(parts)


def build_app(rag: RAG):
    """The Gradio Blocks app for a pipeline."""
    import gradio as gr

    def respond(message: str, history: list) -> Iterator[str]:
        yield render_answer(rag.ask(message))

    return gr.ChatInterface(respond, title="Questions sur vos articles",
                            examples=["Qui est le ministre iranien des Affaires étrangères ?",
                                      "Où ont eu lieu les discussions ?"])


def serve(config: Config, auth: str | None = None) -> int:
    """Serve the chat on ``config.host:config.port`` (127.0.0.1 unless told otherwise)."""
    rag = RAG(config)
    app = build_app(rag)
    creds = tuple(auth.split(":", 1)) if auth else None
    app.queue(default_concurrency_limit=2).launch(server_name=config.host, server_port=config.port,
                                                  auth=creds, show_error=False)
    return 0
