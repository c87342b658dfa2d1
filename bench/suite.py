#!/usr/bin/env python3
"""medsearch's benchmark suite: one command, one report folder.

    build/bin/medsearch bench [--quick] --output DIR      (runs this script)
    .venv/bin/python bench/suite.py [--quick] --output DIR

Measures on this machine, in one run:
  1. ingest, chunking and BM25 indexing throughput (NCI PDQ Markdown, MedQuAD JSONL);
  2. encoder throughput and its roofline ratio (Google Benchmark BM_Encode: the
     encoder's GFLOP/s over the machine's own Eigen SGEMM rate), 1 and 2 threads,
     float32 and bfloat16 (bf16:1; skipped without AMX-BF16), and the time per query;
  3. index build time and memory (BM25 only, and with passage vectors);
  4. query latency distributions (p50/p90/p99/p99.9) per mode, one thread and both
     cores (BM_Pipeline on the default-corpus index, from the query vector), the
     encoder's own time per query, batch throughput;
  5. recall-QPS of our vector index against hnswlib, faiss and usearch on the same
     data (bench/vector_compare.py; GloVe-100 and the encoder's corpus embeddings);
  6. BM25 latency against Tantivy and bm25s (bench/bm25_compare.py);
  6b. the sharded index on Ray against one Index (bench/distributed_bench.py);
  7. retrieval quality (nDCG@10, Recall@100, MRR@10) per mode on every development set;
  8. section-level quality (hit@1, hit@5, MRR@10) per mode on the hand-written guideline
     questions and the section set made from the corpus (tools/eval_sections.py), and how
     the coverage probability separates answerable from unanswerable questions.
Writes DIR/README.md (tables), DIR/report.json (everything), DIR/*.png (recall-QPS,
latency histograms, quality per mode) and DIR/raw/ (each tool's own output), with
the machine, CPU flags, versions and commit.

--quick (under 10 minutes): GloVe subset and fewer ef values, a query subset for
BM25, quality in every mode on PubMedQA (embedded here, about a minute) and in
BM25 mode on the larger sets unless their embedded indexes are cached. The full
run embeds every development corpus once (cached for later runs; tens of minutes
the first time) and uses the whole GloVe set.

Peers come from requirements-bench.txt, installed into the running Python's
environment when missing. A step that fails is recorded in the report (and the
exit status is 1) while the other steps go on.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODES = ("bm25", "dense", "hybrid", "rerank")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("$ " + " ".join(str(c) for c in cmd))
    return subprocess.run([str(c) for c in cmd], check=True, text=True, **kw)


def cache_root() -> Path:
    base = os.environ.get("MEDSEARCH_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "medsearch"
    return Path(base)


# ---- machine ----------------------------------------------------------------------------------

def machine_info(build: Path) -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cores": os.cpu_count()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = re.search(r"model name\s*:\s*(.*)", cpuinfo).group(1)
        flags = set(re.search(r"flags\s*:\s*(.*)", cpuinfo).group(1).split())
        info["cpu_flags"] = sorted(f for f in flags if re.match(r"(avx|fma|sse4|amx|vnni|bmi|f16c)", f))
        mem = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text()).group(1)
        info["memory_gib"] = round(int(mem) / 2**20, 1)
    except (OSError, AttributeError):
        pass
    try:
        info["commit"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                                        text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        info["worktree"] = "modified" if dirty else "clean"
    except (OSError, subprocess.CalledProcessError):
        info["commit"] = "unknown"
    cache = build / "CMakeCache.txt"
    if cache.exists():
        text = cache.read_text(errors="replace")
        for key in ("CMAKE_CXX_COMPILER", "CMAKE_BUILD_TYPE", "MEDSEARCH_BASELINE_ARCH"):
            m = re.search(rf"^{key}:\w+=(.*)$", text, re.M)
            if m:
                info[key.lower()] = m.group(1)
        try:
            info["compiler"] = subprocess.run([info.get("cmake_cxx_compiler", "c++"), "--version"], capture_output=True,
                                              text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            pass
    versions = {}
    for mod in ("medsearch", "numpy", "hnswlib", "faiss", "usearch", "tantivy", "bm25s", "matplotlib"):
        try:
            m = __import__(mod)
            versions[mod] = getattr(m, "__version__", "?")
        except Exception:  # noqa: BLE001 (a missing peer is reported, not fatal)
            versions[mod] = None
    info["versions"] = versions
    try:  # the kernel levels compiled in and the one this CPU runs
        import medsearch
        info["kernels"] = medsearch.build_info()
    except Exception:  # noqa: BLE001 (the suite may run before the module is built)
        pass
    return info


def ensure_peers():
    try:
        import bm25s, faiss, hnswlib, tantivy, usearch  # noqa: F401
    except ImportError:
        log("installing the peers (requirements-bench.txt)")
        run([sys.executable, "-m", "pip", "install", "-q", "-r", ROOT / "requirements-bench.txt"])


# ---- steps -------------------------------------------------------------------------------------

def corpus_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.suffix in (".md", ".jsonl"))


def step_ingest(ctx):
    """Read + parse, chunk, BM25-index: timed from the build's progress callbacks."""
    import medsearch
    out = {}
    for name, path in (("nci-pdq", ctx.data / "nci-pdq"), ("medquad", ctx.data / "medquad" / "corpus.jsonl")):
        marks = []
        t0 = time.perf_counter()
        index = medsearch.Index.build({name: path}, progress=lambda s, d, n: marks.append((time.perf_counter(), s, d, n)))
        t_end = time.perf_counter()
        chunk = [m for m in marks if m[1] == "chunking"]
        indexing = [m for m in marks if m[1] == "indexing"]
        stats = index.stats()
        # The first chunking callback comes after the first block of 256 documents is chunked.
        first_block = min(256, stats["documents"])
        t_read_end = chunk[0][0] - (chunk[-1][0] - chunk[0][0]) / max(1, stats["documents"] - first_block) * first_block
        mb = corpus_bytes(path) / 1e6
        out[name] = {
            "documents": stats["documents"], "passages": stats["passages"], "megabytes": round(mb, 2),
            "read_s": round(t_read_end - t0, 3), "chunk_s": round(indexing[0][0] - t_read_end, 3),
            "bm25_index_s": round(indexing[-1][0] - indexing[0][0], 3), "total_s": round(t_end - t0, 3),
            "read_mb_per_s": round(mb / max(t_read_end - t0, 1e-9), 1),
            "chunk_docs_per_s": round(stats["documents"] / max(indexing[0][0] - t_read_end, 1e-9)),
            "index_passages_per_s": round(stats["passages"] / max(indexing[-1][0] - indexing[0][0], 1e-9)),
            "bm25_memory_mib": round(stats["memory_bytes"] / 2**20, 1),
        }
        log(f"ingest {name}: {out[name]}")
    return out


