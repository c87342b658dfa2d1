#!/usr/bin/env bash
# All tests: set up and build, then the C++ tests (ctest), the Python tests
# (pytest), the CLI end-to-end test and the installation test.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source tools/setup.sh

echo "== C++ tests (ctest)"
(cd build && ctest --output-on-failure -j "$(nproc)")

echo "== Python tests (pytest)"
.venv/bin/python -m pytest -q tests/python

echo "== Installation test (find_package(medsearch) from an outside project)"
bash tests/install/run.sh "$ROOT"
