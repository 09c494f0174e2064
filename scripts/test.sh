#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: set up (packages, chromium), then pytest.
# Extra arguments go to pytest (e.g. -k chunking).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# Test files are shared out between RAG_TEST_WORKERS processes (default 2, one per core here; 0 runs
# them in this process); a file's tests stay together, so its fixtures are built once.
workers="${RAG_TEST_WORKERS:-2}"
dist=()
[ "$workers" != 0 ] && dist=(-n "$workers" --dist loadfile)
exec .venv/bin/python -m pytest "${dist[@]}" "$@"
