"""HTML and Markdown of the chat page: answers with clickable markers, sources, status, documents.

Every piece of text that comes from a document, a question or the index goes through
:func:`html.escape` here (and, inside chat Markdown, through :func:`escape_markdown`), so a
document holding ``<script>`` or an ``onerror=`` attribute shows as text and runs nothing. A
document's address becomes a link only when it is an ``http(s)`` one (:func:`title_link`): a
``javascript:`` or ``data:`` URL stays plain text.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from rag.ingest.fetch import is_address
from rag.schema import CITATION_MARKER, Answer, Citation, Short

from .i18n import t, tn

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$])")  # '<', '>', '&' become entities first
MAX_TURNS_SHOWN = 30  # answers shown on the page, with their sources; older ones stay in the saved conversation


@dataclass
class Turn:
    """One exchange of the chat: the question, the answer, and where its sources are anchored."""

    number: int
    question: str
    answer: Answer


def escape_markdown(text: str) -> str:
    """Text made inert for the chat's Markdown renderer: HTML-escaped, Markdown punctuation backslashed.

    ``&``, ``<`` and ``>`` become entities (no tag can open); quotes stay, as they are harmless
    outside tags and their entities would hold a ``#`` that Markdown escaping would break.
    """
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def anchor(turn: int, n: int) -> str:
    """Element id of citation ``n`` of answer ``turn`` in the sources panel."""
    return f"rag-src-{turn}-{n}"


def marker_link(turn: int, n: int) -> str:
    """The clickable ``[n]`` of an answer; the page script opens its source."""
    return f'<a class="rag-cite" href="#{anchor(turn, n)}" title="source {n}">[{n}]</a>'


def _with_short(text: str, short: Short | None) -> str:
    """``text`` escaped, the short answer's words in it (its first occurrence) in ``<mark class="rag-short">``."""
    words = " ".join(short.text.split()) if short else ""
    at = text.find(words) if words else -1
    if at < 0:
        return escape_markdown(text)
    end = at + len(words)
    return (escape_markdown(text[:at]) + '<mark class="rag-short">' + escape_markdown(text[at:end]) + "</mark>"
            + escape_markdown(text[end:]))


def answer_markdown(answer: Answer, turn: int) -> str:
    """An answer for the chat: the short answer first, in bold, when there is one; then the quoted
    text, escaped, the short answer's words highlighted in the sentence of its citation, and its
    ``[n]`` markers turned into links to its sources."""
    known = {c.n for c in answer.citations}
    short = answer.short if answer.short is not None and answer.short.n in known else None
    parts: list[str] = []
    if short is not None:
        parts.append(f'<strong class="rag-answer">{escape_markdown(short.text)}</strong> '
                     f"{marker_link(turn, short.n)}\n\n")
    pos, marked = 0, short is None
    for m in CITATION_MARKER.finditer(answer.answer):
        numbers = [int(x) for x in re.findall(r"\d+", m.group(1))]
        if not all(n in known for n in numbers):
            continue
        here = not marked and short.n in numbers
        parts.append(_with_short(answer.answer[pos:m.start()], short if here else None))
        marked = marked or here
        parts.append("".join(marker_link(turn, n) for n in numbers))
        pos = m.end()
    parts.append(escape_markdown(answer.answer[pos:]))
    text = "".join(parts)
    if answer.notice:
        text += "\n\n*" + escape_markdown(answer.notice) + "*"
    return text


def question_markdown(question: str) -> str:
    """A user's question for the chat, shown as typed."""
    return escape_markdown(question)


def highlight_excerpt(citation: Citation, short: Short | None = None) -> str:
    """The excerpt as HTML: the supporting sentence in ``<mark class="rag-support">`` when its
    offsets are known, and in it the short answer's words (``short``, when it is under this
    citation) in ``<mark class="rag-short">``.

    Offsets are in the document text, like ``start``; a range outside the excerpt, or unknown
    offsets, highlight nothing.
    """
    text, base = citation.excerpt, citation.start

    def inside(start: int | None, end: int | None) -> tuple[int, int] | None:
        if start is None or end is None:
            return None
        lo, hi = max(0, start - base), min(len(text), end - base)
        return (lo, hi) if hi > lo else None

    sentence = inside(citation.sentence_start, citation.sentence_end)
    words = inside(short.start, short.end) if short is not None and short.n == citation.n else None
    if sentence is not None and words is not None and not (sentence[0] <= words[0] and words[1] <= sentence[1]):
        words = None  # the marks nest: the short answer lies in its sentence
    cuts = sorted({0, len(text), *(sentence or ()), *(words or ())})
    out = []
    for lo, hi in zip(cuts, cuts[1:]):
        if sentence and lo == sentence[0]:
            out.append('<mark class="rag-support">')
        piece = html.escape(text[lo:hi])
        out.append(f'<mark class="rag-short">{piece}</mark>' if words and lo == words[0] else piece)
        if sentence and hi == sentence[1]:
            out.append("</mark>")
    return "".join(out)


def _preview(citation: Citation, limit: int = 220) -> str:
    """A line shown on the closed card: the supporting sentence, else the excerpt's beginning."""
    s, e = citation.sentence_start, citation.sentence_end
    if s is not None and e is not None and citation.start <= s < e:
        text = citation.excerpt[s - citation.start:e - citation.start]
    else:
        text = citation.excerpt
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"


def title_link(title: str, url: str) -> str:
    """``title``, escaped, as a link to ``url`` (a new tab) when it is an http(s) address; plain text otherwise."""
    text = html.escape(title)
    if not is_address(url):
        return text
    return (f'<a class="rag-link" href="{html.escape(url, quote=True)}" target="_blank" '
            f'rel="noopener noreferrer nofollow">{text}</a>')


