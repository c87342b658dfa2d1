#!/usr/bin/env python3
"""Trains the reranker and its coverage calibration on the development sets.

    .venv/bin/python tools/train_reranker.py [--data ../shared/data] [--out data/reranker/reranker-v1.json]

What it does, reproducibly (seeded):
1. For every development query (SciFact train claims, PubMedQA, the 2,000-question
   MedQuAD sample) it asks the engine for the hybrid candidate pool with features
   (Index.candidate_pool), and labels each passage with its document's grade.
   It also asks for the pools of MedQuAD questions with their answers left out of
   the index: questions the corpus cannot answer, for the coverage model.
2. Cross-validation (5 folds by query, every dataset split the same way): the
   reranker is trained on four folds of all datasets and scores the fifth, so each
   query's figure comes from a model that never saw it. It reports document-level
   nDCG@10 per dataset for BM25, dense, RRF, convex fusion (weight chosen on the
   training folds) and the reranker, and the coverage model's expected calibration
   error and ROC AUC (answerable vs unanswerable), also out of fold.
3. Trains the final models on everything and writes the model file the library
   compiles in (core/rank/reranker.h documents the format).

Indexes come from --index NAME=DIR (default: the tools/eval_dev.sh cache,
$MEDSEARCH_CACHE/dev-eval/index-NAME); a missing one is built with the CLI, which
embeds the corpus (tens of minutes per corpus on two cores).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ("scifact", "pubmedqa", "medquad")
FOLDS = 5


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_qrels(path):
    qrels = {}
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            q, d, s = line.rstrip("\n").split("\t")[:3]
            if int(s) > 0:
                qrels.setdefault(q, {})[d] = int(s)
    return qrels


def medquad_sample(data):
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "medquad_sample.py"),
                          str(data / "medquad" / "queries.jsonl")], check=True, capture_output=True, text=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def dev_queries(data, name):
    if name == "scifact":
        return read_jsonl(data / "scifact" / "queries.train.jsonl"), read_qrels(data / "scifact" / "qrels.train.tsv")
    if name == "pubmedqa":
        return read_jsonl(data / "pubmedqa" / "queries.jsonl"), read_qrels(data / "pubmedqa" / "qrels.tsv")
    return medquad_sample(data), read_qrels(data / "medquad" / "qrels.tsv")


def ndcg10(ranked_docs, judged):
    dcg = sum(judged.get(d, 0) / np.log2(i + 2) for i, d in enumerate(ranked_docs[:10]))
    ideal = sorted(judged.values(), reverse=True)[:10]
    idcg = sum(g / np.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


class Pools:
    """Candidate pools of one dataset: rows of features, grouped by query."""

    def __init__(self, name, qids, offsets, passages, docs, features, labels):
        self.name, self.qids, self.offsets = name, qids, offsets
        self.passages, self.docs, self.features, self.labels = passages, docs, features, labels

    def rows(self, i):
        return slice(self.offsets[i], self.offsets[i + 1])


def open_index(name, path, data):
    import medsearch
    if not (Path(path) / "CURRENT").exists():
        log(f"building {path} (embeds the corpus; slow)")
        subprocess.run([str(ROOT / "build" / "bin" / "medsearch"), "build", f"{name}={data / name}", "-o", str(path)],
                       check=True)
    return medsearch.Index.load(path)


def collect(name, index, queries, qrels, exclude_answers=False, candidates=100):
    """Pools for queries that have judgments; with exclude_answers, their relevant
    documents are left out of the index (unanswerable questions)."""
    doc_of = np.array([index.doc_number(p) for p in range(len(index))], dtype=np.int64)
    first = {}
    for p, d in enumerate(doc_of):
        first.setdefault(int(d), p)
    doc_ids = {d: index.passage(p).doc_id for d, p in first.items()}
    number_of = {v: k for k, v in doc_ids.items()}
    qids, offsets, passages, docs, feats, labels = [], [0], [], [], [], []
    for q in queries:
        judged = qrels.get(q["_id"])
        if not judged:
            continue
        exclude = [number_of[d] for d in judged if d in number_of] if exclude_answers else []
        pas, f = index.candidate_pool(q["text"], candidates, exclude)
        d = doc_of[pas]
        qids.append(q["_id"])
        passages.append(pas)
        docs.append(d)
        feats.append(f)
        labels.append(np.array([0 if exclude_answers else judged.get(doc_ids[int(x)], 0) for x in d], dtype=np.float32))
        offsets.append(offsets[-1] + len(pas))
    return Pools(name, qids, np.array(offsets), np.concatenate(passages), np.concatenate(docs),
                 np.concatenate(feats).astype(np.float32), np.concatenate(labels)), doc_ids


# ---- models -------------------------------------------------------------------------------------

def group_softmax_grad(scores, labels, offsets):
    """Listwise softmax cross-entropy over each query's pool (ListNet top-1):
    returns (loss, d loss / d scores). Queries without a relevant passage are skipped."""
    grad = np.zeros_like(scores)
    loss = 0.0
    n = 0
    for i in range(len(offsets) - 1):
        a, b = offsets[i], offsets[i + 1]
        y = labels[a:b]
        if y.sum() <= 0:
            continue
        s = scores[a:b] - scores[a:b].max()
        e = np.exp(s)
        p = e / e.sum()
        t = y / y.sum()
        loss -= float((t * np.log(p + 1e-12)).sum())
        grad[a:b] = p - t
        n += 1
    return loss / max(n, 1), grad / max(n, 1)


def train_linear(x, labels, offsets, l2=1e-3, epochs=400, lr=0.05, seed=0):
    mean = x.mean(0)
    scale = x.std(0)
    scale[scale < 1e-6] = 1.0
    z = (x - mean) / scale
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.01, x.shape[1])
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t in range(1, epochs + 1):  # Adam, full batch
        _, g_s = group_softmax_grad(z @ w, labels, offsets)
        g = z.T @ g_s + l2 * w
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w -= lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    return {"type": "linear", "mean": mean.tolist(), "scale": scale.tolist(), "weights": w.tolist(), "bias": 0.0}


def predict(model, x):
    if model["type"] == "linear":
        return ((x - np.array(model["mean"])) / np.array(model["scale"])) @ np.array(model["weights"]) + model["bias"]
    out = np.full(len(x), model["bias"], dtype=np.float64)
    for t in model["trees"]:
        if not t["feature"]:
            out += t["leaf_value"][0]
            continue
        for r in range(len(x)):
            n = 0
            while n >= 0:
                n = t["left"][n] if x[r, t["feature"][n]] <= t["threshold"][n] else t["right"][n]
            out[r] += t["leaf_value"][~n]
    return out


def lgb_to_trees(booster):
    """LightGBM's dump -> our tree arrays (split nodes in preorder, leaves as ~index)."""
    trees = []
    for info in booster.dump_model()["tree_info"]:
        t = {"feature": [], "threshold": [], "left": [], "right": [], "node_value": [], "leaf_value": []}
        root = info["tree_structure"]
        if "leaf_value" in root:
            t["leaf_value"] = [root["leaf_value"]]
            trees.append(t)
            continue
        leaves = {}

        def visit(node):
            if "leaf_value" in node:
                leaves[node["leaf_index"]] = node["leaf_value"]
                return ~node["leaf_index"]
            assert node["decision_type"] == "<=", node["decision_type"]
            i = len(t["feature"])
            t["feature"].append(node["split_feature"])
            t["threshold"].append(float(np.float32(node["threshold"])))
            t["node_value"].append(node["internal_value"])
            t["left"].append(0)
            t["right"].append(0)
            t["left"][i] = visit(node["left_child"])
            t["right"][i] = visit(node["right_child"])
            return i

        visit(root)
        t["leaf_value"] = [leaves[i] for i in range(len(leaves))]
        trees.append(t)
    return {"type": "trees", "trees": trees, "bias": 0.0}


