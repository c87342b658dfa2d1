#!/usr/bin/env bash
# The main job: set up and build if needed, build the default corpus's index
# (or reuse it when the corpus and the index format are unchanged), then answer.
#
#   tools/main.sh                       # the default question
#   tools/main.sh "your question" [-k N] [--filter audience=patient] ...
#
# Environment: MEDSEARCH_CORPUS (default ../shared/data/nci-pdq),
# MEDSEARCH_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/medsearch) holds the index
# and the encoder's weights; MEDSEARCH_EMBED=0 builds a BM25-only index (the
# first build embeds every passage with the encoder: minutes on 2 cores).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MEDSEARCH_BUILD_TARGETS="medsearch_cli _core" source tools/setup.sh

CORPUS="${MEDSEARCH_CORPUS:-$ROOT/../shared/data/nci-pdq}"
[ -d "$CORPUS" ] || { echo "corpus not found: $CORPUS (set MEDSEARCH_CORPUS)" >&2; exit 1; }
CACHE="${MEDSEARCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/medsearch}"
INDEX="$CACHE/indexes/$(basename "$CORPUS")"
CLI="$ROOT/build/bin/medsearch"

# The index is reused while everything that makes it is unchanged: the corpus
# files, the core's code, the pinned encoder weights, and the encoder the
# environment chooses (MEDSEARCH_MODEL_DIR and its files).
fingerprint="$( (cd "$CORPUS" && find . -type f -printf '%P %s %T@\n' | sort) | sha256sum | cut -c1-16)"
model="${MEDSEARCH_MODEL_DIR:-} ${MEDSEARCH_ALLOW_UNPINNED_MODEL:-}"
[ -n "${MEDSEARCH_MODEL_DIR:-}" ] && [ -d "$MEDSEARCH_MODEL_DIR" ] &&
  model+="$(cd "$MEDSEARCH_MODEL_DIR" && find . -type f -printf '%P %s %T@\n' | sort)"
code="$( (find core -type f \( -name '*.cc' -o -name '*.h' \) | sort | xargs cat; cat data/models/*/SHA256SUMS CMakeLists.txt;
          echo "$model") | sha256sum | cut -c1-16)"
EMBED_FLAG=""
[ "${MEDSEARCH_EMBED:-1}" = 0 ] && EMBED_FLAG="--no-embed"
stamp="$fingerprint-$code$EMBED_FLAG"
if [ "$(cat "$INDEX.stamp" 2>/dev/null)" != "$stamp" ] || [ ! -f "$INDEX/CURRENT" ]; then
  echo "[main] building the index of $CORPUS -> $INDEX" >&2
  mkdir -p "$(dirname "$INDEX")"
  "$CLI" build "nci-pdq=$CORPUS" -o "$INDEX" $EMBED_FLAG
  echo "$stamp" > "$INDEX.stamp"
else
  echo "[main] reusing the index at $INDEX" >&2
fi

if [ $# -eq 0 ]; then
  set -- "What happens when first-line treatment for mesothelioma stops working" -k 10
fi
"$CLI" search "$INDEX" "$@"