def google_benchmark(ctx, filt, min_time, env=None, name="gbench"):
    exe = ctx.build / "bin" / "medsearch_bench"
    raw = ctx.out / "raw" / f"{name}.json"
    run([exe, f"--benchmark_filter={filt}", f"--benchmark_min_time={min_time}", "--benchmark_format=json",
         f"--benchmark_out={raw}", "--benchmark_out_format=json"], stdout=subprocess.DEVNULL,
        env={**os.environ, **(env or {})})
    return json.loads(raw.read_text())


def step_encoder(ctx):
    tokens = "128" if ctx.quick else "(16|128|256)"
    res = google_benchmark(ctx, f"BM_Encode/tokens:{tokens}/threads|BM_EigenSgemm|BM_QueryLatency",
                           0.5 if ctx.quick else 2.0, name="encoder")
    rows = []
    for b in res["benchmarks"]:
        if b["name"].startswith("BM_Encode"):
            rows.append({"name": re.sub(r"/min_time:[0-9.]+|/real_time", "", b["name"]),
                         "passages_per_s": b.get("passages_per_s"),
                         "tokens_per_s": b.get("tokens_per_s"), "GFLOPs": b.get("GFLOPs"),
                         "roofline_ratio": b.get("roofline_ratio"), "sgemm_GFLOPs": b.get("sgemm_GFLOPs")})
        elif b["name"].startswith("BM_QueryLatency"):
            m = re.search(r"bf16:(\d)/threads:(\d)", b["name"])
            what = f"query embedding, {'bfloat16' if m and m.group(1) == '1' else 'float32'}"
            rows.append({"name": f"{what}, {m.group(2) if m else '?'} thread(s)",
                         "p50_us": b.get("p50_us"), "p99_us": b.get("p99_us")})
    return {"rows": rows, "context": res.get("context", {})}