# Relevance signals the trees may only use in one direction (+1: more is better,
# -1: less is better), so the model cannot learn a quirk of the development
# collections that inverts a signal on another corpus.
MONOTONE = {"bm25": 1, "bm25_rel": 1, "body_idf_norm": 1, "heading_idf_norm": 1, "dense": 1, "dense_gap": 1,
            "bm25_rank": -1, "dense_rank": -1, "cover_body": 1, "cover_heading": 1, "cover_any": 1,
            "doc_dense_gap": 1, "rrf": 1}


def train_trees(x, labels, offsets, seed=0, rounds=300, monotone=True, learning_rate=0.05, leaves=15):
    """LightGBM lambdarank; returns (our model dict, a fast predict function)."""
    import lightgbm as lgb
    groups = np.diff(offsets)
    ds = lgb.Dataset(x, label=labels.astype(int), group=groups, free_raw_data=False)
    params = {"objective": "lambdarank", "metric": "ndcg", "ndcg_eval_at": [10], "learning_rate": learning_rate,
              "num_leaves": leaves, "min_data_in_leaf": 50, "feature_fraction": 0.8, "bagging_fraction": 0.8,
              "bagging_freq": 1, "lambda_l2": 1.0, "seed": seed, "deterministic": True, "num_threads": 1,
              "verbose": -1, "lambdarank_truncation_level": 20}
    if monotone:
        params["monotone_constraints"] = [MONOTONE.get(n, 0) for n in FEATURES]
        params["monotone_constraints_method"] = "advanced"
    booster = lgb.train(params, ds, num_boost_round=rounds)
    model = lgb_to_trees(booster)
    # The conversion must score exactly as LightGBM does (float32 thresholds aside).
    sample = x[np.random.default_rng(seed).choice(len(x), size=min(300, len(x)), replace=False)]
    ours, theirs = predict(model, sample), booster.predict(sample)
    if not np.allclose(ours, theirs, atol=1e-4):
        raise SystemExit(f"tree conversion differs from LightGBM by {np.abs(ours - theirs).max()}")
    return model, booster.predict


