#!/usr/bin/env bash
# Set up everything (see scripts/setup.sh --test) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
. .venv/bin/activate
# The house format (ruff format, line length 120, pyproject.toml [tool.ruff]); `ruff format .` fixes it.
ruff format --check --quiet . || { echo "Code is not formatted: run 'ruff format .' (ruff is in the test extra)." >&2; exit 1; }
# Two workers, one test file each at a time (pytest-xdist, --dist loadfile: a file's servers and
# module fixtures stay in one process); one math thread per worker so they do not fight over
# the cores. RAG_TEST_WORKERS=0 runs everything in this process, one test at a time.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
workers="${RAG_TEST_WORKERS:-2}"
if [ "$workers" = "0" ]; then
    python -m pytest -q "$@"
else
    python -m pytest -q -n "$workers" --dist loadfile "$@"
fi