def current_format(path):
    """Whether `path` holds an index this build reads; an index of an older format
    (an older medsearch wrote it) is not, and is built again by the caller."""
    import medsearch
    if not (path / "CURRENT").exists():
        return False
    try:
        medsearch.Index.load(path, encoder=None)
        return True
    except medsearch.OldFormatError as e:
        log(f"{path}: {e}")
        return False


def dev_index(ctx, name, embed):
    """A development index: the tools/eval_dev.sh cache when present, else built here."""
    root = cache_root() / "dev-eval"
    path = root / (f"index-{name}" if embed else f"index-{name}-bm25")
    if not current_format(path):
        root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        run([ctx.build / "bin" / "medsearch", "build", f"{name}={ctx.data / name}", "-o", path] +
            ([] if embed else ["--no-embed"]), stdout=subprocess.DEVNULL)
        ctx.built[str(path)] = round(time.perf_counter() - t0, 1)
    return path


def step_index_build(ctx):
    import medsearch
    out = {}
    for name, embed in (("pubmedqa", True), ("scifact", False), ("medquad", False)):
        path = dev_index(ctx, name, embed)
        stats = medsearch.Index.load(path, encoder=None).stats()
        out[f"{name}{'' if embed else ' (bm25 only)'}"] = {
            "passages": stats["passages"], "memory_mib": round(stats["memory_bytes"] / 2**20, 1),
            "disk_mib": round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 1),
            "build_s": ctx.built.get(str(path), "cached")}
    pdq = cache_root() / "indexes" / "nci-pdq"
    if current_format(pdq):
        stats = medsearch.Index.load(pdq, encoder=None).stats()
        out["nci-pdq (tools/main.sh)"] = {
            "passages": stats["passages"], "memory_mib": round(stats["memory_bytes"] / 2**20, 1),
            "disk_mib": round(sum(p.stat().st_size for p in pdq.rglob("*") if p.is_file()) / 2**20, 1),
            "vectors": stats["dim"] > 0, "build_s": "cached"}
    return out


def latency_index(ctx):
    pdq = cache_root() / "indexes" / "nci-pdq"
    import medsearch
    if current_format(pdq) and medsearch.Index.load(pdq, encoder=None).has_vectors:
        return pdq, "nci-pdq"
    return dev_index(ctx, "pubmedqa", True), "pubmedqa (no default-corpus index with vectors: run tools/main.sh)"


def step_latency(ctx):
    index, which = latency_index(ctx)
    samples = ctx.out / "raw" / "latency"
    samples.mkdir(parents=True, exist_ok=True)
    res = google_benchmark(ctx, "BM_Pipeline|BM_EncodeQuery|BM_RerankRepeatedText|BM_RerankBatch", 2.0, env={"MEDSEARCH_BENCH_INDEX": str(index),
                                                          "MEDSEARCH_BENCH_SAMPLES": str(samples)}, name="pipeline")
    rows = []
    for b in res["benchmarks"]:
        name = re.sub(r"/min_time:[0-9.]+|/real_time", "", b["name"])
        m = re.match(r"BM_Pipeline/mode:(\d)/threads:(\d)", name)
        if m:
            name = f"{MODES[int(m.group(1))]}, {m.group(2)} thread{'s' if m.group(2) != '1' else ''}"
        rows.append({"name": name, **{k: b.get(k) for k in ("p50_us", "p90_us", "p99_us", "p999_us", "qps")}})
    return {"index": which, "rows": rows}


