"""Exports of a saved conversation: Markdown for people (every source with its excerpt), JSON for tools."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from .store import ChatError, Conversation, Rating


def _inert(text: str) -> str:
    """Document text for Markdown: no HTML tag can open, no link can form; readable as plain text too."""
    return str(text).replace("<", "&lt;").replace(">", "&gt;").replace("](", "]\\(")


def source_line(citation: dict[str, Any], offsets: bool = True) -> str:
    """A source as one Markdown line: ``[n] **title** — date — URL or file (characters a–b)``."""
    parts = [f"**{_inert(citation.get('title') or citation.get('source') or '')}**"]
    if citation.get("date"):
        parts.append(_inert(citation["date"]))
    parts.append(_inert(citation.get("url") or citation.get("source") or ""))
    where = f"characters {citation.get('start')}–{citation.get('end')}" if offsets and citation.get("end") is not None \
        else ""
    return f"[{citation.get('n')}] " + " — ".join(p for p in parts if p) + (f" ({where})" if where else "")


def to_markdown(conv: Conversation) -> str:
    """A conversation as Markdown: each question, its answer, short answer and feedback, then every
    source with its title, date, URL or file and the excerpt as it was shown."""
    n = len(conv.turns)
    out = [f"# {_inert(conv.title)}", "",
           f"{n} question{'s' if n != 1 else ''} · started {conv.created[:16].replace('T', ' ')} UTC · "
           f"last {conv.updated[:16].replace('T', ' ')} UTC · {_inert(conv.user)}", ""]
    for turn in conv.turns:
        out += [f"## {turn.number}. {_inert(' '.join(turn.question.split()))}", "", _inert(turn.answer), ""]
        if turn.short and turn.short.get("text"):
            out += [f"**Short answer:** {_inert(turn.short['text'])}", ""]
        notice = turn.extra.get("notice")
        if notice:
            out += [f"*{_inert(notice)}*", ""]
        if turn.feedback:
            fb = turn.feedback
            verdict = "👍" if fb.rating is Rating.UP else \
                "👎" + (" (not in the articles)" if fb.not_in_articles else "")
            out += [f"Feedback: {verdict}" + (f" — {_inert(fb.comment)}" if fb.comment else ""), ""]
        if turn.citations:
            out += ["Sources:", ""]
            for c in turn.citations:
                out.append(source_line(c))
                out.append("")
                out += ["> " + _inert(line) if line.strip() else ">" for line in str(c.get("excerpt", "")).splitlines()]
                out.append("")
    return "\n".join(out).rstrip() + "\n"


def export(conv: Conversation, fmt: str) -> str:
    """A conversation as ``md`` (Markdown) or ``json`` text."""
    if fmt == "md":
        return to_markdown(conv)
    if fmt == "json":
        return json.dumps(conv.to_json(), ensure_ascii=False, indent=2) + "\n"
    raise ChatError(f"export format {fmt!r}: expected md or json")


def export_name(conv: Conversation, fmt: str) -> str:
    """A file name for an export: the title's letters and digits, then the id."""
    stem = re.sub(r"[^\w]+", "-", unicodedata.normalize("NFKD", conv.title).encode("ascii", "ignore").decode())
    stem = stem.strip("-").lower()[:40] or "conversation"
    return f"{stem}-{conv.id}.{fmt}"
