#!/usr/bin/env python3
"""Query-side linear adapter for the dense retriever: q' = normalize(q + A q).

Passage vectors stay frozen (read from prebuilt indexes); only queries are
mapped. A (full dim x dim, or low rank U V) is trained with in-batch InfoNCE
(temperature --tau) plus an L2 pull of A toward 0, on pairs the corpora
provide without touching any evaluated query:

  corpus:  SciFact / MedQuAD title (embedded as a query) -> passages of its
           document(s) (PubMedQA has no titles, so it contributes none);
           nci-pdq: a heading path's last heading, and "page title: heading",
           -> passages under that heading;
  dev:     development queries -> passages of their relevant documents,
           only under 5-fold cross-validation by query (seeded).

Evaluation: document-level nDCG@10 (a document scores as its best passage,
brute-force cosine, graded gains, log2 discount) on the development sets,
reported out-of-fold (paired-bootstrap 95% CIs of the per-query delta). Two
extra checks: nci-pdq question headings ("What is DCIS?" -> its page), held
out of the heading pairs, as a guard on the target corpus; and leave-one-
dataset-out training (lodo-*), i.e. transfer to an unseen question style.
The final map (all pairs) is written only when the --final variant shows a
significant gain somewhere, no significant loss anywhere (guard included) and
no significant loss under LODO transfer; --force overrides.

    .venv/bin/python tools/train_adapter.py --data ../shared/data \\
        --out data/adapter/query-adapter-v1.bin --report report.json
    (indexes: --index-scifact DIR etc., default the tools/eval_dev.sh cache)

Weight file (little endian): b"MSQA", uint32 version=1, uint32 dim,
uint32 rank (0 = full), float32 data (full: A dim x dim row-major; low rank:
U dim x rank then V rank x dim, A = U V), then uint32 zlib.crc32 of all
preceding bytes.

Query embeddings are cached under --cache (default $MEDSEARCH_CACHE/adapter) as .npy files
keyed by a hash of the texts. Everything is seeded; with one BLAS thread the
run is bit-for-bit reproducible.
"""
import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import collections
import hashlib
import json
import struct
import sys
import time
import zlib

import numpy as np

