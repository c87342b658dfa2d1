#!/usr/bin/env python3
"""Encoder throughput and query latency of medsearch against the reference
runtime (sentence-transformers on PyTorch, CPU), in one process, on the same
texts and thread counts, so the two can be quoted as ratios.

Runtimes (--runtimes): st-float32 (sentence-transformers as it runs by
default), st-bfloat16 (the same under torch.autocast('cpu', torch.bfloat16):
oneDNN, AMX where present), ms-float32 and ms-bfloat16 (medsearch.Encoder at
each precision; ms-bfloat16 needs AMX-BF16 and is skipped without it).

Texts: SciFact abstracts (corpus order) cut to the longest whole-word prefix
(split on ' ') of at most N tokens with [CLS]/[SEP], texts shorter than N
tokens skipped, 8192 // N texts per call -- the same cut the C++ bench
(bench/embed/encoder_bench.cc, BM_Encode) makes with our WordPiece tokenizer.
Each call embeds all of them with tokenization included
(model.encode(texts, batch_size=B) / Encoder.embed(texts, threads=T)).
Threads: torch.set_num_threads(T) (interop 1) / an arena of T threads.
Queries (--queries N): N PubMedQA questions one at a time, p50/p99.

Set-up (the reference runtime is not part of the project's environments; it
pulls PyTorch, about 1 GB):
  python3 -m venv /tmp/ref-venv && /tmp/ref-venv/bin/pip install -r requirements-reference.txt
Run (the model from tools/fetch_model.sh; medsearch from build/python):
  /tmp/ref-venv/bin/python bench/embed/reference_speed.py [--tokens 16 128 256] [--threads 1 2] \\
      [--queries 300] [--min-time 2] [--output bench/results/encoder/reference.json]
Prints one JSON line per measurement, then a Markdown table of ratios to
st-float32. Rates per CPU second of the process are printed beside the
wall-clock ones: they hold up better when other processes share the cores.
"""
import argparse
import contextlib
import json
import os
import pathlib
import platform
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOKENS_PER_CALL = 8192
RUNTIMES = ["st-float32", "st-bfloat16", "ms-float32", "ms-bfloat16"]


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


def read_texts(path, limit, key="text"):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line)[key])
            if len(out) == limit:
                break
    return out


class Runtime:
    """embed(texts, threads) for one runtime; None where it cannot run here."""

    def __init__(self, name, args):
        self.name = name
        self.scope = contextlib.nullcontext
        if name.startswith("st-"):
            import torch
            from sentence_transformers import SentenceTransformer
            self.torch = torch
            self.model = SentenceTransformer(str(args.model_dir), device="cpu")
            if name == "st-bfloat16":
                self.scope = lambda: torch.autocast("cpu", dtype=torch.bfloat16)
            self.batch_size = args.batch_size
        else:
            import medsearch
            self.encoder = medsearch.Encoder(model_dir=args.model_dir, precision=name[3:])

    def embed(self, texts, threads):
        if self.name.startswith("st-"):
            self.torch.set_num_threads(threads)
            return self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                     show_progress_bar=False)
        return self.encoder.embed(texts, threads=threads)


def throughput(rt, texts, threads, min_time):
    with rt.scope():
        rt.embed(texts[:32], threads)  # warm-up
        calls, wall, cpu = 0, 0.0, 0.0
        while calls == 0 or wall < min_time:
            t0, c0 = time.perf_counter(), time.process_time()
            rt.embed(texts, threads)
            wall += time.perf_counter() - t0
            cpu += time.process_time() - c0
            calls += 1
    return calls * len(texts) / wall, calls * len(texts) / cpu


