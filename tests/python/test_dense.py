"""The encoder and the dense side of the index, with the real model (skipped without it)."""
import os
import pathlib
import threading

import numpy as np
import pytest

import medsearch

MODEL_DIR = pathlib.Path(
    os.environ.get("MEDSEARCH_MODEL_DIR", pathlib.Path.home() / ".cache/medsearch/models/all-minilm-l6-v2")
)
needs_model = pytest.mark.skipif(not (MODEL_DIR / "model.safetensors").exists(), reason="model not fetched")


@pytest.fixture(scope="module")
def encoder():
    if not (MODEL_DIR / "model.safetensors").exists():
        pytest.skip("model not fetched (tools/fetch_model.sh)")
    return medsearch.Encoder(model_dir=MODEL_DIR)


@needs_model
def test_encoder_shapes_norms_and_batch_consistency(encoder):
    texts = ["recurrent mesothelioma", "", "   ", "Nivolumab after platinum chemotherapy " * 40, "東京 ≥50% 5-FU"]
    batch = encoder.embed(texts)
    assert batch.shape == (5, encoder.dim) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    one_by_one = np.vstack([encoder.embed([t]) for t in texts])
    np.testing.assert_allclose(batch, one_by_one, atol=1e-5)
    np.testing.assert_allclose(batch[1], batch[2], atol=1e-6)  # blank texts embed as [CLS][SEP]
    ids = encoder.tokenize("Recurrent mesothelioma")
    assert ids[0] == 101 and ids[-1] == 102
    assert len(encoder.tokenize("word " * 1000)) == encoder.max_tokens
    with pytest.raises(ValueError, match="kind"):
        encoder.embed(["x"], kind="document")
    np.testing.assert_allclose(encoder.embed(texts, threads=1), batch, atol=1e-6)  # one thread: other batches
    with pytest.raises(ValueError, match="threads"):
        encoder.embed(["x"], threads=0)


@needs_model
def test_related_texts_are_closer(encoder):
    q = encoder.embed(["chemo brain"], kind="query")[0]
    d = encoder.embed(["Cognitive impairment after chemotherapy", "Tomato harvest in Spain"])
    assert q @ d[0] > q @ d[1] + 0.2


@needs_model
def test_concurrent_embed_is_safe(encoder):
    texts = [f"passage {i} about lung cancer and PD-L1" for i in range(40)]
    expected = encoder.embed(texts)
    results = [None] * 4

    def work(i):
        results[i] = encoder.embed(texts)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_allclose(r, expected, atol=1e-6)


@needs_model
def test_precisions_agree_and_are_named(monkeypatch):
    f32 = medsearch.Encoder(model_dir=MODEL_DIR, precision="float32")
    assert f32.precision == "float32" and "float32" in repr(f32)
    texts = ["recurrent malignant mesothelioma second-line options", "chemo brain", "東京 ≥50% 5-FU " * 30]
    reference = f32.embed(texts)
    try:
        bf16 = medsearch.Encoder(model_dir=MODEL_DIR, precision="bfloat16")
    except ValueError as e:  # a CPU without AMX-BF16 says so
        assert "not available" in str(e)
        bf16 = None
    if bf16 is not None:
        assert bf16.precision == "bfloat16" and bf16.model_id == f32.model_id
        got = bf16.embed(texts)
        assert (np.sum(got * reference, axis=1) >= 0.999).all()
        one_by_one = np.vstack([bf16.embed([t]) for t in texts])
        np.testing.assert_array_equal(got, one_by_one)
    # auto picks one of the two; the environment variable is the default.
    assert medsearch.Encoder(model_dir=MODEL_DIR, precision="auto").precision in ("float32", "bfloat16")
    monkeypatch.setenv("MEDSEARCH_ENCODER_PRECISION", "float32")
    assert medsearch.Encoder(model_dir=MODEL_DIR).precision == "float32"
    monkeypatch.setenv("MEDSEARCH_ENCODER_PRECISION", "float16")
    with pytest.raises(ValueError, match="MEDSEARCH_ENCODER_PRECISION"):
        medsearch.Encoder(model_dir=MODEL_DIR)
    with pytest.raises(ValueError, match="precision 'int4'"):
        medsearch.Encoder(model_dir=MODEL_DIR, precision="int4")


