"""Files on disk: walking folders, and the stamps that tell a file unchanged without reading it."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Sequence

from ..errors import PathNotFound
from .base import Skipped, shown_name

SETTLE_NS = 2_000_000_000  # a file modified this recently may change again within its timestamp's tick


class FileStamp(NamedTuple):
    """What the file system tells of a file without reading it; equal stamps mean same content.

    Known limit: a file rewritten in place keeping its size, inode, modification time and
    change time is taken as unchanged. Users cannot set the change time (``touch -d`` and
    ``os.utime`` update it), so this takes a write within one timestamp tick of the previous
    one, or a clock set back; :meth:`settled` keeps the first case out of the stamps recorded.
    A file system whose times or inodes are not kept (some network or FUSE mounts) may need
    ``rag index build --rebuild``, which reads every file.
    """

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> "FileStamp":
        """The stamp of a ``stat`` result (inode cut to 63 bits, to fit SQLite's integers)."""
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino & (2**63 - 1))

    def settled(self, now_ns: int) -> bool:
        """True when the file was last modified :data:`SETTLE_NS` before ``now_ns``.

        File times advance by ticks (a few ms on Linux, 2 s on FAT): a write in the same tick
        as a modification just before the file was read would keep its modification time.
        Only settled stamps are recorded, so that such a write is never missed.
        """
        return self.mtime_ns + SETTLE_NS <= now_ns


def file_stamp(path: str | os.PathLike) -> FileStamp | None:
    """The stamp of ``path`` (following links), or None when it cannot be had.

    Take it before reading the file: a change while reading then makes the stamp stale
    (the file is read again next time), never wrong.
    """
    try:
        return FileStamp.of(os.stat(path))
    except OSError:
        return None


def key_files(key: str) -> list[str]:
    """The files a document key may come from: the key itself, and its parts before each ``#``.

    A key is a resolved path, followed by ``#record`` for JSONL and SQuAD files; as file names
    may hold ``#`` too, every cut is a candidate.
    """
    out, cut = [key], key.find("#")
    while cut >= 0:
        out.append(key[:cut])
        cut = key.find("#", cut + 1)
    return out


def key_under(key: str, files: set[Path], folders: Sequence[Path]) -> bool:
    """Whether the document ``key`` was read from one of ``files`` or from below one of ``folders``.

    Every file the key may come from (:func:`key_files`) is tried: a file name may hold ``#``.
    A folder is matched by ancestry only, so ``a#b/c.txt`` is not taken for a record of ``a``.
    """
    for candidate in map(Path, key_files(key)):
        if candidate in files or any(f in candidate.parents for f in folders):
            return True
    return False


@dataclass
class Walked:
    """What a walk passed over, beside the files it yields.

    ``skipped``: links not followed (a loop, a target that cannot be resolved, a target outside
    the files and folders given); ``warnings``: folders that could not be listed, whose resolved
    paths are also in ``unreadable`` (the documents indexed from below them are kept).
    """

    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[Skipped] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def iter_files(paths: Iterable[str | os.PathLike], follow_links: bool = False) -> Iterator[Path]:
    """Files below ``paths``, recursively, sorted; hidden files and folders are passed over.

    Raises
    ------
    PathNotFound
        If a path does not exist (checked for all paths before any is walked).
    """
    return (Path(path) for path, _ in walk(paths, follow_links))


def walk(paths: Iterable[str | os.PathLike], follow_links: bool = False,
         walked: Walked | None = None) -> Iterator[tuple[str, str]]:
    """:func:`iter_files` as strings, each file with its resolved path; each folder given is resolved once.

    A link to a file is followed when its target lies below one of ``paths`` (or is one of them),
    or always with ``follow_links``; links to folders never are. Links passed over and folders
    that cannot be listed are told in ``walked``.

    Raises
    ------
    PathNotFound
        If a path does not exist (checked for all paths before any is walked).
    """
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise PathNotFound(f"no such file or folder: {', '.join(missing)}")
    walked = walked if walked is not None else Walked()
    roots = [p.resolve() for p in paths]
    inside = None if follow_links else roots
    for p, root in zip(paths, roots):
        if p.is_file():
            yield str(p), str(root)
        else:
            yield from _walk_folder(str(p), str(root), inside, walked)


def _walk_folder(folder: str, resolved: str, inside: list[Path] | None, walked: Walked) -> Iterator[tuple[str, str]]:
    """Files of ``folder`` (sorted), then its sub-folders' (sorted); links to folders are not followed."""
    try:
        with os.scandir(folder) as it:
            entries = {e.name: e for e in it if not e.name.startswith(".")}
    except OSError as exc:
        walked.warnings.append(Skipped(shown_name(folder), f"folder not readable ({exc.strerror or exc}): the files "
                                                            f"in it are not indexed (those indexed before are kept)"))
        walked.unreadable.append(resolved)
        return
    folders = []
    for name in sorted(entries):
        entry = entries[name]
        if _is_dir(entry):
            folders.append(entry)
        elif not entry.is_symlink():  # below a resolved folder, only a link itself needs resolving
            yield os.path.join(folder, name), os.path.join(resolved, name)
        else:
            shown = os.path.join(folder, name)
            target = _link_target(os.path.join(resolved, name), shown, inside, walked)
            if target is not None:
                yield shown, target
    for entry in folders:
        if not entry.is_symlink():
            yield from _walk_folder(os.path.join(folder, entry.name), os.path.join(resolved, entry.name), inside,
                                    walked)


def _link_target(link: str, shown: str, inside: list[Path] | None, walked: Walked) -> str | None:
    """The resolved target of the link ``link``, or None (told in ``walked``) when it is not to be followed."""
    try:
        target = Path(link).resolve(strict=False)
    except (RuntimeError, OSError) as exc:  # Python 3.11 says RuntimeError for a loop, 3.13 OSError
        walked.skipped.append(Skipped(shown_name(shown), f"symbolic link that cannot be followed ({exc})"))
        return None
    if not target.exists():
        return str(target)  # a dangling link: the reader says it cannot be read
    if inside is not None and not any(target == r or r in target.parents for r in inside):
        walked.skipped.append(Skipped(shown_name(shown), f"symbolic link to {shown_name(str(target))}, outside the "
                                                         f"files and folders given: not followed (--follow-links "
                                                         f"follows it)"))
        return None
    return str(target)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
