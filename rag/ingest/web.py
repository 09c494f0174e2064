"""Web addresses into documents: pages fetched (:mod:`rag.ingest.fetch`), read, and asked again on rebuilds.

An address comes from the command line (``rag index build https://…``), from a ``.urls`` file
(one address a line; blank lines and lines starting with ``#`` are passed over), or from the
chat's upload panel. An HTML page keeps its main text, title, publication date and author
(trafilatura, :func:`rag.ingest.loading.read_html`); a PDF is read like a PDF file (OCR included).

A document's key is its address, or ``<resolved .urls file>#<address>`` for a line of a list,
so that a line taken out of the list removes its document on the next build of the list (as
a file deleted from a folder). Its ``source`` is the address asked, its ``url`` the address the
redirects led to. Its date is the page's publication date, else the server's ``Last-Modified``,
else the day it was fetched (``date_source`` ``published``, ``server`` or ``fetched``).

A rebuild asks each page again with the validators recorded (``If-None-Match``,
``If-Modified-Since``): a 304, or a body identical byte for byte to the last one, is not parsed
again (:attr:`rag.ingest.loading.LoadResult.unchanged_keys`). An address that fails now keeps its
previous version (:attr:`rag.ingest.loading.LoadResult.failed_keys`), with a message naming it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

from tqdm import tqdm

from ..config import Config
from ..dates import DateSource, normalize_date, today
from .base import guarded
from .fetch import Fetcher, FetchError, Page, Validators, is_address, without_fragment
from .loading import LoadResult, Skipped, check_prose, display_path, loader_version, make_document, read_html, read_pdf
from .ocr import OcrSettings

log = logging.getLogger(__name__)
FETCH_WORKERS = 4  # pages fetched at once (the network waits; parsing stays on one core)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


class Entry(NamedTuple):
    """An address to index: the document's key, the address, and the source users see."""

    key: str
    url: str
    source: str


@lru_cache(maxsize=1)
def web_version() -> str:
    """Fingerprint of the code that turns pages into documents: recorded with the validators,
    so that a new version parses every page once again."""
    digest = hashlib.sha256(loader_version().encode())
    for name in ("web.py", "fetch.py"):
        try:
            digest.update(Path(__file__).with_name(name).read_bytes())
        except OSError:
            digest.update(name.encode())
    return digest.hexdigest()[:16]


def fetcher_for(config: Config) -> Fetcher:
    """The :class:`~rag.ingest.fetch.Fetcher` of the settings ``fetch_timeout``, ``fetch_max_mb``,
    ``fetch_max_redirects`` and ``allow_private_urls``."""
    return Fetcher(timeout=config.fetch_timeout, max_bytes=int(config.fetch_max_mb * 1_000_000),
                   max_redirects=config.fetch_max_redirects, allow_private=config.allow_private_urls)


def entry_of_key(key: str) -> Entry:
    """The entry a page document's key was made from (addresses hold no ``#``: fragments are dropped)."""
    url = key if is_address(key) else key.rsplit("#", 1)[-1]
    return Entry(key, url, url)


