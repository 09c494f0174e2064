"""Loading: files and folders in, :class:`Document` objects out, bad files skipped with a reason.

Supported: ``.txt``, ``.md``/``.markdown``, ``.html``/``.htm``, ``.pdf``, ``.jsonl`` (one article
a line: ``title``, ``text``, optional ``url``, ``date``) and SQuAD-format ``.json`` (each
paragraph becomes a document titled by its article).

A folder is loaded again cheaply: :func:`load_paths` passes over a file whose
:class:`FileStamp` (size, modification and change times, inode) is the one recorded when it
was last read, without opening it.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import os
import re
import time
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Sequence

from ..schema import Document
from ..text.normalize import detect_language, jsonl_lines, text_hash
from .files import FileStamp, file_stamp, walk

log = logging.getLogger(__name__)

TEXT_EXTS = {".txt", ".md", ".markdown"}
HTML_EXTS = {".html", ".htm"}
SUPPORTED = sorted(TEXT_EXTS | HTML_EXTS | {".pdf", ".jsonl", ".json"})
_TAG = re.compile(r"<[^>]+>")


class Skipped(NamedTuple):
    """A file (or record) that was not indexed, and why."""

    path: str
    reason: str


@dataclass
class LoadResult:
    """Documents loaded and files skipped by :func:`load_paths`.

    ``stamps`` holds the stamps worth recording of the files read (by resolved path: settled,
    and the file gave documents and no skipped record); ``unchanged_files`` the files passed
    over unread because their stamp was the known one; ``files_read`` counts the others.
    """

    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    stamps: dict[str, FileStamp] = field(default_factory=dict)
    unchanged_files: list[str] = field(default_factory=list)
    files_read: int = 0

    def add(self, other: "LoadResult", files: Sequence[str] = ()) -> None:
        """Take in ``other``, a load of ``files`` that this one had passed over as unchanged."""
        self.documents.extend(other.documents)
        self.skipped.extend(other.skipped)
        self.stamps.update(other.stamps)
        self.files_read += other.files_read
        taken = set(files)
        self.unchanged_files = [f for f in self.unchanged_files if f not in taken]


@lru_cache(maxsize=1)
def loader_version() -> str:
    """Fingerprint of the code that turns files into documents (this module, ``files``, ``text.normalize``).

    File stamps are recorded with it: after an upgrade that may extract text differently, every
    file is read once again. (Upgrading trafilatura or pypdf is not seen: ``--rebuild``.)
    """
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for path in (here / "loading.py", here / "files.py", here.parent / "text" / "normalize.py"):
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(path.name.encode())
    return digest.hexdigest()[:16]


class _Skip(Exception):
    """Raised inside a reader: the file is skipped with this reason."""


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
                  meta: dict | None = None) -> Document:
    """Build a :class:`Document`: cleans the text, fills title, language and hash."""
    text = clean_text(text)
    title = strip_tags(title or "") or _first_line_title(text)
    return Document(
        id=doc_id_for(key), key=key, source=source, title=title, text=text,
        lang=detect_language(title + "\n" + text[:LANG_CHARS], default_lang),
        sha256=text_hash(text), meta=meta or {},
    )


def _first_line_title(text: str, limit: int = 100) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = re.sub(r"^#+\s*", "", line)
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0]
    return cut + "…"


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    size = path.stat().st_size
    if size == 0:
        raise _Skip("empty file")
    if size > max_bytes:
        raise _Skip(f"file too large ({size / 1e6:.1f} MB > limit {max_bytes / 1e6:.1f} MB; raise max_file_mb)")
    return path.read_bytes()


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


def _read_text(path: Path, data: bytes) -> tuple[str, str]:
    text = _decode(data)
    title = ""
    if path.suffix.lower() in {".md", ".markdown"}:
        m = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
        title = m.group(1).strip() if m else ""
    return title, text


def _read_html(data: bytes) -> tuple[str, str]:
    import trafilatura

    raw = _decode(data)
    text = trafilatura.extract(raw, include_comments=False, include_tables=True, favor_recall=True) or ""
    meta = trafilatura.extract_metadata(raw)
    title = (meta.title if meta and meta.title else "") or ""
    if not title:
        m = re.search(r"<title[^>]*>(.*?)</title>|<h1[^>]*>(.*?)</h1>", raw, re.IGNORECASE | re.DOTALL)
        title = strip_tags((m.group(1) or m.group(2))) if m else ""
    if not text.strip():
        raise _Skip("HTML page has no main text")
    return title, text


def _read_pdf(path: Path) -> tuple[str, str]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        title = (reader.metadata.title if reader.metadata and reader.metadata.title else "") or ""
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, AttributeError) as exc:
        raise _Skip(f"malformed PDF ({type(exc).__name__}: {exc})") from None
    text = "\n\n".join(p for p in pages if p)
    if not text.strip():
        raise _Skip("PDF has no text layer (scanned images?); run OCR first")
    return str(title), text


def _jsonl_documents(path: Path, data: bytes, default_lang: str,
                     skipped: list[Skipped]) -> Iterator[Document]:
    text = _decode(data)
    base, source = str(path.resolve()), display_path(path)
    for lineno, line in jsonl_lines(text):
        where = f"{source}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            skipped.append(Skipped(where, f"invalid JSON ({exc.msg})"))
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or not obj["text"].strip():
            skipped.append(Skipped(where, 'record has no "text" string'))
            continue
        ident = obj.get("url") or obj.get("id") or f"line{lineno}"
        meta = {k: obj[k] for k in ("url", "date") if isinstance(obj.get(k), str)}
        yield make_document(f"{base}#{ident}", f"{source}#{lineno}", str(obj.get("title") or ""),
                            obj["text"], default_lang, meta)


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
    for ai, article in enumerate(obj["data"]):
        for pi, para in enumerate(article.get("paragraphs", [])):
            context = para.get("context", "")
            if isinstance(context, str) and context.strip():
                yield make_document(squad_key(path, ai, pi), f"{source}#{ai}-{pi}",
                                    str(article.get("title", "")), context, default_lang)


def load_file(path: Path, max_bytes: int = 20_000_000, default_lang: str = "fr") -> LoadResult:
    """Load one file into documents; a bad file comes back in ``skipped`` with its reason."""
    resolved = path.resolve()
    return _load_file(path, resolved, _shown(resolved, Path.cwd().resolve()), max_bytes, default_lang)


def _load_file(path: Path, resolved: Path, source: str, max_bytes: int, default_lang: str) -> LoadResult:
    result = LoadResult(files_read=1)
    ext = path.suffix.lower()
    try:
        if ext not in SUPPORTED:
            raise _Skip(f"unsupported extension {ext or '(none)'!r} (supported: {', '.join(SUPPORTED)})")
        data = _read_bytes(path, max_bytes)
        if ext == ".jsonl":
            result.documents.extend(_jsonl_documents(path, data, default_lang, result.skipped))
            if not result.documents and not result.skipped:
                raise _Skip("no article in JSONL file")
            return result
        if ext == ".json":
            result.documents.extend(_squad_documents(path, data, default_lang))
            return result
        if ext == ".pdf":
            title, text = _read_pdf(path)
        elif ext in HTML_EXTS:
            title, text = _read_html(data)
        else:
            title, text = _read_text(path, data)
        check_prose(text)
        result.documents.append(make_document(str(resolved), source, title, text, default_lang))
    except _Skip as why:
        result.skipped.append(Skipped(source, str(why)))
    except OSError as exc:
        result.skipped.append(Skipped(source, f"unreadable ({exc.strerror or exc})"))
    return result


def load_paths(paths: Iterable[str | os.PathLike], max_file_mb: float = 20.0,
               default_lang: str = "fr", known: dict[str, FileStamp] | None = None) -> LoadResult:
    """Load every supported file below ``paths``, passing over the files known unchanged.

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
    for path, key in walk(paths):
        stamp = file_stamp(key)
        now = time.time_ns()
        if stamp is not None and known.get(key) == stamp:
            out.unchanged_files.append(key)
            continue
        resolved = Path(key)
        res = _load_file(Path(path), resolved, _shown(resolved, cwd), int(max_file_mb * 1_000_000), default_lang)
        out.files_read += res.files_read
        out.skipped.extend(res.skipped)
        if stamp is not None and res.documents and not res.skipped and stamp.settled(now):
            out.stamps[key] = stamp
        for doc in res.documents:
            if doc.key not in seen:
                seen.add(doc.key)
                out.documents.append(doc)
    for s in out.skipped:
        log.warning("skipped %s: %s", s.path, s.reason)
    return out
