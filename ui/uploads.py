"""Uploaded articles: accepted types, size limit, safe file names, saved into one folder.

A name sent by a browser is never trusted: only its last component is kept, reduced to
letters, digits, ``.``, ``-``, ``_`` and spaces, and the final path is checked to sit directly
in the upload folder, so no name (``../../etc/passwd``, ``C:\\x``, ``.bashrc``) can escape it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import unicodedata
from pathlib import Path

from rag.config import Config

ACCEPTED = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".jsonl")
_UNSAFE = re.compile(r"[^\w.\- ]+", re.UNICODE)
MAX_NAME = 120
MB = 1024 * 1024  # the size limit in the same megabytes as the page shows (Gradio counts MiB)


class UploadRefused(ValueError):
    """A file was not accepted; ``key`` and ``values`` give the reason as an interface string."""

    def __init__(self, name: str, key: str, message: str, **values: object):
        super().__init__(f"{name}: {message}")
        self.name, self.key, self.values = name, key, values


def upload_dir(config: Config) -> Path:
    """The upload folder: ``config.upload_dir``, else ``uploads/`` beside the index folder."""
    if config.upload_dir:
        return Path(config.upload_dir)
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


def save_upload(src: str | os.PathLike, name: str, folder: Path, max_mb: float) -> Path:
    """Check an uploaded file and copy it into ``folder`` under a safe name.

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
    Path
        Where the file now lives. A file of the same name is replaced (a new version).

    Raises
    ------
    UploadRefused
        Bad type, empty, too large, or an unusable name.
    """
    src = Path(src)
    clean = safe_name(name)
    check_upload(src, clean, max_mb)
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    dest = (root / clean).resolve()
    if dest.parent != root:  # cannot happen with safe_name; kept as the last line of defence
        raise UploadRefused(name, "upload_bad_type", "file name leaves the upload folder", ext="?",
                            exts=" ".join(ACCEPTED))
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".upload-", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest
