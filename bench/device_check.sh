#!/usr/bin/env bash
# GPU figures for bench/README.md in one go (about 2-4 minutes on a CUDA machine, at most 8).
# Without a CUDA GPU it says so and exits 0. CPU smoke test: bench/device_check.sh --device cpu --quick
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
exec timeout 480 "$PY" bench/device_check.py "$@"
