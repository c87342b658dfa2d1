#!/usr/bin/env python3
"""Section-level quality of every mode, end to end through the engine (Index.search_batch).

    .venv/bin/python tools/eval_sections.py [--json OUT.json]

Sets (each scored only if its index exists or can be built):
  pdq-questions   the 80 hand-written questions of shared/data/pdq-questions on the guideline index
                  that tools/main.sh builds ($MEDSEARCH_CACHE/indexes/nci-pdq)
  pdq-sections    the development split of tools/make_section_set.py's questions on the index of its
                  masked corpus ($MEDSEARCH_CACHE/dev-eval/index-pdq-sections; never trained on)
A hit answers when its page is a labelled one and the labelled heading text occurs, case-insensitively,
in its heading path (shared/data/pdq-questions/README.md). Reports hit@1, hit@5 and MRR@10 of the
passage ranking as served (k = 10). In the default mode it also reports how the coverage probability
separates the hand-written answerable questions from the unanswerable ones (ROC AUC).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import medsearch

ROOT = Path(__file__).resolve().parent.parent
MODES = ("bm25", "dense", "hybrid", "rerank")


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def answers(hit, labels):
    path = " > ".join(hit.heading_path).lower()
    return any(hit.doc_id == doc and sub.lower() in path for doc, sub in labels)


def score(index, questions, mode):
    results = index.search_batch([q["text"] for q in questions], k=10, mode=mode)
    h1 = h5 = 0
    mrr = 0.0
    for q, hits in zip(questions, results):
        first = next((i for i, h in enumerate(hits) if answers(h, q["relevant"])), None)
        h1 += first == 0
        h5 += first is not None and first < 5
        mrr += 1.0 / (first + 1) if first is not None else 0.0
    n = len(questions)
    return {"hit@1": h1, "hit@5": h5, "mrr@10": round(mrr / n, 4), "n": n}


def auc(pos, neg):
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def main():
    cache = Path(os.environ.get("MEDSEARCH_CACHE", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "medsearch"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--pdq-index", type=Path, default=cache / "indexes" / "nci-pdq")
    ap.add_argument("--sections", type=Path, default=cache / "pdq-sections", help="make_section_set.py's output")
    ap.add_argument("--sections-index", type=Path, default=cache / "dev-eval" / "index-pdq-sections")
    ap.add_argument("--build", action="store_true", help="make the section set and build missing indexes (embeds; minutes)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()

    def load(index_dir):
        """The index, or None when missing or written by an older format (rebuilt by --build)."""
        if not (index_dir / "CURRENT").exists():
            return None
        try:
            return medsearch.Index.load(index_dir)
        except medsearch.OldFormatError as e:
            print(f"{index_dir}: {e}", file=sys.stderr)
            return None

    cli = ROOT / "build" / "bin" / "medsearch"
    if args.build:
        if not (args.sections / "dev.jsonl").exists():
            subprocess.run([sys.executable, str(ROOT / "tools" / "make_section_set.py"), "--out", str(args.sections)], check=True)
        for corpus, index in ((args.data / "nci-pdq", args.pdq_index), (args.sections / "corpus", args.sections_index)):
            if load(index) is None:
                subprocess.run([str(cli), "build", f"nci-pdq={corpus}", "-o", str(index)], check=True)

    out = {}
    sets = [("pdq-questions", args.pdq_index, args.data / "pdq-questions" / "questions.jsonl"),
            ("pdq-sections (dev split)", args.sections_index, args.sections / "dev.jsonl")]
    for name, index_dir, questions_file in sets:
        index = load(index_dir) if questions_file.exists() else None
        if index is None:
            print(f"{name}: skipped ({index_dir} or {questions_file} missing or of an older format; "
                  "--build makes them)", file=sys.stderr)
            continue
        questions = read_jsonl(questions_file)
        out[name] = {mode: score(index, questions, mode) for mode in MODES}
        if name == "pdq-questions":
            unanswerable = read_jsonl(args.data / "pdq-questions" / "unanswerable.jsonl")
            pos = [r.coverage for r in index.search_batch([q["text"] for q in questions], k=10, mode="rerank")]
            neg = [r.coverage for r in index.search_batch([q["text"] for q in unanswerable], k=10, mode="rerank")]
            out["coverage"] = {"auc_answerable_vs_unanswerable": round(auc(pos, neg), 4),
                               "mean_answerable": round(sum(pos) / len(pos), 4),
                               "mean_unanswerable": round(sum(neg) / len(neg), 4),
                               "unanswerable_below_0.25": sum(c < 0.25 for c in neg), "unanswerable": len(neg),
                               "answerable_below_0.25": sum(c < 0.25 for c in pos), "answerable": len(pos)}
    print(f"{'set':26s} {'mode':7s} {'hit@1':>7s} {'hit@5':>7s} {'MRR@10':>7s}")
    for name, modes in out.items():
        if name == "coverage":
            continue
        for mode, m in modes.items():
            print(f"{name:26s} {mode:7s} {m['hit@1']:>3d}/{m['n']:<3d} {m['hit@5']:>3d}/{m['n']:<3d} {m['mrr@10']:7.4f}")
    if "coverage" in out:
        c = out["coverage"]
        print(f"coverage (rerank): ROC AUC {c['auc_answerable_vs_unanswerable']:.4f} answerable vs unanswerable; "
              f"mean {c['mean_answerable']:.2f} vs {c['mean_unanswerable']:.2f}; below 0.25: "
              f"{c['unanswerable_below_0.25']}/{c['unanswerable']} unanswerable, {c['answerable_below_0.25']}/{c['answerable']} answerable")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