def read_url_list(path: str, resolved: str, max_bytes: int) -> tuple[list[Entry], list[Skipped]]:
    """The addresses of a ``.urls`` file, and its lines that are not one (or the file, if unreadable).

    Parameters
    ----------
    path, resolved : str
        The file as walked and its resolved path (the documents' keys start with it).
    max_bytes : int
        A larger list is refused.
    """
    source = display_path(Path(path))
    try:
        size = Path(path).stat().st_size
        if size > max_bytes:
            return [], [Skipped(source, f"file too large ({size / 1e6:.1f} MB > limit {max_bytes / 1e6:.1f} MB)")]
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        return [], [Skipped(source, f"not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})")]
    except OSError as exc:
        return [], [Skipped(source, f"unreadable ({exc.strerror or exc})")]
    entries, bad = [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = re.split(r"\s+#", line, maxsplit=1)[0].strip()  # "https://… # a comment"
        if not is_address(line):
            bad.append(Skipped(f"{source}:{lineno}", f"not an http:// or https:// address: {line[:200]!r}"))
            continue
        url = without_fragment(line)
        entries.append(Entry(f"{resolved}#{url}", url, url))
    if not entries and not bad:
        bad.append(Skipped(source, "no address in the list (one http(s) address a line)"))
    return entries, bad


def entries_for(addresses: Iterable[str], lists: Iterable[tuple[str, str]],
                max_bytes: int) -> tuple[list[Entry], list[Skipped]]:
    """Entries of the addresses given and of the ``.urls`` files found, each key once."""
    entries: dict[str, Entry] = {}
    bad: list[Skipped] = []
    for address in addresses:
        url = without_fragment(address)
        entries.setdefault(url, Entry(url, url, url))
    for path, resolved in lists:
        found, wrong = read_url_list(path, resolved, max_bytes)
        bad += wrong
        for entry in found:
            entries.setdefault(entry.key, entry)
    return list(entries.values()), bad


def load_pages(entries: Sequence[Entry], fetcher: Fetcher, known: dict[str, Validators] | None = None,
               default_lang: str = "fr", ocr: OcrSettings | None = OcrSettings(),
               progress: bool = False) -> LoadResult:
    """Fetch and read ``entries``; a page the server says is unchanged is not parsed.

    Parameters
    ----------
    entries : sequence of Entry
        The addresses (:func:`entries_for`).
    fetcher : Fetcher
        How pages are fetched (bounds, private addresses).
    known : dict of str to Validators, optional
        Validators recorded when the pages were last read, by document key.
    default_lang : str
        Language for texts too short to tell.
    ocr : OcrSettings, optional
        How PDF pages without a text layer are read.
    progress : bool
        Show a progress bar.

    Returns
    -------
    LoadResult
        ``documents`` of the pages read, ``pages`` (validators to record), ``unchanged_keys``,
        ``failed_keys`` and ``skipped`` (address, reason).
    """
    known = known or {}
    out = LoadResult()

    def fetch(entry: Entry) -> Page | Exception:
        old = known.get(entry.key)
        try:
            return fetcher.fetch(entry.url, old.etag if old else "", old.last_modified if old else "")
        except FetchError as exc:
            return exc

    bar = tqdm(total=len(entries), desc="fetching", unit="page", disable=not progress or len(entries) < 2)
    with ThreadPoolExecutor(max_workers=max(1, min(FETCH_WORKERS, len(entries)))) as pool:
        for entry, got in zip(entries, pool.map(fetch, entries)):
            bar.update(1)
            _take(out, entry, got, known.get(entry.key), default_lang, ocr)
    bar.close()
    for s in out.skipped:
        log.warning("skipped %s: %s", s.path, s.reason)
    return out


def _take(out: LoadResult, entry: Entry, got: Page | Exception, old: Validators | None, default_lang: str,
          ocr: OcrSettings | None) -> None:
    """Add what became of one entry to ``out``."""
    if isinstance(got, Exception):
        out.skipped.append(Skipped(entry.source, _reason(str(got), entry.url)))
        out.failed_keys.append(entry.key)
        return
    if got.status == 304:
        if old is None:  # not asked conditionally: nothing to keep
            out.skipped.append(Skipped(entry.source, "HTTP 304 Not Modified to a request that was not conditional"))
            out.failed_keys.append(entry.key)
            return
        out.unchanged_keys.append(entry.key)
        if (got.etag, got.last_modified) != (old.etag, old.last_modified):
            out.pages[entry.key] = old._replace(etag=got.etag, last_modified=got.last_modified)
        return
    body_hash = hashlib.sha256(got.body).hexdigest()
    validators = Validators(entry.url, got.final_url, got.etag, got.last_modified, body_hash)
    if old is not None and old.body_sha256 == body_hash and old.final_url == got.final_url:
        out.unchanged_keys.append(entry.key)  # the same bytes: nothing to parse
        out.pages[entry.key] = validators
        return
    out.pages_fetched += 1
    doc, told = None, len(out.skipped)
    with guarded(out.skipped, entry.source):  # a page that breaks the parser is its skip, as a file's would be
        doc = page_document(entry, got, default_lang, ocr)
    if doc is None or len(out.skipped) > told:
        out.failed_keys.append(entry.key)
        return
    out.documents.append(doc)
    out.pages[entry.key] = validators


def page_document(entry: Entry, page: Page, default_lang: str = "fr", ocr: OcrSettings | None = OcrSettings()):
    """The :class:`~rag.schema.Document` of a fetched page.

    Raises
    ------
    Unreadable
        When the page holds no main text (or a PDF none that can be read).
    """
    if page.kind == "pdf":
        got = read_pdf(page.body, ocr)
    else:
        got = read_html(decode_html(page.body, page.charset), page.final_url)
    check_prose(got.text)
    day, day_source = got.date, got.date_source
    if not day:
        server_day = normalize_date(page.last_modified)
        day, day_source = (server_day, DateSource.SERVER.value) if server_day else (today(), DateSource.FETCHED.value)
    return make_document(entry.key, entry.source, got.title, got.text, default_lang, date=day,
                         date_source=day_source, url=page.final_url, author=got.author)


def decode_html(body: bytes, charset: str = "") -> str:
    """A page's text: in the charset its server or its ``<meta>`` names, else UTF-8, else Windows-1252."""
    candidates = [charset] if charset else []
    m = _META_CHARSET.search(body[:4096])
    if m:
        candidates.append(m.group(1).decode("ascii", "replace"))
    for name in (*candidates, "utf-8"):
        try:
            return body.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("cp1252", errors="replace")


def _reason(message: str, url: str) -> str:
    """A fetch error's message without the address at its start (the skip line names it already)."""
    return message[len(url) + 2:] if message.startswith(f"{url}: ") else message
