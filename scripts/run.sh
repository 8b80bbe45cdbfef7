#!/usr/bin/env bash
# Set up everything, build (or incrementally update) the index over the bundled sample
# articles, and start the chat UI on http://127.0.0.1:7860 (Ctrl-C stops it).
# Extra arguments go to `rag serve`, e.g. `bash scripts/run.sh --port 8000`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
rag build data/articles
exec rag serve --articles data/articles --allowed-root data "$@"