def step_vectors(ctx):
    ensure_peers()
    out_dir = ctx.out / "raw" / "vector_compare"
    data = "glove"
    pdq = cache_root() / "indexes" / "nci-pdq"
    import medsearch
    import numpy as np
    if current_format(pdq):
        index = medsearch.Index.load(pdq, encoder=None)
        if index.has_vectors:
            npy = cache_root() / "datasets" / "nci-pdq-minilm.npy"
            npy.parent.mkdir(parents=True, exist_ok=True)
            if not npy.exists():
                np.save(npy, np.asarray(index.vectors()))
            data += f",embeddings:{npy}"
    cmd = [sys.executable, ROOT / "bench" / "vector_compare.py", "--output", out_dir]
    if ctx.quick:
        # One data set (the encoder's corpus vectors when cached, else GloVe), a subset, fewer ef values.
        cmd += ["--data", data.split(",")[-1], "--base-size", "20000", "--efs", "16,32,64,128", "--threads", "1,2"]
    else:
        cmd += ["--data", data]
    run(cmd)
    result = json.loads((out_dir / "vector_compare.json").read_text())
    for png in out_dir.glob("*_recall_qps.png"):
        (ctx.out / png.name).write_bytes(png.read_bytes())
    summary = []
    for ds in result.get("datasets", []):
        for engine, e in ds.get("engines", {}).items():
            row = {"data": ds["name"], "base": ds.get("info", {}).get("base"), "engine": engine,
                   "bytes_per_vector": e.get("bytes_per_vector"), "build_s": e.get("build_s")}
            for mode, best in ds.get("best", {}).get("qps", {}).get(engine, {}).items():
                row[f"qps {mode}"] = best["qps"] if best else None
                if best and best.get("ef") is not None:
                    row[f"ef {mode}"] = best["ef"]
            summary.append(row)
    return {"data": data, "summary": summary,
            "ratios": {ds["name"]: ds.get("ratios", {}).get("qps") for ds in result.get("datasets", [])}}


def step_bm25(ctx):
    ensure_peers()
    out_dir = ctx.out / "raw" / "bm25_compare"
    cmd = [sys.executable, ROOT / "bench" / "bm25_compare.py", "--output", out_dir, "--build-dir", ctx.build]
    if ctx.quick:
        cmd += ["--limit", "200", "--rounds", "1", "--build-repeats", "1"]
    run(cmd)
    result = json.loads((out_dir / "bm25_compare.json").read_text())
    keys = ("engine", "dataset", "queries", "build_s", "p50_us", "p90_us", "p99_us", "qps", "ndcg_at_10",
            "medsearch_p50_over_engine_p50")
    return {"summary": [{k: r.get(k) for k in keys} for r in result.get("results", [])],
            "environment": result.get("environment")}


def step_distributed(ctx):
    """bench/distributed_bench.py: the sharded index on Ray against one Index (build speed-up with 1
    and 2 workers, fan-out latency, throughput, per-shard HNSW recall)."""
    out_dir = ctx.out / "raw" / "distributed"
    run([sys.executable, ROOT / "bench" / "distributed_bench.py", "--output", out_dir, "--data", ctx.data] +
        (["--quick"] if ctx.quick else []))
    return json.loads((out_dir / "distributed_bench.json").read_text())


def eval_run(ctx, index, queries, qrels, mode):
    run_file = ctx.out / "raw" / "runs" / f"{index.name}.{mode}.run"
    run_file.parent.mkdir(parents=True, exist_ok=True)
    run([ctx.build / "bin" / "medsearch", "run", index, "--queries", queries, "--k", "100", "--level", "doc",
         "--mode", mode, "--output", run_file], stderr=subprocess.DEVNULL)
    text = run([ctx.build / "bin" / "medsearch", "eval", "--qrels", qrels, "--run", run_file, "--queries", queries],
               capture_output=True).stdout
    vals = dict(line.split("\t") for line in text.strip().splitlines())
    return {k: float(v) for k, v in vals.items() if k != "queries"}