CACHE = os.environ.get("MEDSEARCH_CACHE", os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "medsearch"))
DEV = {
    # name: (index default, queries, qrels)
    # Indexes with vectors as tools/eval_dev.sh builds them; the MedQuAD sample as it writes it.
    "scifact": (os.path.join(CACHE, "dev-eval", "index-scifact"), "scifact/queries.train.jsonl", "scifact/qrels.train.tsv"),
    "pubmedqa": (os.path.join(CACHE, "dev-eval", "index-pubmedqa"), "pubmedqa/queries.jsonl", "pubmedqa/qrels.tsv"),
    "medquad": (os.path.join(CACHE, "dev-eval", "index-medquad"), os.path.join(CACHE, "dev-eval", "medquad-sample.jsonl"),
                "medquad/qrels.tsv"),
}
NCI_DEFAULT = os.path.join(CACHE, "indexes", "nci-pdq")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- embeddings
class Embedder:
    def __init__(self, cache_dir):
        self.cache_dir = cache_dir
        self.enc = None
        os.makedirs(cache_dir, exist_ok=True)

    def __call__(self, name, texts):
        h = hashlib.sha1("\x1f".join(texts).encode("utf-8")).hexdigest()[:16]
        path = os.path.join(self.cache_dir, f"emb-{name}-{len(texts)}-{h}.npy")
        if os.path.exists(path):
            return np.load(path)
        if self.enc is None:
            import medsearch
            self.enc = medsearch.Encoder()
        t0 = time.time()
        out = np.zeros((len(texts), 384), np.float32)
        for s in range(0, len(texts), 256):
            out[s:s + 256] = self.enc.embed(texts[s:s + 256], kind="query")
            if (s // 256) % 10 == 0:
                log(f"  embed {name}: {s + len(texts[s:s + 256])}/{len(texts)}")
        log(f"  embedded {len(texts)} {name} texts in {time.time() - t0:.1f}s")
        np.save(path + ".tmp.npy", out)
        os.replace(path + ".tmp.npy", path)
        return out


# ---------------------------------------------------------------- corpora
class Corpus:
    """Frozen passage vectors of one index plus passage -> document maps."""

    def __init__(self, path):
        import medsearch
        self.ix = medsearch.Index.load(path, encoder=None)
        self.V = np.ascontiguousarray(self.ix.vectors(), dtype=np.float32)
        n = len(self.ix)
        self.pdoc = np.fromiter((self.ix.doc_number(p) for p in range(n)), np.int64, n)
        if not (np.diff(self.pdoc) >= 0).all():
            raise SystemExit(f"{path}: passages are not grouped by document")
        # documents present, first passage of each (for reduceat)
        self.docs, self.starts = np.unique(self.pdoc, return_index=True)
        self.doc_ids = {}
        for d, s in zip(self.docs, self.starts):
            self.doc_ids[self.ix.passage(int(s)).doc_id] = int(d)
        self.col_of_doc = {int(d): i for i, d in enumerate(self.docs)}
        self.doc_passages = {int(d): np.arange(s, e) for d, s, e in
                             zip(self.docs, self.starts, list(self.starts[1:]) + [n])}

    def doc_scores(self, Q):
        S = Q @ self.V.T
        return np.maximum.reduceat(S, self.starts, axis=1)  # columns = self.docs


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def read_qrels(path):
    q = collections.defaultdict(dict)
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3 and int(parts[2]) > 0:
                q[parts[0]][parts[1]] = int(parts[2])
    return q


class DevSet:
    """Queries with document-number qrels; from BEIR files or from (id, text, rels) triples."""

    def __init__(self, name, corpus, queries_path, qrels_path, embed, triples=None):
        self.name = name
        self.ids, texts, self.rels = [], [], []
        if triples is None:
            qrels = read_qrels(qrels_path)
            triples = []
            for q in read_jsonl(queries_path):
                r = {corpus.doc_ids[d]: g for d, g in qrels.get(q["_id"], {}).items() if d in corpus.doc_ids}
                if r:  # unjudged queries (none expected) are skipped
                    triples.append((q["_id"], q["text"], r))
        for i, t, r in triples:
            self.ids.append(i)
            texts.append(t)
            self.rels.append(r)
        self.Q = embed(name + "-queries", texts)
        # graded ideal DCG@10 per query
        disc = 1.0 / np.log2(np.arange(2, 12))
        self.idcg = np.array([(np.array(sorted(r.values(), reverse=True)[:10], float) * disc[:min(10, len(r))]).sum()
                              for r in self.rels])


def ndcg10(corpus, dev, Q, idx=None):
    """Per-query nDCG@10 for queries dev[idx] with (already adapted) vectors Q."""
    idx = np.arange(len(dev.ids)) if idx is None else idx
    disc = 1.0 / np.log2(np.arange(2, 12))
    out = np.zeros(len(idx))
    for s in range(0, len(idx), 512):
        D = corpus.doc_scores(Q[s:s + 512])
        top = np.argpartition(-D, 10, axis=1)[:, :10]
        for j in range(D.shape[0]):
            t = top[j][np.argsort(-D[j, top[j]], kind="stable")]
            rel = dev.rels[idx[s + j]]
            g = np.array([rel.get(int(corpus.docs[c]), 0) for c in t], float)
            out[s + j] = (g * disc).sum() / dev.idcg[idx[s + j]]
    return out


# ---------------------------------------------------------------- pair sets
class PairSet:
    """Training pairs: query vector i -> group of positive passages in V."""

    def __init__(self, name, V, Q, groups, kind="corpus"):
        self.name, self.kind, self.V, self.Q = name, kind, V, Q.astype(np.float32)
        self.groups = [np.asarray(g, np.int64) for g in groups]

    def subset(self, idx, name=None):
        return PairSet(name or self.name, self.V, self.Q[idx], [self.groups[i] for i in idx])

    def __len__(self):
        return len(self.groups)


def title_pairs(name, corpus, embed, max_pairs, rng):
    """Title -> all passages of the documents carrying that title."""
    by_title = collections.defaultdict(list)
    for d, s in zip(corpus.docs, corpus.starts):
        t = corpus.ix.passage(int(s)).title.strip()
        if t:
            by_title[t].append(int(d))
    titles = sorted(by_title)
    if not titles:
        return None
    if max_pairs and len(titles) > max_pairs:
        titles = sorted(rng.choice(titles, max_pairs, replace=False).tolist())
    groups = [np.concatenate([corpus.doc_passages[d] for d in by_title[t]]) for t in titles]
    return PairSet(name + "-titles", corpus.V, embed(name + "-titles", titles), groups)


def nci_question_headings(corpus):
    """Question-form headings of nci-pdq ('What is DCIS?') -> documents containing them.

    Used only as a held-out guard (the engine's target corpus has no qrels);
    these headings are excluded from the heading training pairs."""
    q = collections.defaultdict(set)
    for p in range(len(corpus.ix)):
        for h in corpus.ix.passage(p).heading_path[1:]:
            if h.endswith("?"):
                q[h].add(int(corpus.pdoc[p]))
    return [(f"nci-q{i}", h, {d: 1 for d in sorted(q[h])}) for i, h in enumerate(sorted(q))]


def heading_pairs(corpus, embed, max_pairs, rng, exclude=(), max_generic=3):
    """nci-pdq: last heading, and 'page title: last heading' -> passages under that heading path."""
    exclude = set(exclude)
    under = collections.defaultdict(list)
    for p in range(len(corpus.ix)):
        hp = tuple(corpus.ix.passage(p).heading_path)
        for k in range(2, len(hp) + 1):
            if not exclude.intersection(hp[1:k]):
                under[hp[:k]].append(p)
    paths = sorted(under)
    last_count = collections.Counter(hp[-1] for hp in paths)
    text_groups = collections.defaultdict(set)
    for hp in paths:
        page = hp[0].split("(PDQ")[0].strip()
        text_groups[f"{page}: {hp[-1]}"].update(under[hp])
        if last_count[hp[-1]] <= max_generic and len(hp[-1]) >= 12:
            text_groups[hp[-1]].update(under[hp])  # drop generic ones ("Overview")
    texts = sorted(text_groups)
    if max_pairs and len(texts) > max_pairs:
        texts = sorted(rng.choice(texts, max_pairs, replace=False).tolist())
    groups = [np.array(sorted(text_groups[t])) for t in texts]
    return PairSet("nci-pdq-headings", corpus.V, embed("nci-pdq-headings", texts), groups)


def dev_pairs(corpus, dev, idx):
    groups = [np.concatenate([corpus.doc_passages[d] for d in dev.rels[i]]) for i in idx]
    return PairSet(dev.name + "-dev", corpus.V, dev.Q[idx], groups, kind="dev")


# ---------------------------------------------------------------- the map
class Adapter:
    def __init__(self, dim, rank, rng):
        self.dim, self.rank = dim, rank
        if rank == 0:
            self.params = [np.zeros((dim, dim), np.float32)]
        else:  # A = U V; V = 0 so A starts at exactly 0, U small random
            self.params = [(rng.standard_normal((dim, rank)) / np.sqrt(dim)).astype(np.float32),
                           np.zeros((rank, dim), np.float32)]

    def A(self):
        return self.params[0] if self.rank == 0 else self.params[0] @ self.params[1]

    def apply(self, Q):
        Z = Q + (Q @ self.A().T)
        return (Z / np.linalg.norm(Z, axis=1, keepdims=True)).astype(np.float32)

    def loss_grad(self, Q, P, mask, tau, l2):
        """InfoNCE: row i's positive is P[i]; mask[i, j] True drops column j (another positive of i)."""
        if self.rank == 0:
            Z = Q + Q @ self.params[0].T
        else:
            H = Q @ self.params[1].T
            Z = Q + H @ self.params[0].T
        n = np.linalg.norm(Z, axis=1, keepdims=True)
        U = Z / n
        S = (U @ P.T) / tau
        S[mask] = -np.inf
        S -= S.max(axis=1, keepdims=True)
        E = np.exp(S)
        Pr = E / E.sum(axis=1, keepdims=True)
        B = Q.shape[0]
        loss = -np.log(np.diag(Pr) + 1e-30).mean()
        dS = Pr
        dS[np.arange(B), np.arange(B)] -= 1.0
        dS /= B
        dU = (dS @ P) / tau
        dZ = (dU - (dU * U).sum(axis=1, keepdims=True) * U) / n
        if self.rank == 0:
            A = self.params[0]
            grads = [dZ.T @ Q + 2 * l2 * A]
            loss += l2 * float((A * A).sum())
        else:
            Um, Vm = self.params
            A = Um @ Vm
            dA_reg = 2 * l2 * A
            # reg on A = U V: d/dU = dA V^T, d/dV = U^T dA
            gU = dZ.T @ H + dA_reg @ Vm.T
            gV = (dZ @ Um).T @ Q + Um.T @ dA_reg
            grads = [gU, gV]
            loss += l2 * float((A * A).sum())
        return loss, grads

    def to_bytes(self):
        head = b"MSQA" + struct.pack("<III", 1, self.dim, self.rank)
        body = b"".join(np.ascontiguousarray(p, "<f4").tobytes() for p in self.params)
        blob = head + body
        return blob + struct.pack("<I", zlib.crc32(blob) & 0xFFFFFFFF)


def read_adapter(path):
    blob = open(path, "rb").read()
    if blob[:4] != b"MSQA" or struct.unpack("<I", blob[-4:])[0] != zlib.crc32(blob[:-4]) & 0xFFFFFFFF:
        raise ValueError("bad adapter file")
    ver, dim, rank = struct.unpack("<III", blob[4:16])
    data = np.frombuffer(blob[16:-4], "<f4")
    if rank == 0:
        return data.reshape(dim, dim)
    return data[:dim * rank].reshape(dim, rank) @ data[dim * rank:].reshape(rank, dim)


def train(pairsets, cfg, seed):
    """Adam over per-source batches (negatives come from the same corpus), sources interleaved.

    Each epoch visits every development pair once; a corpus pair set gives at
    most cfg['corpus_batches'] batches per epoch (-1 = all of it), which sets
    the corpus : development mix."""
    rng = np.random.default_rng(seed)
    ad = Adapter(384, cfg["rank"], rng)
    m = [np.zeros_like(p) for p in ad.params]
    v = [np.zeros_like(p) for p in ad.params]
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, cfg["lr"]
    B, step, t0 = cfg["batch"], 0, time.time()
    losses = []
    for ep in range(cfg["epochs"]):
        batches = []
        for si, ps in enumerate(pairsets):
            order = rng.permutation(len(ps))
            nb = max(1, len(ps) // B)
            if ps.kind == "corpus" and cfg["corpus_batches"] >= 0:
                nb = min(nb, cfg["corpus_batches"])
            for k in range(nb):
                sel = order[k * B:(k + 1) * B]
                if len(sel) >= 8:
                    batches.append((si, sel))
        rng.shuffle(batches)
        for si, sel in batches:
            ps = pairsets[si]
            pos = np.array([g[rng.integers(len(g))] for g in (ps.groups[i] for i in sel)])
            mask = np.zeros((len(sel), len(sel)), bool)
            for r, i in enumerate(sel):
                mask[r] = np.isin(pos, ps.groups[i])
            np.fill_diagonal(mask, False)
            loss, grads = ad.loss_grad(ps.Q[sel], ps.V[pos], mask, cfg["tau"], cfg["l2"])
            losses.append(loss)
            step += 1
            for j, g in enumerate(grads):
                m[j] = b1 * m[j] + (1 - b1) * g
                v[j] = b2 * v[j] + (1 - b2) * g * g
                mh = m[j] / (1 - b1 ** step)
                vh = v[j] / (1 - b2 ** step)
                ad.params[j] -= (lr * mh / (np.sqrt(vh) + eps)).astype(np.float32)
    ad.train_seconds = time.time() - t0
    ad.steps = step
    ad.final_loss = float(np.mean(losses[-50:])) if losses else float("nan")
    return ad


# ---------------------------------------------------------------- study
def folds_of(n, k, seed):
    perm = np.random.default_rng(seed).permutation(n)
    f = np.empty(n, np.int64)
    f[perm] = np.arange(n) % k
    return f


def bootstrap_ci(delta, seed, n=2000):
    rng = np.random.default_rng(seed)
    means = delta[rng.integers(0, len(delta), (n, len(delta)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def run_variant(var, ctx, cfg, args):
    """Per-query out-of-fold nDCG@10 for each development set (and, for shared
    maps, the nci-pdq question-heading guard averaged over the fold maps)."""
    names = list(ctx["dev"])
    use_corpus, use_dev, shared = var["corpus"], var["dev"], var["shared"]
    c = dict(cfg, rank=var["rank"])
    oof = {n: ctx["base"][n].copy() for n in names}
    guard = np.zeros(len(ctx["guard"].ids)) if shared else None
    secs = 0.0
    folds = list(range(args.folds)) if use_dev else [None]

    def corpus_sets(only=None):
        return [ps for key, ps in ctx["corpus_pairs"].items() if use_corpus and only in (None, key)]

    def test_idx(n, f):
        return np.arange(len(ctx["dev"][n].ids)) if f is None else np.flatnonzero(ctx["folds"][n] == f)

    def dev_set(n, f):
        return dev_pairs(ctx["corpora"][n], ctx["dev"][n], np.flatnonzero(ctx["folds"][n] != f))

    if var.get("lodo"):  # leave one dataset out: train on the others, test on all of it
        for k, n in enumerate(names):
            sets = corpus_sets() + [dev_pairs(ctx["corpora"][m], ctx["dev"][m], np.arange(len(ctx["dev"][m].ids)))
                                    for m in names if m != n and use_dev]
            ad = train(sets, c, args.seed + 1 + k)
            secs += ad.train_seconds
            oof[n] = ndcg10(ctx["corpora"][n], ctx["dev"][n], ad.apply(ctx["dev"][n].Q))
        return oof, None, secs
    for f in folds:
        seed = args.seed + 1 + (f or 0)
        if shared:
            sets = corpus_sets() + ([dev_set(n, f) for n in names] if use_dev else [])
            ad = train(sets, c, seed)
            secs += ad.train_seconds
            for n in names:
                idx = test_idx(n, f)
                oof[n][idx] = ndcg10(ctx["corpora"][n], ctx["dev"][n], ad.apply(ctx["dev"][n].Q[idx]), idx)
            guard += ndcg10(ctx["nci"], ctx["guard"], ad.apply(ctx["guard"].Q)) / len(folds)
        else:
            for n in names:
                sets = corpus_sets(n) + ([dev_set(n, f)] if use_dev else [])
                if not sets:  # nothing to train on (PubMedQA has no titles): identity map
                    continue
                ad = train(sets, c, seed)
                secs += ad.train_seconds
                idx = test_idx(n, f)
                oof[n][idx] = ndcg10(ctx["corpora"][n], ctx["dev"][n], ad.apply(ctx["dev"][n].Q[idx]), idx)
    return oof, guard, secs


VARIANTS = {
    # name: corpus pairs, dev pairs (5-fold CV), one shared map (vs one per dataset), rank (0 = full)
    "corpus-per": dict(corpus=True, dev=False, shared=False, rank=0),
    "corpus-shared": dict(corpus=True, dev=False, shared=True, rank=0),
    "cv-per": dict(corpus=True, dev=True, shared=False, rank=0),
    "cv-shared": dict(corpus=True, dev=True, shared=True, rank=0),
    "cv-shared-r16": dict(corpus=True, dev=True, shared=True, rank=16),
    "cv-shared-r32": dict(corpus=True, dev=True, shared=True, rank=32),
    "cv-shared-r64": dict(corpus=True, dev=True, shared=True, rank=64),
    "devonly-per": dict(corpus=False, dev=True, shared=False, rank=0),
    "devonly-shared": dict(corpus=False, dev=True, shared=True, rank=0),
    "devonly-shared-r32": dict(corpus=False, dev=True, shared=True, rank=32),
    # transfer to an unseen question style: the other two dev sets (+ corpus pairs), none of this one
    "lodo-shared": dict(corpus=True, dev=True, shared=True, rank=0, lodo=True),
    "lodo-devonly": dict(corpus=False, dev=True, shared=True, rank=0, lodo=True),
}


def build_ctx(args):
    embed = Embedder(args.cache)
    rng = np.random.default_rng(args.seed)
    ctx = {"corpora": {}, "dev": {}, "corpus_pairs": {}, "folds": {}, "base": {}}
    for n, (_, qpath, rpath) in DEV.items():
        corpus = Corpus(getattr(args, f"index_{n}"))
        qpath = args.medquad_sample if n == "medquad" else os.path.join(args.data, qpath)
        ctx["corpora"][n] = corpus
        ctx["dev"][n] = DevSet(n, corpus, qpath, os.path.join(args.data, rpath), embed)
        ctx["folds"][n] = folds_of(len(ctx["dev"][n].ids), args.folds, args.seed)
        tp = title_pairs(n, corpus, embed, args.max_corpus_pairs, rng)
        if tp is not None:
            ctx["corpus_pairs"][n] = tp
    nci = ctx["nci"] = Corpus(args.index_nci_pdq)
    gq = nci_question_headings(nci)
    ctx["guard"] = DevSet("nci-pdq-qheadings", nci, None, None, embed, triples=gq)
    ctx["corpus_pairs"]["nci-pdq"] = heading_pairs(nci, embed, args.max_corpus_pairs, rng,
                                                   exclude=[t for _, t, _ in gq])
    for n in DEV:
        ctx["base"][n] = ndcg10(ctx["corpora"][n], ctx["dev"][n], ctx["dev"][n].Q)
    ctx["guard_base"] = ndcg10(nci, ctx["guard"], ctx["guard"].Q)
    log("pair sets: " + ", ".join(f"{k}={len(v)}" for k, v in ctx["corpus_pairs"].items()))
    return ctx


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default=None, help="weight file (written only on a measured gain)")
    ap.add_argument("--report", default=os.path.join(CACHE, "adapter", "report.json"))
    ap.add_argument("--cache", default=os.path.join(CACHE, "adapter"), help="query/title/heading embedding cache")
    for n, (p, _, _) in DEV.items():
        ap.add_argument(f"--index-{n}", default=p)
    ap.add_argument("--index-nci-pdq", default=NCI_DEFAULT)
    ap.add_argument("--medquad-sample", default=DEV["medquad"][1])
    ap.add_argument("--variants", default="all", help="comma list of " + ",".join(VARIANTS) + " or 'all'")
    ap.add_argument("--final", default="cv-shared", help="variant whose setting trains the final map")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--tau", type=float, default=0.05)
    ap.add_argument("--l2", type=float, default=1e-3)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--corpus-batches", type=int, default=10, help="per corpus pair set per epoch (-1 = all)")
    ap.add_argument("--max-corpus-pairs", type=int, default=0, help="cap per corpus pair set (0 = all)")
    ap.add_argument("--force", action="store_true", help="write --out even without a measured gain")
    return ap.parse_args(argv)


def cfg_of(args):
    return dict(tau=args.tau, l2=args.l2, lr=args.lr, batch=args.batch, epochs=args.epochs,
                corpus_batches=args.corpus_batches)


def study(ctx, args, variants, out=print):
    """Runs the variants; returns the report dict (per-dataset means, deltas, bootstrap CIs)."""
    names = list(DEV)
    cfg = cfg_of(args)
    rep = {"baseline": {n: float(ctx["base"][n].mean()) for n in names} | {"nci-guard": float(ctx["guard_base"].mean())},
           "variants": {}}
    out(f"{'variant':<19}" + "".join(f"{n:>18}" for n in names) + f"{'nci-guard':>18}{'train s':>9}")
    out(f"{'baseline':<19}" + "".join(f"{ctx['base'][n].mean():>18.4f}" for n in names)
        + f"{ctx['guard_base'].mean():>18.4f}")
    for vn in variants:
        oof, guard, secs = run_variant(VARIANTS[vn], ctx, cfg, args)
        row, r = f"{vn:<19}", {"train_seconds": round(secs, 1)}
        cols = [(n, oof[n], ctx["base"][n]) for n in names]
        if guard is not None:
            cols.append(("nci-guard", guard, ctx["guard_base"]))
        for n, a, b in cols:
            d = a - b
            lo, hi = bootstrap_ci(d, args.seed)
            r[n] = {"ndcg10": round(float(a.mean()), 5), "delta": round(float(d.mean()), 5),
                    "ci95": [round(lo, 5), round(hi, 5)]}
            row += f"{a.mean():>10.4f} {d.mean():+.4f}{'*' if lo > 0 else ('!' if hi < 0 else ' ')}"
        if guard is None:
            row += f"{'-':>18}"
        rep["variants"][vn] = r
        out(row + f"{secs:>9.1f}")
    out("(out-of-fold nDCG@10, delta vs baseline; * / ! = paired-bootstrap 95% CI of the delta above / below 0)")
    return rep


def main():
    args = parse_args()
    T0 = time.time()
    ctx = build_ctx(args)
    t_prep = time.time() - T0
    variants = list(VARIANTS) if args.variants == "all" else [v for v in args.variants.split(",") if v]
    transfer = "lodo-shared" if VARIANTS[args.final]["corpus"] else "lodo-devonly"
    for v in (args.final, transfer):
        if v not in variants:
            variants.append(v)
    report = {"config": vars(args), "queries": {n: len(ctx["dev"][n].ids) for n in DEV}}
    report.update(study(ctx, args, variants))
    # Keep the map only where it measurably helps: a significant out-of-fold gain
    # on at least one set, no significant loss anywhere (including the nci-pdq
    # guard), and -- since the engine serves unseen questions -- no significant
    # loss when the map is trained without the tested dataset's questions (LODO).
    fin, tr = report["variants"][args.final], report["variants"][transfer]
    keys = [k for k in fin if k != "train_seconds"]
    tkeys = [k for k in tr if k != "train_seconds"]
    gain = (any(fin[k]["ci95"][0] > 0 for k in keys) and not any(fin[k]["ci95"][1] < 0 for k in keys)
            and not any(tr[k]["ci95"][1] < 0 for k in tkeys))
    report["final"] = {"variant": args.final, "transfer_check": transfer, "measured_gain": gain}
    if args.out and (gain or args.force):
        v = VARIANTS[args.final]
        if not v["shared"]:
            raise SystemExit("--final must be a shared (single-map) variant")
        sets = list(ctx["corpus_pairs"].values()) if v["corpus"] else []
        if v["dev"]:
            sets += [dev_pairs(ctx["corpora"][n], ctx["dev"][n], np.arange(len(ctx["dev"][n].ids))) for n in DEV]
        ad = train(sets, dict(cfg_of(args), rank=v["rank"]), args.seed)
        blob = ad.to_bytes()
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "wb") as f:
            f.write(blob)
        # sanity: the file reads back to the trained map
        assert np.allclose(read_adapter(args.out), ad.A(), atol=1e-6)
        report["final"].update(out=args.out, bytes=len(blob), rank=v["rank"], train_seconds=round(ad.train_seconds, 1),
                               sha1=hashlib.sha1(blob).hexdigest(),
                               in_sample={n: float(ndcg10(ctx["corpora"][n], ctx["dev"][n], ad.apply(ctx["dev"][n].Q)).mean())
                                          for n in DEV})
        print(f"wrote {args.out}: {len(blob)} bytes, rank {v['rank']}, trained in {ad.train_seconds:.1f}s "
              f"(sha1 {report['final']['sha1'][:12]})")
    else:
        print(f"final variant {args.final}: no measured gain -> no weight file written"
              if not gain else "no --out given: weight file not written")
    report["seconds"] = {"prepare": round(t_prep, 1), "total": round(time.time() - T0, 1)}
    if args.report:
        os.makedirs(os.path.dirname(os.path.abspath(args.report)), exist_ok=True)
        with open(args.report, "w") as f:
            json.dump(report, f, indent=1)
    print(f"total {time.time() - T0:.0f}s")


if __name__ == "__main__":
    main()
