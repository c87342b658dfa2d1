#!/usr/bin/env bash
# Document-level quality on the development sets (SciFact train claims,
# PubMedQA, the 2,000-question MedQuAD sample): nDCG@10, Recall@100, MRR@10
# per mode. Indexes are built once into $OUT (embedding the corpora takes
# minutes; MODES=bm25 with --no-embed indexes skips the encoder).
# Modes: bm25, dense, rrf (hybrid, reciprocal rank fusion), convex (hybrid,
# convex fusion), rerank (convex + the built-in reranker; trained on these very
# queries, so its figures here are in-sample: tools/train_reranker.py gives the
# cross-validated ones).
#
#   tools/eval_dev.sh                  # all modes
#   MODES=bm25 BUILD_FLAGS=--no-embed tools/eval_dev.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${MEDSEARCH_DATA:-$ROOT/../shared/data}"
OUT="${OUT:-${MEDSEARCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/medsearch}/dev-eval}"
CLI="$ROOT/build/bin/medsearch"
MODES="${MODES:-bm25 dense rrf convex rerank}"
mkdir -p "$OUT"
python3 "$ROOT/tools/medquad_sample.py" "$DATA/medquad/queries.jsonl" > "$OUT/medquad-sample.jsonl"

declare -A QUERIES=([scifact]="$DATA/scifact/queries.train.jsonl" [pubmedqa]="$DATA/pubmedqa/queries.jsonl"
                    [medquad]="$OUT/medquad-sample.jsonl")
declare -A QRELS=([scifact]="$DATA/scifact/qrels.train.tsv" [pubmedqa]="$DATA/pubmedqa/qrels.tsv"
                  [medquad]="$DATA/medquad/qrels.tsv")
printf "%-9s %-7s %8s %10s %7s\n" dataset mode nDCG@10 Recall@100 MRR@10
for ds in scifact pubmedqa medquad; do
  idx="$OUT/index-$ds${BUILD_FLAGS:+-bm25}"
  [ -f "$idx/CURRENT" ] || "$CLI" build "$ds=$DATA/$ds" -o "$idx" ${BUILD_FLAGS:-} >&2
  for mode in $MODES; do
    case "$mode" in
      rrf) flags=(--mode hybrid --fusion rrf) ;;
      convex) flags=(--mode hybrid --fusion convex) ;;
      *) flags=(--mode "$mode") ;;
    esac
    "$CLI" run "$idx" --queries "${QUERIES[$ds]}" --k 100 --level doc "${flags[@]}" --output "$OUT/$ds.$mode.run" 2>/dev/null
    "$CLI" eval --qrels "${QRELS[$ds]}" --run "$OUT/$ds.$mode.run" --queries "${QUERIES[$ds]}" |
      awk -v ds="$ds" -v mode="$mode" -F'\t' '{v[$1]=$2} END {printf "%-9s %-7s %8s %10s %7s\n", ds, mode, v["nDCG@10"], v["Recall@100"], v["MRR@10"]}'
  done
done
