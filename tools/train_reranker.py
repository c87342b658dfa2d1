#!/usr/bin/env python3
"""Trains the reranker and its coverage model, and chooses the default pipeline by how it transfers.

    .venv/bin/python tools/train_reranker.py [--data ../shared/data] [--out data/reranker/reranker-v1.json] \
        [--report bench/results/quality/report.json] [--plot bench/results/quality/coverage.png]

Development sets (each a list of questions and what answers them):
  scifact, pubmedqa, medquad   document-level qrels (SciFact train claims, PubMedQA, the 2,000-question
                               MedQuAD sample); scored by document nDCG@10.
  pdq-sections                 section-level questions made from the guideline corpus's own structure
                               (tools/make_section_set.py: heading-derived questions, the answering
                               section's heading masked); its train split is trained on, its dev split
                               never; scored by hit@1, hit@5 and MRR@10 of passages (at most 3 a page).
  pdq-questions                the 80 hand-written section-level questions of shared/data/pdq-questions,
                               on the real guideline index; scored like pdq-sections.

What it does, reproducibly (seeded):
1. Asks the engine for every question's hybrid candidate pool with features (Index.candidate_pool)
   and labels each passage (its document's grade, or whether its page and heading path match a
   labelled section). Questions without an answer for the coverage model: MedQuAD questions with
   their answers left out of the index, pdq-sections dev questions with their pages left out
   (near misses), and MedQuAD questions about neurological, heart, lung, blood and infectious
   disease asked of the guideline index (off-topic).
2. Leave one dataset out: for each set, every trainable model is trained on the others and scored
   on the one left out, beside the untrained modes (bm25, dense, rrf, convex fusion with its weight
   chosen on the training sets). The default is the model that is never below the best single
   retriever on a left-out set; the table says which it is.
3. 5-fold cross-validation by query over the trainable sets, as before, for comparison.
4. Coverage: P(a relevant passage among the top 3 hits), a logistic model over the response features, trained out
   of fold; reports ECE, a reliability plot, and ROC AUC between the hand-written answerable and
   unanswerable questions of shared/data/pdq-questions (never trained on).
5. Trains the final models on every trainable set and writes the model file the library compiles
   in (core/rank/reranker.h documents the format) and its golden rows.

Indexes come from --index NAME=DIR (default: the tools/eval_dev.sh cache, $MEDSEARCH_CACHE/dev-eval/
index-NAME; pdq-questions uses the tools/main.sh index); a missing one is built with the CLI.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DOC_SETS = ("scifact", "pubmedqa", "medquad")
SECTION_SETS = ("pdq-sections", "pdq-questions")
DATASETS = DOC_SETS + SECTION_SETS
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
    """Candidate pools of one dataset: rows of features, grouped by query. `level` is "doc"
    (labels are document grades, scored by nDCG@10) or "section" (labels mark passages of an
    answering section). `unknown` is each query's unknown-token share (a coverage feature)."""

    def __init__(self, name, qids, offsets, passages, docs, features, labels, level="doc", unknown=None):
        self.name, self.qids, self.offsets = name, qids, offsets
        self.passages, self.docs, self.features, self.labels = passages, docs, features, labels
        self.level = level
        self.unknown = np.zeros(len(qids)) if unknown is None else np.asarray(unknown, dtype=np.float64)

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
    qids, offsets, passages, docs, feats, labels, unknown = [], [0], [], [], [], [], []
    for q in queries:
        judged = qrels.get(q["_id"])
        if not judged:
            continue
        unknown.append(index.unknown_share(q["text"]))
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
                 np.concatenate(feats).astype(np.float32), np.concatenate(labels), "doc", unknown), doc_ids


