#!/usr/bin/env python3
"""medsearch BM25 against Tantivy, bm25s and Xapian, in one process, on the same passages.

For each data set (MedQuAD with its 2,000-question dev sample; SciFact with the
train claims) medsearch builds its index from the corpus folder; its passages
(``idx.passage(i)``) are then exported and indexed in every peer as a title
field plus a body field, so all four engines rank the same units. Peers' passage
hits map to document ids; a document's rank is that of its best passage (the
first unique documents of the passage ranking), as medsearch's ``level="doc"``.

Per engine and data set:
  * build time (medsearch: read + chunk + index the folder, TBB-parallel;
    peers: index the exported passages held in memory);
  * quality: top-100 documents per query written as a TREC run and scored by
    ``build/bin/medsearch eval`` (nDCG@10, Recall@100, MRR@10);
  * latency: one query at a time on this thread, top-10 documents, after a
    warm-up pass; ``time.perf_counter_ns`` around the engine call only; p50,
    p90, p99 in microseconds and QPS (queries / summed latency). ``--rounds``
    rounds (engines in rotated order); per-query latency = minimum over rounds
    (the median over rounds is reported beside it).

Usage:
  .venv/bin/python bench/bm25_compare.py [--datasets medquad,scifact]
      [--output DIR] [--limit N] [--rounds R] [--build-repeats B] [--build-dir BUILD]

Writes DIR/bm25_compare.json, one TREC run per engine and data set, and the
evaluated queries as DIR/<dataset>_queries.jsonl, and each query's latency per
engine as DIR/<dataset>_latency_us.tsv.
"""

from __future__ import annotations

import os

# Single thread for every numeric runtime a peer might pull in; set before the
# imports that read them.
for _var in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import gc
import importlib.metadata
import json
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()
CLI = REPO / "build" / "bin" / "medsearch"  # replaced by --build-dir
MEDQUAD_SAMPLE = 2000

medsearch = None  # imported by load_medsearch() from the chosen build tree

import bm25s
import numpy as np
import Stemmer
import tantivy

# Debian's python3-xapian (built for /usr/bin/python3 3.11, same ABI); appended
# after the venv so nothing else is picked up from the system site-packages.
try:
    import xapian
except ImportError:
    sys.path.append("/usr/lib/python3/dist-packages")
    import xapian

try:  # bm25s uses numba when it is installed; we say which backend ran.
    import numba  # noqa: F401
    BM25S_BACKEND = "numba"
except ImportError:
    BM25S_BACKEND = "numpy"


def load_medsearch(build_dir: str | None) -> None:
    """medsearch from BUILD_DIR/python (and its CLI from BUILD_DIR/bin), or the installed package / ./build."""
    global medsearch, CLI
    if build_dir:
        build = Path(build_dir).resolve()
        sys.path.insert(0, str(build / "python"))
        CLI = build / "bin" / "medsearch"
    try:
        import medsearch as module
    except ImportError:
        if build_dir:
            raise
        sys.path.insert(0, str(REPO / "build" / "python"))
        import medsearch as module
    medsearch = module


# --------------------------------------------------------------------------- data

class Dataset:
    def __init__(self, name: str, folder: Path, queries: list[tuple[str, str]], qrels: Path):
        self.name = name
        self.folder = folder
        self.queries = queries  # (id, text), in evaluation order
        self.qrels = qrels


def read_queries(path: Path) -> list[tuple[str, str]]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                q = json.loads(line)
                out.append((str(q["_id"]), q["text"]))
    return out


def load_dataset(name: str, limit: int | None) -> Dataset:
    if name == "medquad":
        folder = SHARED_DATA / "medquad"
        all_queries = read_queries(folder / "queries.jsonl")
        by_id = dict(all_queries)
        sample = random.Random(0).sample([qid for qid, _ in all_queries], MEDQUAD_SAMPLE)
        queries = [(qid, by_id[qid]) for qid in sample]
        qrels = folder / "qrels.tsv"
    elif name == "scifact":
        folder = SHARED_DATA / "scifact"
        queries = read_queries(folder / "queries.train.jsonl")
        qrels = folder / "qrels.train.tsv"
    else:
        raise SystemExit(f"unknown data set {name!r} (medquad, scifact)")
    if limit:
        queries = queries[:limit]
    return Dataset(name, folder, queries, qrels)


