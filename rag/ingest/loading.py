"""Loading: files and folders in, :class:`Document` objects out, bad files skipped with a reason.

Supported: ``.txt``, ``.md``/``.markdown``, ``.html``/``.htm``, ``.pdf`` (pages without a text
layer read by OCR, :mod:`rag.ingest.ocr`), ``.docx`` (:mod:`rag.ingest.docx`), ``.jsonl`` (one article a line:
``title``, ``text``, optional ``url``, ``date``, ``author``) and SQuAD-format ``.json`` (each
paragraph becomes a document titled by its article). ``.urls`` files (one web address a line)
are listed in :attr:`LoadResult.address_lists` for :mod:`rag.ingest.web` to fetch.

Every document gets a date: the one it states (HTML metadata, a JSONL ``date``, a PDF's or Word
file's creation date), else its file's modification time, marked ``date_source = "file"``.

A folder is loaded again cheaply: :func:`load_paths` passes over a file whose
:class:`FileStamp` (size, modification and change times, inode) is the one recorded when it
was last read, without opening it. A JSONL file read again is compared record by record: a
record whose bytes hash to the digest its document was indexed with (``meta["record_sha256"]``)
is not analysed again, only listed in :attr:`LoadResult.unchanged_records`.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import io
import json
import logging
import os
import re
import time
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Iterable, Iterator, Sequence

from ..dates import DateSource, file_day, normalize_date
from ..schema import Document
from ..text.normalize import detect_language, text_hash
from .base import Extracted, Skipped, Unreadable, guarded, shown_name
from .docx import read_docx
from .fetch import Validators, is_address
from .files import FileStamp, Walked, file_stamp, key_files, walk
from .ocr import OcrSettings, ocr_pages

log = logging.getLogger(__name__)

TEXT_EXTS = {".txt", ".md", ".markdown"}
HTML_EXTS = {".html", ".htm"}
SUPPORTED = sorted(TEXT_EXTS | HTML_EXTS | {".pdf", ".docx", ".jsonl", ".json"})
URL_LIST_EXT = ".urls"  # one web address a line: fetched by rag.ingest.web, never stamp-skipped
MIN_PAGE_CHARS = 20  # a PDF page with fewer characters in its text layer is taken for a scan
MAX_AUTHOR = 200
MAX_ARTICLES = 10_000  # articles read from one JSONL file at most (Config.max_articles_per_file)
RECORD_DIGEST = "record_sha256"  # meta of a JSONL record's document: the SHA-256 of the record's bytes
# what pypdf may inflate for one PDF: a page's streams bounded, so a Flate "bomb" is refused in a moment
PDF_STREAM_BYTES = 20_000_000
PDF_WORK_BYTES = 80_000_000
# PDF Title properties that are not titles: a file name, a word processor's, a blank template's
_NOT_A_TITLE = re.compile(r"^\s*(microsoft word - .*|untitled.*|sans titre.*|.*\.(docx?|odt|rtf|pdf|tmp|indd|tex))\s*$",
                          re.IGNORECASE)
_TAG = re.compile(r"<[A-Za-z/!?][^>]*(?:>|$)")  # a tag, or one left open at the end of the string


@dataclass
class LoadResult:
    """Documents loaded and files skipped by :func:`load_paths`.

    ``stamps`` holds the stamps worth recording of the files read (by resolved path: settled,
    and the file gave documents and no skipped record); ``unchanged_files`` the files passed
    over unread because their stamp was the known one; ``files_read`` counts the others.
    ``warnings`` name what was indexed only in part (an OCR bound reached) and the folders that
    could not be listed, whose resolved paths are in ``unreadable_folders``; ``skipped_files`` holds
    the resolved paths of the files skipped in whole or in part. ``address_lists``
    holds the ``.urls`` files found (path as walked, resolved path). ``unchanged_records`` holds the
    keys of the JSONL records read again whose bytes are those their document was indexed from
    (not analysed again: their documents are unchanged).

    Web pages (:mod:`rag.ingest.web`): ``pages`` holds the validators to record (by document key),
    ``unchanged_keys`` the documents whose page the server said was not modified (or sent
    byte for byte again), ``failed_keys`` those whose page could not be fetched this time
    (their previous version is kept); ``pages_fetched`` counts the pages downloaded and parsed.
    """

    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    stamps: dict[str, FileStamp] = field(default_factory=dict)
    unchanged_files: list[str] = field(default_factory=list)
    files_read: int = 0
    warnings: list[Skipped] = field(default_factory=list)
    address_lists: list[tuple[str, str]] = field(default_factory=list)
    pages: dict[str, Validators] = field(default_factory=dict)
    unchanged_keys: list[str] = field(default_factory=list)
    failed_keys: list[str] = field(default_factory=list)
    pages_fetched: int = 0
    unreadable_folders: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    unchanged_records: list[str] = field(default_factory=list)

    def add(self, other: "LoadResult", files: Sequence[str] = ()) -> None:
        """Take in ``other``, a load of ``files`` (or page keys) that this one had passed over as unchanged."""
        taken = set(files)
        self.unchanged_files = [f for f in self.unchanged_files if f not in taken]
        self.unchanged_keys = [k for k in self.unchanged_keys if k not in taken] + other.unchanged_keys
        self.unchanged_records = [k for k in self.unchanged_records
                                  if not any(f in taken for f in key_files(k))] + other.unchanged_records
        self.documents.extend(other.documents)
        self.skipped.extend(other.skipped)
        self.stamps.update(other.stamps)
        self.files_read += other.files_read
        self.warnings.extend(other.warnings)
        self.address_lists.extend(other.address_lists)
        self.pages.update(other.pages)
        self.failed_keys.extend(other.failed_keys)
        self.pages_fetched += other.pages_fetched
        self.unreadable_folders.extend(other.unreadable_folders)
        self.skipped_files.extend(other.skipped_files)


@lru_cache(maxsize=1)
def loader_version() -> str:
    """Fingerprint of the code that turns files into documents (this module, ``files``, ``text.normalize``).

    File stamps are recorded with it: after an upgrade that may extract text differently, every
    file is read once again. (Upgrading trafilatura or pypdf is not seen: ``--rebuild``.)
    """
    digest = hashlib.sha256()
    here = Path(__file__).parent
    sources = [here / name for name in ("loading.py", "files.py", "docx.py", "ocr.py", "base.py")]
    for path in (*sources, here.parent / "text" / "normalize.py", here.parent / "dates.py"):
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(path.name.encode())
    return digest.hexdigest()[:16]


_Skip = Unreadable  # raised inside a reader: the file is skipped with this reason


def display_path(path: Path) -> str:
    """Path as users see it: relative to the current folder when below it, else absolute."""
    return _shown(path.resolve(), Path.cwd().resolve())


def _shown(resolved: Path, cwd: Path) -> str:
    """:func:`display_path` of an already resolved path, ``cwd`` resolved too."""
    try:
        return str(resolved.relative_to(cwd))
    except ValueError:
        return str(resolved)


def doc_id_for(key: str) -> str:
    """Stable document id derived from its key."""
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def clean_text(text: str) -> str:
    """Unicode NFC, Unix newlines, no NUL; the text every offset refers to."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    return text.replace("\x00", "").strip()


