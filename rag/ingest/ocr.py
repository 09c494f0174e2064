"""OCR of PDF pages without a text layer (scans): pages rendered by pypdfium2, read by Debian's tesseract.

Bounded per file: at most ``max_pages`` pages and ``max_seconds`` seconds (each tesseract run
gets what is left, and is killed past it); the pages read are kept, and a warning says which
were not. Tesseract runs on one thread (``OMP_THREAD_LIMIT=1``): on a small server it shares
the cores with the chat, and its OpenMP threads gain little on one page. Languages come from
the ``ocr_lang`` setting (``fra+eng``: both read at once, so either language comes out right);
those not installed are left out with a warning saying which package brings them.

Why pypdfium2: a wheel from PyPI (no system package), it renders in-process a page at a time
from the bytes already read, and tells a page's size first, so a page too large to render is
scaled down before any pixel is allocated.
"""

from __future__ import annotations

import io
import math
import os
import re
import shutil
import subprocess
import time
from functools import lru_cache
from typing import NamedTuple, Sequence

from ..config import Config
from .base import Unreadable

DPI = 300                    # rendering resolution: tesseract's own recommendation for print
MAX_PIXELS = 40_000_000      # a page is scaled down to this (a 300 dpi A3 page is 17 Mpx)
INSTALL = "apt-get install tesseract-ocr tesseract-ocr-fra tesseract-ocr-eng"
LANG_PACKAGES = {"fra": "tesseract-ocr-fra", "eng": "tesseract-ocr-eng"}


class OcrSettings(NamedTuple):
    """How OCR runs: ``lang`` in tesseract's form (``fra+eng``), and the bounds of one file."""

    lang: str = "fra+eng"
    max_pages: int = 20
    max_seconds: float = 120.0


def ocr_settings(config: Config) -> OcrSettings | None:
    """The OCR settings of ``config`` (``ocr_lang``, ``ocr_max_pages``, ``ocr_max_seconds``); None when off."""
    if not config.ocr_lang or config.ocr_max_pages < 1:
        return None
    return OcrSettings(config.ocr_lang, config.ocr_max_pages, config.ocr_max_seconds)


class OcrResult(NamedTuple):
    """Text of each page read (by page index), and what was not read."""

    pages: dict[int, str]
    warnings: list[str]


def tesseract_path() -> str | None:
    """The tesseract program on ``PATH``, or None."""
    return shutil.which("tesseract")