def date_html(date: str, date_source: str, lang: str) -> str:
    """The document's day beside its title; a file's modification day says so."""
    if not date:
        return ""
    kind = t(lang, f"date_{date_source}") if date_source in DATE_SOURCES else ""
    shown = html.escape(date) + (f" ({html.escape(t(lang, 'date_file_short'))})" if date_source == "file" else "")
    return (f'<span class="rag-date" data-source="{html.escape(date_source, quote=True)}" '
            f'title="{html.escape(kind, quote=True)}">{shown}</span>')


DATE_SOURCES = ("published", "document", "server", "file", "fetched")


def citation_html(citation: Citation, turn: int, lang: str, open_: bool = False, short: Short | None = None) -> str:
    """One source card: marker, title (a link to the article when its address is known), date, source,
    score, and the excerpt (opens on click), the short answer highlighted in it."""
    c = citation
    score = max(0.0, min(1.0, float(c.score)))
    return (
        f'<details class="rag-src" id="{anchor(turn, c.n)}"{" open" if open_ else ""}>'
        f'<summary><span class="rag-n">[{c.n}]</span> '
        f'<span class="rag-head"><span class="rag-title">{title_link(c.title or c.source, c.url)}</span> '
        f'{date_html(c.date, c.date_source, lang)}</span>'
        f'<span class="rag-score" title="{t(lang, "score")} {score:.2f}" style="--rag-score:{score * 100:.0f}%">'
        f"{score:.2f}</span>"
        f'<span class="rag-meta">{html.escape(c.source)} · '
        f'{html.escape(t(lang, "by", author=c.author)) + " · " if c.author else ""}'
        f'{html.escape(t(lang, "chars", start=c.start, end=c.end))}</span>'
        f'<span class="rag-preview">{html.escape(_preview(c))}</span>'
        f"</summary>"
        f'<div class="rag-excerpt">{highlight_excerpt(c, short)}</div>'
        f"</details>"
    )


def sources_html(turns: Sequence[Turn], lang: str, complete: bool = True) -> str:
    """The sources panel: one section per answer (the latest shown), one card per citation.

    ``data-answers`` holds the number of the latest answer and ``data-complete`` is set once it
    has finished streaming (a hook for scripts and tests).
    """
    if not turns:
        return f'<div id="rag-sources-body"><p class="rag-empty">{html.escape(t(lang, "sources_empty"))}</p></div>'
    sections = []
    shown = turns[-MAX_TURNS_SHOWN:]
    for i, turn in enumerate(shown):
        latest = i == len(shown) - 1
        head = html.escape(t(lang, "sources_for", question=_short(turn.question, 120)))
        cards = "".join(citation_html(c, turn.number, lang, short=turn.answer.short) for c in turn.answer.citations)
        if not cards:
            cards = f'<p class="rag-empty">{html.escape(t(lang, "no_sources"))}</p>'
        sections.append(f'<section class="rag-turn" data-turn="{turn.number}"{"" if latest else " hidden"}>'
                        f'<h4 class="rag-for">{head}</h4>{cards}</section>')
    done = " data-complete" if complete else ""
    return f'<div id="rag-sources-body" data-answers="{turns[-1].number}"{done}>' + "".join(sections) + "</div>"


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"


def status_html(status: dict | None, lang: str, error: str = "") -> str:
    """The index status line: documents, chunks, model, last update."""
    if status is None:
        return f'<div class="rag-status rag-status-bad">{html.escape(t(lang, "status_missing", error=error))}</div>'
    updated = str(status.get("updated", "")).replace("T", " ").replace("+00:00", " UTC")
    model = str(status.get("model", "")).rsplit("/", 1)[-1]
    text = t(lang, "status", documents=tn(lang, "n_documents", int(status.get("documents", 0))),
             chunks=tn(lang, "n_chunks", int(status.get("chunks", 0))), model=model, updated=updated)
    return f'<div class="rag-status" title="{html.escape(str(status.get("model", "")))}">{html.escape(text)}</div>'


def documents_html(docs: Iterable[dict], lang: str) -> str:
    """The table of indexed documents: title (a link when the address is known), date, source, passages, language."""
    rows = "".join(
        f"<tr><td>{title_link(d.get('title') or '', d.get('url') or '')}</td>"
        f"<td>{date_html(d.get('date') or '', d.get('date_source') or '', lang)}</td>"
        f"<td><code>{html.escape(d.get('source') or '')}</code></td>"
        f"<td class='rag-num'>{int(d.get('chunks') or 0)}</td><td>{html.escape(d.get('lang') or '')}</td></tr>"
        for d in docs)
    head = "".join(f"<th>{html.escape(t(lang, k))}</th>"
                   for k in ("doc_col_title", "doc_col_date", "doc_col_source", "doc_col_chunks", "doc_col_lang"))
    return (f'<h4 class="rag-for">{html.escape(t(lang, "doc_list"))}</h4>'
            f'<div class="rag-docs"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def document_choices(docs: Iterable[dict]) -> list[tuple[str, str]]:
    """(label, document id) pairs for the document pickers; labels are shown as text by the page."""
    out = []
    for d in docs:
        title = _short(d.get("title") or "", 70)
        out.append((f"{title} — {d.get('source', '')}" if title else str(d.get("source", "")), d["id"]))
    return out


def message_list(turns: Sequence[Turn]) -> list[dict]:
    """The chat history in the Chatbot's messages format: the last :data:`MAX_TURNS_SHOWN` turns, the
    ones whose sources the page holds (a long conversation stays quick to show)."""
    out: list[dict] = []
    for turn in turns[-MAX_TURNS_SHOWN:]:
        out.append({"role": "user", "content": question_markdown(turn.question)})
        out.append({"role": "assistant", "content": answer_markdown(turn.answer, turn.number)})
    return out
