"""Dates of documents: what a date says it is, reading the dates sources give, and the day filters.

A document's ``date`` is a day, ``YYYY-MM-DD`` (so SQL compares them as text), and its
``date_source`` says where it came from (:class:`DateSource`): a date the article states
(``published``), a document's own creation date (``document``), an HTTP server's
``Last-Modified`` (``server``), the file's modification time (``file``) or the day a page was
fetched (``fetched``).
"""

from __future__ import annotations

import enum
import re
from datetime import date, datetime
from email.utils import parsedate_to_datetime

from .errors import BadInput


class DateSource(str, enum.Enum):
    """Where a document's date comes from, most trustworthy first."""

    PUBLISHED = "published"  # stated by the article: HTML metadata, a JSONL "date"
    DOCUMENT = "document"    # the creation date in a PDF's or Word file's properties
    SERVER = "server"        # the Last-Modified header of the page's server
    FILE = "file"            # the file's modification time
    FETCHED = "fetched"      # the day the page was fetched


_ISO = re.compile(r"\s*(\d{4})-(\d{2})-(\d{2})(?:[T ][\d:.,]+(?:Z|[+-]\d{2}:?\d{2})?)?\s*$", re.IGNORECASE)


def parse_day(value: str | date | None, name: str = "date") -> str | None:
    """The ISO day ``YYYY-MM-DD`` of a filter value; None for None or an empty string.

    Parameters
    ----------
    value : str, date or None
        ``"2026-01-31"`` or a :class:`datetime.date` (a datetime gives its day).
    name : str
        What the value is, for the error message (``"--since"``, ``"until"``).

    Raises
    ------
    BadInput
        For anything else, naming ``name`` and the value.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    if not text:
        return None
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise BadInput(f"{name} {value!r} is not a date: expected YYYY-MM-DD, e.g. 2026-01-31") from None


def day_range(since: str | date | None, until: str | date | None) -> tuple[str | None, str | None]:
    """Both ends of a filter, checked (:func:`parse_day`), both inclusive.

    Raises
    ------
    BadInput
        For a bad value, or ``since`` after ``until``.
    """
    lo, hi = parse_day(since, "since"), parse_day(until, "until")
    if lo and hi and lo > hi:
        raise BadInput(f"since {lo} is after until {hi}: no day is in that range")
    return lo, hi


def normalize_date(value: object) -> str | None:
    """The day of a date as sources write it, or None when it is not one.

    Accepts ISO 8601 days and times (``2026-01-31``, ``2026-01-31T08:00:00Z``), RFC 2822 (HTTP
    headers, RSS: ``Sat, 31 Jan 2026 08:00:00 GMT``) and :class:`datetime.date` objects. A time
    with an offset is taken in its own zone: the day the source says.
    """
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if not isinstance(value, str) or not value.strip():
        return None
    m = _ISO.match(value)
    if m:
        try:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
        except ValueError:
            return None
    try:
        return parsedate_to_datetime(value.strip()).date().isoformat()
    except (TypeError, ValueError, IndexError):
        return None


def file_day(mtime: float) -> str:
    """The local day of a file modification time (seconds since the epoch)."""
    return datetime.fromtimestamp(mtime).date().isoformat()


def today() -> str:
    """Today's local day."""
    return datetime.now().date().isoformat()