class PassageInfo:
    """Each passage's page id and lower-cased heading path of one index, for section labels.
    With `masks` (make_section_set.py's masks.jsonl), the heading_commonness feature is what
    the unmasked corpus would give (commonness[p]): a masked heading's placeholder is on one
    page, the heading it hides may be on several."""

    def __init__(self, index, masks=None):
        self.doc_of = np.array([index.doc_number(p) for p in range(len(index))], dtype=np.int64)
        self.doc_id, self.path = [], []
        original = {(m["doc"], m["placeholder"]): m["heading"] for m in masks or ()}
        leaves = []
        for p in range(len(index)):
            h = index.passage(p)
            self.doc_id.append(h.doc_id)
            self.path.append(" > ".join(h.heading_path).lower())
            path = h.heading_path
            leaf = path[-1] if path else ""
            leaf = original.get((h.doc_id, leaf), leaf)
            leaves.append(leaf)
        pages = {}
        for p, leaf in enumerate(leaves):
            if leaf:
                pages.setdefault(leaf, set()).add(int(self.doc_of[p]))
        self.commonness = np.array([np.log1p(len(pages[leaf])) if leaf else 0.0 for leaf in leaves], dtype=np.float32)
        self.unmask = masks is not None
        self.number_of = {}
        for p, d in enumerate(self.doc_id):
            self.number_of.setdefault(d, int(self.doc_of[p]))

    def relevant(self, p, labels):
        return any(self.doc_id[p] == d and sub.lower() in self.path[p] for d, sub in labels)


def collect_sections(name, index, info, questions, exclude_answers=False, candidates=100):
    """Pools for section-level questions ({"_id", "text", "relevant": [[doc_id, heading substring]]});
    with exclude_answers, every page a label names is left out of the index."""
    qids, offsets, passages, docs, feats, labels, unknown = [], [0], [], [], [], [], []
    for q in questions:
        exclude = sorted({info.number_of[d] for d, _ in q["relevant"] if d in info.number_of}) if exclude_answers else []
        pas, f = index.candidate_pool(q["text"], candidates, exclude)
        if len(pas) == 0:
            continue
        if info.unmask:
            f[:, FEATURES.index("heading_commonness")] = info.commonness[pas]
        qids.append(q["_id"])
        unknown.append(index.unknown_share(q["text"]))
        passages.append(pas)
        docs.append(info.doc_of[pas])
        feats.append(f)
        labels.append(np.array([0.0 if exclude_answers else float(info.relevant(int(p), q["relevant"])) for p in pas],
                               dtype=np.float32))
        offsets.append(offsets[-1] + len(pas))
    return Pools(name, qids, np.array(offsets), np.concatenate(passages), np.concatenate(docs),
                 np.concatenate(feats).astype(np.float32), np.concatenate(labels), "section", unknown)


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
    for term in model.get("terms", ()):
        out += term["weight"] * x[:, FEATURES.index(term["feature"])]
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
            # The engine compares float32 features with float32 thresholds: the largest
            # float32 not above LightGBM's double threshold splits every float32 the same way.
            thr = np.float32(node["threshold"])
            if float(thr) > node["threshold"]:
                thr = np.nextafter(thr, np.float32(-np.inf))
            t["threshold"].append(float(thr))
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
            "doc_dense_gap": 1, "rrf": 1, "section_dense_gap": 1, "audience_dense": 1, "bm25_dense_led": 1,
            "bm25_dense_led_rel": 1, "cover_dense_led": 1, "phrase_match": 1, "dense_z": 1}


def train_trees(x, labels, offsets, seed=0, rounds=300, monotone=True, learning_rate=0.05, leaves=15, weights=None,
                min_data_in_leaf=50, prior=None):
    """LightGBM lambdarank; returns (our model dict, a fast predict function). `weights`: one per row
    (LightGBM weighs a query by its rows' weight). `prior`: {feature name: weight}, a linear score
    the trees are boosted from (LightGBM's init_score) and that the model adds to theirs."""
    import lightgbm as lgb
    groups = np.diff(offsets)
    prior = prior or {}

    def prior_score(z):
        return sum((w * z[:, FEATURES.index(f)] for f, w in prior.items()), np.zeros(len(z)))

    ds = lgb.Dataset(x, label=labels.astype(int), group=groups, weight=weights, free_raw_data=False,
                     init_score=prior_score(x) if prior else None)
    params = {"objective": "lambdarank", "metric": "ndcg", "ndcg_eval_at": [10], "learning_rate": learning_rate,
              "num_leaves": leaves, "min_data_in_leaf": min_data_in_leaf, "feature_fraction": 0.8, "bagging_fraction": 0.8,
              "bagging_freq": 1, "lambda_l2": 1.0, "seed": seed, "deterministic": True, "num_threads": 1,
              "verbose": -1, "lambdarank_truncation_level": 20}
    if monotone:
        params["monotone_constraints"] = [MONOTONE.get(n, 0) for n in FEATURES]
        params["monotone_constraints_method"] = "advanced"
    booster = lgb.train(params, ds, num_boost_round=rounds)
    model = lgb_to_trees(booster)
    if prior:
        model["terms"] = [{"feature": f, "weight": float(w)} for f, w in prior.items()]

    def score(z):
        return booster.predict(z) + prior_score(z)

    # The conversion must score exactly as LightGBM does.
    sample = x[np.random.default_rng(seed).choice(len(x), size=min(300, len(x)), replace=False)]
    ours, theirs = predict(model, sample), score(sample)
    if not np.allclose(ours, theirs, atol=1e-4):
        raise SystemExit(f"tree conversion differs from LightGBM by {np.abs(ours - theirs).max()}")
    return model, score


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


