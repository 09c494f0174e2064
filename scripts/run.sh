#!/usr/bin/env bash
# Run the product on the shipped seeds: set up, bring index/ in step with seeds/, serve the web chat.
# Extra arguments go to `rag serve` (e.g. --port 8080). Open http://127.0.0.1:7860
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
.venv/bin/rag index build seeds/ --index index/
exec .venv/bin/rag serve --index index/ "$@"
