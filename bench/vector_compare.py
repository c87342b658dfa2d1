#!/usr/bin/env python3
"""medsearch's vector index against hnswlib, faiss and usearch: one process, same data, same threads.

Engines (all inner product on L2-normalised float32 vectors; graph engines with
M=16 and ef_construction=200, usearch connectivity=16 and expansion_add=200;
every graph engine keeps 2*M links on level 0):

  ours-hnsw-f32   medsearch.VectorIndex(kind="hnsw", dtype="float32")
  ours-hnsw-i8    medsearch.VectorIndex(kind="hnsw", dtype="int8")   (int8 graph + float32 rescoring)
  ours-flat       medsearch.VectorIndex(kind="flat")                 (exact)
  hnswlib         hnswlib.Index(space="ip")
  faiss-hnsw-f32  faiss.IndexHNSWFlat(METRIC_INNER_PRODUCT)
  faiss-hnsw-sq8  faiss.IndexHNSWSQ(QT_8bit, METRIC_INNER_PRODUCT)    (trained on the base set)
  faiss-flat      faiss.IndexFlatIP                                  (exact)
  usearch-f32     usearch.index.Index(metric="ip", dtype="f32")
  usearch-i8      usearch.index.Index(metric="ip", dtype="i8")

Our engines are included when ``from medsearch import VectorIndex`` works
(build tree: build/python); otherwise the run says why and goes on with peers.

Per engine: build time (one build, with max(--threads) threads), memory per
vector (ours: .memory_bytes(); hnswlib: index_file_size(); faiss:
len(serialize_index); usearch: serialized_length, memory_usage also recorded),
and recall@10 against QPS for each ef (expansion_search for usearch, efSearch
for faiss) in three modes:

  1t-single   one thread, one query per call (what a service sees: includes
              each library's Python call overhead); QPS = queries / summed
              call latency, p50/p99 latency recorded;
  1t-batch    one thread, all queries in one call;
  Nt-batch    N threads (each N > 1 in --threads), all queries in one call.

Threads: hnswlib num_threads=, faiss omp_set_num_threads, usearch threads=,
ours: a threads keyword or set_num_threads if the module has one, otherwise
the process's threads are pinned to N CPUs (sched_setaffinity) for the call.

recall@10: a returned id counts when its true inner product with the query
is >= the 10th exact score - 1e-5 (ties count, as ann-benchmarks does); the
plain id-overlap recall is in the JSON too. Exact engines give one point.

Headline: per engine and mode, the best QPS among ef values with recall@10
>= 0.95, and ratios ours / peer.

Usage:
  .venv/bin/python bench/vector_compare.py [--data glove|embeddings:PATH.npy[,...]]
      [--threads 1,2] [--quick] [--output DIR] [--base-size N] [--efs 10,16,...]
      [--engines a,b,...] [--rounds R]

  --quick: 50,000 base vectors, ef in 16,32,64,128,256 (about 2 minutes).
Writes DIR/vector_compare.json, DIR/vector_compare.md and one
DIR/<data>_recall_qps.png per data set (default DIR: bench/results/vector_compare,
or bench/results/vector_compare/quick with --quick).
"""

from __future__ import annotations

import os

# One thread for numeric runtimes unless a call sets its own count; set before
# the imports that read them. TBB (ours) is left alone.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
             "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import contextlib
import gc
import importlib.metadata
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import glove  # noqa: E402  (bench/glove.py)

K = 10
M = 16
EF_CONSTRUCTION = 200
RECALL_TARGET = 0.95
TIE_EPS = 1e-5
EFS_FULL = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
EFS_QUICK = [16, 32, 64, 128, 256]
QUICK_BASE = 50_000
ALL_ENGINES = ["ours-hnsw-f32", "ours-hnsw-i8", "ours-flat", "hnswlib", "faiss-hnsw-f32", "faiss-hnsw-sq8",
               "faiss-flat", "usearch-f32", "usearch-i8"]
OURS = [e for e in ALL_ENGINES if e.startswith("ours-")]

_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", flush=True)


# --------------------------------------------------------------------------- ours

