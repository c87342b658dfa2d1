#!/usr/bin/env python3
"""Writes the MedQuAD development sample: 2,000 questions drawn with
random.Random(0).sample(query ids in file order, 2000), in file order.

    python3 tools/medquad_sample.py [../shared/data/medquad/queries.jsonl] > medquad-sample.jsonl
"""
import json
import random
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/medquad/queries.jsonl"
with open(path, encoding="utf-8") as f:
    queries = [json.loads(line) for line in f if line.strip()]
chosen = set(random.Random(0).sample([q["_id"] for q in queries], 2000))
for q in queries:
    if q["_id"] in chosen:
        sys.stdout.write(json.dumps(q, ensure_ascii=False) + "\n")
