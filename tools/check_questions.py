#!/usr/bin/env python3
"""Top-3 check of hand-written guideline questions (data/eval/pdq-questions.jsonl):
for each mode, how many questions have a hit among the top 3 whose heading path or
title contains one of the expected strings. A smoke test of generalisation to the
guideline corpus, which has no relevance judgments; not used for training.

    .venv/bin/python tools/check_questions.py [INDEX_DIR] [--modes bm25,dense,hybrid,rerank] [-v]
"""
import argparse
import json
from pathlib import Path

import medsearch

ROOT = Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("index", nargs="?", default=str(Path.home() / ".cache" / "medsearch" / "indexes" / "nci-pdq"))
    ap.add_argument("--questions", default=str(ROOT / "data" / "eval" / "pdq-questions.jsonl"))
    ap.add_argument("--modes", default="bm25,dense,hybrid,rerank")
    ap.add_argument("-k", type=int, default=3)
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--reranker", help="a reranker model file instead of the built-in one")
    args = ap.parse_args()
    index = medsearch.Index.load(args.index)
    if args.reranker:
        index.set_reranker(args.reranker)
    questions = [json.loads(line) for line in open(args.questions, encoding="utf-8") if line.strip()]
    for mode in args.modes.split(","):
        found = 0
        for q in questions:
            hits = index.search(q["query"], k=args.k, mode=mode)
            ok = any(any(e in " > ".join([h.title] + h.heading_path) for e in q["expect"]) for h in hits)
            found += ok
            if args.verbose and not ok:
                print(f"  {mode} miss: {q['query']}: " + " | ".join(h.heading_path[-1][:50] for h in hits))
        print(f"{mode:7s} {found}/{len(questions)} questions answered in the top {args.k}")


if __name__ == "__main__":
    main()