def import_ours():
    """(VectorIndex class or None, module or None, reason when missing)."""
    try:
        import medsearch  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(REPO / "build" / "python"))
    try:
        import medsearch
        from medsearch import VectorIndex
        return VectorIndex, medsearch, None
    except Exception as e:  # ImportError, or a stale build tree
        return None, None, f"{type(e).__name__}: {e}"


def _all_cpus() -> set[int]:
    return set(range(os.cpu_count() or 1))


@contextlib.contextmanager
def pinned(n: int | None):
    """Pin every thread of this process to the first n CPUs for the block (None: no-op)."""
    if n is None or n >= (os.cpu_count() or 1):
        yield
        return
    cpus = set(sorted(os.sched_getaffinity(0))[:n])

    def set_all(mask):
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(tid), mask)

    set_all(cpus)
    try:
        yield
    finally:
        set_all(_all_cpus())


class ThreadKnob:
    """How this build of medsearch lets a caller choose a thread count."""

    def __init__(self, module, cls):
        self.kw = None
        self.setter = None
        for fn in (getattr(cls, "search", None), getattr(cls, "add", None)):
            doc = (getattr(fn, "__doc__", "") or "")
            for name in ("num_threads", "threads"):
                if f"{name}" in doc and self.kw is None:
                    self.kw = name
        for obj, name in ((module, "set_num_threads"), (module, "set_threads"), (cls, "set_num_threads")):
            if self.setter is None and callable(getattr(obj, name, None)):
                self.setter = getattr(obj, name)
        if self.kw:
            self.method = f"keyword {self.kw}="
        elif self.setter:
            self.method = f"{self.setter.__qualname__}()"
        else:
            self.method = "sched_setaffinity of all process threads to N CPUs"

    def call(self, fn, *args, threads: int, **kw):
        if self.kw:
            return fn(*args, **{self.kw: threads}, **kw)
        if self.setter:
            self.setter(threads)
            return fn(*args, **kw)
        with pinned(threads):
            return fn(*args, **kw)


# --------------------------------------------------------------------------- engines