# ---- evaluation ---------------------------------------------------------------------------------

def doc_ndcg(pools, scores, qrels, doc_ids, queries=None):
    """Mean document-level nDCG@10 over the queries (indices), a document
    scoring as its best passage; ties by passage number, as the engine does."""
    idx = range(len(pools.qids)) if queries is None else queries
    vals = []
    for i in idx:
        r = pools.rows(i)
        s, d, p = scores[r], pools.docs[r], pools.passages[r]
        order = np.lexsort((p, -s))
        seen, ranked = set(), []
        for j in order:
            if d[j] not in seen:
                seen.add(d[j])
                ranked.append(doc_ids[int(d[j])])
            if len(ranked) == 10:
                break
        vals.append(ndcg10(ranked, qrels[pools.qids[i]]))
    return float(np.mean(vals)) if vals else 0.0


def convex_scores(pools, w):
    from_names = FEATURES.index
    b = pools.features[:, from_names("bm25")].astype(np.float64)
    d = pools.features[:, from_names("dense")].astype(np.float64)
    out = np.empty(len(b))
    for i in range(len(pools.qids)):
        r = pools.rows(i)
        bb, dd = b[r], d[r]
        nb = (bb - bb.min()) / (bb.max() - bb.min()) if bb.max() > bb.min() else np.ones_like(bb)
        nd = (dd - dd.min()) / (dd.max() - dd.min()) if dd.max() > dd.min() else np.ones_like(dd)
        out[r] = w * nb + (1 - w) * nd
    return out


def subset(pools, idx):
    idx = list(idx)
    rows = np.concatenate([np.arange(pools.offsets[i], pools.offsets[i + 1]) for i in idx]) if idx else np.array([], int)
    offsets = np.concatenate([[0], np.cumsum([pools.offsets[i + 1] - pools.offsets[i] for i in idx])]).astype(int)
    return Pools(pools.name, [pools.qids[i] for i in idx], offsets, pools.passages[rows], pools.docs[rows],
                 pools.features[rows], pools.labels[rows])


def concat(parts):
    offsets = [0]
    for p in parts:
        offsets.extend((np.array(p.offsets[1:]) + offsets[-1]).tolist())
    return Pools("all", sum([p.qids for p in parts], []), np.array(offsets), np.concatenate([p.passages for p in parts]),
                 np.concatenate([p.docs for p in parts]), np.concatenate([p.features for p in parts]),
                 np.concatenate([p.labels for p in parts]))


def coverage_features(pools, scores, i):
    """The response features the engine computes (core/rank/reranker.h): from the
    reranked top of the pool."""
    r = pools.rows(i)
    s, f = scores[r], pools.features[r]
    order = np.lexsort((pools.passages[r], -s))
    top = order[0]
    second = s[order[1]] if len(order) > 1 else s[top]
    return [s[top], s[top] - second, f[top, FEATURES.index("dense")], f[top, FEATURES.index("cover_any")],
            f[top, FEATURES.index("body_idf_norm")]]


def train_logistic(x, y, l2=1e-2, epochs=2000, lr=0.05):
    mean = x.mean(0)
    scale = x.std(0)
    scale[scale < 1e-6] = 1.0
    z = (x - mean) / scale
    w = np.zeros(x.shape[1])
    b = 0.0
    for _ in range(epochs):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        g = p - y
        w -= lr * (z.T @ g / len(y) + l2 * w)
        b -= lr * g.mean()
    return {"mean": mean.tolist(), "scale": scale.tolist(), "weights": w.tolist(), "bias": float(b)}