_NOT_QUERY_TEXT = re.compile(r"[^\w\s-]|_")
_LOOSE_HYPHEN = re.compile(r"(?<![^\W_])-|-(?![^\W_])")  # a hyphen not between two word characters


def sanitize(query: str) -> str:
    """Letters, digits, whitespace and in-word hyphens; anything else becomes a space.

    Tantivy's and Xapian's query parsers give meaning to quotes, brackets, colons,
    '+', '*', a leading '-', ...; after this every question parses as free text.
    """
    q = _NOT_QUERY_TEXT.sub(" ", query)
    q = _LOOSE_HYPHEN.sub(" ", q)
    return " ".join(q.split())


# ------------------------------------------------------------------------ engines

class Engine:
    name = ""
    settings: dict = {}

    def build(self, ds: Dataset, passages: "Passages") -> None:
        raise NotImplementedError

    def search_docs(self, query: str, k: int) -> list[tuple[str, float]]:
        """Top-k documents (doc_id, score), best first."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class Passages:
    """medsearch's passages, the units every peer indexes."""

    def __init__(self, idx) -> None:
        self.titles: list[str] = []
        self.bodies: list[str] = []
        self.doc_ids: list[str] = []
        for i in range(len(idx)):
            p = idx.passage(i)
            self.titles.append(p.title)
            self.bodies.append(p.text)
            self.doc_ids.append(p.doc_id)

    def __len__(self) -> int:
        return len(self.doc_ids)


def best_passage_per_doc(search_passages: Callable[[int], list[tuple[int, float]]], doc_ids: Sequence[str],
                         k: int, total: int) -> list[tuple[str, float]]:
    """The first k distinct documents of a passage ranking, fetching more passages until there are k."""
    n = k
    while True:
        hits = search_passages(n)
        seen: set[str] = set()
        docs: list[tuple[str, float]] = []
        for pid, score in hits:
            d = doc_ids[pid]
            if d not in seen:
                seen.add(d)
                docs.append((d, score))
                if len(docs) == k:
                    return docs
        if len(hits) < n or n >= total:
            return docs
        n = min(2 * n, total)


class Medsearch(Engine):
    name = "medsearch"

    def __init__(self) -> None:
        self.idx = None
        self.settings = {"k1": 0.9, "b": 0.4,
                         "fields": "body (title + text for BEIR passages) + heading (title), heading_weight 0.4",
                         "level": "doc (native)", "input": "raw question"}

    def build(self, ds: Dataset, passages=None) -> None:
        self.idx = medsearch.Index.build({ds.name: str(ds.folder)})

    def search_docs(self, query: str, k: int) -> list[tuple[str, float]]:
        return [(h.doc_id, h.score) for h in self.idx.search(query, k=k, level="doc")]

    def timed_call(self, query: str, k: int) -> int:
        t0 = time.perf_counter_ns()
        self.idx.search(query, k=k, level="doc")
        return time.perf_counter_ns() - t0


