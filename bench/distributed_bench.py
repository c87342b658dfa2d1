#!/usr/bin/env python3
"""The sharded index (medsearch.distributed) against one medsearch.Index, measured in one run.

    .venv/bin/python bench/distributed_bench.py --output DIR [--quick] [--shards 4]
    build/bin/medsearch bench --steps distributed --output DIR      (a step of bench/suite.py)

Sections (default corpus, NCI PDQ):
  * build: ShardedIndex.build with 1 and with 2 workers (a local Ray cluster of 1 or 2 CPUs,
    each build task on one thread), beside Index.build on both cores; with the encoder
    (full run) or BM25 only (--quick);
  * latency: p50/p99 of search() per mode through the sharded index and through one Index
    over the same documents and vectors, queries interleaved (the hand-written PDQ questions
    and the unanswerable ones, with their vectors computed once, so the encoder's time is
    not in either);
  * throughput: queries per second with 1, 2, 4 and 8 concurrent callers (rerank mode);
  * recall: dense recall@10 against exact search, for the sharded index's per-shard HNSW
    graphs and for one index's HNSW graph over the same vectors;
  * shards: passages, memory and dense index per shard (inputs of the written model in
    bench/results/distributed/README.md).
The single index and the shards hold the same vectors: the shards are built from the single
index's rows (a PrecomputedEmbedder keyed by passage text), so nothing is embedded twice.
Writes DIR/distributed_bench.json and DIR/distributed_bench.md.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "build" / "python"))

import numpy as np  # noqa: E402

import medsearch  # noqa: E402
from medsearch import distributed  # noqa: E402
from medsearch.distributed import ShardedIndex  # noqa: E402

MODES = ("bm25", "dense", "hybrid", "rerank")


class VectorTable:
    """Picklable: a PrecomputedEmbedder of an index's passage vectors (by embedding text)."""

    def __init__(self, texts, vectors, model_id):
        keep = {}
        for i, t in enumerate(texts):
            keep.setdefault(t, i)
        self.texts = list(keep)
        self.vectors = np.ascontiguousarray(vectors[list(keep.values())], dtype=np.float32)
        self.model_id = model_id

    def __call__(self):
        return medsearch.PrecomputedEmbedder(self.texts, self.vectors, self.model_id)


def log(msg):
    print(f"[distributed_bench] {msg}", file=sys.stderr, flush=True)


def pct(values, q):
    return float(np.percentile(np.asarray(values), q)) if values else None


def restart_ray(cpus):
    import ray
    if ray.is_initialized():
        ray.shutdown()
    distributed.connect(num_cpus=cpus)


def questions(data):
    out = []
    for name in ("questions.jsonl", "unanswerable.jsonl"):
        with open(data / "pdq-questions" / name, encoding="utf-8") as f:
            out += [json.loads(line)["text"] for line in f]
    return out


def section_build(args, corpus, tmp):
    """Sharded build time with 1 and 2 workers, and one Index.build, same corpus and options."""
    encoder = None if args.quick else str(medsearch.Encoder().model_dir)
    out = {"encoder": encoder or "none (BM25 only)", "shards": args.shards}
    t0 = time.perf_counter()
    medsearch.Index.build(corpus, encoder=medsearch.Encoder(model_dir=encoder) if encoder else None)
    out["index_build_s"] = round(time.perf_counter() - t0, 1)
    log(f"Index.build: {out['index_build_s']} s")
    for workers in (1, 2):
        restart_ray(workers)
        path = tmp / f"build-{workers}"
        t0 = time.perf_counter()
        s = ShardedIndex.build(corpus, shards=args.shards, path=path, encoder=encoder, progress=False, task_cpus=1)
        out[f"sharded_build_{workers}_workers_s"] = round(time.perf_counter() - t0, 1)
        s.close()
        shutil.rmtree(path)
        log(f"ShardedIndex.build, {workers} worker(s): {out[f'sharded_build_{workers}_workers_s']} s")
    out["speedup_2_over_1_workers"] = round(out["sharded_build_1_workers_s"] / out["sharded_build_2_workers_s"], 2)
    return out