def logistic(model, x):
    z = (x - np.array(model["mean"])) / np.array(model["scale"])
    return 1 / (1 + np.exp(-(z @ np.array(model["weights"]) + model["bias"])))


def ece(prob, y, bins=10):
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    table = []
    for a, b in zip(edges[:-1], edges[1:]):
        m = (prob >= a) & ((prob < b) if b < 1 else (prob <= b))
        if m.any():
            total += m.sum() / len(prob) * abs(prob[m].mean() - y[m].mean())
            table.append({"bin": [float(a), float(b)], "n": int(m.sum()), "predicted": float(prob[m].mean()),
                          "observed": float(y[m].mean())})
    return total, table


def auc(pos, neg):
    pos, neg = np.asarray(pos), np.asarray(neg)
    allv = np.concatenate([pos, neg])
    ranks = allv.argsort().argsort() + 1.0
    # average ranks for ties
    _, inv, counts = np.unique(allv, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    ranks = sums[inv] / counts[inv]
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def plot_coverage(path, prob, label, kind, table, figures):
    """Reliability diagram (out-of-fold) and the coverage of answerable vs unanswerable questions."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2))
    a.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    a.plot([t["predicted"] for t in table], [t["observed"] for t in table], marker="o")
    for t in table:
        a.annotate(str(t["n"]), (t["predicted"], t["observed"]), fontsize=7, xytext=(3, -9), textcoords="offset points")
    a.set_xlabel("predicted P(top passage answers)")
    a.set_ylabel("observed share answered")
    a.set_title(f"Reliability (out of fold), ECE {figures['ece_all']:.3f}")
    bins = np.linspace(0, 1, 21)
    b.hist(prob[kind == 1], bins=bins, alpha=0.6, label=f"development questions ({(kind == 1).sum()})")
    b.hist(prob[kind == 0], bins=bins, alpha=0.6, label=f"answers removed ({(kind == 0).sum()})")
    b.set_xlabel("coverage")
    b.set_title(f"Separation, ROC AUC {figures['auc_answerable_vs_unanswerable']:.3f}")
    b.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


FEATURES: list[str] = []


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--index", action="append", default=[], help="NAME=DIR of a development index (with vectors)")
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "reranker" / "reranker-v1.json")
    ap.add_argument("--model", choices=["linear", "trees"], default="trees",
                    help="trees: LightGBM lambdarank with monotone relevance signals (cv: better on every set)")
    ap.add_argument("--seed", type=int, default=13)
    # 100 rounds at 0.15 score as well as 300 at 0.05 (cv within 0.002) at a third of the latency.
    ap.add_argument("--rounds", type=int, default=100, help="boosting rounds (trees)")
    ap.add_argument("--no-monotone", action="store_true", help="trees without monotone constraints")
    ap.add_argument("--learning-rate", type=float, default=0.15)
    ap.add_argument("--candidates", type=int, default=50, help="candidates per retriever (SearchOptions.candidates)")
    ap.add_argument("--leaves", type=int, default=15, help="leaves per tree")
    # doc_support (passages of the same document in the pool) is left out: the
    # development documents are abstracts and answers of one or two passages,
    # while a guideline page puts many passages in the pool, so what the model
    # learns about it misfires there (hand-written guideline questions,
    # tools/check_questions.py: 13/16 with it, 14/16 without; cv figures no worse).
    ap.add_argument("--drop", default="doc_support", help="comma-separated features the model may not use")
    ap.add_argument("--cache", type=Path, default=None,
                    help="keep the pools here between runs (delete it when the engine or --candidates change)")
    ap.add_argument("--report", type=Path, default=None, help="write the cross-validated figures as JSON")
    ap.add_argument("--plot", type=Path, default=None, help="write the coverage reliability plot (PNG)")
    ap.add_argument("--unanswerable", type=int, default=1000, help="MedQuAD questions asked without their answers")
    args = ap.parse_args()

    import medsearch
    FEATURES[:] = medsearch.feature_names()
    cache_root = Path(os.environ.get("MEDSEARCH_CACHE", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "medsearch"))
    index_dirs = {n: cache_root / "dev-eval" / f"index-{n}" for n in DATASETS}
    for spec in args.index:
        name, _, path = spec.partition("=")
        index_dirs[name] = Path(path)

    t0 = time.time()
    pools, qrels_of, doc_ids_of, unans = {}, {}, {}, None
    cached = args.cache / "pools.pickle" if args.cache else None
    if cached and cached.exists():
        import pickle
        pools, qrels_of, doc_ids_of, unans = pickle.loads(cached.read_bytes())
    for name in DATASETS if not pools else ():
        queries, qrels = dev_queries(args.data, name)
        index = open_index(name, index_dirs[name], args.data)
        log(f"{name}: pooling {len(queries)} queries")
        pools[name], doc_ids_of[name] = collect(name, index, queries, qrels, candidates=args.candidates)
        qrels_of[name] = qrels
        if name == "medquad":
            sample = random.Random(args.seed).sample([q for q in queries if q["_id"] in qrels],
                                                     min(args.unanswerable, len(queries)))
            unans, _ = collect(name, index, sample, qrels, exclude_answers=True, candidates=args.candidates)
    if cached and not cached.exists():
        import pickle
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(pickle.dumps((pools, qrels_of, doc_ids_of, unans)))
    log(f"pools ready in {time.time() - t0:.0f} s")
    # Dropped features are zeroed for training (no split, no weight); the engine
    # still computes them, the model just ignores them.
    dropped = [FEATURES.index(n) for n in args.drop.split(",") if n]
    for p in list(pools.values()) + [unans]:
        p.features[:, dropped] = 0.0

    # Folds by query, seeded, the same split for every model.
    folds = {}
    for name in DATASETS:
        order = list(range(len(pools[name].qids)))
        random.Random(args.seed).shuffle(order)
        f = np.empty(len(order), dtype=int)
        for j, i in enumerate(order):
            f[i] = j % FOLDS
        folds[name] = f
    unans_folds = np.arange(len(unans.qids)) % FOLDS

    def trainer(x, y, o):
        """(model dict, predict function) trained on rows x with labels y, query offsets o."""
        if args.model == "linear":
            m = train_linear(x, y, o, seed=args.seed)
            return m, lambda z: predict(m, z)
        return train_trees(x, y, o, seed=args.seed, rounds=args.rounds, monotone=not args.no_monotone,
                           learning_rate=args.learning_rate, leaves=args.leaves)

    oof = {n: np.zeros(len(pools[n].labels)) for n in DATASETS}
    oof_unans = np.zeros(len(unans.labels))
    convex_oof = {n: np.zeros(len(pools[n].labels)) for n in DATASETS}
    weights = np.round(np.arange(0, 1.0001, 0.05), 2)
    convex_cache = {n: {w: convex_scores(pools[n], w) for w in weights} for n in DATASETS}
    chosen_w = []
    for k in range(FOLDS):
        train = concat([subset(pools[n], np.where(folds[n] != k)[0]) for n in DATASETS])
        model, score = trainer(train.features.astype(np.float64), train.labels, train.offsets)
        for n in DATASETS:
            test = np.where(folds[n] == k)[0]
            for i in test:
                r = pools[n].rows(i)
                oof[n][r] = score(pools[n].features[r].astype(np.float64))
        for i in np.where(unans_folds == k)[0]:
            r = unans.rows(i)
            oof_unans[r] = score(unans.features[r].astype(np.float64))
        # Convex fusion: the weight with the best mean nDCG over the datasets' training folds.
        def mean_train(w):
            return np.mean([doc_ndcg(pools[n], convex_cache[n][w], qrels_of[n], doc_ids_of[n],
                                     np.where(folds[n] != k)[0]) for n in DATASETS])
        w_best = max(weights, key=mean_train)
        chosen_w.append(float(w_best))
        for n in DATASETS:
            for i in np.where(folds[n] == k)[0]:
                r = pools[n].rows(i)
                convex_oof[n][r] = convex_cache[n][w_best][r]
        log(f"fold {k}: convex weight {w_best}")

    report = {"seed": args.seed, "model": args.model, "folds": FOLDS, "convex_weights": chosen_w, "ndcg@10": {}}
    fi = FEATURES.index
    for n in DATASETS:
        p = pools[n]
        row = {
            "bm25 (pool)": doc_ndcg(p, p.features[:, fi("bm25")], qrels_of[n], doc_ids_of[n]),
            "dense (pool)": doc_ndcg(p, p.features[:, fi("dense")], qrels_of[n], doc_ids_of[n]),
            "rrf": doc_ndcg(p, p.features[:, fi("rrf")], qrels_of[n], doc_ids_of[n]),
            "convex (cv)": doc_ndcg(p, convex_oof[n], qrels_of[n], doc_ids_of[n]),
            "rerank (cv)": doc_ndcg(p, oof[n], qrels_of[n], doc_ids_of[n]),
        }
        report["ndcg@10"][n] = row
        log(f"{n:9s} " + "  ".join(f"{k} {v:.4f}" for k, v in row.items()))

    # Coverage: P(top passage relevant), trained out of fold on the reranker's out-of-fold scores.
    cx, cy, cf, ckind = [], [], [], []
    for n in DATASETS:
        p = pools[n]
        for i in range(len(p.qids)):
            cx.append(coverage_features(p, oof[n], i))
            r = p.rows(i)
            top = np.lexsort((p.passages[r], -oof[n][r]))[0]
            cy.append(1.0 if p.labels[r][top] > 0 else 0.0)
            cf.append(folds[n][i])
            ckind.append(1)
    for i in range(len(unans.qids)):
        cx.append(coverage_features(unans, oof_unans, i))
        cy.append(0.0)
        cf.append(unans_folds[i])
        ckind.append(0)
    cx, cy, cf, ckind = np.array(cx), np.array(cy), np.array(cf), np.array(ckind)
    prob = np.zeros(len(cy))
    for k in range(FOLDS):
        m = train_logistic(cx[cf != k], cy[cf != k])
        prob[cf == k] = logistic(m, cx[cf == k])
    e_all, table = ece(prob, cy)
    e_dev, _ = ece(prob[ckind == 1], cy[ckind == 1])
    report["coverage"] = {
        "ece_all": e_all, "ece_dev": e_dev, "reliability": table,
        "auc_answerable_vs_unanswerable": auc(prob[ckind == 1], prob[ckind == 0]),
        "auc_top_correct_vs_not": auc(prob[cy == 1], prob[cy == 0]),
        "unanswerable_queries": int((ckind == 0).sum()), "dev_queries": int((ckind == 1).sum()),
    }
    if args.plot:
        plot_coverage(args.plot, prob, cy, ckind, table, report["coverage"])
    log(f"coverage: ECE {e_all:.4f} (dev only {e_dev:.4f}), AUC answerable vs not "
        f"{report['coverage']['auc_answerable_vs_unanswerable']:.4f}, top right vs wrong "
        f"{report['coverage']['auc_top_correct_vs_not']:.4f}")

    # Final models on everything.
    allp = concat([pools[n] for n in DATASETS])
    model, score = trainer(allp.features.astype(np.float64), allp.labels, allp.offsets)
    final_cov_x, final_cov_y = [], []
    for n in DATASETS:
        p = pools[n]
        s = score(p.features.astype(np.float64))
        for i in range(len(p.qids)):
            final_cov_x.append(coverage_features(p, s, i))
            r = p.rows(i)
            top = np.lexsort((p.passages[r], -s[r]))[0]
            final_cov_y.append(1.0 if p.labels[r][top] > 0 else 0.0)
    s = score(unans.features.astype(np.float64))
    for i in range(len(unans.qids)):
        final_cov_x.append(coverage_features(unans, s, i))
        final_cov_y.append(0.0)
    coverage = train_logistic(np.array(final_cov_x), np.array(final_cov_y))
    out = {"format": "medsearch-reranker", "version": 1, "name": f"rerank-{args.model}-v1",
           "features": FEATURES, "model": model, "coverage": coverage,
           "training": {"tool": "tools/train_reranker.py", "seed": args.seed, "datasets": list(DATASETS),
                        "queries": {n: len(pools[n].qids) for n in DATASETS},
                        "unanswerable": len(unans.qids), "cv": report}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=None, separators=(",", ":")) + "\n")
    tmp.replace(args.out)
    # Golden rows: the trainer's own scores, which the engine must reproduce
    # (tests/rank/reranker_test.cc).
    rows = np.random.default_rng(args.seed).choice(len(allp.features), size=64, replace=False)
    golden_x = allp.features[rows].astype(np.float64)
    golden = args.out.with_name(args.out.stem + ".golden.jsonl")
    with open(golden, "w", encoding="utf-8") as f:
        for x, y in zip(golden_x, score(golden_x)):
            f.write(json.dumps({"features": [float(v) for v in x], "score": float(y)}) + "\n")
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {args.out} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
