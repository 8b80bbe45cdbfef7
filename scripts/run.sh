#!/usr/bin/env bash
# Set up everything, build the index over the bundled sample articles and answer a sample question.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
rag build data/articles
rag ask "How much market value did Nvidia lose on 27 January 2025?"