class Tantivy(Engine):
    name = "tantivy"

    def __init__(self) -> None:
        self.settings = {"tokenizer": "en_stem (title, body)", "similarity": "BM25 k1=1.2 b=0.75 (fixed in tantivy)",
                         "query": "parse_query over [title, body], default OR", "index": "RAM, 1 writer thread, "
                         "1 segment", "search": "count=False", "input": "sanitized question"}

    def build(self, ds: Dataset, passages: Passages) -> None:
        sb = tantivy.SchemaBuilder()
        sb.add_text_field("title", tokenizer_name="en_stem")
        sb.add_text_field("body", tokenizer_name="en_stem")
        sb.add_unsigned_field("pid", stored=True)
        self.index = tantivy.Index(sb.build())
        writer = self.index.writer(heap_size=512 * 1024 * 1024, num_threads=1)
        for i, (title, body) in enumerate(zip(passages.titles, passages.bodies)):
            writer.add_document(tantivy.Document(title=title, body=body, pid=i))
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        self.searcher = self.index.searcher()
        self.doc_ids = passages.doc_ids
        self.total = len(passages)
        # With one segment the DocAddress is the insertion order: no stored-field fetch per hit.
        self.settings["segments"] = self.searcher.num_segments
        if self.searcher.num_segments != 1:
            raise RuntimeError(f"tantivy: {self.searcher.num_segments} segments, expected 1")
        probe = self.searcher.search(tantivy.Query.all_query(), min(self.total, 1000), count=False).hits
        for _, addr in probe[:: max(1, len(probe) // 50)]:
            if self.searcher.doc(addr)["pid"][0] != addr.doc:
                raise RuntimeError("tantivy: doc address is not the insertion order")
        self.settings["lowercased_reparses"] = 0

    def _query(self, q: str):
        try:
            return self.index.parse_query(q, ["title", "body"])
        except ValueError:  # a stray operator word (AND/OR/NOT/IN); parse it lowercased
            self.settings["lowercased_reparses"] += 1
            return self.index.parse_query(q.lower(), ["title", "body"])

    def search_docs(self, query: str, k: int) -> list[tuple[str, float]]:
        query_obj = self._query(query)
        return best_passage_per_doc(
            lambda n: [(a.doc, s) for s, a in self.searcher.search(query_obj, n, count=False).hits],
            self.doc_ids, k, self.total)


class Bm25s(Engine):
    name = "bm25s"

    def __init__(self) -> None:
        self.settings = {"method": "lucene", "k1": 0.9, "b": 0.4, "stopwords": "en (bm25s list)",
                         "stemmer": "PyStemmer english", "fields": "title + '\\n' + body (no fields in bm25s)",
                         "backend": BM25S_BACKEND, "n_threads": 0,
                         "note": "n_threads=0: retrieval runs on the calling thread (n_threads=1 adds a 1-worker "
                                 "pool per call)", "input": "raw question"}

    def build(self, ds: Dataset, passages: Passages) -> None:
        self.tokenizer = bm25s.tokenization.Tokenizer(stopwords="en", stemmer=Stemmer.Stemmer("english"))
        texts = [f"{t}\n{b}" for t, b in zip(passages.titles, passages.bodies)]
        tokens = self.tokenizer.tokenize(texts, return_as="tuple", show_progress=False)
        self.retriever = bm25s.BM25(method="lucene", k1=0.9, b=0.4, backend=BM25S_BACKEND)
        self.retriever.index(tokens, show_progress=False)
        self.doc_ids = passages.doc_ids
        self.total = len(passages)

    def search_docs(self, query: str, k: int) -> list[tuple[str, float]]:
        ids = self.tokenizer.tokenize([query], update_vocab=False, return_as="ids", show_progress=False)

        def passages(n: int):
            res = self.retriever.retrieve(ids, k=n, n_threads=0, backend_selection=BM25S_BACKEND,
                                          show_progress=False, return_as="tuple")
            docs, scores = res.documents[0], res.scores[0]
            return [(int(d), float(s)) for d, s in zip(docs, scores) if s > 0]

        return best_passage_per_doc(passages, self.doc_ids, k, self.total)


class Xapian(Engine):
    name = "xapian"

    def __init__(self) -> None:
        self.settings = {"stemmer": "english, STEM_SOME", "weight": "BM25Weight(k1=0.9, k2=0, k3=1, b=0.4, "
                         "min_normlen=0.5)", "index": "glass on local disk (tmp); title indexed with prefix S and "
                         "unprefixed, body unprefixed (Xapian's documented free-text + field set-up)",
                         "query": "QueryParser OP_OR, default flags, add_prefix('title', 'S')",
                         "input": "sanitized question"}
        self.tmp = None

    def build(self, ds: Dataset, passages: Passages) -> None:
        self.tmp = tempfile.mkdtemp(prefix="bm25_compare_xapian_")
        db = xapian.WritableDatabase(self.tmp, xapian.DB_CREATE_OR_OVERWRITE)
        tg = xapian.TermGenerator()
        tg.set_stemmer(xapian.Stem("english"))
        tg.set_stemming_strategy(xapian.TermGenerator.STEM_SOME)
        for title, body in zip(passages.titles, passages.bodies):
            doc = xapian.Document()
            tg.set_document(doc)
            tg.index_text(title, 1, "S")
            tg.index_text(title)
            tg.increase_termpos()
            tg.index_text(body)
            db.add_document(doc)  # docids 1..N in order: passage = docid - 1
        db.commit()
        db.close()
        self.db = xapian.Database(self.tmp)
        self.qp = xapian.QueryParser()
        self.qp.set_stemmer(xapian.Stem("english"))
        self.qp.set_stemming_strategy(xapian.QueryParser.STEM_SOME)
        self.qp.set_database(self.db)
        self.qp.set_default_op(xapian.Query.OP_OR)
        self.qp.add_prefix("title", "S")
        self.enquire = xapian.Enquire(self.db)
        self.enquire.set_weighting_scheme(xapian.BM25Weight(0.9, 0, 1, 0.4, 0.5))
        self.doc_ids = passages.doc_ids
        self.total = len(passages)
        self.settings["flagless_reparses"] = 0
        self.settings["index_bytes"] = sum(f.stat().st_size for f in Path(self.tmp).iterdir())

    def search_docs(self, query: str, k: int) -> list[tuple[str, float]]:
        try:
            q = self.qp.parse_query(query)
        except xapian.QueryParserError:
            self.settings["flagless_reparses"] += 1
            q = self.qp.parse_query(query, 0)
        self.enquire.set_query(q)
        return best_passage_per_doc(
            lambda n: [(m.docid - 1, m.weight) for m in self.enquire.get_mset(0, n)],
            self.doc_ids, k, self.total)

    def close(self) -> None:
        if self.tmp:
            self.db.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


def timed(engine: Engine, query: str, k: int) -> int:
    if isinstance(engine, Medsearch):
        return engine.timed_call(query, k)
    t0 = time.perf_counter_ns()
    engine.search_docs(query, k)
    return time.perf_counter_ns() - t0


# ------------------------------------------------------------------------ running

def write_run(path: Path, qids: Sequence[str], rankings: Sequence[list[tuple[str, float]]], tag: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for qid, ranking in zip(qids, rankings):
            for rank, (doc, score) in enumerate(ranking, 1):
                f.write(f"{qid} Q0 {doc} {rank} {score:.6f} {tag}\n")


def evaluate(qrels: Path, run: Path, queries_file: Path) -> dict[str, float]:
    out = subprocess.run([str(CLI), "eval", "--qrels", str(qrels), "--run", str(run), "--queries", str(queries_file)],
                         check=True, capture_output=True, text=True).stdout
    metrics = {}
    for line in out.splitlines():
        key, _, value = line.partition("\t")
        if value:
            metrics[key] = float(value)
    return metrics


def run_dataset(ds: Dataset, out_dir: Path, rounds: int, build_repeats: int) -> list[dict]:
    print(f"\n== {ds.name}: {len(ds.queries)} queries", flush=True)
    queries_file = out_dir / f"{ds.name}_queries.jsonl"
    with open(queries_file, "w", encoding="utf-8") as f:
        for qid, text in ds.queries:
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    qids = [qid for qid, _ in ds.queries]
    raw = [text for _, text in ds.queries]
    clean = [sanitize(text) for text in raw]

    engines: list[Engine] = [Medsearch(), Tantivy(), Bm25s(), Xapian()]
    build_s: dict[str, list[float]] = {e.name: [] for e in engines}

    def build(e: Engine, passages) -> None:
        # Build times are single-shot and noisy on a shared machine: the engine is built
        # `build_repeats` times and the fastest build counts (the last one is searched).
        for rep in range(build_repeats):
            if rep:
                e.close()
            gc.collect()
            t0 = time.perf_counter()
            e.build(ds, passages)
            build_s[e.name].append(time.perf_counter() - t0)
        print(f"  build {e.name}: {min(build_s[e.name]):.2f} s (best of {build_repeats})", flush=True)

    ms = engines[0]
    build(ms, None)
    passages = Passages(ms.idx)
    corpus_info = {"passages": len(passages), "documents": ms.idx.num_documents,
                   "medsearch_memory_bytes": ms.idx.stats().get("memory_bytes")}
    print(f"  {len(passages)} passages, {ms.idx.num_documents} documents", flush=True)
    for e in engines[1:]:
        build(e, passages)

    rows = []
    try:
        inputs = {e.name: clean if e.settings.get("input") == "sanitized question" else raw for e in engines}
        for e in engines:
            qs = inputs[e.name]
            # Quality: top-100 documents (this pass also warms the engine up).
            t0 = time.perf_counter()
            rankings = [e.search_docs(q, 100) for q in qs]
            run = out_dir / f"{ds.name}_{e.name}.trec"
            write_run(run, qids, rankings, e.name)
            metrics = evaluate(ds.qrels, run, queries_file)
            print(f"  {e.name}: quality pass {time.perf_counter() - t0:.1f} s, nDCG@10 {metrics['nDCG@10']:.4f}",
                  flush=True)
            rows.append({
                "engine": e.name, "dataset": ds.name, "queries": len(qs), "build_s": min(build_s[e.name]),
                "build_s_all": build_s[e.name],
                "ndcg_at_10": metrics.get("nDCG@10"), "recall_at_100": metrics.get("Recall@100"),
                "mrr_at_10": metrics.get("MRR@10"), "evaluated_queries": int(metrics.get("queries", 0)),
                "queries_without_results": sum(1 for r in rankings if not r), "run_file": run.name,
                "settings": e.settings,
            })
        # Latency: top-10 documents, one query at a time. Each round runs every engine over all queries
        # (a warm-up pass, then the timed pass), in a rotated order. A query's latency is its minimum over
        # the rounds: on a shared machine a call is now and then preempted for a scheduler tick or two
        # (4-9 ms here), more often the longer the call, and the minimum removes that without favouring an
        # engine. The median over the rounds is kept beside it.
        per_round: dict[str, list[list[int]]] = {e.name: [] for e in engines}
        for r in range(rounds):
            order = engines[r % len(engines):] + engines[:r % len(engines)]
            for e in order:
                qs = inputs[e.name]
                for q in qs:
                    e.search_docs(q, 10)
                gc.collect()
                gc.disable()
                try:
                    per_round[e.name].append([timed(e, q, 10) for q in qs])
                finally:
                    gc.enable()
            print(f"  latency round {r + 1}/{rounds}: " + ", ".join(
                f"{e.name} p50 {np.median(per_round[e.name][-1]) / 1000:.1f} us" for e in engines), flush=True)
        def summary(lat: np.ndarray) -> dict:
            return {"p50_us": float(np.percentile(lat, 50)), "p90_us": float(np.percentile(lat, 90)),
                    "p99_us": float(np.percentile(lat, 99)), "mean_us": float(lat.mean()),
                    "qps": float(len(lat) / (lat.sum() / 1e6))}

        best = {e.name: np.min(np.asarray(per_round[e.name], dtype=np.float64), axis=0) / 1000.0 for e in engines}
        middle = {e.name: np.median(np.asarray(per_round[e.name], dtype=np.float64), axis=0) / 1000.0
                  for e in engines}
        with open(out_dir / f"{ds.name}_latency_us.tsv", "w", encoding="utf-8") as f:
            f.write("query-id\t" + "\t".join(f"{e.name}_min\t{e.name}_median" for e in engines) + "\n")
            for i, qid in enumerate(qids):
                f.write(qid + "\t" + "\t".join(f"{best[e.name][i]:.1f}\t{middle[e.name][i]:.1f}" for e in engines)
                        + "\n")
        for row in rows:
            row.update(summary(best[row["engine"]]))
            row["median_of_rounds"] = summary(middle[row["engine"]])
            row["p50_us_per_round"] = [float(np.median(x)) / 1000.0 for x in per_round[row["engine"]]]
    finally:
        for e in engines:
            e.close()
    ms_p50 = rows[0]["p50_us"]
    for row in rows:
        row["medsearch_p50_over_engine_p50"] = ms_p50 / row["p50_us"]
        row["corpus"] = corpus_info
    return rows


def environment() -> dict:
    cpu = platform.processor()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True).stdout.strip()
        except OSError:
            return ""

    so = next(Path(medsearch.__file__).parent.glob("_core*.so"), None)
    return {
        "cpu_model": cpu, "logical_cpus": os.cpu_count(), "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": {
            "medsearch": medsearch.__version__, "medsearch_module": medsearch.__file__, "medsearch_cli": str(CLI),
            "repo_git_head": git("rev-parse", "--short", "HEAD"),
            "repo_git_modified_files": [line.split()[-1] for line in
                                        git("status", "--porcelain", "--untracked-files=no").splitlines()],
            "medsearch_module_mtime": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(so.stat().st_mtime))
            if so else None,
            "tantivy": version("tantivy"), "bm25s": version("bm25s"), "PyStemmer": version("PyStemmer"),
            "numpy": version("numpy"), "numba": version("numba"), "xapian": xapian.version_string(),
            "xapian_bindings": getattr(xapian, "__version__", None),
        },
        "bm25s_backend": BM25S_BACKEND,
        "threads": {k: os.environ.get(k) for k in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS")},
    }


def print_table(rows: list[dict]) -> None:
    head = ("engine", "dataset", "build s", "p50 us", "p90 us", "p99 us", "QPS", "nDCG@10", "R@100", "MRR@10",
            "medsearch p50 / p50")
    lines = [head]
    for r in rows:
        lines.append((r["engine"], r["dataset"], f"{r['build_s']:.2f}", f"{r['p50_us']:.1f}", f"{r['p90_us']:.1f}",
                      f"{r['p99_us']:.1f}", f"{r['qps']:.0f}", f"{r['ndcg_at_10']:.4f}", f"{r['recall_at_100']:.4f}",
                      f"{r['mrr_at_10']:.4f}", f"{r['medsearch_p50_over_engine_p50']:.3f}"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for n, line in enumerate(lines):
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", default="medquad,scifact", help="comma-separated: medquad, scifact")
    ap.add_argument("--output", default=str(REPO / "bench" / "results" / "bm25_compare"), help="output directory")
    ap.add_argument("--rounds", type=int, default=5,
                    help="latency rounds; a query's latency is its minimum (and median) over them")
    ap.add_argument("--build-repeats", type=int, default=3, help="builds per engine; the fastest counts")
    ap.add_argument("--limit", type=int, default=None, help="first N queries of each set (a quick run)")
    ap.add_argument("--build-dir", default=None,
                    help="medsearch build tree to measure (python/ and bin/medsearch); default: the installed "
                         "package or ./build")
    ap.add_argument("--note", default="", help="free text stored in the JSON (e.g. which commit --build-dir holds)")
    args = ap.parse_args()
    load_medsearch(args.build_dir)

    out_dir = Path(args.output).resolve()
    if out_dir == SHARED_DATA.parent or SHARED_DATA.parent in out_dir.parents:
        raise SystemExit(f"refusing to write under {SHARED_DATA.parent} (read-only shared data)")
    out_dir.mkdir(parents=True, exist_ok=True)
    if not CLI.exists():
        raise SystemExit(f"{CLI} not found: build it with cmake --build build --target medsearch_cli")

    env = environment()
    print(f"CPU {env['cpu_model']} ({env['logical_cpus']} logical), python {env['python']}, "
          f"bm25s backend {BM25S_BACKEND}", flush=True)
    print("versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()), flush=True)

    rows: list[dict] = []
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        load_before = os.getloadavg()
        rows.extend(run_dataset(load_dataset(name, args.limit), out_dir, args.rounds, args.build_repeats))
        env.setdefault("load_average_1_5_15", {})[name] = {"before": load_before, "after": os.getloadavg()}

    print()
    print_table(rows)
    result = {
        "benchmark": "bm25_compare", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "environment": env,
        "protocol": {
            "units": "medsearch passages (idx.passage(i)) indexed in each peer as title + body",
            "document_level": "best passage per document (first distinct documents of the passage ranking)",
            "quality": "top-100 documents per query, TREC run scored by build/bin/medsearch eval",
            "latency": "single thread, one query at a time, top-10 documents, perf_counter_ns around the engine "
                       "call (query analysis + search + passage->document mapping for peers); each round = a "
                       "warm-up pass then a timed pass per engine (rotated engine order), gc disabled while timing; "
                       "per-query latency = minimum over the rounds (median_of_rounds beside it); "
                       "QPS = queries / summed latency",
            "rounds": args.rounds,
            "build": "medsearch: Index.build from the corpus folder (reads JSON, chunks, indexes; TBB-parallel); "
                     "peers: index the exported passages from memory; fastest of --build-repeats builds",
            "build_repeats": args.build_repeats,
            "query_input": "medsearch and bm25s get the raw question; tantivy and xapian the sanitized one "
                           "(letters, digits, whitespace, in-word hyphens)",
            "limit": args.limit,
            "note": args.note,
        },
        "results": rows,
    }
    out = out_dir / "bm25_compare.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
