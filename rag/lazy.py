"""Heavy third-party modules imported on first use.

FAISS and bm25s (with SciPy) take 0.2-0.6 s each to import, spaCy and its French pipeline about
2 s; a command that never searches or parses (a rebuild with nothing to do, ``rag index status``)
should not pay for them.
``faiss = lazy_import("faiss")`` at the top of a module gives a stand-in whose first attribute read
runs the real import.

The stand-in imports through :func:`importlib.import_module`, whose per-module lock makes threads
that read it at once wait for one complete import. (The standard library's ``LazyLoader`` does not
on Python 3.11: a second thread reading an attribute while the first is still importing runs the
module again, half-initialised, and sees attributes missing.) The stand-in is not put in
``sys.modules``: until it is used, the module is not imported.

:func:`imports_refused` keeps a library from importing an optional package it would only probe
for (thinc, under spaCy, imports PyTorch when it is installed: 1.4 s that its CPU pipelines never use).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import threading
from contextlib import contextmanager
from types import ModuleType
from typing import Iterator


class LazyModule(ModuleType):
    """Stands for the module ``name`` until one of its attributes is read, then passes reads on to it."""

    def __init__(self, name: str):
        super().__init__(name)
        self.__dict__["_lazy_module"] = None

    def _load(self) -> ModuleType:
        """The real module, imported on the first call; threads calling at once wait for the one
        import (:func:`importlib.import_module` holds the module's import lock), then it is kept."""
        module = self.__dict__["_lazy_module"]
        if module is None:
            module = self.__dict__["_lazy_module"] = importlib.import_module(self.__name__)
        return module

    def __getattr__(self, attr: str):
        # only called for names the stand-in itself lacks: everything but its own bookkeeping
        return getattr(self._load(), attr)

    def __dir__(self):
        return dir(self._load())


def lazy_import(name: str) -> ModuleType:
    """The module ``name`` if it is imported already, else a :class:`LazyModule` importing it on first use.

    Raises
    ------
    ModuleNotFoundError
        When the module is not installed (at once, not at first use).
    """
    if name in sys.modules:
        return sys.modules[name]
    if importlib.util.find_spec(name) is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    return LazyModule(name)


class _Refuser(importlib.abc.MetaPathFinder):
    """Fails the imports of some top-level packages, in one thread only."""

    def __init__(self, names: frozenset[str], thread: int):
        self.names, self.thread = names, thread

    def find_spec(self, fullname, path, target=None):
        """Raise ModuleNotFoundError for a refused package imported by the refusing thread; else let others look."""
        if threading.get_ident() == self.thread and fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r} (refused while loading another library)",
                                      name=fullname)
        return None


@contextmanager
def imports_refused(*names: str) -> Iterator[None]:
    """Within the block, this thread's imports of the packages ``names`` fail as if they were not installed.

    Packages imported already stay as they are, and other threads import them as usual. For a
    library that probes for an optional package and does without it (``except ImportError``).
    """
    refuser = _Refuser(frozenset(names), threading.get_ident())
    sys.meta_path.insert(0, refuser)
    try:
        yield
    finally:
        sys.meta_path.remove(refuser)