@lru_cache(maxsize=4)
def installed_languages(program: str) -> frozenset[str]:
    """The languages tesseract has data for (``tesseract --list-langs``)."""
    try:
        out = subprocess.run([program, "--list-langs"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(line.strip() for line in out.splitlines()[1:] if line.strip())


def languages(program: str, wanted: str) -> tuple[str, list[str]]:
    """The installed part of ``wanted`` (``fra+eng``) and a warning per language left out.

    Raises
    ------
    Unreadable
        When none of the wanted languages is installed.
    """
    have = installed_languages(program)
    asked = [lang for lang in wanted.split("+") if lang]
    usable = [lang for lang in asked if lang in have]
    missing = [lang for lang in asked if lang not in have]
    hint = " ".join(LANG_PACKAGES.get(lang, f"tesseract-ocr-{lang}") for lang in missing)
    if not usable:
        raise Unreadable(f"PDF has no text layer, and OCR has no data for {'+'.join(asked) or '(no language)'} "
                         f"(ocr_lang); install it with: apt-get install {hint}")
    notes = [f"OCR without {lang} (not installed; apt-get install {LANG_PACKAGES.get(lang, 'tesseract-ocr-' + lang)})"
             for lang in missing]
    return "+".join(usable), notes


def ocr_pages(pdf: bytes, pages: Sequence[int], settings: OcrSettings) -> OcrResult:
    """Read ``pages`` (0-based indexes) of a PDF by OCR, within the settings' bounds.

    Parameters
    ----------
    pdf : bytes
        The PDF file.
    pages : sequence of int
        The pages without a text layer.
    settings : OcrSettings
        Languages and bounds.

    Returns
    -------
    OcrResult
        The text of each page read (blank pages give ""), and warnings for pages not read.

    Raises
    ------
    Unreadable
        When tesseract, its language data or pypdfium2 is missing (the message says how to
        install them), or the PDF cannot be rendered.
    """
    program = tesseract_path()
    if program is None:
        raise Unreadable(f"PDF has no text layer (scanned images?) and tesseract, which reads them, is not "
                         f"installed; install it with: {INSTALL}")
    lang, warnings = languages(program, settings.lang)
    try:
        import pypdfium2 as pdfium  # optional heavy dependency, imported when a scan is met
    except ImportError:
        raise Unreadable("PDF has no text layer; rendering its pages for OCR needs pypdfium2: "
                         "pip install pypdfium2") from None
    deadline = time.monotonic() + settings.max_seconds
    todo = list(pages)[: max(0, settings.max_pages)]
    out: dict[int, str] = {}
    try:
        document = pdfium.PdfDocument(pdf)
    except pdfium.PdfiumError as exc:
        raise Unreadable(f"PDF pages cannot be rendered for OCR ({exc})") from None
    try:
        for i in todo:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            image = _render(document, i)
            text = _tesseract(program, image, lang, left)
            if text is None:  # timed out
                break
            out[i] = text
    finally:
        document.close()
    unread = [i for i in pages if i not in out]
    if unread:
        why = (f"ocr_max_pages = {settings.max_pages}" if len(out) == len(todo)
               else f"ocr_max_seconds = {settings.max_seconds:g}")
        warnings.append(f"OCR stopped at {why}: page(s) {_ranges(unread)} not read")
    return OcrResult(out, warnings)


def _render(document, index: int) -> bytes:
    """Page ``index`` as a greyscale PGM image at :data:`DPI` (less for a page over :data:`MAX_PIXELS`)."""
    page = document[index]
    try:
        width, height = page.get_size()
        scale = DPI / 72
        if width * height * scale * scale > MAX_PIXELS:
            scale = math.sqrt(MAX_PIXELS / max(1.0, width * height))
        bitmap = page.render(scale=scale, grayscale=True)
        buf = io.BytesIO()
        bitmap.to_pil().convert("L").save(buf, "PPM")
        return buf.getvalue()
    finally:
        page.close()


def _tesseract(program: str, image: bytes, lang: str, timeout: float) -> str | None:
    """Tesseract's text of one page image; None when it ran out of time (it is killed)."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        run = subprocess.run([program, "stdin", "stdout", "-l", lang], input=image, capture_output=True,
                             timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None
    if run.returncode != 0:
        raise Unreadable(f"tesseract failed: {run.stderr.decode('utf-8', 'replace').strip()[-300:]}")
    return clean_ocr_text(run.stdout.decode("utf-8", "replace"))


def clean_ocr_text(text: str) -> str:
    """Tesseract's lines made prose: lines of a paragraph joined, words broken at a line end rejoined, and
    a paragraph break inside a sentence (the next line starts in lower case after no final stop) undone.

    >>> clean_ocr_text("Le phare a rou-\\nvert samedi,\\n\\napres travaux.\\n\\nFin.\\f")
    'Le phare a rouvert samedi, apres travaux.\\n\\nFin.'
    """
    paragraphs: list[str] = []
    for block in re.split(r"\n\s*\n", text.replace("\f", "\n")):
        lines = [ln.strip() for ln in block.splitlines() if ln.strip()]
        if not lines:
            continue
        if paragraphs and not _SENTENCE_END.search(paragraphs[-1]) and lines[0][:1].islower():
            lines.insert(0, paragraphs.pop())
        joined = lines[0]
        for line in lines[1:]:
            if joined.endswith("-") and line[:1].islower():
                joined = joined[:-1] + line
            else:
                joined += " " + line
        paragraphs.append(joined)
    return "\n\n".join(paragraphs)


_SENTENCE_END = re.compile(r"[.!?:;…»\"”)]$")


def _ranges(pages: Sequence[int]) -> str:
    """1-based page numbers as ranges: ``3-5, 9``."""
    numbers = sorted(p + 1 for p in pages)
    out, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            out.append(str(start) if start == n else f"{start}-{n}")
            start = None
    return ", ".join(out)
