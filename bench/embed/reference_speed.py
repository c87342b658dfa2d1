#!/usr/bin/env python3
"""Passages per second of the reference runtime (sentence-transformers on
PyTorch, CPU) on the texts of bench/embed/encoder_bench.cc's BM_Encode, so the
two can be quoted as a ratio.

Texts: SciFact abstracts (corpus order) cut to the longest whole-word prefix
(split on ' ') of at most N tokens with [CLS]/[SEP], texts shorter than N
tokens skipped, 8192 // N texts per call -- the same cut the C++ bench makes
with our WordPiece tokenizer (which matches tokenizers' ids). Each call is
model.encode(texts, batch_size=B) with tokenization included, as in our embed().
Threads: torch.set_num_threads(T) (and set_num_interop_threads(1)).

Run (needs sentence-transformers and the model from tools/fetch_model.sh):
  HF_HUB_OFFLINE=1 /tmp/weights-research/venv/bin/python bench/embed/reference_speed.py \
      [--tokens 16 128 256] [--threads 1 2] [--batch-size 32] [--min-time 2] \
      [--precision float32|bfloat16] [--queries 300]
Prints one line per (tokens, threads): passages/s, tokens/s and CPU-time
rates (passages per CPU second of the process: robust on a busy machine).
"""
import argparse
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOKENS_PER_CALL = 8192


def default_model_dir():
    if os.environ.get("MEDSEARCH_MODEL_DIR"):
        return pathlib.Path(os.environ["MEDSEARCH_MODEL_DIR"])
    cache = os.environ.get("MEDSEARCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "medsearch")
    return pathlib.Path(cache) / "models" / "all-minilm-l6-v2"


def count(tok, text):
    return len(tok.encode(text).ids)


def cut_to_tokens(tok, text, max_tokens):
    """Mirrors cut_to_tokens() in encoder_bench.cc."""
    if count(tok, text) < max_tokens:
        return ""
    ends = [i + 1 for i in range(len(text)) if text[i] != " " and (i + 1 == len(text) or text[i + 1] == " ")]
    lo, hi = 0, len(ends)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(tok, text[:ends[mid - 1]]) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return "" if lo == 0 else text[:ends[lo - 1]]


def passages(tok, corpus, max_tokens):
    want = TOKENS_PER_CALL // max_tokens
    out = []
    for text in corpus:
        cut = cut_to_tokens(tok, text, max_tokens)
        if cut:
            out.append(cut)
        if len(out) == want:
            break
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=pathlib.Path, default=default_model_dir())
    ap.add_argument("--shared-data", type=pathlib.Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--tokens", type=int, nargs="+", default=[16, 128, 256])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--min-time", type=float, default=2.0, help="seconds per measurement (at least one call)")
    ap.add_argument("--precision", choices=["float32", "bfloat16"], default="float32",
                    help="bfloat16: the same model under torch.autocast('cpu', torch.bfloat16) (oneDNN; AMX where present)")
    ap.add_argument("--queries", type=int, default=0,
                    help="also time this many PubMedQA questions one at a time (as BM_QueryLatency): p50/p99")
    args = ap.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    torch.set_num_interop_threads(1)
    tok = Tokenizer.from_file(str(args.model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()  # counts must see whole texts, as our encode(text, 100000) does
    corpus = []
    with open(args.shared_data / "scifact" / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            corpus.append(json.loads(line)["text"])
            if len(corpus) == 4000:
                break
    model = SentenceTransformer(str(args.model_dir), device="cpu")
    print(f"# torch {torch.__version__}, batch_size {args.batch_size}, {args.precision}", file=sys.stderr)
    import contextlib
    def precision_scope():
        if args.precision == "bfloat16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    if args.queries:
        questions = []
        with open(args.shared_data / "pubmedqa" / "queries.jsonl", encoding="utf-8") as f:
            for line in f:
                questions.append(json.loads(line)["text"])
                if len(questions) == 500:
                    break
        for threads in args.threads:
            torch.set_num_threads(threads)
            with precision_scope():
                model.encode(questions[:8], show_progress_bar=False)  # warm-up
                micros = []
                for i in range(args.queries):
                    t0 = time.perf_counter()
                    model.encode([questions[i % len(questions)]], convert_to_numpy=True, show_progress_bar=False)
                    micros.append((time.perf_counter() - t0) * 1e6)
            micros.sort()
            print(json.dumps({"queries": args.queries, "threads": threads, "precision": args.precision,
                              "p50_us": round(micros[len(micros) // 2], 1),
                              "p99_us": round(micros[min(len(micros) - 1, len(micros) * 99 // 100)], 1)}),
                  flush=True)

    for n in args.tokens:
        texts = passages(tok, corpus, n)
        total_tokens = sum(min(count(tok, t), 256) for t in texts)
        for threads in args.threads:
            torch.set_num_threads(threads)
            calls, wall, cpu = 0, 0.0, 0.0
            with precision_scope():
                model.encode(texts[: args.batch_size], batch_size=args.batch_size)  # warm-up
                while calls == 0 or wall < args.min_time:
                    t0, c0 = time.perf_counter(), time.process_time()
                    model.encode(texts, batch_size=args.batch_size, convert_to_numpy=True, show_progress_bar=False)
                    wall += time.perf_counter() - t0
                    cpu += time.process_time() - c0
                    calls += 1
            print(json.dumps({
                "tokens": n, "threads": threads, "texts": len(texts), "precision": args.precision,
                "avg_tokens": round(total_tokens / len(texts), 2),
                "passages_per_s": round(calls * len(texts) / wall, 2),
                "tokens_per_s": round(calls * total_tokens / wall, 1),
                "passages_per_cpu_s": round(calls * len(texts) / cpu, 2),
            }), flush=True)


if __name__ == "__main__":
    main()
