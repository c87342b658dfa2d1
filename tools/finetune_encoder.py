#!/usr/bin/env python3
"""Fine-tunes the sentence encoder (all-MiniLM-L6-v2) for retrieval on the development data and
on pairs the guideline corpus gives by its structure, and writes a model directory the C++ encoder
loads (issue 11, item 5). The shipped default, data/models/medsearch-minilm-l6-v1, is made by

    PYTHONPATH=build/python .venv/bin/python tools/finetune_encoder.py pairs --out PAIRS.jsonl
    /tmp/ref-venv/bin/python tools/finetune_encoder.py train --pairs PAIRS.jsonl --out DIR \
        --autocast --bf16-weights          # a venv from requirements-reference.txt; ~4 min on 2 cores
    cp DIR/model.safetensors DIR/SHA256SUMS data/models/medsearch-minilm-l6-v1/

`pairs` (needs the medsearch module and the indexes tools/eval_dev.sh, tools/main.sh and
tools/make_section_set.py's masked corpus give) writes one line per training question:
{"set", "query", "positive", "negative"}, the positive being the text the engine embeds for a
passage that answers it (Index.embedding_text) and, for section-level sets, the negative a passage
of the same page under another heading (a structural near miss, never something the engine
returned):
  scifact, pubmedqa, medquad   development queries -> the first passage of a relevant document
  pdq-sections                 the train split of tools/make_section_set.py (heading masked; its
                               placeholder dropped from the text)
  pdq-questions                the 80 hand-written questions of shared/data/pdq-questions

`train` fine-tunes with in-batch softmax (InfoNCE, scale 20; each batch from one set, so the
in-batch negatives are of the same kind; at most --max-per-set pairs a set), mean pooling as the
encoder uses, one epoch, seeded, then writes base + --interpolate x (fine-tuned - base): a
weight-space ensemble with the base model (0.5 by default), which keeps the gains on the
left-out sets and removes the loss full fine-tuning had on SciFact (bench/results/quality/
README.md, "Encoder"). Leaving sets out of --sets is how that leave-one-dataset-out table is
made: build the left-out set's index with --model-dir DIR and score it with `eval`.
The output directory is a copy of the base model with model.safetensors replaced (float32, or
bfloat16 with --bf16-weights, which the encoder widens on load) and a SHA256SUMS file. The
encoder accepts only weights whose checksum it pins (core/embed/model_files.cc,
kPinnedWeights): a new model is pinned there.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
CACHE = Path(os.environ.get("MEDSEARCH_CACHE", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "medsearch"))
BASE_MODEL = Path(os.environ.get("MEDSEARCH_MODEL_DIR", CACHE / "models" / "all-minilm-l6-v2"))


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---- pairs --------------------------------------------------------------------------------------

def make_pairs(args):
    sys.path.insert(0, str(ROOT / "build" / "python"))
    import medsearch
    import train_reranker as tr

    rng = random.Random(args.seed)
    out = []
    for name in tr.DOC_SETS:
        queries, qrels = tr.dev_queries(args.data, name)
        index = medsearch.Index.load(CACHE / "dev-eval" / f"index-{name}")
        first = {}
        for p in range(len(index)):
            first.setdefault(index.passage(p).doc_id, p)
        n = 0
        for q in queries:
            docs = [d for d, g in sorted((qrels.get(q["_id"]) or {}).items()) if g > 0 and d in first]
            if docs:
                out.append({"set": name, "query": q["text"], "positive": index.embedding_text(first[rng.choice(docs)])})
                n += 1
        log(f"{name}: {n} pairs")

    def unmask(text):  # a masked heading's placeholder (make_section_set.py) is noise to learn from
        return re.sub(r"( > )?Details[a-z]+(?=\n)", "", text, count=1)

    def section_pairs(name, index, info, questions):
        by_page = {}
        for p, d in enumerate(info.doc_id):
            by_page.setdefault(d, []).append(p)
        n = 0
        for q in questions:
            pos = [p for d, _ in q["relevant"] for p in by_page.get(d, []) if info.relevant(p, q["relevant"])]
            if not pos:
                continue
            page = info.doc_id[pos[0]]
            neg = [p for p in by_page[page] if not info.relevant(p, q["relevant"]) and info.path[p] != info.path[pos[0]]]
            row = {"set": name, "query": q["text"], "positive": unmask(index.embedding_text(min(pos)))}
            if neg:
                row["negative"] = unmask(index.embedding_text(rng.choice(neg)))
            out.append(row)
            n += 1
        log(f"{name}: {n} pairs")

    sections = args.sections or CACHE / "pdq-sections"
    index = medsearch.Index.load(CACHE / "dev-eval" / "index-pdq-sections")
    section_pairs("pdq-sections", index, tr.PassageInfo(index), tr.read_jsonl(sections / "train.jsonl"))
    index = medsearch.Index.load(CACHE / "indexes" / "nci-pdq")
    section_pairs("pdq-questions", index, tr.PassageInfo(index),
                  tr.read_jsonl(args.data / "pdq-questions" / "questions.jsonl"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for row in out:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    log(f"wrote {len(out)} pairs to {args.out}")


# ---- training -----------------------------------------------------------------------------------

def train(args):
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer, BertModel

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    sets = args.sets.split(",")
    rows = [r for r in (json.loads(l) for l in open(args.pairs, encoding="utf-8")) if r["set"] in sets]
    per_set = {}
    for r in rows:
        per_set.setdefault(r["set"], []).append(r)
    for name, group in per_set.items():  # each set contributes at most --max-per-set pairs
        rng.shuffle(group)
        del group[args.max_per_set:]
    batches = []
    for name, group in sorted(per_set.items()):
        for i in range(0, len(group) - 1, args.batch):
            if len(group[i:i + args.batch]) >= 2:
                batches.append(group[i:i + args.batch])
    log("pairs: " + ", ".join(f"{n} {len(g)}" for n, g in sorted(per_set.items())) + f"; {len(batches)} batches")

    tok = AutoTokenizer.from_pretrained(str(args.base))
    model = BertModel.from_pretrained(str(args.base), add_pooling_layer=False)
    model.train()
    steps = len(batches) * args.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / (steps - warmup))))

    def embed(texts, max_len):
        enc = tok(texts, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.autocast):
            h = model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        v = (h.float() * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(v, dim=-1)

    t0 = time.time()
    step = 0
    for epoch in range(args.epochs):
        rng.shuffle(batches)
        for batch in batches:
            q = embed([r["query"] for r in batch], args.query_len)
            docs = [r["positive"] for r in batch] + [r["negative"] for r in batch if "negative" in r]
            d = embed(docs, args.passage_len)
            logits = args.scale * q @ d.T
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(batch)))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            if step % 10 == 0 or step == steps:
                log(f"step {step}/{steps} loss {loss.item():.4f} ({time.time() - t0:.0f} s)")

    # The base checkpoint's tensor names and order; position_ids and the like are copied as they are.
    base = load_file(str(args.base / "model.safetensors"))
    tuned = model.state_dict()
    out = {}
    for name, value in base.items():
        t = value
        if value.is_floating_point() and name in tuned:  # weight-space ensemble with the base model
            t = value + args.interpolate * (tuned[name].detach().float() - value)
        t = t.contiguous()
        if t.is_floating_point():
            t = t.to(torch.bfloat16 if args.bf16_weights else torch.float32)
        out[name] = t
    # The pooler is not used (mean pooling) nor trained; it is copied as it is.
    missing = [n for n in base if n not in tuned and base[n].is_floating_point() and not n.startswith("pooler.")]
    if missing:
        raise SystemExit(f"tensors of the base model the fine-tuned one lacks: {missing}")
    tmp = Path(str(args.out) + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(args.base, tmp, ignore=shutil.ignore_patterns("model.safetensors", ".complete", "SHA256SUMS"))
    save_file(out, str(tmp / "model.safetensors"), metadata={
        "format": "pt", "medsearch": json.dumps({"base": "all-MiniLM-L6-v2", "sets": sets, "seed": args.seed,
                                                 "epochs": args.epochs, "lr": args.lr, "batch": args.batch,
                                                 "interpolate": args.interpolate})})
    (tmp / "SHA256SUMS").write_text(f"{hashlib.sha256((tmp / 'model.safetensors').read_bytes()).hexdigest()}"
                                    "  model.safetensors\n")
    (tmp / ".complete").write_text("")
    shutil.rmtree(args.out, ignore_errors=True)
    tmp.rename(args.out)
    log(f"wrote {args.out} ({time.time() - t0:.0f} s)")


# ---- dense-only scoring of one set (the leave-one-dataset-out check) -----------------------------

def evaluate(args):
    sys.path.insert(0, str(ROOT / "build" / "python"))
    import medsearch
    import train_reranker as tr
    from eval_sections import score

    index = medsearch.Index.load(args.index)  # queries embedded by $MEDSEARCH_MODEL_DIR's encoder
    out = {"set": args.set, "index": str(args.index), "model": os.environ.get("MEDSEARCH_MODEL_DIR", str(BASE_MODEL))}
    for mode in args.modes.split(","):
        if args.set in tr.DOC_SETS:
            queries, qrels = tr.dev_queries(args.data, args.set)
            queries = [q for q in queries if qrels.get(q["_id"])]
            results = index.search_batch([q["text"] for q in queries], k=10, level="document", mode=mode)
            out[mode] = {"ndcg@10": round(sum(tr.ndcg10([h.doc_id for h in hits], qrels[q["_id"]])
                                              for q, hits in zip(queries, results)) / len(queries), 4)}
        else:
            name = "dev.jsonl" if args.set == "pdq-sections" else "questions.jsonl"
            folder = (args.sections or CACHE / "pdq-sections") if args.set == "pdq-sections" else args.data / "pdq-questions"
            out[mode] = score(index, tr.read_jsonl(folder / name), mode)
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pairs", help="write the training pairs")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--sections", type=Path, default=None, help="tools/make_section_set.py's output")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=13)
    t = sub.add_parser("train", help="fine-tune on the pairs of some sets")
    t.add_argument("--pairs", type=Path, required=True)
    t.add_argument("--sets", default="scifact,pubmedqa,medquad,pdq-sections,pdq-questions")
    t.add_argument("--base", type=Path, default=BASE_MODEL)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--seed", type=int, default=13)
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--lr", type=float, default=2e-5)
    t.add_argument("--scale", type=float, default=20.0)
    t.add_argument("--max-per-set", type=int, default=1000)
    t.add_argument("--query-len", type=int, default=64)
    t.add_argument("--passage-len", type=int, default=128)
    t.add_argument("--interpolate", type=float, default=0.5,
                   help="written weights = base + this x (fine-tuned - base); 1 keeps the fine-tuned ones")
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--autocast", action="store_true", help="bfloat16 autocast (AMX): faster, not bit-reproducible across CPUs")
    t.add_argument("--bf16-weights", action="store_true", help="write the weights as bfloat16")
    e = sub.add_parser("eval", help="score one development set on one index (set MEDSEARCH_MODEL_DIR to its model)")
    e.add_argument("--set", required=True, choices=("scifact", "pubmedqa", "medquad", "pdq-sections", "pdq-questions"))
    e.add_argument("--index", type=Path, required=True)
    e.add_argument("--modes", default="dense")
    e.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    e.add_argument("--sections", type=Path, default=None)
    args = ap.parse_args()
    {"pairs": make_pairs, "train": train, "eval": evaluate}[args.cmd](args)


if __name__ == "__main__":
    main()
