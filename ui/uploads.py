"""Uploaded articles: accepted types, size limit, safe file names, saved into one folder.

A name sent by a browser is never trusted: only its last component is kept, reduced to
letters, digits, ``.``, ``-``, ``_`` and spaces, and the final path is checked to sit directly
in the upload folder, so no name (``../../etc/passwd``, ``C:\\x``, ``.bashrc``) can escape it.
An upload never replaces another file: two different ``notes.txt`` are both kept (see
:func:`save_upload`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import unicodedata
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

from rag.config import Config
from rag.errors import BadInput
from rag.ingest import SUPPORTED
from rag.ingest.files import file_sha256
from rag.store.factory import is_database_url

ACCEPTED = tuple(ext for ext in SUPPORTED if ext != ".json")  # SQuAD sets (.json) are for evaluation
_UNSAFE = re.compile(r"[^\w.\- ]+", re.UNICODE)
MAX_NAME = 120
MB = 1024 * 1024  # the size limit in the same megabytes as the page shows (Gradio counts MiB)
TMP_PREFIX = ".upload-"  # a file being copied in; never taken for an upload


class UploadRefused(BadInput):
    """A file was not accepted; ``key`` and ``values`` give the reason as an interface string."""

    def __init__(self, name: str, key: str, message: str, **values: object):
        super().__init__(f"{name}: {message}")
        self.name, self.key, self.values = name, key, values


def upload_dir(config: Config) -> Path:
    """The upload folder: ``config.upload_dir``, else ``uploads/`` beside the index folder (in the current
    folder for a database index)."""
    if config.upload_dir:
        return Path(config.upload_dir)
    if is_database_url(config.index_dir):  # a database index: no folder to sit beside
        return Path("uploads").resolve()
    index = Path(config.index_dir).resolve()
    return index.parent / "uploads"


def safe_name(name: str) -> str:
    """A file name that stays inside a folder, keeping the readable part of ``name``.

    Raises
    ------
    UploadRefused
        When nothing usable is left (e.g. ``".."``).
    """
    base = re.split(r"[\\/]", name)[-1]
    base = unicodedata.normalize("NFC", base).replace("\x00", "")
    base = _UNSAFE.sub("_", base).strip(" .")
    base = re.sub(r"_{2,}", "_", base)
    stem, ext = os.path.splitext(base)
    stem = stem[: MAX_NAME - len(ext)].strip(" .")
    if not stem or not ext:
        raise UploadRefused(name, "upload_bad_type", f"file type not accepted ({ext or 'none'})",
                            ext=ext or "?", exts=" ".join(ACCEPTED))
    return stem + ext.lower()


def check_upload(src: Path, name: str, max_mb: float) -> None:
    """Refuse a file of a type not accepted, empty, or larger than ``max_mb`` megabytes."""
    ext = os.path.splitext(name)[1].lower()
    if ext not in ACCEPTED:
        raise UploadRefused(name, "upload_bad_type", f"file type not accepted ({ext or 'none'}); "
                            f"accepted: {' '.join(ACCEPTED)}", ext=ext or "?", exts=" ".join(ACCEPTED))
    size = src.stat().st_size
    if size == 0:
        raise UploadRefused(name, "upload_empty", "empty file")
    if size > max_mb * MB:
        raise UploadRefused(name, "upload_too_big", f"file too large ({size / MB:.1f} MB > {max_mb:g} MB)",
                            size=size / MB, mb=max_mb)


class SavedUpload(NamedTuple):
    """Where an uploaded file was kept."""

    path: Path      # the file in the upload folder
    name: str       # the (cleaned) name the browser gave
    created: bool   # False: the same content was already there, under this name or another


def save_upload(src: str | os.PathLike, name: str, folder: Path, max_mb: float) -> SavedUpload:
    """Check an uploaded file and copy it into ``folder`` under a safe name that replaces nothing.

    The file keeps its cleaned name when that name is free. A file of the same name but other
    content is never replaced: the new one is kept as ``stem-<8 hex digits of its SHA-256>.ext``
    (longer digests if even that is taken). The same content uploaded again, under any name, is
    not copied twice: the file already there is returned, so it stays one document. The final
    name is claimed atomically (a hard link, else an exclusive create), so two uploads at once
    cannot overwrite each other either.

    Parameters
    ----------
    src : path-like
        The file as received (Gradio's temporary copy).
    name : str
        The name the browser gave; only a safe form of its last component is used.
    folder : Path
        The upload folder (created if needed).
    max_mb : float
        Size limit in megabytes.

    Returns
    -------
    SavedUpload

    Raises
    ------
    UploadRefused
        Bad type, empty, too large, an unusable name, or the received copy gone.
    """
    src = Path(src)
    clean = safe_name(name)
    try:
        check_upload(src, clean, max_mb)
        digest = file_sha256(src)
    except FileNotFoundError:
        raise UploadRefused(name, "upload_gone", "the received copy disappeared; upload the file again") from None
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    same = _same_content(root, src.stat().st_size, digest)
    if same is not None:
        return SavedUpload(same, clean, False)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=TMP_PREFIX, suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        for candidate in _candidates(clean, digest):
            dest = root / candidate
            if dest.parent != root:  # cannot happen with safe_name; kept as the last line of defence
                raise UploadRefused(name, "upload_bad_type", "file name leaves the upload folder", ext="?",
                                    exts=" ".join(ACCEPTED))
            try:
                _claim(Path(tmp), dest)
                return SavedUpload(dest, clean, True)
            except FileExistsError:
                if dest.is_file() and file_sha256(dest) == digest:  # the same file, saved at the same moment
                    return SavedUpload(dest, clean, False)
        raise UploadRefused(name, "upload_bad_type", "no free name", ext="?", exts=" ".join(ACCEPTED))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _candidates(clean: str, digest: str) -> list[str]:
    stem, ext = os.path.splitext(clean)
    out = [clean]
    for n in (8, 16, 64):
        tail = f"-{digest[:n]}"
        out.append(stem[: MAX_NAME - len(ext) - len(tail)] + tail + ext)
    return out


def _claim(tmp: Path, dest: Path) -> None:
    """Give ``tmp``'s content the name ``dest`` unless that name exists (FileExistsError)."""
    try:
        os.link(tmp, dest)
        return
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system: an exclusive create, then the content over it
        pass
    fd = os.open(dest, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.close(fd)
    os.replace(tmp, dest)


def _same_content(root: Path, size: int, digest: str) -> Path | None:
    """A file of the upload folder with these bytes (only files of the same size are read)."""
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.name.startswith(TMP_PREFIX) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                if entry.stat(follow_symlinks=False).st_size == size and file_sha256(Path(entry.path)) == digest:
                    return Path(entry.path)
            except OSError:
                continue
    return None


def discard_received(path: str | os.PathLike, cache: str | os.PathLike) -> bool:
    """Delete the web server's own copy of an uploaded file, once kept (or refused).

    Gradio keeps every upload under its cache folder (``cache/<hash>/<name>``) and serves it at
    ``/gradio_api/file=<path>`` for as long as it is there; the upload folder holds the copy that
    is indexed, so this one is deleted at once: a document removed later has no copy left to
    download. Nothing outside ``cache`` is ever deleted.

    Returns
    -------
    bool
        True when a file was deleted.
    """
    try:
        target = Path(path).resolve()
        root = Path(cache).resolve()
        if root not in target.parents or not target.is_file():
            return False
        target.unlink()
        if target.parent != root and not any(target.parent.iterdir()):
            target.parent.rmdir()
        return True
    except OSError:
        return False


class ReceivedCopies:
    """The web server's copies of uploads already kept (then deleted by :func:`discard_received`).

    The page's file box lists a file until its update is over, so a file dropped into it meanwhile
    comes with the earlier ones again; those, already kept, are passed over rather than refused as
    gone. A copy that exists again is a new upload of the same file.

    Parameters
    ----------
    keep : int
        How many copies are remembered (the oldest are forgotten first).
    """

    def __init__(self, keep: int = 1024):
        self.keep = keep
        self._paths: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def mark(self, path: str | os.PathLike) -> None:
        """Remember that the copy at ``path`` was kept (or refused)."""
        with self._lock:
            self._paths[str(path)] = None
            self._paths.move_to_end(str(path))
            while len(self._paths) > self.keep:
                self._paths.popitem(last=False)

    def taken(self, path: str | os.PathLike) -> bool:
        """True when the copy at ``path`` was kept before and is gone (a repeat, not a new upload)."""
        with self._lock:
            known = str(path) in self._paths
        return known and not os.path.exists(path)
