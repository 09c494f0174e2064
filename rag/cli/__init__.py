"""The command line (``rag``): one module per command group, :mod:`.main` puts them together."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