class Engine:
    name = ""
    family = ""
    exact = False
    memory_method = ""

    def build(self, x: np.ndarray, threads: int) -> None:
        raise NotImplementedError

    def set_ef(self, ef: int) -> None:
        pass

    def search_one(self, q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
        """One query (q1: (d,), q2: the same as (1, d)); ids (K,) int64."""
        raise NotImplementedError

    def search_batch(self, qs: np.ndarray, threads: int) -> np.ndarray:
        """ids (m, K) int64, -1 where missing."""
        raise NotImplementedError

    def memory(self) -> dict:
        raise NotImplementedError

    def extra(self) -> dict:
        return {}


class OursEngine(Engine):
    family = "ours"

    def __init__(self, cls, module, kind: str, dtype: str, name: str):
        self.cls, self.kind, self.dtype, self.name = cls, kind, dtype, name
        self.exact = kind == "flat"
        self.knob = ThreadKnob(module, cls)
        self.memory_method = "VectorIndex.memory_bytes()"
        self.ef = None

    def build(self, x, threads):
        kw = dict(metric="ip", kind=self.kind, dtype=self.dtype)
        if self.kind == "hnsw":
            kw.update(M=M, ef_construction=EF_CONSTRUCTION)
        self.idx = self.cls(x.shape[1], **kw)
        self.knob.call(self.idx.add, x, ids=np.arange(x.shape[0], dtype=np.int64), threads=threads)

    def set_ef(self, ef):
        self.ef = None if self.exact else ef

    def _kw(self):
        return {} if self.ef is None else {"ef": self.ef}

    def search_one(self, q1, q2):
        ids, _ = self.idx.search(q2, k=K, **self._kw())
        return np.asarray(ids[0], dtype=np.int64)

    def search_batch(self, qs, threads):
        ids, _ = self.knob.call(self.idx.search, qs, k=K, threads=threads, **self._kw())
        return np.asarray(ids, dtype=np.int64)

    def memory(self):
        m = {"bytes": int(self.idx.memory_bytes())}
        if callable(getattr(self.idx, "mapped_bytes", None)):
            # int8: the float32 rescoring rows live in a file-backed mapping, outside memory_bytes().
            m["mapped_bytes"] = int(self.idx.mapped_bytes())
        return m

    def extra(self):
        return {"threads_control": self.knob.method}


class HnswlibEngine(Engine):
    name, family = "hnswlib", "hnswlib"
    memory_method = "index_file_size() (serialized)"

    def build(self, x, threads):
        import hnswlib
        self.idx = hnswlib.Index(space="ip", dim=x.shape[1])
        self.idx.init_index(max_elements=x.shape[0], ef_construction=EF_CONSTRUCTION, M=M, random_seed=100)
        self.idx.add_items(x, np.arange(x.shape[0]), num_threads=threads)

    def set_ef(self, ef):
        self.idx.set_ef(ef)

    def search_one(self, q1, q2):
        ids, _ = self.idx.knn_query(q1, k=K, num_threads=1)
        return ids[0].astype(np.int64)

    def search_batch(self, qs, threads):
        ids, _ = self.idx.knn_query(qs, k=K, num_threads=threads)
        return ids.astype(np.int64)

    def memory(self):
        return {"bytes": int(self.idx.index_file_size())}


class FaissEngine(Engine):
    family = "faiss"
    memory_method = "len(faiss.serialize_index())"

    def __init__(self, variant: str):
        self.variant = variant
        self.name = {"hnsw": "faiss-hnsw-f32", "hnsw-sq8": "faiss-hnsw-sq8", "flat": "faiss-flat"}[variant]
        self.exact = variant == "flat"

    def build(self, x, threads):
        import faiss
        self.faiss = faiss
        faiss.omp_set_num_threads(threads)
        d = x.shape[1]
        if self.variant == "hnsw":
            idx = faiss.IndexHNSWFlat(d, M, faiss.METRIC_INNER_PRODUCT)
        elif self.variant == "hnsw-sq8":
            idx = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, M, faiss.METRIC_INNER_PRODUCT)
        else:
            idx = faiss.IndexFlatIP(d)
        if self.variant != "flat":
            idx.hnsw.efConstruction = EF_CONSTRUCTION
        try:
            if not idx.is_trained:
                idx.train(x)
            idx.add(x)
        finally:
            faiss.omp_set_num_threads(1)  # searches run single-threaded unless a batch call says otherwise
        self.idx = idx

    def set_ef(self, ef):
        if not self.exact:
            self.idx.hnsw.efSearch = ef

    def search_one(self, q1, q2):
        _, ids = self.idx.search(q2, K)
        return ids[0]

    def search_batch(self, qs, threads):
        self.faiss.omp_set_num_threads(threads)
        try:
            _, ids = self.idx.search(qs, K)
        finally:
            self.faiss.omp_set_num_threads(1)
        return ids

    def memory(self):
        return {"bytes": int(self.faiss.serialize_index(self.idx).size)}


class UsearchEngine(Engine):
    family = "usearch"
    memory_method = "serialized_length (memory_usage also recorded)"

    def __init__(self, dtype: str):
        self.dtype = dtype
        self.name = f"usearch-{dtype}"

    def build(self, x, threads):
        from usearch.index import Index
        self.idx = Index(ndim=x.shape[1], metric="ip", dtype=self.dtype, connectivity=M,
                         expansion_add=EF_CONSTRUCTION, expansion_search=64)
        self.idx.add(np.arange(x.shape[0], dtype=np.uint64), x, threads=threads)

    def set_ef(self, ef):
        self.idx.expansion_search = ef

    def search_one(self, q1, q2):
        m = self.idx.search(q1, K, threads=1)
        out = np.full(K, -1, dtype=np.int64)
        keys = np.asarray(m.keys, dtype=np.int64)
        out[:keys.size] = keys[:K]
        return out

    def search_batch(self, qs, threads):
        m = self.idx.search(qs, K, threads=threads)
        keys = np.asarray(m.keys).astype(np.int64)
        counts = np.asarray(m.counts)
        keys[np.arange(K)[None, :] >= counts[:, None]] = -1
        return keys

    def memory(self):
        return {"bytes": int(self.idx.serialized_length), "memory_usage": int(self.idx.memory_usage)}

    def extra(self):
        return {"hardware_acceleration": str(self.idx.hardware_acceleration)}