def step_quality(ctx):
    sample = ctx.out / "raw" / "medquad-sample.jsonl"
    sample.parent.mkdir(parents=True, exist_ok=True)
    sample.write_text(run([sys.executable, ROOT / "tools" / "medquad_sample.py", ctx.data / "medquad" / "queries.jsonl"],
                          capture_output=True).stdout)
    sets = {
        "scifact": (ctx.data / "scifact" / "queries.train.jsonl", ctx.data / "scifact" / "qrels.train.tsv"),
        "pubmedqa": (ctx.data / "pubmedqa" / "queries.jsonl", ctx.data / "pubmedqa" / "qrels.tsv"),
        "medquad": (sample, ctx.data / "medquad" / "qrels.tsv"),
    }
    out = {}
    for name, (queries, qrels) in sets.items():
        embedded = cache_root() / "dev-eval" / f"index-{name}"
        have_vectors = (embedded / "CURRENT").exists() or name == "pubmedqa" or not ctx.quick
        index = dev_index(ctx, name, have_vectors)
        out[name] = {}
        for mode in (MODES if have_vectors else ("bm25",)):
            out[name][mode] = eval_run(ctx, index, queries, qrels, mode)
            log(f"quality {name} {mode}: {out[name][mode]}")
    return out


def step_sections(ctx):
    """tools/eval_sections.py: the quick run scores the indexes it finds; the full run builds
    the guideline index and the masked section-set index when missing (embeds; minutes)."""
    out = ctx.out / "raw" / "sections.json"
    cmd = [sys.executable, ROOT / "tools" / "eval_sections.py", "--data", ctx.data, "--json", out]
    if not ctx.quick:
        cmd.append("--build")
    run(cmd)
    return json.loads(out.read_text())


# ---- report ------------------------------------------------------------------------------------

def plots(ctx, report):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    made = []
    samples = ctx.out / "raw" / "latency"
    files = sorted(samples.glob("BM_Pipeline_*.txt")) if samples.exists() else []
    if files:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
        for threads, ax in zip(("threads_1", "threads_2"), axes):
            for f in files:
                if threads not in f.name:
                    continue
                m = re.search(r"mode_(\d)", f.name)
                us = np.loadtxt(f, ndmin=1)
                ax.hist(us, bins=np.logspace(np.log10(max(us.min(), 1)), np.log10(us.max() + 1), 60), histtype="step",
                        label=MODES[int(m.group(1))] if m else f.stem, density=True)
            ax.set_xscale("log")
            ax.set_xlabel("latency per query, us (log)")
            ax.set_title(f"{threads.replace('_', ' ')} searching")
        axes[0].legend()
        fig.suptitle(f"Query pipeline latency from the query vector ({report['latency']['index']})")
        fig.tight_layout()
        fig.savefig(ctx.out / "latency_histograms.png", dpi=110)
        made.append("latency_histograms.png")
    quality = report.get("quality")
    if isinstance(quality, dict) and quality:
        fig, ax = plt.subplots(figsize=(8, 4))
        width = 0.2
        for i, mode in enumerate(MODES):
            xs = [j + (i - 1.5) * width for j, _ in enumerate(quality)]
            ys = [quality[n].get(mode, {}).get("nDCG@10", 0) for n in quality]
            ax.bar(xs, ys, width, label=mode)
        ax.set_xticks(range(len(quality)), list(quality))
        ax.set_ylabel("nDCG@10 (document level)")
        ax.set_ylim(0.5, 1.0)
        ax.legend(ncol=4, fontsize=8)
        ax.set_title("Retrieval quality per mode (rerank: in-sample, see the note)")
        fig.tight_layout()
        fig.savefig(ctx.out / "quality.png", dpi=110)
        made.append("quality.png")
    return made


