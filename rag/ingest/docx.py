"""Word files (``.docx``, read with python-docx): text in reading order, headings, title, date and author.

The body is read in the order Word shows it: paragraphs and tables as they come (a table row
becomes one line, its cells separated by `` | ``; a cell holding a table is read through), each
heading a paragraph of its own. The title is the document's Title property, else its first
paragraph styled Title, else its first heading; the date its creation date (else its last
modification), the author its Author property. A file python-docx made without setting these
carries its template's (author ``python-docx``, 2013-12-23): they are ignored.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime
from typing import Iterator

import docx
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from docx.text.paragraph import Paragraph

from ..dates import DateSource, normalize_date
from .base import Extracted, Unreadable

EXPAND_LIMIT = 5  # a .docx may hold at most this many times the file size limit once unzipped (zip bombs)
TEMPLATE_AUTHOR, TEMPLATE_DAY = "python-docx", "2013-12-23"  # python-docx's own template's properties
_HEADING = re.compile(r"^(Heading \d|Title|Subtitle)$")


def read_docx(data: bytes, max_bytes: int) -> Extracted:
    """The text and properties of a Word file.

    Parameters
    ----------
    data : bytes
        The file's content.
    max_bytes : int
        The file size limit: the unzipped parts may total :data:`EXPAND_LIMIT` times this.

    Raises
    ------
    Unreadable
        Not a Word file, damaged, expanding beyond the limit, or holding no text.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            expanded = sum(info.file_size for info in z.infolist())
    except zipfile.BadZipFile:
        raise Unreadable("not a valid Word file (.docx is a zip archive; this one is not; "
                         "an old .doc must be saved as .docx first)") from None
    if expanded > EXPAND_LIMIT * max_bytes:
        raise Unreadable(f"Word file expands to {expanded / 1e6:.0f} MB once unzipped "
                         f"(> {EXPAND_LIMIT} x max_file_mb): not read")
    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise Unreadable(f"not a valid Word file ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # lxml's XMLSyntaxError and others from a damaged part
        raise Unreadable(f"damaged Word file ({type(exc).__name__}: {str(exc)[:200]})") from None
    blocks = list(_blocks(document))
    text = "\n\n".join(t for t, _ in blocks if t)
    if not text.strip():
        raise Unreadable("Word file holds no text")
    props = document.core_properties
    author = (props.author or "").strip()
    day = _day(props.created) or _day(props.modified)
    if author == TEMPLATE_AUTHOR and day == TEMPLATE_DAY:
        author, day = "", None
    title = (props.title or "").strip() or next((t for t, style in blocks if style == "Title"), "") \
        or next((t for t, style in blocks if style), "")
    return Extracted(title, text, day or "", DateSource.DOCUMENT.value if day else "", author)


def _day(value: datetime | None) -> str | None:
    return normalize_date(value) if value is not None else None


def _blocks(container) -> Iterator[tuple[str, str]]:
    """(text, heading style or "") of each paragraph and table row below ``container``, in reading order."""
    for item in container.iter_inner_content():
        if isinstance(item, Paragraph):
            text = item.text.strip()
            if text:
                yield text, _heading_style(item)
        elif isinstance(item, Table):
            yield from _table(item)


def _table(table: Table) -> Iterator[tuple[str, str]]:
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell is returned once per grid column it spans
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(t for t, _ in _blocks(cell)))  # a table in the cell: its rows, in order
        line = " | ".join(c for c in cells if c)
        if line:
            yield line, ""


def _heading_style(paragraph: Paragraph) -> str:
    """``Title``, ``Heading N`` or ``Subtitle`` when the paragraph's style (or one it is based on) is one."""
    style = paragraph.style
    while style is not None:
        name = style.name or ""
        if _HEADING.match(name):
            return "Title" if name == "Title" else name
        style = style.base_style
    return ""