def section_metrics(pools, scores, queries=None, max_per_doc=3):
    """Passage ranking as the engine serves it (at most max_per_doc passages a page, ties by
    passage number): mean hit@1, hit@5 and MRR@10 over the queries."""
    idx = range(len(pools.qids)) if queries is None else queries
    h1, h5, mrr = [], [], []
    for i in idx:
        r = pools.rows(i)
        s, d, p, y = scores[r], pools.docs[r], pools.passages[r], pools.labels[r]
        order = np.lexsort((p, -s))
        per_doc, ranked = {}, []
        for j in order:
            if per_doc.get(d[j], 0) < max_per_doc:
                per_doc[d[j]] = per_doc.get(d[j], 0) + 1
                ranked.append(y[j] > 0)
            if len(ranked) == 10:
                break
        first = next((k for k, ok in enumerate(ranked) if ok), None)
        h1.append(first == 0)
        h5.append(first is not None and first < 5)
        mrr.append(1.0 / (first + 1) if first is not None else 0.0)
    n = max(len(h1), 1)
    return {"hit@1": sum(h1) / n, "hit@5": sum(h5) / n, "mrr@10": sum(mrr) / n, "n": len(h1)}


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
                 pools.features[rows], pools.labels[rows], pools.level, pools.unknown[idx])


def concat(parts):
    offsets = [0]
    for p in parts:
        offsets.extend((np.array(p.offsets[1:]) + offsets[-1]).tolist())
    out = Pools("all", sum([p.qids for p in parts], []), np.array(offsets), np.concatenate([p.passages for p in parts]),
                np.concatenate([p.docs for p in parts]), np.concatenate([p.features for p in parts]),
                np.concatenate([p.labels for p in parts]), "mixed", np.concatenate([p.unknown for p in parts]))
    # Row weights that give every dataset the same total weight (mean 1 per query).
    total = sum(len(p.qids) for p in parts)
    out.balance = np.concatenate([np.full(len(p.labels), total / (len(parts) * max(len(p.qids), 1))) for p in parts])
    return out


def coverage_features(pools, scores, i):
    """The response features the engine computes (core/rank/reranker.h): from the
    reranked top of the pool."""
    r = pools.rows(i)
    s, f = scores[r], pools.features[r]
    order = np.lexsort((pools.passages[r], -s))
    top = order[0]
    second = s[order[1]] if len(order) > 1 else s[top]
    fi = FEATURES.index
    return [s[top], s[top] - second, f[top, fi("dense")], f[top, fi("cover_any")], f[top, fi("body_idf_norm")],
            pools.unknown[i], f[top, fi("cover_dense_led")], f[:, fi("dense")].max()]