def strip_tags(text: str) -> str:
    """Remove HTML tags and entities from a short string such as a title."""
    return re.sub(r"\s+", " ", html.unescape(_TAG.sub("", text))).strip()


_LONG_RUN = re.compile(r"\S{100,}")


def check_prose(text: str) -> None:
    """Refuse text that is mostly 'words' over 100 characters (encoded data, not an article)."""
    if len(text) > 2000:
        junk = sum(len(m) for m in _LONG_RUN.findall(text))
        if junk > len(text) / 2:
            raise _Skip(f"does not look like text: {100 * junk // len(text)}% of it is runs of 100+ characters "
                        f"without a space (encoded or binary data?)")


LANG_CHARS = 5000  # detect_language reads no further


def make_document(key: str, source: str, title: str, text: str, default_lang: str = "fr",
                  meta: dict | None = None, date: str = "", date_source: str = "", url: str = "",
                  author: str = "") -> Document:
    """Build a :class:`Document`: cleans the text, fills title, language and hash.

    ``title`` and ``author`` lose any HTML tags (the author is cut to 200 characters); a ``url``
    that is not an http(s) address is dropped; ``date`` is a day (``YYYY-MM-DD``) and
    ``date_source`` where it comes from (:class:`rag.dates.DateSource`).
    """
    for name, value in (("text", text), ("title", title), ("author", author)):
        _check_unicode(name, value or "")
    text = clean_text(text)
    title = strip_tags(title or "") or _first_line_title(text)
    author = strip_tags(author or "")[:MAX_AUTHOR]
    return Document(
        id=doc_id_for(key), key=key, source=source, title=title, text=text,
        lang=detect_language(title + "\n" + text[:LANG_CHARS], default_lang),
        sha256=text_hash(text), meta=meta or {},
        date=date or "", date_source=date_source if date else "", url=url if is_address(url) else "",
        author=author,
    )


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_unicode(name: str, value: str) -> None:
    """Refuse a lone surrogate (a JSON ``\\ud800`` escape): it is not a character, and no encoder takes it."""
    bad = _SURROGATE.search(value)
    if bad:
        raise _Skip(f"its {name} holds a lone surrogate (U+{ord(bad.group()):04X} at character {bad.start()}), "
                    f"which is not valid Unicode")