def latency(rt, questions, threads, n):
    micros = []
    with rt.scope():
        rt.embed(questions[:8], threads)  # warm-up
        for i in range(n):
            t0 = time.perf_counter()
            rt.embed([questions[i % len(questions)]], threads)
            micros.append((time.perf_counter() - t0) * 1e6)
    micros.sort()
    return micros[len(micros) // 2], micros[min(len(micros) - 1, len(micros) * 99 // 100)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=pathlib.Path, default=default_model_dir())
    ap.add_argument("--shared-data", type=pathlib.Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--tokens", type=int, nargs="+", default=[16, 128, 256])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runtimes", nargs="+", default=RUNTIMES, choices=RUNTIMES)
    ap.add_argument("--batch-size", type=int, default=32, help="sentence-transformers' batch size")
    ap.add_argument("--min-time", type=float, default=2.0, help="seconds per measurement (at least one call)")
    ap.add_argument("--queries", type=int, default=0, help="also time this many single questions per runtime")
    ap.add_argument("--output", type=pathlib.Path, help="write all measurements here (JSON)")
    args = ap.parse_args()

    try:
        import medsearch  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(ROOT / "build" / "python"))
    import torch
    from tokenizers import Tokenizer

    torch.set_num_interop_threads(1)
    tok = Tokenizer.from_file(str(args.model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()  # counts must see whole texts, as our encode(text, 100000) does
    corpus = read_texts(args.shared_data / "scifact" / "corpus.jsonl", 4000)
    runtimes = []
    for name in args.runtimes:
        try:
            runtimes.append(Runtime(name, args))
        except ValueError as e:  # ms-bfloat16 without AMX
            print(f"# {name} skipped: {e}", file=sys.stderr)
    print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"runtimes {[r.name for r in runtimes]}", file=sys.stderr)

    rows = []
    for n in args.tokens:
        texts = passages(tok, corpus, n)
        avg = sum(min(count(tok, t), 256) for t in texts) / len(texts)
        for threads in args.threads:
            for rt in runtimes:
                per_s, per_cpu_s = throughput(rt, texts, threads, args.min_time)
                row = {"runtime": rt.name, "tokens": n, "threads": threads, "texts": len(texts),
                       "avg_tokens": round(avg, 2), "passages_per_s": round(per_s, 2),
                       "tokens_per_s": round(per_s * avg, 1), "passages_per_cpu_s": round(per_cpu_s, 2)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.queries:
        questions = read_texts(args.shared_data / "pubmedqa" / "queries.jsonl", 500)
        for threads in args.threads:
            for rt in runtimes:
                p50, p99 = latency(rt, questions, threads, args.queries)
                row = {"runtime": rt.name, "queries": args.queries, "threads": threads,
                       "p50_us": round(p50, 1), "p99_us": round(p99, 1)}
                rows.append(row)
                print(json.dumps(row), flush=True)

    # Ratios to the reference as it runs by default.
    ref = {(r["tokens"], r["threads"]): r for r in rows if r["runtime"] == "st-float32" and "tokens" in r}
    ref_q = {r["threads"]: r for r in rows if r["runtime"] == "st-float32" and "queries" in r}
    print("\n| runtime | tokens | threads | passages/s | x st-float32 | per CPU-s | x st-float32 (CPU) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "tokens" not in r:
            continue
        b = ref.get((r["tokens"], r["threads"]))
        x = f"{r['passages_per_s'] / b['passages_per_s']:.2f}" if b else ""
        xc = f"{r['passages_per_cpu_s'] / b['passages_per_cpu_s']:.2f}" if b else ""
        print(f"| {r['runtime']} | {r['tokens']} | {r['threads']} | {r['passages_per_s']} | {x} | "
              f"{r['passages_per_cpu_s']} | {xc} |")
    if ref_q:
        print("\n| runtime | threads | query p50 µs | p99 µs | st-float32 p50 / this p50 |")
        print("|---|---|---|---|---|")
        for r in rows:
            if "queries" in r:
                b = ref_q.get(r["threads"])
                x = f"{b['p50_us'] / r['p50_us']:.2f}" if b else ""
                print(f"| {r['runtime']} | {r['threads']} | {r['p50_us']} | {r['p99_us']} | {x} |")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"torch": torch.__version__, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
