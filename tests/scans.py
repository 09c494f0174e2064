"""Scanned pages made here: Pillow draws lines of text on a white 200 dpi page with a DejaVu font, saved as a
PDF holding nothing but those images (no text layer), as a scanner makes them. Used by the OCR tests and
the ingest benchmark."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


class NoFont(RuntimeError):
    """The DejaVu font the scans are drawn with is not installed."""


def page_image(lines: list[str]) -> Image.Image:
    """A 200 dpi Letter page with ``lines`` drawn on it, 36 pt."""
    if not FONT.is_file():
        raise NoFont(f"{FONT} is absent (apt-get install fonts-dejavu-core; scripts/setup.sh --test does it)")
    font = ImageFont.truetype(str(FONT), 36)
    img = Image.new("L", (1700, 2200), 255)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((150, 150 + 60 * i), line, font=font, fill=0)
    return img


def make_scan(path: Path, *pages: list[str]) -> Path:
    """An image-only PDF at ``path``, one page per list of lines."""
    images = [page_image(p) for p in pages]
    images[0].save(path, "PDF", resolution=200, save_all=True, append_images=images[1:])
    return path
