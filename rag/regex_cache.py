"""Compiling regular expressions that repeat one large character class, once per class.

spaCy's French tokenizer builds, when its language module is imported, one pattern of some 300
alternatives, case-insensitive, each holding the class of every lower-case letter. Python's
``re`` works out the compiled form of each class occurrence anew, in pure Python: 2 to 4 s of the
first answer's parse (the rest of loading the pipeline takes about 1 s). Inside
:func:`charsets_cached` the work for a class is done once and reused for its repeats. The
compiled code is the same (the function cached is pure: its result depends on its arguments
only; ``tests/test_regex_cache.py`` compares the code of spaCy's own pattern both ways).

The cache patches a private function of the standard library (``re._compiler._optimize_charset``,
Python 3.11 and later) for the duration of the block only; where that function is missing or has
another signature, the block changes nothing.
"""

from __future__ import annotations

import inspect
import threading
from contextlib import contextmanager
from typing import Iterator

try:
    from re import _compiler
except ImportError:  # pragma: no cover - Python before 3.11
    _compiler = None

_EXPECTED = ["charset", "iscased", "fixup", "fixes"]
_lock = threading.Lock()  # one block at a time patches and restores


def _patchable() -> bool:
    original = getattr(_compiler, "_optimize_charset", None)
    if original is None:
        return False
    try:
        return list(inspect.signature(original).parameters) == _EXPECTED
    except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
        return False


@contextmanager
def charsets_cached() -> Iterator[None]:
    """Within the block, each distinct character class is optimised once by ``re`` (see the module)."""
    if not _patchable():
        yield
        return
    with _lock:
        original = _compiler._optimize_charset
        done: dict = {}

        def optimize_charset(charset, iscased=None, fixup=None, fixes=None):
            try:
                key = (tuple(charset), iscased, fixup, id(fixes))
                hit = done.get(key)
            except TypeError:  # an item that cannot be a key: no caching
                return original(charset, iscased, fixup, fixes)
            if hit is None:
                hit = done[key] = original(charset, iscased, fixup, fixes)
            out, hascased = hit
            return list(out), hascased  # a copy: the caller may change it

        _compiler._optimize_charset = optimize_charset
        try:
            yield
        finally:
            _compiler._optimize_charset = original
