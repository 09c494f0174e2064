"""Heavy third-party modules imported on first use (the standard library's ``LazyLoader``).

FAISS and bm25s (with SciPy) take 0.2-0.6 s each to import; a command
that never searches (a rebuild with nothing to do, ``rag index status``) should not
pay for them. ``faiss = lazy_import("faiss")`` at the top of a module gives a module object whose
first attribute access runs the real import.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_import(name: str) -> ModuleType:
    """The module ``name``, imported when one of its attributes is first read.

    Raises
    ------
    ModuleNotFoundError
        When the module is not installed (at once, not at first use).
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
