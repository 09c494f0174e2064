"""What a build changes: the files and documents found against those indexed, and its report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..dates import DateSource
from ..ingest.files import key_files, key_under
from ..ingest.loading import LoadResult, Skipped
from ..schema import Document


@dataclass
class BuildReport:
    """What a build did. Lists hold document sources.

    ``files_read`` counts the files read; ``unchanged_files`` those passed over unread, their
    size, times and inode being those recorded when they were last read. ``pages_fetched``
    counts the web pages downloaded and parsed, ``pages_unchanged`` those the server said were
    not modified (or sent again byte for byte), not parsed. ``warnings`` name what was indexed
    only in part. ``search_files_rebuilt``: the committed generation's search files were damaged
    or missing, and were made again from the stored chunks and the embedding cache.
    """

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # indexed before, unreadable now: previous version kept
    reencoded: list[str] = field(default_factory=list)  # unchanged, encoded again: the encoder's recipe changed
    chunks_total: int = 0
    chunks_new: int = 0
    encoded: int = 0
    cached: int = 0
    seconds: float = 0.0
    encode_seconds: float = 0.0
    generation: int = 0
    files_read: int = 0
    unchanged_files: int = 0
    warnings: list[Skipped] = field(default_factory=list)
    pages_fetched: int = 0
    pages_unchanged: int = 0
    search_files_rebuilt: bool = False  # they were damaged or missing: made again from the stored chunks
    uploads_kept: list[str] = field(default_factory=list)  # uploaded in the chat, kept by a rebuild (stored text)

    @property
    def changed(self) -> bool:
        """True when the build changed the index."""
        return bool(self.added or self.updated or self.removed or self.reencoded)

    def summary(self) -> str:
        """One line for people."""
        rate = f", {self.encoded / self.encode_seconds:.1f} chunks/s" if self.encoded and self.encode_seconds else ""
        unread = f" ({self.unchanged_files} files not read again)" if self.unchanged_files else ""
        if self.pages_fetched or self.pages_unchanged:
            unread += f" ({self.pages_fetched} pages parsed, {self.pages_unchanged} not modified)"
        again = f", {len(self.reencoded)} encoded again by the new encoder recipe" if self.reencoded else ""
        if self.search_files_rebuilt:
            again += ", search files damaged or missing: made again from the stored chunks"
        return (f"{len(self.added)} added, {len(self.updated)} updated, {len(self.removed)} removed, "
                f"{len(self.unchanged)} unchanged{unread}{again}, {len(self.skipped)} skipped; "
                f"{self.chunks_new} new chunks: {self.encoded} encoded, {self.cached} from cache{rate}; "
                f"{self.chunks_total} chunks in index; {self.seconds:.1f} s")


@dataclass
class Changes:
    """Documents to index (new or changed), and indexed rows to drop (older versions, removed)."""

    new_docs: list[Document] = field(default_factory=list)
    gone: list[dict] = field(default_factory=list)


def files_of(keys: Sequence[str]) -> set[str]:
    """Every file the documents ``keys`` may come from (see :func:`rag.files.key_files`)."""
    return {f for key in keys for f in key_files(key)}


WEAK_DATES = {DateSource.FILE.value, DateSource.SERVER.value, DateSource.FETCHED.value}  # they move by themselves


def described_alike(old: dict, doc: Document) -> bool:
    """Whether an indexed row (:meth:`rag.store.Store.documents`) says of its document what ``doc`` says.

    Title, URL, author and date are compared; a date taken from the file's time, the server's
    Last-Modified or the fetch day is not a reason to index again when it moves alone (a file
    touched, a page fetched again).
    """
    if (old.get("title"), old.get("url") or "", old.get("author") or "") != (doc.title, doc.url, doc.author):
        return False
    if (old.get("date") or "", old.get("date_source") or "") == (doc.date, doc.date_source):
        return True
    return old.get("date_source") in WEAK_DATES and doc.date_source in WEAK_DATES


def orphans(loaded: LoadResult, existing: dict[str, dict]) -> list[str]:
    """Files passed over as unchanged that have no indexed document, and files with a record found
    unchanged whose document is not indexed (another build removed them since): to read again, whole."""
    lost_records = [next((f for f in key_files(k)[1:] if Path(f).is_file()), k)
                    for k in loaded.unchanged_records if k not in existing]
    if not loaded.unchanged_files:
        return list(dict.fromkeys(lost_records))
    indexed = files_of(list(existing))
    return list(dict.fromkeys([f for f in loaded.unchanged_files if f not in indexed] + lost_records))


def compare(loaded: LoadResult, existing: dict[str, dict], roots: Sequence[Path], rebuild: bool,
            prune: bool, report: BuildReport) -> Changes:
    """Sort the loaded documents into added, updated and unchanged, and find the removed ones.

    Parameters
    ----------
    loaded : LoadResult
        Documents read, and files passed over unread (their documents are unchanged).
    existing : dict of str to dict
        Indexed documents by key (:meth:`rag.store.Store.documents`).
    roots : sequence of Path
        Resolved files and folders walked: with ``prune``, an indexed document below them that
        was not found is removed (unless its file was skipped, or its folder could not be listed:
        its previous version is kept).
    rebuild : bool
        Every document found is re-indexed, and those of other roots are removed.
    prune : bool
        Remove the documents of files gone from ``roots``.
    report : BuildReport
        Filled with the sources of the added, updated, unchanged, removed and kept documents.
    """
    out = Changes()
    skipped_files = set(loaded.skipped_files)
    root_files = {r for r in roots if not r.is_dir()}
    root_folders = [r for r in roots if r.is_dir()]
    seen = set()
    for doc in loaded.documents:
        seen.add(doc.key)
        old = existing.get(doc.key)
        if old is None:
            out.new_docs.append(doc)
            report.added.append(doc.source)
        elif old["sha256"] != doc.sha256 or rebuild or not described_alike(old, doc):
            out.new_docs.append(doc)
            out.gone.append(old)
            report.updated.append(doc.source)
        else:
            report.unchanged.append(doc.source)
    unread = set(loaded.unchanged_files)
    unreadable = [Path(f) for f in loaded.unreadable_folders]  # their documents are kept, not pruned
    not_modified, failed = set(loaded.unchanged_keys) | set(loaded.unchanged_records), set(loaded.failed_keys)
    for key, old in existing.items():
        if key in seen:
            continue
        if key in not_modified or (unread and any(f in unread for f in key_files(key))):
            report.unchanged.append(old["source"])
        elif key in failed:  # a page that could not be fetched this time
            report.kept.append(old["source"])
        elif prune and key_under(key, root_files, root_folders):
            if any(f in skipped_files for f in key_files(key)) or key_under(key, set(), unreadable):
                report.kept.append(old["source"])
            else:
                out.gone.append(old)
                report.removed.append(old["source"])
        elif rebuild:  # documents from other roots cannot be re-embedded without their files
            out.gone.append(old)
            report.removed.append(old["source"])
    return out