def make_engines(names: list[str], ours_cls, ours_mod) -> list[Engine]:
    out: list[Engine] = []
    for n in names:
        if n.startswith("ours-"):
            if ours_cls is None:
                continue
            kind, dtype = {"ours-hnsw-f32": ("hnsw", "float32"), "ours-hnsw-i8": ("hnsw", "int8"),
                           "ours-flat": ("flat", "float32")}[n]
            out.append(OursEngine(ours_cls, ours_mod, kind, dtype, n))
        elif n == "hnswlib":
            out.append(HnswlibEngine())
        elif n.startswith("faiss-"):
            out.append(FaissEngine({"faiss-hnsw-f32": "hnsw", "faiss-hnsw-sq8": "hnsw-sq8",
                                    "faiss-flat": "flat"}[n]))
        elif n.startswith("usearch-"):
            out.append(UsearchEngine(n.split("-")[1]))
        else:
            raise SystemExit(f"unknown engine {n!r}; known: {', '.join(ALL_ENGINES)}")
    return out


# --------------------------------------------------------------------------- measuring

def recall_at_k(ids: np.ndarray, ds: glove.Dataset) -> tuple[float, float]:
    """(tie-aware recall@K, id-overlap recall@K), means over queries."""
    ids = np.asarray(ids, dtype=np.int64)[:, :K]
    valid = ids >= 0
    s = np.sort(np.where(valid, ids, -1), axis=1)
    dup = np.zeros_like(valid)
    dup[:, 1:] = (s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)
    n_dup = dup.sum(axis=1)  # duplicates never count twice
    safe = np.where(valid, ids, 0)
    true = np.einsum("mkd,md->mk", ds.base[safe], ds.queries)
    thresh = ds.gt_scores[:, K - 1:K] - TIE_EPS
    tie_hits = np.minimum((valid & (true >= thresh)).sum(axis=1) - n_dup, K)
    gt = ds.gt_ids[:, :K]
    overlap = np.array([np.intersect1d(a[a >= 0], b).size for a, b in zip(ids, gt)])
    return float(tie_hits.mean() / K), float(overlap.mean() / K)


def measure_single(e: Engine, ds: glove.Dataset, rounds: int) -> dict:
    qs = ds.queries
    m = qs.shape[0]
    for i in range(min(100, m)):  # warm-up
        e.search_one(qs[i], qs[i:i + 1])
    lat = np.empty((rounds, m), dtype=np.int64)
    ids = np.empty((m, K), dtype=np.int64)
    pc = time.perf_counter_ns
    cpu0 = time.process_time()
    for r in range(rounds):
        for i in range(m):
            q1, q2 = qs[i], qs[i:i + 1]
            t = pc()
            out = e.search_one(q1, q2)
            lat[r, i] = pc() - t
            ids[i] = out
    cpu = (time.process_time() - cpu0) / rounds
    per_q = np.median(lat, axis=0) / 1e3  # us
    return {"ids": ids, "qps": m / (per_q.sum() / 1e6), "cpu_qps": m / cpu, "p50_us": float(np.percentile(per_q, 50)),
            "p99_us": float(np.percentile(per_q, 99)), "mean_us": float(per_q.mean())}


def measure_batch(e: Engine, ds: glove.Dataset, threads: int, rounds: int) -> dict:
    qs = ds.queries
    e.search_batch(qs[:100], threads)  # warm-up
    times, cpus = [], []
    ids = None
    for _ in range(rounds):
        t, c = time.perf_counter(), time.process_time()
        ids = e.search_batch(qs, threads)
        times.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    dt, cpu = float(np.median(times)), float(np.median(cpus))
    return {"ids": ids, "qps": qs.shape[0] / dt, "cpu_qps": qs.shape[0] / cpu, "seconds": dt, "cpu_seconds": cpu}


