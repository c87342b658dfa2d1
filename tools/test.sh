#!/usr/bin/env bash
# All tests: set up and build, then the C++ tests (ctest), the Python tests
# (pytest), the CLI end-to-end test, the installation test and the portable
# build's comparison across CPUs (tests/portable/compare_cpus.py), then the C++
# tests again under AddressSanitizer+UBSan and under ThreadSanitizer
# (tools/sanitize.sh) and a short libFuzzer run of every fuzz target
# (tools/fuzz.sh, MEDSEARCH_FUZZ_SECONDS each, default 10).
# MEDSEARCH_SKIP_SLOW=1 leaves out the sanitizer and fuzzing runs (local use;
# CI runs everything). Longer runs: MEDSEARCH_SANITIZE_FULL=1 tools/sanitize.sh,
# tools/fuzz.sh 600.
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

echo "== One build on every CPU (each kernel level natively, AVX2 and x86-64-v2 CPUs under qemu)"
.venv/bin/python tests/portable/compare_cpus.py --cli build/bin/medsearch --python .venv/bin/python \
  --pythonpath build/python

if [ "${MEDSEARCH_SKIP_SLOW:-0}" = 1 ]; then
  echo "== Sanitizers and fuzzing skipped (MEDSEARCH_SKIP_SLOW=1)"
  exit 0
fi

echo "== C++ tests under sanitizers (ASan+UBSan, TSan)"
tools/sanitize.sh all

echo "== Fuzzing (libFuzzer, ${MEDSEARCH_FUZZ_SECONDS:-10} s per target)"
tools/fuzz.sh "${MEDSEARCH_FUZZ_SECONDS:-10}"