def train_logistic(x, y, l2=1e-2, epochs=2000, lr=0.05, sample_weight=None, use=None):
    """Logistic regression (full-batch gradient descent on standardised inputs). `use`: the
    columns it may weigh (the others get weight 0, mean 0, scale 1)."""
    sw = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    sw = sw / sw.mean()
    mean = x.mean(0)
    scale = x.std(0)
    scale[scale < 1e-6] = 1.0
    mask = np.ones(x.shape[1], dtype=bool) if use is None else np.isin(np.arange(x.shape[1]), use)
    mean[~mask] = 0.0
    scale[~mask] = 1.0
    z = (x - mean) / scale
    z[:, ~mask] = 0.0
    w = np.zeros(x.shape[1])
    b = 0.0
    for _ in range(epochs):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        g = (p - y) * sw
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
    """Reliability diagram (out of fold) and the coverage of answerable vs unanswerable questions
    (the hand-written guideline questions of shared/data/pdq-questions)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2))
    a.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    a.plot([t["predicted"] for t in table], [t["observed"] for t in table], marker="o")
    for t in table:
        a.annotate(str(t["n"]), (t["predicted"], t["observed"]), fontsize=7, xytext=(3, -9), textcoords="offset points")
    a.set_xlabel(f"predicted coverage (P(answered in the top {COVERAGE_K}))")
    a.set_ylabel(f"observed share answered in the top {COVERAGE_K}")
    a.set_title(f"Reliability (out of fold), ECE {figures['ece_all']:.3f}")
    bins = np.linspace(0, 1, 21)
    b.hist(prob[kind == 1], bins=bins, alpha=0.6, label=f"answerable ({(kind == 1).sum()})")
    b.hist(prob[kind == 0], bins=bins, alpha=0.6, label=f"unanswerable ({(kind == 0).sum()})")
    b.set_xlabel("coverage")
    b.set_title(f"Separation, ROC AUC {figures['auc_answerable_vs_unanswerable']:.3f}")
    b.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


FEATURES: list[str] = []
# The response features of the coverage model, in core/rank/reranker.h's order.
COVERAGE_NAMES = ("top_score", "margin", "top_dense", "top_cover_any", "top_body_idf_norm", "unknown_share",
                  "top_cover_dense_led", "best_dense")
COVERAGE_K = 3
NEAR_MISS = ("medquad-answers-removed", "pdq-sections-pages-removed")


CANCER_WORDS = re.compile(r"cancer|tumou?r|carcinoma|lymphoma|leukemia|sarcoma|melanoma|myeloma|neoplas|blastoma|"
                          r"oma\b|malignan|metasta|chemo|oncolog", re.I)


def off_topic_questions(data, n, seed):
    """MedQuAD questions from sources about neurological, heart, lung, blood and infectious
    disease (NINDS, NHLBI, CDC) that name nothing cancer-like: real consumer questions the
    guideline corpus does not answer."""
    queries = read_jsonl(data / "medquad" / "queries.jsonl")
    pick = [q for q in queries if q["_id"].split(":")[0] in ("NINDS", "NHLBI", "CDC") and not CANCER_WORDS.search(q["text"])]
    pick = random.Random(seed).sample(pick, min(n, len(pick)))
    return [{"_id": q["_id"], "text": q["text"], "relevant": []} for q in pick]


def primary(metrics):
    return metrics["ndcg@10"] if "ndcg@10" in metrics else metrics["mrr@10"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--index", action="append", default=[], help="NAME=DIR of a development index (with vectors)")
    ap.add_argument("--sections", type=Path, default=None,
                    help="tools/make_section_set.py's output (default $MEDSEARCH_CACHE/pdq-sections; made if missing)")
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "reranker" / "reranker-v1.json")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--rounds", type=int, default=100, help="boosting rounds (trees)")
    ap.add_argument("--learning-rate", type=float, default=0.05)
    ap.add_argument("--candidates", type=int, default=50, help="candidates per retriever (SearchOptions.candidates)")
    ap.add_argument("--leaves", type=int, default=15, help="leaves per tree")
    # doc_support (passages of the same document in the pool) is left out: the
    # development documents are abstracts and answers of one or two passages,
    # while a guideline page puts many passages in the pool.
    ap.add_argument("--drop", default="doc_support", help="comma-separated features no model may use")
    ap.add_argument("--cache", type=Path, default=None,
                    help="keep the pools here between runs (delete it when the engine or --candidates change)")
    ap.add_argument("--report", type=Path, default=None, help="write every table as JSON")
    ap.add_argument("--plot", type=Path, default=None, help="write the coverage reliability plot (PNG)")
    ap.add_argument("--unanswerable", type=int, default=1000, help="MedQuAD questions asked without their answers")
    ap.add_argument("--models", default="trees-prior,trees,trees-base,linear",
                    help="the trainable models compared (trees-prior, trees, trees-balanced, trees-small, trees-base, "
                         "linear); the first is the one written")
    ap.add_argument("--prior-weight", type=float, default=2.5,
                    help="trees-prior: weight of the standardised cosine the trees are boosted from")
    ap.add_argument("--coverage-features", default="best_dense,top_dense,unknown_share,top_cover_dense_led",
                    help="the response features the coverage model may weigh")
    ap.add_argument("--quick", action="store_true", help="the leave-one-dataset-out table only")
    ap.add_argument("--off-topic", type=int, default=300, help="off-topic MedQuAD questions asked of the guideline index")
    args = ap.parse_args()

    import medsearch
    FEATURES[:] = medsearch.feature_names()
    cache_root = Path(os.environ.get("MEDSEARCH_CACHE", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "medsearch"))
    sections_dir = args.sections or cache_root / "pdq-sections"
    index_dirs = {n: cache_root / "dev-eval" / f"index-{n}" for n in DATASETS}
    index_dirs["pdq-questions"] = cache_root / "indexes" / "nci-pdq"
    for spec in args.index:
        name, _, path = spec.partition("=")
        index_dirs[name] = Path(path)

    t0 = time.time()
    cached = args.cache / "pools.pickle" if args.cache else None
    if cached and cached.exists():
        import pickle
        train_pools, eval_pools, unans, qrels_of, doc_ids_of = pickle.loads(cached.read_bytes())
    else:
        train_pools, eval_pools, unans, qrels_of, doc_ids_of = {}, {}, {}, {}, {}
        for name in DOC_SETS:
            queries, qrels = dev_queries(args.data, name)
            index = open_index(name, index_dirs[name], args.data)
            log(f"{name}: pooling {len(queries)} queries")
            train_pools[name], doc_ids_of[name] = collect(name, index, queries, qrels, candidates=args.candidates)
            eval_pools[name] = train_pools[name]
            qrels_of[name] = qrels
            if name == "medquad":
                sample = random.Random(args.seed).sample([q for q in queries if q["_id"] in qrels],
                                                         min(args.unanswerable, len(queries)))
                unans["medquad-answers-removed"], _ = collect(name, index, sample, qrels, exclude_answers=True,
                                                              candidates=args.candidates)
        if not (sections_dir / "train.jsonl").exists():
            subprocess.run([sys.executable, str(ROOT / "tools" / "make_section_set.py"), "--out", str(sections_dir)],
                           check=True)
        if not (Path(index_dirs["pdq-sections"]) / "CURRENT").exists():
            log(f"building {index_dirs['pdq-sections']} (embeds the masked corpus; slow)")
            subprocess.run([str(ROOT / "build" / "bin" / "medsearch"), "build", f"nci-pdq={sections_dir / 'corpus'}",
                            "-o", str(index_dirs["pdq-sections"])], check=True)
        index = medsearch.Index.load(index_dirs["pdq-sections"])
        info = PassageInfo(index, read_jsonl(sections_dir / "masks.jsonl"))
        train_q, dev_q = read_jsonl(sections_dir / "train.jsonl"), read_jsonl(sections_dir / "dev.jsonl")
        log(f"pdq-sections: pooling {len(train_q)} + {len(dev_q)} questions")
        train_pools["pdq-sections"] = collect_sections("pdq-sections", index, info, train_q, candidates=args.candidates)
        eval_pools["pdq-sections"] = collect_sections("pdq-sections", index, info, dev_q, candidates=args.candidates)
        unans["pdq-sections-pages-removed"] = collect_sections("pdq-sections", index, info, dev_q, exclude_answers=True,
                                                               candidates=args.candidates)
        pdq_dir = Path(index_dirs["pdq-questions"])
        if not (pdq_dir / "CURRENT").exists():
            subprocess.run([str(ROOT / "build" / "bin" / "medsearch"), "build", f"nci-pdq={args.data / 'nci-pdq'}",
                            "-o", str(pdq_dir)], check=True)
        index = medsearch.Index.load(pdq_dir)
        info = PassageInfo(index)
        questions = read_jsonl(args.data / "pdq-questions" / "questions.jsonl")
        train_pools["pdq-questions"] = collect_sections("pdq-questions", index, info, questions, candidates=args.candidates)
        eval_pools["pdq-questions"] = train_pools["pdq-questions"]
        hand = [dict(q, relevant=[]) for q in read_jsonl(args.data / "pdq-questions" / "unanswerable.jsonl")]
        unans["pdq-unanswerable"] = collect_sections("pdq-unanswerable", index, info, hand, candidates=args.candidates)
        unans["medquad-off-topic"] = collect_sections("medquad-off-topic", index, info,
                                                      off_topic_questions(args.data, args.off_topic, args.seed),
                                                      candidates=args.candidates)
        if cached:
            import pickle
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_bytes(pickle.dumps((train_pools, eval_pools, unans, qrels_of, doc_ids_of)))
    log(f"pools ready in {time.time() - t0:.0f} s: " +
        ", ".join(f"{n} {len(train_pools[n].qids)}/{len(eval_pools[n].qids)}" for n in DATASETS))

    # Dropped features are zeroed (no split, no weight); the engine still computes them.
    dropped = [FEATURES.index(n) for n in args.drop.split(",") if n]
    base_features = FEATURES[:FEATURES.index("query_terms") + 1]
    for p in list(train_pools.values()) + list(eval_pools.values()) + list(unans.values()):
        p.features[:, dropped] = 0.0

    def evaluate(name, pools, scores):
        if pools.level == "doc":
            return {"ndcg@10": doc_ndcg(pools, scores, qrels_of[name], doc_ids_of[name])}
        return section_metrics(pools, scores)

    def fit(kind, train):
        """(model dict, predict function) of one trainable model on pools `train`."""
        x = train.features.astype(np.float64)
        if kind == "linear":
            m = train_linear(x, train.labels, train.offsets, seed=args.seed)
            return m, lambda z: predict(m, z)
        if kind == "trees-base":  # the 18 features of the first model (the newer ones zeroed)
            x = x.copy()
            x[:, len(base_features):] = 0.0
        if kind == "trees-balanced":  # every dataset weighs the same
            return train_trees(x, train.labels, train.offsets, seed=args.seed, rounds=args.rounds,
                               learning_rate=args.learning_rate, leaves=args.leaves, weights=train.balance)
        if kind == "trees-prior":  # boosted from the standardised cosine: corrections to the dense order
            return train_trees(x, train.labels, train.offsets, seed=args.seed, rounds=args.rounds,
                               learning_rate=args.learning_rate, leaves=args.leaves, prior={"dense_z": args.prior_weight})
        if kind == "trees-small":  # balanced, fewer and larger leaves
            return train_trees(x, train.labels, train.offsets, seed=args.seed, rounds=args.rounds,
                               learning_rate=args.learning_rate, leaves=7, weights=train.balance, min_data_in_leaf=200)
        return train_trees(x, train.labels, train.offsets, seed=args.seed, rounds=args.rounds,
                           learning_rate=args.learning_rate, leaves=args.leaves)

    fi = FEATURES.index
    weights = np.round(np.arange(0, 1.0001, 0.05), 2)

    def untrained(pools, w):
        return {"bm25": pools.features[:, fi("bm25")].astype(np.float64),
                "dense": pools.features[:, fi("dense")].astype(np.float64),
                "rrf": pools.features[:, fi("rrf")].astype(np.float64),
                "convex": convex_scores(pools, w)}

    def best_weight(names):
        """The convex weight with the best mean primary metric over the named sets' training pools."""
        return max(weights, key=lambda w: np.mean([primary(evaluate(n, train_pools[n], convex_scores(train_pools[n], w)))
                                                   for n in names]))

    TRAINABLE = tuple(args.models.split(","))
    args.model = TRAINABLE[0]
    report = {"seed": args.seed, "candidates": args.candidates, "rounds": args.rounds, "drop": args.drop,
              "queries": {n: {"train": len(train_pools[n].qids), "eval": len(eval_pools[n].qids)} for n in DATASETS}}

    # ---- leave one dataset out ----
    lodo = {}
    for left in DATASETS:
        others = [n for n in DATASETS if n != left]
        w = best_weight(others)
        row = {m: evaluate(left, eval_pools[left], sc) for m, sc in untrained(eval_pools[left], w).items()}
        row["convex"]["weight"] = float(w)
        train = concat([train_pools[n] for n in others])
        for kind in TRAINABLE:
            _, score = fit(kind, train)
            row[f"rerank-{kind}"] = evaluate(left, eval_pools[left], score(eval_pools[left].features.astype(np.float64)))
        lodo[left] = row
        log(f"LODO {left:13s} " + "  ".join(f"{m} {primary(v):.4f}" for m, v in row.items()))
    report["lodo"] = lodo
    if args.quick:
        if args.report:
            args.report.parent.mkdir(parents=True, exist_ok=True)
            args.report.write_text(json.dumps(report, indent=2) + "\n")
        return

    # ---- 5-fold cross-validation by query (every trainable set split the same way) ----
    folds = {}
    for name in DATASETS:
        order = list(range(len(train_pools[name].qids)))
        random.Random(args.seed).shuffle(order)
        f = np.empty(len(order), dtype=int)
        for j, i in enumerate(order):
            f[i] = j % FOLDS
        folds[name] = f
    unans_folds = {n: np.arange(len(p.qids)) % FOLDS for n, p in unans.items()}
    oof = {k: {n: np.zeros(len(train_pools[n].labels)) for n in DATASETS} for k in TRAINABLE}
    oof_unans = {n: np.zeros(len(p.labels)) for n, p in unans.items()}
    convex_oof = {n: np.zeros(len(train_pools[n].labels)) for n in DATASETS}
    fold_models = {k: [] for k in TRAINABLE}
    for k in range(FOLDS):
        train = concat([subset(train_pools[n], np.where(folds[n] != k)[0]) for n in DATASETS])
        for kind in TRAINABLE:
            _, score = fit(kind, train)
            fold_models[kind].append(score)
            for n in DATASETS:
                for i in np.where(folds[n] == k)[0]:
                    r = train_pools[n].rows(i)
                    oof[kind][n][r] = score(train_pools[n].features[r].astype(np.float64))
            if kind == args.model:
                for n, p in unans.items():
                    for i in np.where(unans_folds[n] == k)[0]:
                        r = p.rows(i)
                        oof_unans[n][r] = score(p.features[r].astype(np.float64))
        def fold_primary(n, w):
            sub = subset(train_pools[n], np.where(folds[n] != k)[0])
            return primary(evaluate(n, sub, convex_scores(sub, w)))
        w = max(weights, key=lambda w: np.mean([fold_primary(n, w) for n in DATASETS]))
        report.setdefault("convex_weights", []).append(float(w))
        for n in DATASETS:
            cs = convex_scores(train_pools[n], w)
            for i in np.where(folds[n] == k)[0]:
                r = train_pools[n].rows(i)
                convex_oof[n][r] = cs[r]
        log(f"fold {k}: convex weight {w}")
    cv = {}
    for n in DATASETS:
        p = train_pools[n]
        row = {m: evaluate(n, p, sc) for m, sc in untrained(p, 0.5).items() if m != "convex"}
        row["convex"] = evaluate(n, p, convex_oof[n])
        for kind in TRAINABLE:
            row[f"rerank-{kind}"] = evaluate(n, p, oof[kind][n])
        cv[n] = row
        log(f"CV   {n:13s} " + "  ".join(f"{m} {primary(v):.4f}" for m, v in row.items()))
    report["cv5"] = cv

    # The section-level development split is never trained on: each fold's model scores it, averaged.
    for kind in TRAINABLE:
        p = eval_pools["pdq-sections"]
        x = p.features.astype(np.float64)
        cv["pdq-sections"][f"rerank-{kind} (dev split)"] = evaluate("pdq-sections", p, np.mean([m(x) for m in fold_models[kind]], 0))
    for m, sc in untrained(eval_pools["pdq-sections"], float(np.median(report.get("convex_weights", [0.5])))).items():
        cv["pdq-sections"][f"{m} (dev split)"] = evaluate("pdq-sections", eval_pools["pdq-sections"], sc)

    # ---- coverage: P(a relevant passage is among the top COVERAGE_K hits), out of fold ----
    # Each set weighs the same, and answerable and unanswerable questions weigh the same in all.
    # Only features comparable across queries are used: a lambdarank score is meaningful within
    # a query, not between queries, so the top score and the margin are left out.
    use = [COVERAGE_NAMES.index(n) for n in args.coverage_features.split(",")]
    cx, cy, cf, cset, cw = [], [], [], [], []
    # The sets made by removing answers from an index (near misses) are reported, not trained on:
    # other pages often still answer them (MedQuAD repeats a condition across its sources), and
    # as labels they are noise.
    answerable = [n for n in DATASETS]
    unanswerable = [n for n in unans if n not in NEAR_MISS]
    for n in answerable + list(unans):
        p = train_pools[n] if n in train_pools else unans[n]
        scores = oof[args.model][n] if n in train_pools else oof_unans[n]
        f = folds[n] if n in train_pools else unans_folds[n]
        groups = len(answerable) if n in train_pools else len(unanswerable)
        for i in range(len(p.qids)):
            cx.append(coverage_features(p, scores, i))
            r = p.rows(i)
            order = np.lexsort((p.passages[r], -scores[r]))[:COVERAGE_K]
            cy.append(float(n in train_pools and p.labels[r][order].max() > 0))
            cf.append(f[i])
            cset.append(n)
            cw.append(0.0 if n in NEAR_MISS else 1.0 / (groups * len(p.qids)))
    cx, cy, cf, cset, cw = np.array(cx), np.array(cy), np.array(cf), np.array(cset), np.array(cw)
    prob = np.zeros(len(cy))
    fit_rows = cw > 0
    for k in range(FOLDS):
        m = train_logistic(cx[fit_rows & (cf != k)], cy[fit_rows & (cf != k)], sample_weight=cw[fit_rows & (cf != k)], use=use)
        prob[cf == k] = logistic(m, cx[cf == k])
    coverage = train_logistic(cx[fit_rows], cy[fit_rows], sample_weight=cw[fit_rows], use=use)
    hand = np.isin(cset, ["pdq-questions", "pdq-unanswerable"])
    is_answerable = np.isin(cset, answerable)
    near = np.isin(cset, list(NEAR_MISS))
    e_all, table = ece(prob[fit_rows], cy[fit_rows])
    e_hand, hand_table = ece(prob[hand], cy[hand])
    report["coverage"] = {
        "target": f"a relevant passage among the top {COVERAGE_K} hits", "features": args.coverage_features.split(","),
        "ece_out_of_fold": e_all, "reliability": table,
        "auc_answerable_vs_unanswerable_out_of_fold": auc(prob[is_answerable], prob[~is_answerable & ~near]),
        "auc_answerable_vs_near_miss_out_of_fold": auc(prob[is_answerable], prob[near]),
        "auc_answered_vs_not_out_of_fold": auc(prob[fit_rows & (cy == 1)], prob[fit_rows & (cy == 0)]),
        "hand_written_auc_answerable_vs_unanswerable": auc(prob[cset == "pdq-questions"], prob[cset == "pdq-unanswerable"]),
        "hand_written_ece": e_hand, "hand_written_reliability": hand_table,
        "per_set": {n: {"queries": int((cset == n).sum()), "mean_coverage": float(prob[cset == n].mean()),
                        "answered": float(cy[cset == n].mean()), "trained_on": n not in NEAR_MISS}
                    for n in answerable + list(unans)},
    }
    if args.plot:
        plot_coverage(args.plot, prob[hand], cy[hand], is_answerable[hand].astype(int), hand_table,
                      {"ece_all": e_hand, "auc_answerable_vs_unanswerable": report["coverage"]["hand_written_auc_answerable_vs_unanswerable"]})
    log(f"coverage (out of fold): ECE {e_all:.4f}, AUC answerable vs not {report['coverage']['auc_answerable_vs_unanswerable_out_of_fold']:.4f}; "
        f"hand-written: AUC {report['coverage']['hand_written_auc_answerable_vs_unanswerable']:.4f}, ECE {e_hand:.4f}")

    # ---- the final model on every trainable set ----
    allp = concat([train_pools[n] for n in DATASETS])
    model, score = fit(args.model, allp)
    final = {}
    for n in DATASETS:
        final[n] = evaluate(n, eval_pools[n], score(eval_pools[n].features.astype(np.float64)))
    report["final_in_sample"] = final
    out = {"format": "medsearch-reranker", "version": 1, "name": f"rerank-{args.model}-v2",
           "features": FEATURES, "model": model, "coverage": coverage,
           "training": {"tool": "tools/train_reranker.py", "seed": args.seed, "datasets": list(DATASETS),
                        "queries": {n: len(train_pools[n].qids) for n in DATASETS},
                        "unanswerable": {n: len(p.qids) for n, p in unans.items()}}}
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
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {args.out} in {time.time() - t0:.0f} s")




if __name__ == "__main__":
    main()