def run_engine(e: Engine, ds: glove.Dataset, efs: list[int], threads: list[int], build_threads: int,
               rounds: int) -> dict:
    gc.collect()
    log(f"  {e.name}: building on {ds.base.shape[0]:,} x {ds.base.shape[1]} with {build_threads} thread(s)")
    load0 = os.getloadavg()[0]
    t, c = time.perf_counter(), time.process_time()
    e.build(ds.base, build_threads)
    build_s, build_cpu = time.perf_counter() - t, time.process_time() - c
    mem = e.memory()
    res = {"family": e.family, "exact": e.exact, "build_s": build_s, "build_cpu_s": build_cpu,
           "build_threads": build_threads, "loadavg_1min_at_start": load0,
           "memory_bytes": mem["bytes"], "bytes_per_vector": mem["bytes"] / ds.base.shape[0],
           "memory_method": e.memory_method, **{k: v for k, v in mem.items() if k != "bytes"}, **e.extra(),
           "points": []}
    res["loadavg_1min_at_end"] = None  # set after the search points
    log(f"  {e.name}: built in {build_s:.1f} s ({build_cpu:.1f} s CPU), {res['bytes_per_vector']:.0f} B/vector"
        f" (load average {load0:.1f})")
    modes = [("1t-single", 1), ("1t-batch", 1)] + [(f"{t}t-batch", t) for t in threads if t > 1]
    if 1 not in threads:
        modes = [md for md in modes if not md[0].startswith("1t")]
    for ef in ([None] if e.exact else efs):
        if ef is not None:
            e.set_ef(ef)
        parts = []
        for mode, nt in modes:
            r = measure_single(e, ds, rounds) if mode == "1t-single" else measure_batch(e, ds, nt, rounds)
            rec, rec_ids = recall_at_k(r.pop("ids"), ds)
            res["points"].append({"mode": mode, "threads": nt, "ef": ef, "recall": rec, "recall_ids": rec_ids,
                                  **{k: (float(v) if isinstance(v, (float, np.floating)) else v)
                                     for k, v in r.items()}})
            parts.append(f"{mode} {r['qps']:,.0f} q/s ({r['cpu_qps']:,.0f}/CPU-s) r={rec:.3f}")
        log(f"    ef={ef if ef is not None else 'exact'}: " + " | ".join(parts))
    res["loadavg_1min_at_end"] = os.getloadavg()[0]
    return res


def best_at_target(points: list[dict], mode: str, metric: str = "qps") -> dict | None:
    ok = [p for p in points if p["mode"] == mode and p["recall"] >= RECALL_TARGET]
    return max(ok, key=lambda p: p[metric]) if ok else None


METRICS = ("qps", "cpu_qps")  # wall clock; queries per CPU-second of this process


def summarise(engines: dict, modes: list[str]) -> tuple[dict, dict]:
    """best[metric][engine][mode] (a point or None); ratios[metric][ours][mode][peer] and resource ratios."""
    best = {mt: {name: {m: best_at_target(r["points"], m, mt) for m in modes} for name, r in engines.items()}
            for mt in METRICS}
    ratios: dict = {mt: {} for mt in METRICS}
    ours = [n for n in engines if n.startswith("ours-")]
    peers = [n for n in engines if not n.startswith("ours-")]
    groups = {"usearch-best": [n for n in peers if n.startswith("usearch-")]}
    for mt in METRICS:
        for o in ours:
            for m in modes:
                ob = best[mt][o][m]
                for p in peers + [g for g in groups if groups[g]]:
                    if (engines[o]["exact"] if p in groups else engines[p]["exact"] != engines[o]["exact"]):
                        continue  # exact against exact, graph against graph
                    if p in groups:
                        cands = [best[mt][x][m] for x in groups[p] if best[mt][x][m]]
                        pb = max(cands, key=lambda b: b[mt]) if cands else None
                    else:
                        pb = best[mt][p][m]
                    if ob and pb:
                        ratios[mt].setdefault(o, {}).setdefault(m, {})[p] = ob[mt] / pb[mt]
    if "hnswlib" in engines:
        h = engines["hnswlib"]
        ratios["resources_vs_hnswlib"] = {o: {
            "memory": engines[o]["bytes_per_vector"] / h["bytes_per_vector"],
            "build_time": engines[o]["build_s"] / h["build_s"],
            "build_cpu": engines[o]["build_cpu_s"] / h["build_cpu_s"]} for o in ours}
    return best, ratios


# --------------------------------------------------------------------------- output

