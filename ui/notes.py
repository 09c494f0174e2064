"""The notes under the upload box: what each index update of a page said, then its progress or outcome.

A page may start an update while an earlier one still runs (a second file dropped during the
first's indexing). Each update's event streams into the same notes box, so each shows the notes
of all of the page's updates, oldest first: none hides another's outcome. A page's notes start
afresh with the first update it starts once all of its earlier ones are over.
"""

from __future__ import annotations

import html
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from rag.ingest.fetch import is_address

from .i18n import t, tn
from .jobs import Job, JobState

PAGES = 512      # pages whose notes are kept (the least recently updated are forgotten first)
PER_PAGE = 20    # updates shown at most in one page's notes

_RECORD = re.compile(r"#\d+(?:-\d+)?$")  # "#12" of a JSONL line, "#3-1" of a SQuAD paragraph


@dataclass
class Update:
    """One index update a page started: what it said before its job ran, and the job (None: no job)."""

    notes: list[str] = field(default_factory=list)
    job: Job | None = None

    @property
    def running(self) -> bool:
        """True until its job has finished (its outcome, uploads not kept included, is then complete)."""
        return self.job is not None and not self.job.finished.is_set()

    def lines(self, lang: str) -> list[str]:
        """Its notes, then its job's progress or outcome."""
        if self.job is None:
            return list(self.notes)
        return self.notes + ([progress(self.job, lang)] if self.running else outcome(self.job, lang))


class NoteBoard:
    """The updates of each page (by its Gradio session), for the page's notes box.

    Parameters
    ----------
    pages : int
        Pages whose notes are kept.
    per_page : int
        Updates kept for one page.
    """

    def __init__(self, pages: int = PAGES, per_page: int = PER_PAGE):
        self.pages, self.per_page = pages, per_page
        self._updates: OrderedDict[str, list[Update]] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, page: str, notes: Sequence[str] = (), job: Job | None = None) -> Update:
        """Record an update of ``page`` (its notes, its job); the page's finished updates are cleared
        first when none of them still runs."""
        update = Update(list(notes), job)
        with self._lock:
            kept = self._updates.pop(page, [])
            if not any(u.running for u in kept):
                kept = []
            kept = (kept + [update])[-self.per_page:]
            self._updates[page] = kept
            while len(self._updates) > self.pages:
                self._updates.popitem(last=False)
        return update

    def html(self, page: str, lang: str) -> str:
        """The notes box of ``page``: every kept update's lines, oldest first; marked busy while one runs."""
        with self._lock:
            updates = list(self._updates.get(page, []))
        lines = [line for u in updates for line in u.lines(lang)]
        return notes_html(lines, busy=any(u.running for u in updates))


def progress(job: Job, lang: str) -> str:
    """Where a running job stands, in ``lang``."""
    names = ", ".join(job.names)
    if job.state is JobState.QUEUED:
        return t(lang, "upload_queued", name=names)
    if job.state is JobState.ENCODING and job.total:
        return t(lang, "upload_encoding", names=names, done=job.done, total=job.total)
    return t(lang, "upload_loading", names=names)


def outcome(job: Job, lang: str) -> list[str]:
    """What a finished job did (added, unchanged, skipped, not kept, failed), in ``lang``."""
    dropped = [t(lang, "upload_not_kept", name=name, reason=why) for name, why in job.dropped.items()]
    if job.state is JobState.FAILED:
        return [t(lang, "upload_failed", error=job.error), *dropped]
    r = job.report
    if r is None:
        return dropped
    out = []
    if job.kind == "remove":
        return [t(lang, "remove_done", names=", ".join(job.names))]
    if r.added or r.updated:
        out.append(t(lang, "upload_done", names=file_names(r.added + r.updated),
                     chunks=tn(lang, "n_chunks", r.chunks_new)))
    if r.unchanged:
        out.append(t(lang, "upload_unchanged", names=file_names(r.unchanged)))
    for s in r.skipped:  # records of a file partly kept; a file not kept at all is in ``dropped``
        if is_address(s.path) or Path(s.path.split(":", 1)[0]).name not in job.dropped:
            out.append(t(lang, "upload_skipped", name=file_names([s.path]), reason=s.reason))
    return out + dropped


def file_names(sources: Sequence[str]) -> str:
    """File names of document sources (addresses whole), once each (a JSONL file's records share one)."""
    return ", ".join(dict.fromkeys(s if is_address(s) else Path(_RECORD.sub("", s)).name for s in sources))


def notes_html(notes: Sequence[str], busy: bool = False) -> str:
    """The notes as an escaped HTML list ("" for none); ``busy`` marks work still going on."""
    if not notes:
        return ""
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return f'<ul class="rag-notes{" rag-busy" if busy else ""}" aria-live="polite">{items}</ul>'
