"""What every reader of a format gives back (:class:`Extracted`), and how it refuses a file (:class:`Unreadable`).

The readers (:mod:`rag.ingest.loading` for text, HTML, PDF and JSON, :mod:`rag.ingest.docx` for Word files,
:mod:`rag.ingest.ocr` for PDF pages without a text layer, :mod:`rag.ingest.web` for fetched pages) return an
:class:`Extracted`; :func:`rag.ingest.loading.make_document` turns it into a :class:`rag.schema.Document`.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator, NamedTuple

from ..errors import BadInput

log = logging.getLogger(__name__)
REASON_CHARS = 300  # an unexpected error's message is cut to this in a skip's reason


class Unreadable(BadInput):
    """Raised inside a reader: the file (or page) is skipped with this reason."""


class Skipped(NamedTuple):
    """A file (or record, or document) that was not indexed, and why."""

    path: str
    reason: str


def shown_name(name: str) -> str:
    """``name`` fit to print and store: bytes of a file name that are not UTF-8 (held as lone surrogates
    by Python) shown as ``\\xff`` escapes, and any other lone surrogate as ``\\udXXX``."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return (name.encode("utf-8", "surrogateescape") if _only_escapes(name) else
                name.encode("utf-8", "backslashreplace")).decode("utf-8", "backslashreplace")


def _only_escapes(name: str) -> bool:
    """True when every lone surrogate of ``name`` is one ``surrogateescape`` made of a byte (U+DC80-U+DCFF)."""
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in name)


def failure_reason(exc: BaseException) -> str:
    """Why a file, record or document is skipped, said from what its processing raised."""
    if isinstance(exc, Unreadable):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "too large to process in the memory available"
    if isinstance(exc, RecursionError):
        return "too deeply nested to process"
    if isinstance(exc, OSError):
        return f"unreadable ({exc.strerror or exc})"
    return f"could not be processed ({error_text(exc)})"


def error_text(exc: BaseException) -> str:
    """``TypeName: message`` of an exception, on one line and cut to :data:`REASON_CHARS`."""
    message = " ".join(str(exc).split())[:REASON_CHARS]
    return f"{type(exc).__name__}{': ' + message if message else ''}"


@contextmanager
def guarded(skipped: list[Skipped], where: str) -> Iterator[None]:
    """Run the processing of one file, record or document: any failure becomes a skip of ``where``.

    The one place where a bad input is turned into a :class:`Skipped` (the file or record named,
    the reason said), so that neither a reader's refusal (:class:`Unreadable`) nor an error no
    one foresaw (a library's ``AssertionError``, ``MemoryError``...) stops a build: the rest is
    indexed. Unforeseen errors are also logged with their trace, at debug level.
    """
    try:
        yield
    except Exception as exc:  # one bad file must never stop a build: every failure is this file's skip
        if not isinstance(exc, (Unreadable, OSError)):
            log.debug("%s: unexpected %s", shown_name(where), type(exc).__name__, exc_info=True)
        skipped.append(Skipped(shown_name(where), failure_reason(exc)))


class Extracted(NamedTuple):
    """A document's text and what it says of itself.

    Attributes
    ----------
    title : str
        The title (empty: the first line of the text is used).
    text : str
        The text, in reading order.
    date : str
        A day, ``YYYY-MM-DD``, that the document states (empty when it states none).
    date_source : str
        Where ``date`` comes from (a :class:`rag.dates.DateSource` value).
    author : str
        The author(s), as the document names them.
    warnings : tuple of str
        What was read only in part (e.g. OCR stopped at its page limit); the rest is indexed.
    """

    title: str
    text: str
    date: str = ""
    date_source: str = ""
    author: str = ""
    warnings: tuple[str, ...] = ()