STYLE = {
    "ours-hnsw-f32": ("tab:red", "o", "-"), "ours-hnsw-i8": ("tab:red", "s", "--"), "ours-flat": ("tab:red", "*", ""),
    "hnswlib": ("tab:blue", "o", "-"), "faiss-hnsw-f32": ("tab:green", "o", "-"),
    "faiss-hnsw-sq8": ("tab:green", "s", "--"), "faiss-flat": ("tab:green", "*", ""),
    "usearch-f32": ("tab:purple", "o", "-"), "usearch-i8": ("tab:purple", "s", "--"),
}
MODE_TITLE = {"1t-single": "1 thread, one query per call", "1t-batch": "1 thread, batch of queries"}


def mode_title(m: str) -> str:
    return MODE_TITLE.get(m, f"{m.split('t-')[0]} threads, batch of queries")


def plot(ds_res: dict, modes: list[str], path: Path, metric: str = "qps") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(modes), figsize=(6.2 * len(modes), 5.2), squeeze=False, sharey=True)
    for ax, mode in zip(axes[0], modes):
        for name, r in ds_res["engines"].items():
            pts = sorted((p for p in r["points"] if p["mode"] == mode), key=lambda p: (p["ef"] or 0))
            if not pts:
                continue
            color, marker, ls = STYLE.get(name, ("gray", "o", "-"))
            ax.plot([p["recall"] for p in pts], [p[metric] for p in pts], color=color, marker=marker,
                    linestyle=ls or "none", markersize=9 if marker == "*" else 4, linewidth=1.4, label=name)
        ax.axvline(RECALL_TARGET, color="gray", linestyle=":", linewidth=1)
        ax.set_yscale("log")
        ax.set_xlabel(f"recall@{K}")
        ax.set_ylabel("queries per second (log)" if metric == "qps" else "queries per CPU-second (log)")
        ax.set_title(mode_title(mode), fontsize=11)
        ax.grid(True, which="both", alpha=0.3)
        lo = min((p["recall"] for r in ds_res["engines"].values() for p in r["points"]), default=0.5)
        ax.set_xlim(max(0.0, min(lo, 0.9) - 0.02), 1.005)
    axes[0][0].legend(fontsize=8, loc="lower left")
    info = ds_res["info"]
    fig.suptitle(f"{ds_res['name']}: {info['base']:,} base x {info['dim']}d, {info['queries']:,} queries, "
                 f"inner product, M={M}, ef_construction={EF_CONSTRUCTION}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt_best(b: dict | None, metric: str) -> str:
    if not b:
        return "< 0.95"
    return f"{b[metric]:,.0f} (ef {b['ef'] if b['ef'] is not None else 'exact'}, r {b['recall']:.3f})"


def markdown(report: dict) -> str:
    L = ["# Vector index comparison", ""]
    meta = report["meta"]
    L.append(f"Run {meta['date']} on {meta['cpu']} ({meta['cpus']} CPUs), Python {meta['python']}; "
             + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".")
    L.append(f"Command: `{meta['command']}`")
    L.append(f"1-minute load average at start / end: {meta['loadavg_start']:.1f} / {meta.get('loadavg_end', 0):.1f} "
             f"on {meta['cpus']} CPUs (above ~{meta['cpus']}, other processes shared the cores: wall-clock QPS "
             "and build times are then low and noisy; the CPU-time table is the steadier comparison).")
    L.append("")
    if meta["ours"] != "available":
        L.append(f"**medsearch.VectorIndex not measured**: {meta['ours']}.")
        L.append("")
    for ds in report["datasets"]:
        info = ds["info"]
        sub = "" if info["base"] == info["base_full"] else f" (seeded subset of {info['base_full']:,})"
        L.append(f"## {ds['name']}: {info['base']:,} base vectors{sub}, {info['dim']}d, "
                 f"{info['queries']:,} held-out queries")
        L.append("")
        modes = ds["modes"]
        L.append(f"Best QPS (wall clock) at recall@{K} >= {RECALL_TARGET}, with the ef giving it and its recall; "
                 f"build with {ds['build_threads']} thread(s); M={M}, ef_construction={EF_CONSTRUCTION}.")
        L.append("")
        L.append("| engine | build s (CPU s) | bytes/vector | " + " | ".join(mode_title(m) for m in modes)
                 + " | max recall |")
        L.append("|---" * (4 + len(modes)) + "|")
        for name, r in ds["engines"].items():
            mx = max((p["recall"] for p in r["points"]), default=float("nan"))
            mapped = (f" (+{r['mapped_bytes'] / info['base']:.0f} mapped)" if r.get("mapped_bytes") else "")
            L.append(f"| {name} | {r['build_s']:.1f} ({r['build_cpu_s']:.1f}) | {r['bytes_per_vector']:.0f}{mapped} | "
                     + " | ".join(fmt_best(ds["best"]["qps"][name][m], "qps") for m in modes) + f" | {mx:.3f} |")
        L.append("")
        one = [m for m in modes if m.startswith("1t")]
        if one:
            L.append(f"Same, as queries per CPU-second of this process (1-thread modes; robust to other load):")
            L.append("")
            L.append("| engine | " + " | ".join(mode_title(m) for m in one) + " |")
            L.append("|---" * (1 + len(one)) + "|")
            for name in ds["engines"]:
                L.append(f"| {name} | " + " | ".join(fmt_best(ds["best"]["cpu_qps"][name][m], "cpu_qps")
                                                   for m in one) + " |")
            L.append("")
        if any(ds["ratios"][mt] for mt in METRICS):
            L.append(f"Ratios ours / peer, best QPS at recall@{K} >= {RECALL_TARGET} "
                     "(usearch-best = the better of usearch f32 / i8):")
            L.append("")
            peers = [n for n in ds["engines"] if not n.startswith("ours-")] + ["usearch-best"]
            for mt, label in (("qps", "wall"), ("cpu_qps", "CPU-time")):
                for o, rr in ds["ratios"][mt].items():
                    for m in modes:
                        if m in rr and not (mt == "cpu_qps" and not m.startswith("1t")):
                            L.append(f"- {o}, {mode_title(m)} ({label}): " + ", ".join(
                                f"{p} {rr[m][p]:.2f}x" for p in peers if p in rr[m]))
            for o, rr in ds["ratios"].get("resources_vs_hnswlib", {}).items():
                L.append(f"- {o}: memory/vector {rr['memory']:.2f}x hnswlib's; build time {rr['build_time']:.2f}x "
                         f"(CPU {rr['build_cpu']:.2f}x) hnswlib's")
            L.append("")
        L.append(f"Plot: `{ds['plot']}`. Memory per vector: " + "; ".join(
            sorted({f"{r['family']}: {r['memory_method']}" for r in ds["engines"].values()})) + ".")
        L.append("")
    for s in report["skipped"]:
        what = s["data"] + (f" / {s['engine']}" if s.get("engine") else "")
        L.append(f"**{what}**: not measured: {s['reason']}")
        L.append("")
    return "\n".join(L)


def versions() -> dict:
    v = {}
    for pkg in ("numpy", "hnswlib", "faiss-cpu", "usearch"):
        try:
            v[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            v[pkg] = "missing"
    try:
        v["medsearch"] = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                                        capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    return v


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


# --------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="glove", help="glove and/or embeddings:PATH.npy, comma-separated")
    ap.add_argument("--threads", default="1,2", help="thread counts (1 = single-query and batch modes)")
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_BASE:,} base vectors, ef in {EFS_QUICK}")
    ap.add_argument("--output", type=Path, default=None)
    ap.add_argument("--base-size", type=int, default=None, help="seeded base subset (default: all; --quick: 50k)")
    ap.add_argument("--efs", default=None, help="comma-separated ef values")
    ap.add_argument("--engines", default=",".join(ALL_ENGINES))
    ap.add_argument("--rounds", type=int, default=1, help="timed passes per point (median)")
    args = ap.parse_args()

    threads = sorted({int(t) for t in args.threads.split(",")})
    build_threads = max(threads)
    efs = [int(e) for e in args.efs.split(",")] if args.efs else (EFS_QUICK if args.quick else EFS_FULL)
    base_size = args.base_size or (QUICK_BASE if args.quick else None)
    out = args.output or (REPO / "bench" / "results" / "vector_compare" / ("quick" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    names = [n.strip() for n in args.engines.split(",") if n.strip()]

    ours_cls, ours_mod, why = import_ours()
    ours_status = "available" if ours_cls else f"`from medsearch import VectorIndex` failed ({why})"
    if any(n in OURS for n in names):
        log("medsearch.VectorIndex: " + ("found" if ours_cls else f"NOT available, peers only: {why}"))
    try:
        import faiss
        faiss.omp_set_num_threads(1)
        faiss_opts = faiss.get_compile_options()
    except Exception as e:  # pragma: no cover
        faiss_opts = f"unavailable: {e}"

    report = {"meta": {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join([Path(sys.executable).name] + sys.argv),
        "cpu": cpu_name(), "cpus": os.cpu_count(), "python": platform.python_version(), "versions": versions(),
        "faiss_compile_options": faiss_opts, "ours": ours_status, "k": K, "M": M,
        "ef_construction": EF_CONSTRUCTION, "recall_target": RECALL_TARGET, "threads": threads, "efs": efs,
        "rounds": args.rounds, "quick": args.quick, "loadavg_start": os.getloadavg()[0],
        "recall_definition": f"returned id counts if its exact inner product >= 10th exact score - {TIE_EPS}",
    }, "datasets": [], "skipped": []}

    specs = [s.strip() for s in args.data.split(",") if s.strip()]
    if not any(s.startswith("embeddings:") for s in specs):
        report["skipped"].append({"data": "encoder embeddings of the shared corpora", "reason":
                                  "not available yet (embeddings issue); run with --data embeddings:PATH.npy"})
    for spec in specs:
        try:
            if spec == "glove":
                ds = glove.load_glove(base_size)
            elif spec.startswith("embeddings:"):
                ds = glove.load_embeddings(spec.split(":", 1)[1], base_size)
            else:
                raise SystemExit(f"unknown --data {spec!r}")
        except FileNotFoundError as e:
            msg = f"{e} not found: the encoder embeddings are not available yet"
            log(f"{spec}: {msg}; skipping")
            report["skipped"].append({"data": spec, "reason": msg})
            continue
        log(f"data {ds.name}: base {ds.base.shape}, queries {ds.queries.shape}; threads {threads}; efs {efs}")
        engines = make_engines(names, ours_cls, ours_mod)
        res = {}
        for e in engines:
            try:
                res[e.name] = run_engine(e, ds, efs, threads, build_threads, args.rounds)
            except Exception as ex:  # one engine failing must not lose the others
                log(f"  {e.name}: FAILED: {type(ex).__name__}: {ex}")
                report["skipped"].append({"data": ds.name, "engine": e.name, "reason": f"{type(ex).__name__}: {ex}"})
            finally:
                e.__dict__.pop("idx", None)  # free the index before the next engine builds
                gc.collect()
        engines.clear()
        modes = ([] if 1 not in threads else ["1t-single", "1t-batch"]) + [f"{t}t-batch" for t in threads if t > 1]
        best, ratios = summarise(res, modes)
        slug = ds.name.replace(":", "_").replace("/", "_").replace(".npy", "")
        png = out / f"{slug}_recall_qps.png"
        ds_res = {"name": ds.name, "info": ds.info, "build_threads": build_threads, "modes": modes,
                  "engines": res, "best": best, "ratios": ratios, "plot": str(png.relative_to(REPO))
                  if png.is_relative_to(REPO) else str(png)}
        plot(ds_res, modes, png)
        one = [m for m in modes if m.startswith("1t")]
        if one:  # the same against this process's CPU time: steadier when other processes load the machine
            plot(ds_res, one, png.with_name(f"{slug}_recall_cpu_qps.png"), metric="cpu_qps")
        report["datasets"].append(ds_res)

    report["meta"]["loadavg_end"] = os.getloadavg()[0]
    (out / "vector_compare.json").write_text(json.dumps(report, indent=1, default=float))
    md = markdown(report)
    (out / "vector_compare.md").write_text(md + "\n")
    print()
    print(md)
    log(f"wrote {out}/vector_compare.json, vector_compare.md and the plot(s)")


if __name__ == "__main__":
    main()