def test_missing_model_dir_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="fetch_model"):
        medsearch.Encoder(model_dir=tmp_path)


@needs_model
def test_index_with_encoder_dense_and_hybrid(encoder, small_corpus, tmp_path):
    index = medsearch.Index.build({"guides": small_corpus["guides"], "papers": small_corpus["papers"]}, encoder=encoder)
    assert index.has_vectors and index.stats()["model_id"] == encoder.model_id
    assert index.stats()["dense_index"] == "flat"  # below BuildOptions.exact_below passages
    for mode in ("dense", "hybrid"):
        hits = index.search("what if my cancer comes back", k=3, mode=mode)
        assert "types/meso-patient.md#0" in [h.passage_id for h in hits], (mode, [h.passage_id for h in hits])
        assert hits[0].dense_score > 0
    index.save(tmp_path / "idx")
    loaded = medsearch.Index.load(tmp_path / "idx", encoder=encoder)
    q = "aspirin and colorectal adenoma"
    assert [h.passage_id for h in loaded.search(q, mode="hybrid")] == [h.passage_id for h in index.search(q, mode="hybrid")]
    # Your own vectors: passage rows and a query vector.
    rows = encoder.embed([index.embedding_text(p) for p in range(len(index))])
    own = medsearch.Index.build(small_corpus["papers"])
    with pytest.raises(ValueError, match="rows"):
        own.attach_vectors(rows)
    rows = encoder.embed([own.embedding_text(p) for p in range(len(own))])
    own.attach_vectors(rows, model_id="mine")
    qv = encoder.embed([q], kind="query")[0]
    assert own.search(q, mode="dense", query_vector=qv)[0].doc_id == "p1"
    with pytest.raises(ValueError, match="dimensions"):
        own.search(q, mode="dense", query_vector=qv[:10])


CACHE_MODELS = pathlib.Path(os.environ.get("MEDSEARCH_CACHE", pathlib.Path.home() / ".cache/medsearch")) / "models"
needs_both_models = pytest.mark.skipif(
    not all((CACHE_MODELS / f / "model.safetensors").exists() for f in ("all-minilm-l6-v2", "medsearch-minilm-l6-v1")),
    reason="models not fetched (tools/fetch_model.sh)")


@needs_both_models
def test_models_by_name_and_an_index_remembers_its_model(small_corpus, tmp_path, monkeypatch):
    monkeypatch.delenv("MEDSEARCH_MODEL_DIR", raising=False)
    base = medsearch.Encoder(model="all-MiniLM-L6-v2", precision="float32")
    tuned = medsearch.Encoder(model="medsearch-MiniLM-L6-v1", precision="float32")
    assert base.model_id.startswith("all-MiniLM-L6-v2@") and tuned.model_id.startswith("medsearch-MiniLM-L6-v1@")
    assert medsearch.Encoder(precision="float32").model_id == tuned.model_id  # the default
    texts = ["what if my cancer comes back", "Second-line options include nivolumab."]
    a, b = base.embed(texts), tuned.embed(texts)
    assert np.all(np.sum(a * b, axis=1) > 0.8) and not np.allclose(a, b, atol=1e-3)  # related, not the same model
    with pytest.raises(ValueError, match="all-MiniLM-L6-v2"):
        medsearch.Encoder(model="bge-small-en")
    with pytest.raises(ValueError, match="not both"):
        medsearch.Encoder(model="all-MiniLM-L6-v2", model_dir=CACHE_MODELS / "all-minilm-l6-v2")
    # An index built with the unmodified model, loaded with encoder="auto": queries are
    # embedded by that model, not the default one.
    built = medsearch.Index.build({"guides": small_corpus["guides"]}, encoder=base)
    built.save(tmp_path / "idx")
    loaded = medsearch.Index.load(tmp_path / "idx")
    assert loaded.stats()["model_id"] == base.model_id
    q = "what if my cancer comes back"
    got = loaded.search(q, k=3, mode="dense")
    want = built.search(q, k=3, mode="dense")
    assert [h.passage_id for h in got] == [h.passage_id for h in want]
    assert got[0].dense_score == pytest.approx(want[0].dense_score, abs=2e-3)  # bfloat16 where the CPU has it