def table(rows, cols):
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            cells.append(f"{v:,.3g}" if isinstance(v, float) else ("" if v is None else str(v)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(report, images):
    m = report["machine"]
    md = [f"# medsearch benchmark report ({'quick' if report['quick'] else 'full'} run)", "",
          f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(report['started']))}, {report['seconds']:.0f} s. "
          f"Commit `{m.get('commit', '?')[:12]}` ({m.get('worktree', '?')}), {m.get('cpu', '?')}, {m.get('cores')} cores, "
          f"{m.get('memory_gib')} GiB; {m.get('compiler', '')}; Eigen code for {m.get('medsearch_eigen_arch', '?')}. "
          f"CPU flags: {' '.join(m.get('cpu_flags', []))}. Versions: "
          + ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items() if v) + ".", "",
          "Timings on a shared machine are noisy: compare the ratios within one run.", ""]
    for title, key, body in (
            ("Ingest, chunking, BM25 indexing", "ingest",
             lambda r: table([{"corpus": k, **v} for k, v in r.items()],
                             ["corpus", "documents", "passages", "megabytes", "read_s", "read_mb_per_s", "chunk_s",
                              "chunk_docs_per_s", "bm25_index_s", "index_passages_per_s", "bm25_memory_mib"])),
            ("Encoder throughput (roofline: share of this machine's SGEMM rate)", "encoder",
             lambda r: table(r["rows"], ["name", "passages_per_s", "tokens_per_s", "GFLOPs", "roofline_ratio", "p50_us",
                                         "p99_us"])),
            ("Index build and memory", "index_build",
             lambda r: table([{"index": k, **v} for k, v in r.items()],
                             ["index", "passages", "build_s", "memory_mib", "disk_mib"])),
            ("Query latency (from the query vector; encoder separately)", "latency",
             lambda r: f"Index: {r['index']}.\n\n" + table(r["rows"], ["name", "p50_us", "p90_us", "p99_us", "p999_us",
                                                                       "qps"])),
            ("Retrieval quality (document level)", "quality",
             lambda r: table([{"set": n, "mode": mode, **v} for n, modes in r.items() for mode, v in modes.items()],
                             ["set", "mode", "nDCG@10", "Recall@100", "MRR@10"]) +
             "\n\nThe rerank model was trained on these development queries: its figures here are in-sample; the "
             "cross-validated and leave-one-dataset-out ones are in bench/results/quality/ (tools/train_reranker.py)."),
            ("Retrieval quality (section level)", "sections",
             lambda r: table([{"set": n, "mode": mode, **v} for n, modes in r.items() if n != "coverage"
                              for mode, v in modes.items()], ["set", "mode", "hit@1", "hit@5", "mrr@10", "n"]) +
             ("\n\nCoverage (rerank mode) on the hand-written questions: " + json.dumps(r["coverage"]) if "coverage" in r
              else "") + "\n\nLeave-one-dataset-out and 5-fold figures: bench/results/quality/ (tools/train_reranker.py)."),
            ("Vector index against hnswlib, faiss, usearch", "vectors",
             lambda r: "Best QPS with recall@10 >= 0.95 per engine and mode (1t-single: one query per call; "
             "Nt-batch: all queries in one call on N threads); memory per vector; full tables and every ef in "
             "raw/vector_compare/.\n\n" +
             table(r["summary"], ["data", "base", "engine", "bytes_per_vector", "build_s"] +
                   sorted({k for row in r["summary"] for k in row if k.startswith(("qps", "ef "))}))),
            ("BM25 against Tantivy, bm25s and Xapian", "bm25",
             lambda r: "Document-level nDCG@10 beside latency per query (single thread); full tables in "
             "raw/bm25_compare/.\n\n" +
             table(r["summary"], ["engine", "dataset", "queries", "build_s", "p50_us", "p90_us", "p99_us", "qps",
                                  "ndcg_at_10", "medsearch_p50_over_engine_p50"])),
            ("Sharded index on Ray against one Index", "distributed",
             lambda r: "Build with 1 and 2 workers, fan-out latency and throughput, per-shard HNSW recall; "
             "raw/distributed/distributed_bench.md has the tables.\n\n```\n" + json.dumps(
                 {k: r.get(k) for k in ("build", "latency_us", "throughput_qps", "dense_recall_at_10")}, indent=1) +
             "\n```")):
        md += [f"## {title}", ""]
        value = report.get(key)
        if isinstance(value, dict) and "error" in value:
            md += [f"Failed: `{value['error']}`", ""]
        elif value is not None:
            try:
                md += [body(value), ""]
            except Exception as e:  # noqa: BLE001 (a missing field is shown, not fatal)
                md += [f"(could not tabulate: {e})", ""]
    md += ["## Plots", ""] + [f"![{p}]({p})" for p in images] + [""]
    md += ["Reproduce: `build/bin/medsearch bench " + ("--quick " if report["quick"] else "") + "--output DIR`."]
    return "\n".join(md) + "\n"