def _dated(got: Extracted, mtime: float) -> tuple[str, str]:
    """(date, date_source) of a file's document: the date it states, else the file's modification day."""
    if got.date:
        return got.date, got.date_source
    return file_day(mtime), DateSource.FILE.value


def _first_line_title(text: str, limit: int = 100) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = re.sub(r"^#+\s*", "", line)
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0]
    return cut + "…"


def _check_size(path: Path, max_bytes: int) -> None:
    size = path.stat().st_size
    if size == 0:
        raise _Skip("empty file")
    if size > max_bytes:
        raise _Skip(f"file too large ({size / 1e6:.1f} MB > limit {max_bytes / 1e6:.1f} MB; raise max_file_mb)")


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    _check_size(path, max_bytes)
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)  # a file grown since its size was read is not read past the limit
    if len(data) > max_bytes:
        raise _Skip(f"file too large (over the limit of {max_bytes / 1e6:.1f} MB; raise max_file_mb)")
    return data


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise _Skip("binary file (NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Skip(f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    if not text.strip():
        raise _Skip("empty file (whitespace only)")
    return text


def _read_text(path: Path, data: bytes) -> Extracted:
    text = _decode(data)
    title = ""
    if path.suffix.lower() in {".md", ".markdown"}:
        m = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
        title = m.group(1).strip() if m else ""
    return Extracted(title, text)


def read_html(raw: str, url: str | None = None) -> Extracted:
    """Main text, title, publication date and author of an HTML page (trafilatura).

    The date is the one the page's metadata states (``<meta>``, JSON-LD, ``<time>``, the
    address's ``/2026/01/31/``), not one guessed from its text.
    """
    import trafilatura

    text = trafilatura.extract(raw, url=url, include_comments=False, include_tables=True, favor_recall=True) or ""
    meta = trafilatura.extract_metadata(raw, default_url=url, extensive=False)
    title = (meta.title if meta and meta.title else "") or ""
    if not title:
        m = re.search(r"<title[^>]*>(.*?)</title>|<h1[^>]*>(.*?)</h1>", raw, re.IGNORECASE | re.DOTALL)
        title = strip_tags((m.group(1) or m.group(2))) if m else ""
    if not text.strip():
        raise _Skip("HTML page has no main text")
    day = normalize_date(meta.date) if meta else None
    return Extracted(title, text, day or "", DateSource.PUBLISHED.value if day else "",
                     (meta.author if meta else "") or "")


def _pdf_limits():
    """pypdf's decompression limits lowered to :data:`PDF_STREAM_BYTES` a stream (pypdf 5+; older ones keep theirs)."""
    import pypdf

    apply = getattr(pypdf, "apply_configuration", None)
    if apply is None:
        return contextlib.nullcontext()
    wanted = {"zlib_maximum_output_length": PDF_STREAM_BYTES, "lzw_maximum_output_length": PDF_STREAM_BYTES,
              "run_length_maximum_output_length": PDF_STREAM_BYTES, "brotli_maximum_output_length": PDF_STREAM_BYTES,
              "maximum_declared_stream_length": PDF_STREAM_BYTES, "stream_decoding_work_maximum_length": PDF_WORK_BYTES}
    known = {f for f in getattr(pypdf.Configuration, "__dataclass_fields__", {})}
    return apply(**{k: v for k, v in wanted.items() if k in known})


def read_pdf(data: bytes, ocr: OcrSettings | None = None) -> Extracted:
    """Text of a PDF, page by page; pages without a text layer are read by OCR (unless ``ocr`` is None).

    Title, author and creation date come from the PDF's properties.
    """
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PdfReadError

    try:
        with _pdf_limits():
            reader = PdfReader(io.BytesIO(data))
            pages = [(page.extract_text() or "").strip() for page in reader.pages]
            info = reader.metadata
            title = str(info.title or "") if info else ""
            author = str(info.author or "") if info else ""
        title = "" if _NOT_A_TITLE.match(title) else title
    except LimitReachedError as exc:
        raise _Skip(f"PDF goes past a safety limit, refused as a possible decompression bomb ({exc})") from None
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, AttributeError) as exc:
        raise _Skip(f"malformed PDF ({type(exc).__name__}: {exc})") from None
    try:
        day = normalize_date(info.creation_date) if info else None
    except (ValueError, TypeError, AttributeError):  # a creation date pypdf cannot parse
        day = None
    scans = [i for i, p in enumerate(pages) if len(re.sub(r"\s+", "", p)) < MIN_PAGE_CHARS]
    warnings: list[str] = []
    if scans and ocr is None:
        if len(scans) == len(pages):
            raise _Skip("PDF has no text layer (scanned images?) and OCR is off")
    elif scans:
        try:
            done = ocr_pages(data, scans, ocr)
        except Unreadable as why:
            if len(scans) == len(pages):
                raise
            done = None
            warnings.append(f"page(s) without a text layer not read: {why}")
        if done is not None:
            warnings += done.warnings
            for i, text in done.pages.items():
                pages[i] = text if len(text) > len(pages[i]) else pages[i]
    text = "\n\n".join(p for p in pages if p)
    if not text.strip():
        why = "; ".join(warnings) if warnings else f"OCR found no text on its {len(pages)} page(s)"
        raise _Skip(f"PDF has no text layer, and {why}")
    return Extracted(title, text, day or "", DateSource.DOCUMENT.value if day else "", author, tuple(warnings))


