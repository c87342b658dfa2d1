"""medsearch.distributed on a local Ray cluster (started once per test session, 2 CPUs): a sharded
index answers as one medsearch.Index over the same documents (PDQ and SciFact, 4 shards, every mode,
both levels, with filters, after add and remove), survives shard actors being killed mid-query, and
refuses damaged files naming them. Vectors are hashed words (tests/python/shard_vectors.py), so no
encoder is needed; exact (flat) dense search everywhere."""
import json
import math
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

import medsearch

import ray  # noqa: E402  (tools/setup.sh installs it: requirements-distributed.txt)
from medsearch import distributed  # noqa: E402
from medsearch.distributed import ShardedIndex  # noqa: E402

from shard_vectors import TableEmbedder  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
EXACT = 10**9  # exact_below: flat dense search, so sharded and single answers must be identical
MODES = ["bm25", "dense", "hybrid", "rerank"]


@pytest.fixture(scope="session")
def ray_cluster():
    # Workers import shard_vectors (TableEmbedder) from here.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    distributed.connect(num_cpus=2)
    yield
    ray.shutdown()


def questions(shared, n):
    with open(shared / "pdq-questions" / "questions.jsonl", encoding="utf-8") as f:
        asked = [json.loads(line)["text"] for line in f][:n]
    with open(shared / "pdq-questions" / "unanswerable.jsonl", encoding="utf-8") as f:
        asked += [json.loads(line)["text"] for line in f][:5]
    return asked + ["what happens when first-line treatment for mesothelioma stops working", "chemo brain"]


