"""The errors of the library: one base, :class:`RagError`, and the kinds callers act on.

Every error the library raises on purpose derives from :class:`RagError`. Its ``kind`` says who
is at fault: :attr:`ErrorKind.BAD_INPUT` (a path, a file, a value, an index built with other
settings: the caller can fix it) or :attr:`ErrorKind.FAILED` (the work could not be done: a
damaged index, a busy lock, a missing dependency). Its ``remedy`` says what would fix it, as a
:class:`Remedy` about the ``index`` folder named in ``where``; the command line turns that into the
command to run (:mod:`rag.cli`), so library messages never name a command themselves.
Anything else that escapes (``TypeError``, ``KeyError``...) is a bug, not bad input.
"""

from __future__ import annotations

import enum


class ErrorKind(str, enum.Enum):
    """Who is at fault."""

    BAD_INPUT = "bad input"  # a path, file, value or index settings the caller gave
    FAILED = "failed"        # the work could not be done


class Remedy(str, enum.Enum):
    """What would fix an index error (the command line names the command)."""

    BUILD = "build"      # no committed build yet: build the index
    REBUILD = "rebuild"  # built with another model, chunking or format: start it over
    REPAIR = "repair"    # damaged: rebuild the search files from the stored documents
    REPAIR_FROM_FILES = "repair-from-files"  # the document store is lost: index the article files again
    WAIT = "wait"        # another build holds the lock: try again when it ends


class RagError(Exception):
    """Base of every error raised by rag on purpose.

    Parameters
    ----------
    message : str
        What went wrong, naming the file or value at fault.
    remedy : Remedy, optional
        What would fix it.
    where : str, optional
        The index (folder or address) the remedy applies to.
    """

    kind = ErrorKind.FAILED

    def __init__(self, message: str, remedy: Remedy | None = None, where: str | None = None):
        super().__init__(message)
        self.remedy = remedy
        self.where = where


class BadInput(RagError, ValueError):
    """The caller gave something unusable: a path, a file, a value (the message names it)."""

    kind = ErrorKind.BAD_INPUT


class PathNotFound(BadInput, FileNotFoundError):
    """A path given to index or read does not exist."""


class IndexProblem(RagError):
    """Base of the errors about an index."""


class IndexMissing(IndexProblem, BadInput):
    """No index at that folder or address."""


class IndexMismatch(IndexProblem, BadInput):
    """The index was built with another model, chunking, encoder or format."""


class IndexCorrupt(IndexProblem):
    """The index files are damaged; the message says what is wrong."""


class IndexBusy(IndexProblem):
    """Another build holds the index's lock."""


class DiskFull(RagError):
    """The disk (or a quota, or the file size limit) is full: nothing was changed; free space and retry."""


class DependencyMissing(RagError):
    """An optional package the asked-for feature needs is not installed (the message says which)."""


class IndexUnavailable(IndexProblem):
    """The database holding the index cannot be reached (the message names its address)."""


class IndexReadOnly(IndexProblem):
    """The database refuses writes: a read replica, or a primary in recovery."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type's name when it has none), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__
