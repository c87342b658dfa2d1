#!/usr/bin/env bash
# Installation tests:
#  1. cmake --install, then an outside CMake project finds medsearch with
#     find_package and links medsearch::core;
#  2. `pip wheel .` (scikit-build-core) builds the Python package, which a
#     fresh virtual environment installs and imports.
set -euo pipefail
ROOT="${1:-$(cd "$(dirname "$0")/../.." && pwd)}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

cmake --install "$ROOT/build" --prefix "$TMP/prefix" >/dev/null
cmake -S "$ROOT/tests/install/consumer" -B "$TMP/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$TMP/prefix" >/dev/null
cmake --build "$TMP/consumer" >/dev/null
"$TMP/consumer/consumer"

if [ "${MEDSEARCH_SKIP_PIP_TEST:-0}" = 1 ]; then
  echo "pip install test skipped (MEDSEARCH_SKIP_PIP_TEST=1)"
  exit 0
fi
"$ROOT/.venv/bin/python" -m pip wheel -q --no-build-isolation --no-deps "$ROOT" -w "$TMP/wheel" \
  --config-settings=build-dir="$ROOT/build-wheel"
python3 -m venv "$TMP/venv"
"$TMP/venv/bin/python" -m pip install -q --no-deps "$TMP"/wheel/medsearch-*.whl
(cd "$TMP" && "$TMP/venv/bin/python" - <<'PY'
import medsearch, tempfile, pathlib, json
d = pathlib.Path(tempfile.mkdtemp())
(d / "corpus.jsonl").write_text(json.dumps({"_id": "1", "title": "Mesothelioma", "text": "Nivolumab for recurrent mesothelioma."}) + "\n")
index = medsearch.Index.build(str(d / "corpus.jsonl"))
hits = index.search("recurrent mesothelioma")
assert hits and hits[0].doc_id == "1", hits
print("pip wheel ok:", medsearch.__file__)
PY
)