def claims(shared, n):
    with open(shared / "scifact" / "queries.train.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f][:n]


def same(a, b, where=""):
    """The same hits in the same order with the same scores (relative 1e-6) and features."""
    assert a.mode == b.mode, where
    assert (math.isnan(a.coverage) and math.isnan(b.coverage)) or math.isclose(a.coverage, b.coverage, rel_tol=1e-6), where
    assert [h.passage_id for h in a] == [h.passage_id for h in b], where
    for x, y in zip(a, b):
        for field in ("score", "body_score", "heading_score", "dense_score"):
            assert math.isclose(getattr(x, field), getattr(y, field), rel_tol=1e-6, abs_tol=1e-9), (where, field, x, y)
        assert (x.features is None) == (y.features is None), where
        if x.features is not None:
            for name, value in x.features.items():
                assert math.isclose(value, y.features[name], rel_tol=1e-6, abs_tol=1e-7), (where, name)
        assert (x.url, x.heading_path, x.text, x.span, x.audience) == (y.url, y.heading_path, y.text, y.span, y.audience)


def both_ways(one, sharded, queries, filters_list, k=10):
    """Every mode, level and filter, through search() and search_batch()."""
    for mode in MODES:
        for level in ("passage", "doc"):
            for filters in filters_list:
                for q in queries[:6]:
                    same(one.search(q, k=k, mode=mode, level=level, filters=filters),
                         sharded.search(q, k=k, mode=mode, level=level, filters=filters), (q, mode, level, filters))
                want = one.search_batch(queries, k=k, mode=mode, level=level, filters=filters)
                got = sharded.search_batch(queries, k=k, mode=mode, level=level, filters=filters)
                for q, a, b in zip(queries, want, got):
                    same(a, b, (q, mode, level, filters, "batch"))


def build_pair(corpora, queries, added, tmp, shards=4):
    """One Index and a ShardedIndex over the same documents, with the same hashed-word vectors (for
    the documents `added` later too)."""
    plain = medsearch.Index.build(corpora)
    texts = [plain.embedding_text(p) for p in range(len(plain))] + embedding_texts(added, tmp)
    embedder = TableEmbedder(texts, queries)
    one = medsearch.Index.build(corpora, encoder=embedder(), exact_below=EXACT)
    sharded = ShardedIndex.build(corpora, shards=shards, path=tmp / "sharded", encoder=embedder,
                                 exact_below=EXACT, progress=False)
    return one, sharded


@pytest.fixture(scope="module")
def pdq_pair(ray_cluster, shared, tmp_path_factory):
    queries = questions(shared, 20) + ["vitamin D bone density fracture"]
    added = new_documents("nci-pdq", 6)
    one, sharded = build_pair({"nci-pdq": shared / "nci-pdq"}, queries, added, tmp_path_factory.mktemp("pdq"))
    yield one, sharded, queries, added
    sharded.close()


def test_pdq_sharded_answers_as_one_index_before_and_after_changes(pdq_pair):
    one, sharded, queries, added = pdq_pair
    assert (len(sharded), sharded.num_documents, sharded.num_shards) == (len(one), one.num_documents, 4)
    both_ways(one, sharded, queries, [None, {"audience": "patient"}, {"cancer_type": "mesothelioma"}])
    # Hits carry their source and section, to cite.
    top = sharded.search("what happens when first-line treatment for mesothelioma stops working", k=5)
    assert all(h.url.startswith("https://www.cancer.gov/") and h.heading_path and h.text for h in top)
    # Pipeline options and a filter value no document has.
    pipe = medsearch.Pipeline(fusion="rrf", candidates=20, max_per_doc=1, mmr=0.7)
    same(one.search(queries[0], k=8, mode="rerank", pipeline=pipe), sharded.search(queries[0], k=8, mode="rerank", pipeline=pipe))
    with pytest.raises(ValueError, match="nowhere"):
        sharded.search(queries[0], filters={"cancer_type": "nowhere"})
    with pytest.raises(ValueError, match="empty query"):
        sharded.search("   ")
    # Three guideline pages out, six documents in.
    pages = list(dict.fromkeys(one.passage(p).doc_id for p in range(0, len(one), 997)))[:3]
    changes_keep_the_same_answers(one, sharded, queries[:12], added, pages + ["new-2"])


def new_documents(corpus, n):
    return [{"doc_id": f"new-{i}", "corpus": corpus, "title": f"Vitamin D trial {i}",
             "body": f"Vitamin D supplementation and bone density in cohort {i}: fracture risk fell by {i} percent."}
            for i in range(n)]


def embedding_texts(documents, root):
    """The embedding texts of documents' passages (they need vectors too): from an index of them alone."""
    with open(root / "added.jsonl", "w", encoding="utf-8") as f:
        for d in documents:
            f.write(json.dumps({"_id": d["doc_id"], "title": d["title"], "text": d["body"]}) + "\n")
    extra = medsearch.Index.build({documents[0]["corpus"]: root / "added.jsonl"})
    return [extra.embedding_text(p) for p in range(len(extra))]


def changes_keep_the_same_answers(one, sharded, queries, added, gone):
    version = sharded.stats.version
    one.add(added)
    sharded.add(added)
    one.remove(gone)
    sharded.remove(gone)
    assert sharded.stats.version == version + 2
    assert (len(sharded), sharded.num_documents) == (len(one), one.num_documents)
    both_ways(one, sharded, queries, [None])


@pytest.fixture(scope="module")
def scifact_pair(ray_cluster, shared, tmp_path_factory):
    queries = claims(shared, 15) + ["vitamin D bone density fracture"]
    added = new_documents("scifact", 12)
    one, sharded = build_pair({"scifact": shared / "scifact"}, queries, added, tmp_path_factory.mktemp("scifact"))
    yield one, sharded, queries, added
    sharded.close()


def test_scifact_sharded_answers_as_one_index_before_and_after_changes(scifact_pair):
    one, sharded, queries, added = scifact_pair
    both_ways(one, sharded, queries, [None, {"corpus": "scifact"}])
    version = sharded.stats.version
    changes_keep_the_same_answers(one, sharded, queries, added, ["4983", "5836", "7912", "new-3", "new-7"])
    with pytest.raises(KeyError):
        sharded.remove(["no-such-doc"])
    assert (len(sharded), sharded.stats.version) == (len(one), version + 2)  # nothing changed
    # Reloaded from its directory (the changes were written through), it answers the same.
    reloaded = ShardedIndex.load(sharded.path, encoder=sharded._encoder_spec)
    try:
        for q in queries[:5]:
            same(one.search(q, mode="rerank"), reloaded.search(q, mode="rerank"), q)
    finally:
        reloaded.close()


def test_killing_shard_actors_loses_no_query_and_changes_no_answer(scifact_pair):
    _, sharded, queries, _ = scifact_pair
    expected = [sharded.search(q, k=10, mode="rerank") for q in queries]
    errors, answered = [], [0]
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            for q, want in zip(queries, expected):
                try:
                    same(want, sharded.search(q, k=10, mode="rerank"), q)
                    answered[0] += 1
                except Exception as e:  # noqa: BLE001 - collected and asserted below
                    errors.append(e)

    worker = threading.Thread(target=loop)
    worker.start()
    before = sharded.shard_pids()
    time.sleep(0.5)
    os.kill(before[1], signal.SIGKILL)
    time.sleep(1.0)
    ray.kill(sharded._actor(3), no_restart=False)
    time.sleep(4.0)
    stop.set()
    worker.join()
    after = sharded.shard_pids()
    assert not errors, errors[:3]
    assert answered[0] > 20
    assert after[1] != before[1] and after[3] != before[3] and after[0] == before[0]


@pytest.fixture()
def tiny_sharded(ray_cluster, small_corpus, tmp_path):
    s = ShardedIndex.build(small_corpus, shards=2, path=tmp_path / "tiny", progress=False)
    s.close()
    return tmp_path / "tiny"


def test_damaged_files_are_refused_naming_them(tiny_sharded):
    path = tiny_sharded
    stats = path / "collection.stats"
    good = stats.read_bytes()
    stats.write_bytes(good[:40] + bytes([good[40] ^ 0xFF]) + good[41:])
    with pytest.raises(medsearch.CorruptIndexError, match=str(stats)):
        ShardedIndex.load(path)
    stats.write_bytes(good)
    order = path / "shard-001.order.json"
    kept = order.read_text()
    order.write_text("[0]")
    with pytest.raises(Exception, match="shard-001.order.json"):
        ShardedIndex.load(path)
    order.write_text(kept)
    # A damaged file inside a shard's index: the shard's load names it.
    victim = max((p for p in (path / "shard-001").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    victim_bytes = victim.read_bytes()
    victim.write_bytes(victim_bytes[: len(victim_bytes) // 2])
    with pytest.raises(Exception, match=victim.name):
        ShardedIndex.load(path)
    victim.write_bytes(victim_bytes)
    manifest = path / "sharded.json"
    manifest.write_text("{not json")
    with pytest.raises(medsearch.CorruptIndexError, match="sharded.json"):
        ShardedIndex.load(path)
    shutil.rmtree(path / "shard-000")
    manifest.write_text(json.dumps({"format": "medsearch-sharded", "version": 1, "shards": 2, "stats_version": 1,
                                    "next_position": 5}))
    with pytest.raises(FileNotFoundError, match="shard-000"):
        ShardedIndex.load(path)


def test_build_refuses_bad_requests_and_reports_progress(ray_cluster, small_corpus, tmp_path):
    with pytest.raises(ValueError, match="no documents"):
        ShardedIndex.build(small_corpus, shards=16, path=tmp_path / "many", progress=False)
    assert not (tmp_path / "many").exists()  # nothing half-written left behind
    with pytest.raises(ValueError, match="shards"):
        ShardedIndex.build(small_corpus, shards=0, path=tmp_path / "none")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(FileExistsError):
        ShardedIndex.build(small_corpus, shards=2, path=tmp_path / "full")
    seen = []
    s = ShardedIndex.build(small_corpus, shards=2, path=tmp_path / "ok", progress=seen.append)
    try:
        assert seen and set(seen[-1]) == {0, 1} and all(st == "done" for st, _, _ in seen[-1].values())
        assert s.search("mesothelioma nivolumab", k=2)[0].doc_id
    finally:
        s.close()


def test_an_existing_cluster_by_address(tiny_sharded):
    """A head started with `ray start`, and a client process that connects to it by address."""
    env = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
    ray_bin = pathlib.Path(sys.executable).parent / "ray"
    temp = tempfile.mkdtemp(prefix="rh-", dir="/tmp")  # short: Ray's socket paths live under it
    head = subprocess.Popen([str(ray_bin), "start", "--head", "--block", "--port=6391", "--num-cpus=1",
                             "--include-dashboard=false", "--object-store-memory=134217728", f"--temp-dir={temp}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # The head takes a few seconds to come up; a client that connects too early gives up.
        deadline = time.monotonic() + 90
        while subprocess.run([str(ray_bin), "status", "--address=127.0.0.1:6391"], env=env,
                             capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, "the Ray head did not come up"
            time.sleep(1)
        script = ("from medsearch.distributed import ShardedIndex, connect\n"
                  "connect(address='127.0.0.1:6391')\n"
                  f"s = ShardedIndex.load({str(tiny_sharded)!r})\n"
                  "print(s.search('mesothelioma nivolumab', k=1)[0].doc_id)\ns.close()\n")
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=90)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip()
    finally:
        head.terminate()
        head.wait(timeout=60)
        shutil.rmtree(temp, ignore_errors=True)


def test_the_encoder_embeds_in_build_tasks_and_auto_finds_it_on_load(ray_cluster, small_corpus, tmp_path):
    """The built-in encoder by name in the build tasks, and encoder='auto' when loading: answers as one
    Index with that encoder (vectors embedded in other batches may differ in the last bits)."""
    from test_dense import needs_model  # noqa: F401  (skips without the model)
    try:
        encoder = medsearch.Encoder(model="medsearch-MiniLM-L6-v1")
    except FileNotFoundError:
        pytest.skip("model not installed (tools/fetch_model.sh)")
    one = medsearch.Index.build(small_corpus, encoder=encoder)
    s = ShardedIndex.build(small_corpus, shards=2, path=tmp_path / "enc", encoder="medsearch-MiniLM-L6-v1",
                           progress=False)
    s.close()
    s = ShardedIndex.load(tmp_path / "enc")  # encoder="auto": the model the shards' vectors were made with
    try:
        for q in ("nivolumab after platinum for mesothelioma", "aspirin and colorectal adenoma"):
            for mode in MODES:
                a, b = one.search(q, k=3, mode=mode), s.search(q, k=3, mode=mode)
                assert [h.passage_id for h in a] == [h.passage_id for h in b], (q, mode)
                assert all(math.isclose(x.score, y.score, rel_tol=1e-3, abs_tol=1e-4) for x, y in zip(a, b)), (q, mode)
                assert b.mode == mode
    finally:
        s.close()