def _jsonl_records(fh: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """Numbered non-blank lines of a JSON Lines file, read one at a time (split at line feeds only:
    U+2028 and the other line breaks JSON writes raw inside strings do not cut a record)."""
    for lineno, raw in enumerate(fh, 1):
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if raw.strip():
            yield lineno, raw.rstrip(b"\r\n")


def _jsonl_documents(path: Path, source: str, default_lang: str, skipped: list[Skipped],
                     max_articles: int = MAX_ARTICLES, known_records: dict[str, str] | None = None,
                     unchanged: list[str] | None = None) -> Iterator[Document]:
    """The articles of a JSONL file, streamed a line at a time; a bad record is a skip naming its line.

    At most ``max_articles`` articles are read: the rest of the file is skipped, said once. A record
    whose key has, in ``known_records``, the SHA-256 of its bytes is not made a document again: its
    key goes in ``unchanged``.
    """
    base = str(path.resolve())
    file_date = file_day(path.stat().st_mtime)
    taken = 0
    known_records = known_records or {}
    keys: set[str] = set()  # a key met again is a duplicate, which load_paths would drop
    with open(path, "rb") as fh:
        head = fh.read(8192)
        if b"\x00" in head:
            raise _Skip("binary file (NUL bytes), not text")
        fh.seek(0)
        records = _jsonl_records(fh)
        for lineno, raw in records:
            if taken >= max_articles:
                rest = 1 + sum(1 for _ in records)
                skipped.append(Skipped(source, f"more than {max_articles} articles: the first {max_articles} are "
                                               f"indexed, the {rest} record(s) from line {lineno} on are not "
                                               f"(raise max_articles_per_file, or split the file)"))
                return
            where = f"{source}:{lineno}"
            doc = None
            with guarded(skipped, where):
                obj = _jsonl_object(raw)
                digest = hashlib.sha256(raw).hexdigest()
                key = _jsonl_key(obj, lineno, base)
                if key in keys or (unchanged is not None and known_records.get(key) == digest):
                    if key not in keys:
                        unchanged.append(key)
                    keys.add(key)
                    taken += 1
                    continue
                keys.add(key)
                doc = _jsonl_document(obj, key, lineno, source, default_lang, file_date, digest)
            if doc is not None:
                taken += 1
                yield doc


def _jsonl_object(raw: bytes) -> dict:
    """The JSON object of one JSONL line (raises :class:`Unreadable` with the reason it cannot be an article)."""
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _Skip(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start} of the line)") from None
    except json.JSONDecodeError as exc:
        raise _Skip(f"invalid JSON ({exc.msg})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or not obj["text"].strip():
        raise _Skip('record has no "text" string')
    return obj


def _jsonl_key(obj: dict, lineno: int, base: str) -> str:
    """The document key of a JSONL record: its file and its ``url``, ``id`` or line number."""
    return f"{base}#{obj.get('url') or obj.get('id') or f'line{lineno}'}"


def _jsonl_document(obj: dict, key: str, lineno: int, source: str, default_lang: str, file_date: str,
                    digest: str) -> Document:
    """The article of one JSONL record, its bytes' ``digest`` in its meta."""
    day = normalize_date(obj.get("date"))
    url = obj.get("url") if isinstance(obj.get("url"), str) else ""
    author = obj.get("author") if isinstance(obj.get("author"), str) else ""
    return make_document(key, f"{source}#{lineno}", str(obj.get("title") or ""), obj["text"],
                         default_lang, meta={RECORD_DIGEST: digest}, date=day or file_date,
                         date_source=DateSource.PUBLISHED.value if day else DateSource.FILE.value,
                         url=url, author=author)


def squad_key(path: str | os.PathLike, article: int, paragraph: int) -> str:
    """Key of the document made from paragraph ``paragraph`` of article ``article``."""
    return f"{Path(path).resolve()}#{article}-{paragraph}"


def _squad_documents(path: Path, data: bytes, default_lang: str) -> Iterator[Document]:
    try:
        obj = json.loads(_decode(data))
    except json.JSONDecodeError as exc:
        raise _Skip(f"invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise _Skip('not a SQuAD-format file (no "data" list); articles go in .jsonl, one a line')
    source = display_path(path)
    file_date = file_day(path.stat().st_mtime)
    for ai, article in enumerate(obj["data"]):
        for pi, para in enumerate(article.get("paragraphs", [])):
            context = para.get("context", "")
            if isinstance(context, str) and context.strip():
                yield make_document(squad_key(path, ai, pi), f"{source}#{ai}-{pi}",
                                    str(article.get("title", "")), context, default_lang,
                                    date=file_date, date_source=DateSource.FILE.value)


def load_file(path: Path, max_bytes: int = 20_000_000, default_lang: str = "fr",
              ocr: OcrSettings | None = OcrSettings(), max_articles: int = MAX_ARTICLES) -> LoadResult:
    """Load one file into documents; a bad file comes back in ``skipped`` with its reason."""
    result = LoadResult(files_read=1)
    with guarded(result.skipped, str(path)):
        resolved = path.resolve()
        return _load_file(path, resolved, _shown(resolved, Path.cwd().resolve()), max_bytes, default_lang, ocr,
                          max_articles)
    return result


def _load_file(path: Path, resolved: Path, source: str, max_bytes: int, default_lang: str,
               ocr: OcrSettings | None = OcrSettings(), max_articles: int = MAX_ARTICLES,
               known_records: dict[str, str] | None = None) -> LoadResult:
    """One file's documents; whatever goes wrong with it is its skip (:func:`rag.ingest.base.guarded`)."""
    result = LoadResult(files_read=1)
    with guarded(result.skipped, source):
        _read_file(path, resolved, source, max_bytes, default_lang, ocr, max_articles, result, known_records)
    return result


def _read_file(path: Path, resolved: Path, source: str, max_bytes: int, default_lang: str,
               ocr: OcrSettings | None, max_articles: int, result: LoadResult,
               known_records: dict[str, str] | None = None) -> None:
    ext = path.suffix.lower()
    if shown_name(str(resolved)) != str(resolved):
        raise _Skip("file name is not valid UTF-8 (rename the file)")
    if ext not in SUPPORTED:
        old_word = " (an old Word file: save it as .docx)" if ext == ".doc" else ""
        raise _Skip(f"unsupported extension {ext or '(none)'!r}{old_word} (supported: {', '.join(SUPPORTED)})")
    if ext == ".jsonl":
        _check_size(path, max_bytes)
        result.documents.extend(_jsonl_documents(path, source, default_lang, result.skipped, max_articles,
                                                 known_records, result.unchanged_records))
        if not result.documents and not result.unchanged_records and not result.skipped:
            raise _Skip("no article in JSONL file")
        return
    data = _read_bytes(path, max_bytes)
    if ext == ".json":
        result.documents.extend(_squad_documents(path, data, default_lang))
        return
    if ext == ".pdf":
        got = read_pdf(data, ocr)
        if got.title.strip().lower() in (path.stem.lower(), path.name.lower()):  # the file's name, no title
            got = got._replace(title="")
    elif ext == ".docx":
        got = read_docx(data, max_bytes)
    elif ext in HTML_EXTS:
        got = read_html(_decode(data))
    else:
        got = _read_text(path, data)
    del data
    check_prose(got.text)
    day, day_source = _dated(got, path.stat().st_mtime)
    result.documents.append(make_document(str(resolved), source, got.title, got.text, default_lang,
                                          date=day, date_source=day_source, author=got.author))
    result.warnings.extend(Skipped(source, w) for w in got.warnings)


def load_paths(paths: Iterable[str | os.PathLike], max_file_mb: float = 20.0,
               default_lang: str = "fr", known: dict[str, FileStamp] | None = None,
               ocr: OcrSettings | None = OcrSettings(), max_articles: int = MAX_ARTICLES,
               follow_links: bool = False, known_records: dict[str, str] | None = None) -> LoadResult:
    """Load every supported file below ``paths``, passing over the files known unchanged.

    A file that cannot be turned into documents, whatever the reason, is skipped with it
    (:func:`rag.ingest.base.guarded`); the others are loaded.

    Parameters
    ----------
    paths : iterable of path-like
        Files and folders (walked recursively).
    max_file_mb : float
        Larger files are skipped.
    default_lang : str
        Language for texts too short to tell.
    known : dict of str to FileStamp, optional
        Stamps recorded when files were last read, by resolved path: a file whose stamp is
        still this one is not read, only listed in ``unchanged_files``.
    ocr : OcrSettings, optional
        How PDF pages without a text layer are read (None: they are not).
    max_articles : int
        Articles read from one JSONL file at most (the rest is skipped, said once).
    follow_links : bool
        Follow links to files outside ``paths`` too (otherwise they are skipped, said so).
    known_records : dict of str to str, optional
        The record digest (``meta["record_sha256"]``) of indexed JSONL documents, by key: a record
        read again with those bytes is listed in ``unchanged_records`` rather than analysed.

    Returns
    -------
    LoadResult
        ``documents`` (duplicates keys dropped), ``skipped`` (path, reason) pairs, the
        ``stamps`` to record and the ``unchanged_files``.
    """
    out = LoadResult()
    seen: set[str] = set()
    known = known or {}
    cwd = Path.cwd().resolve()
    walked = Walked()
    max_bytes = int(max_file_mb * 1_000_000)
    for path, key in walk(paths, follow_links, walked):
        if path.lower().endswith(URL_LIST_EXT):  # its addresses are asked again on every build
            out.address_lists.append((path, key))
            continue
        stamp = file_stamp(key)
        now = time.time_ns()
        if stamp is not None and known.get(key) == stamp:
            out.unchanged_files.append(key)
            continue
        resolved = Path(key)
        res = _load_file(Path(path), resolved, _shown(resolved, cwd), max_bytes, default_lang, ocr, max_articles,
                         known_records)
        out.files_read += res.files_read
        out.skipped.extend(res.skipped)
        out.warnings.extend(res.warnings)
        if res.skipped:
            out.skipped_files.append(key)
        if stamp is not None and (res.documents or res.unchanged_records) and not res.skipped and stamp.settled(now):
            out.stamps[key] = stamp
        for doc in res.documents:
            if doc.key not in seen:
                seen.add(doc.key)
                out.documents.append(doc)
        for record in res.unchanged_records:
            if record not in seen:
                seen.add(record)
                out.unchanged_records.append(record)
    out.skipped.extend(walked.skipped)
    out.warnings.extend(walked.warnings)
    out.unreadable_folders.extend(walked.unreadable)
    for s in out.skipped:
        log.warning("skipped %s: %s", s.path, s.reason)
    for s in out.warnings:
        log.warning("%s: %s", s.path, s.reason)
    return out
