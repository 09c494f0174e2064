"""Choose an index's records by its location: a folder (local) or ``postgresql://…`` (PostgreSQL).

The contract both follow is :mod:`rag.store.base`; this module opens either
(:func:`rag.retrieval.retriever.open_search` gives the matching search side).

>>> store = open_store("index")                                  # doctest: +SKIP
>>> store = open_store("postgresql://rag@db.example:5432/news")  # doctest: +SKIP
"""

from __future__ import annotations

import os

from ..config import Config
from .base import IndexStore, is_database_url
from .postgres import PgStore
from .sqlite import Store

__all__ = ["is_database_url", "location_of", "open_store"]


def location_of(config_or_location: Config | str | os.PathLike) -> str:
    """The index location of a configuration (its ``index_dir``), or the location itself, as a string."""
    if isinstance(config_or_location, Config):
        return str(config_or_location.index_dir)
    return str(config_or_location) if is_database_url(config_or_location) else os.fspath(config_or_location)


def open_store(config_or_location: Config | str | os.PathLike, create: bool = False) -> IndexStore:
    """The records of the index at a folder or ``postgresql://`` address (or a configuration's ``index_dir``).

    Parameters
    ----------
    config_or_location : Config, str or path-like
        Where the index is.
    create : bool
        Create it when missing; otherwise raise :class:`rag.errors.IndexMissing`.

    Raises
    ------
    IndexMissing
        No index there (and ``create`` is false).
    DependencyMissing
        A database address without psycopg installed (``pip install 'rag[postgres]'``).
    IndexUnavailable
        The database cannot be reached.
    """
    location = location_of(config_or_location)
    if is_database_url(location):
        return PgStore(location, create=create)
    return Store(location, create=create)