def single_index(args, corpus, tmp):
    """One index over the corpus with vectors: tools/main.sh's cached one when current, else built."""
    cached = pathlib.Path(os.environ.get("MEDSEARCH_CACHE", pathlib.Path.home() / ".cache/medsearch")) / "indexes" / "nci-pdq"
    if not args.quick:
        try:
            index = medsearch.Index.load(cached, encoder=None)
            if index.has_vectors:
                return index, str(cached)
        except Exception:  # noqa: BLE001 - absent or of an older format: build one
            pass
        return medsearch.Index.build(corpus, encoder=medsearch.Encoder()), "built here"
    return medsearch.Index.build(corpus), "built here (BM25 only)"


def timed(fn):
    t0 = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t0) / 1000.0


def section_search(args, corpus, tmp, out):
    restart_ray(2)
    one, source = single_index(args, corpus, tmp)
    out["single_index"] = {"source": source, "passages": len(one), **{k: v for k, v in one.stats().items()
                                                                       if k in ("memory_bytes", "dense_index", "dim")}}
    qs = questions(args.data)
    vectors = None
    encoder = None
    if one.has_vectors:
        encoder = medsearch.Encoder.for_model_id(one.stats()["model_id"])
        one.attach_encoder(encoder)
        vectors = encoder.embed(qs, kind="query")
        table = VectorTable([one.embedding_text(p) for p in range(len(one))], np.asarray(one.vectors()),
                            one.stats()["model_id"])
    else:
        table = None
    t0 = time.perf_counter()
    sharded = ShardedIndex.build(corpus, shards=args.shards, path=tmp / "sharded", encoder=table, progress=False)
    out["sharded_build_from_vectors_s"] = round(time.perf_counter() - t0, 1)
    out["per_shard"] = [{k: v for k, v in s.items() if k in ("documents", "passages", "memory_bytes", "dense_index", "terms")}
                     for s in sharded.shard_stats()]
    modes = MODES if one.has_vectors else ("bm25",)

    # Latency, interleaved: single then sharded for each query, `rounds` times.
    rounds = 1 if args.quick else 3
    lat = {m: {"single": [], "sharded": []} for m in modes}
    for mode in modes:
        for i, q in enumerate(qs[:5]):  # warm-up
            v = vectors[i] if vectors is not None and mode != "bm25" else None
            one.search(q, k=10, mode=mode, query_vector=v)
            sharded.search(q, k=10, mode=mode, query_vector=v)
        for _ in range(rounds):
            for i, q in enumerate(qs):
                v = vectors[i] if vectors is not None and mode != "bm25" else None
                lat[mode]["single"].append(timed(lambda: one.search(q, k=10, mode=mode, query_vector=v)))
                lat[mode]["sharded"].append(timed(lambda: sharded.search(q, k=10, mode=mode, query_vector=v)))
    out["latency_us"] = {m: {side: {"p50": round(pct(x, 50)), "p99": round(pct(x, 99)), "n": len(x)}
                             for side, x in d.items()} for m, d in lat.items()}
    for m, d in out["latency_us"].items():
        d["p50_ratio_sharded_over_single"] = round(d["sharded"]["p50"] / d["single"]["p50"], 1)
        log(f"latency {m}: single p50 {d['single']['p50']} us, sharded p50 {d['sharded']['p50']} us")

    # Throughput with concurrent callers.
    mode = "rerank" if one.has_vectors else "bm25"
    seconds = 2.0 if args.quick else 5.0
    out["throughput_qps"] = {"mode": mode}
    for callers in (1, 2, 4, 8):
        for side, index in (("single", one), ("sharded", sharded)):
            done = [0] * callers
            stop = time.perf_counter() + seconds

            def loop(c):
                i = c
                while time.perf_counter() < stop:
                    j = i % len(qs)
                    index.search(qs[j], k=10, mode=mode, query_vector=vectors[j] if vectors is not None else None)
                    done[c] += 1
                    i += callers

            threads = [threading.Thread(target=loop, args=(c,)) for c in range(callers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            out["throughput_qps"][f"{side}_{callers}"] = round(sum(done) / seconds, 1)
        log(f"throughput, {callers} callers: single {out['throughput_qps'][f'single_{callers}']} q/s, "
            f"sharded {out['throughput_qps'][f'sharded_{callers}']} q/s")

    # Dense recall@10 against exact search over the same vectors.
    if one.has_vectors:
        rows = np.asarray(one.vectors())
        ids = [one.passage(p).passage_id for p in range(len(one))]
        hits_single = hits_sharded = 0
        for i, q in enumerate(qs):
            exact = {ids[p] for p in np.argsort(-(rows @ vectors[i]), kind="stable")[:10]}
            hits_single += len(exact & {h.passage_id for h in one.search(q, k=10, mode="dense", query_vector=vectors[i])})
            hits_sharded += len(exact & {h.passage_id for h in sharded.search(q, k=10, mode="dense", query_vector=vectors[i])})
        out["dense_recall_at_10"] = {"single_hnsw": round(hits_single / (10 * len(qs)), 4),
                                     "sharded_hnsw": round(hits_sharded / (10 * len(qs)), 4), "queries": len(qs)}
        log(f"dense recall@10: single {out['dense_recall_at_10']['single_hnsw']}, sharded {out['dense_recall_at_10']['sharded_hnsw']}")
    sharded.close()


def markdown(out):
    lines = [f"# Sharded index against one Index ({out['machine']})", ""]
    b = out.get("build")
    if b:
        lines += ["## Build (default corpus, " + b["encoder"] + ")", "",
                  "| what | seconds |", "|---|---|",
                  f"| Index.build, both cores | {b['index_build_s']} |",
                  f"| ShardedIndex.build, {b['shards']} shards, 1 worker | {b['sharded_build_1_workers_s']} |",
                  f"| ShardedIndex.build, {b['shards']} shards, 2 workers | {b['sharded_build_2_workers_s']} |",
                  "", f"Speed-up of 2 workers over 1: {b['speedup_2_over_1_workers']}x.", ""]
    if "latency_us" in out:
        lines += ["## Search latency (us, one caller, query vectors given)", "",
                  "| mode | Index p50 | Index p99 | sharded p50 | sharded p99 | p50 ratio |", "|---|---|---|---|---|---|"]
        for m, d in out["latency_us"].items():
            lines.append(f"| {m} | {d['single']['p50']} | {d['single']['p99']} | {d['sharded']['p50']} | "
                         f"{d['sharded']['p99']} | {d['p50_ratio_sharded_over_single']} |")
        t = out["throughput_qps"]
        lines += ["", f"## Throughput ({t['mode']} mode, queries/s)", "", "| callers | Index | sharded |", "|---|---|---|"]
        for c in (1, 2, 4, 8):
            lines.append(f"| {c} | {t[f'single_{c}']} | {t[f'sharded_{c}']} |")
    if "dense_recall_at_10" in out:
        r = out["dense_recall_at_10"]
        lines += ["", f"## Dense recall@10 against exact search ({r['queries']} queries)", "",
                  f"One index's HNSW: {r['single_hnsw']}; the shards' HNSW graphs: {r['sharded_hnsw']}."]
    if "per_shard" in out:
        lines += ["", "## Shards", "", "| shard | documents | passages | memory MiB | dense index |", "|---|---|---|---|---|"]
        for i, s in enumerate(out["per_shard"]):
            lines.append(f"| {i} | {s['documents']} | {s['passages']} | {s['memory_bytes'] / 2**20:.1f} | {s['dense_index']} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--output", required=True, type=pathlib.Path)
    ap.add_argument("--data", type=pathlib.Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="BM25 only: a minute instead of about fifteen")
    ap.add_argument("--sections", default="build,search")
    args = ap.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    corpus = {"nci-pdq": args.data / "nci-pdq"}
    out = {"machine": f"{os.cpu_count()} CPUs, {os.uname().machine}", "quick": args.quick, "shards": args.shards,
           "ray": __import__("ray").__version__}
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="dbench-"))
    try:
        if "build" in args.sections:
            out["build"] = section_build(args, corpus, tmp)
        if "search" in args.sections:
            section_search(args, corpus, tmp, out)
    finally:
        import ray
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    (args.output / "distributed_bench.json").write_text(json.dumps(out, indent=2) + "\n")
    (args.output / "distributed_bench.md").write_text(markdown(out))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
