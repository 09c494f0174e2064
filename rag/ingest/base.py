"""What every reader of a format gives back (:class:`Extracted`), and how it refuses a file (:class:`Unreadable`).

The readers (:mod:`rag.ingest.loading` for text, HTML, PDF and JSON, :mod:`rag.ingest.docx` for Word files,
:mod:`rag.ingest.ocr` for PDF pages without a text layer, :mod:`rag.ingest.web` for fetched pages) return an
:class:`Extracted`; :func:`rag.ingest.loading.make_document` turns it into a :class:`rag.schema.Document`.
"""

from __future__ import annotations

from typing import NamedTuple

from ..errors import BadInput


class Unreadable(BadInput):
    """Raised inside a reader: the file (or page) is skipped with this reason."""


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