class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a few minutes instead of the whole picture")
    ap.add_argument("--output", type=Path, required=True, help="report folder (created)")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("MEDSEARCH_DATA", ROOT.parent / "shared" / "data")))
    ap.add_argument("--build", type=Path, default=ROOT / "build")
    ap.add_argument("--steps", default="ingest,encoder,index_build,latency,quality,sections,vectors,bm25,distributed",
                    help="comma-separated subset of the steps")
    args = ap.parse_args()
    ctx = Ctx()
    ctx.quick, ctx.data, ctx.build, ctx.out, ctx.built = args.quick, args.data.resolve(), args.build.resolve(), \
        args.output.resolve(), {}
    (ctx.out / "raw").mkdir(parents=True, exist_ok=True)
    if not (ctx.data / "nci-pdq").is_dir():
        sys.exit(f"no shared data at {ctx.data} (give --data or MEDSEARCH_DATA)")
    missing = [exe for exe in ("medsearch", "medsearch_bench") if not (ctx.build / "bin" / exe).exists()]
    if missing and ctx.build == (ROOT / "build").resolve():
        # tools/main.sh builds the CLI and the module only: build the rest here.
        log(f"building {', '.join(missing)} (tools/setup.sh)")
        subprocess.run(["bash", str(ROOT / "tools" / "setup.sh")], check=True,
                       env=dict(os.environ, MEDSEARCH_BUILD_TARGETS="medsearch_cli medsearch_bench _core"))
    for exe in missing:
        if not (ctx.build / "bin" / exe).exists():
            sys.exit(f"{ctx.build / 'bin' / exe} is missing: build it first "
                     f"(cmake --build {ctx.build} --target medsearch_cli medsearch_bench)")
    report = {"quick": ctx.quick, "started": time.time(), "machine": machine_info(ctx.build)}
    failed = []
    steps = {"ingest": step_ingest, "encoder": step_encoder, "index_build": step_index_build, "latency": step_latency,
             "quality": step_quality, "sections": step_sections, "vectors": step_vectors, "bm25": step_bm25,
             "distributed": step_distributed}
    for name in args.steps.split(","):
        t0 = time.perf_counter()
        log(f"step {name}")
        try:
            report[name] = steps[name](ctx)
        except Exception as e:  # noqa: BLE001 (recorded; the other steps go on)
            traceback.print_exc()
            report[name] = {"error": f"{type(e).__name__}: {e}"}
            failed.append(name)
        report.setdefault("step_seconds", {})[name] = round(time.perf_counter() - t0, 1)
    report["seconds"] = time.time() - report["started"]
    images = plots(ctx, report)
    for png in sorted(ctx.out.glob("*_recall_qps.png")):
        images.append(png.name)
    (ctx.out / "report.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (ctx.out / "README.md").write_text(markdown(report, images))
    log(f"report: {ctx.out / 'README.md'} ({report['seconds']:.0f} s)" + (f"; failed steps: {failed}" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
