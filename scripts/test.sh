#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: set up (packages, chromium), then pytest.
# Extra arguments go to pytest (e.g. -k chunking).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m pytest "$@"
