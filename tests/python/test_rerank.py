"""The hybrid/rerank pipeline through Python: Results with coverage, explanations,
pipeline options, candidate pools, reranker models; with the real encoder
(skipped without it). The default corpus's main question runs on the cached
index tools/main.sh builds, when it is there."""
import json
import math
import os
import pathlib

import numpy as np
import pytest

import medsearch

from test_dense import MODEL_DIR, encoder, needs_model  # noqa: F401  (fixture)

ROOT = pathlib.Path(__file__).resolve().parents[2]
PDQ_INDEX = pathlib.Path(os.environ.get("MEDSEARCH_PDQ_INDEX", pathlib.Path.home() / ".cache/medsearch/indexes/nci-pdq"))


@pytest.fixture(scope="module")
def dense_index(encoder, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("rerank")
    guides = root / "guides"
    guides.mkdir()
    topics = {
        "meso": ("Mesothelioma Treatment", "Treatment of Recurrent Malignant Mesothelioma",
                 "Second-line options include gemcitabine with ramucirumab, nivolumab and vinorelbine."),
        "brain": ("Cognitive Impairment", "Memory problems after chemotherapy",
                  "Chemo brain: trouble remembering and concentrating after cancer treatment."),
        "fert": ("Fertility Issues", "Preserving fertility",
                 "Sperm banking and egg freezing before treatment may allow having children later."),
    }
    for name, (title, heading, text) in topics.items():
        for audience in ("hp", "patient"):
            (guides / f"{name}-{audience}.md").write_text(
                f"---\ntitle: {title}\nurl: https://www.cancer.gov/types/{name}/{audience}/x\n---\n\n"
                f"# {title}\n\n## {heading}\n\n{text}\n\n## Other\n\nUnrelated words about staging and tests.\n",
                encoding="utf-8")
    return medsearch.Index.build({"guides": guides}, encoder=encoder)


@needs_model
def test_rerank_is_the_default_and_explains_itself(dense_index):
    r = dense_index.search("trouble remembering things after chemo", k=4)
    assert isinstance(r, list) and isinstance(r, medsearch.Results) and r.mode == "rerank"
    assert 0.0 < r.coverage < 1.0
    assert "brain" in r[0].url
    for h in r:
        assert set(h.features) == set(medsearch.feature_names())
        assert math.isclose(sum(h.contributions.values()) + dense_index.reranker_base, h.score, abs_tol=1e-4)
    assert [h.score for h in r] == sorted((h.score for h in r), reverse=True)
    bm25 = dense_index.search("chemo brain", mode="bm25")
    assert bm25.mode == "bm25" and math.isnan(bm25.coverage) and bm25[0].features is None
    hybrid = dense_index.search("chemo brain", mode="hybrid")
    assert hybrid[0].features is not None and hybrid[0].contributions is None


@needs_model
def test_pipeline_options(dense_index):
    q = "having children after cancer"
    one_per_doc = dense_index.search(q, k=6, pipeline=medsearch.Pipeline(max_per_doc=1))
    docs = [h.doc_id for h in one_per_doc]
    assert len(docs) == len(set(docs))
    rrf = dense_index.search(q, mode="hybrid", pipeline=medsearch.Pipeline(fusion="rrf"))
    convex = dense_index.search(q, mode="hybrid", pipeline=medsearch.Pipeline(fusion="convex", bm25_weight=1.0))
    assert rrf and convex
    bm25 = dense_index.search(q, mode="bm25", pipeline=medsearch.Pipeline(max_per_doc=0))
    lexical = dense_index.search(q, mode="hybrid", pipeline=medsearch.Pipeline(bm25_weight=1.0, max_per_doc=0))
    assert [h.number for h in lexical][: len(bm25)] == [h.number for h in bm25][: len(lexical)]
    # MMR keeps the hp/patient copies of one paragraph from both topping the list.
    plain = dense_index.search(q, k=4, pipeline=medsearch.Pipeline(max_per_doc=0))
    diverse = dense_index.search(q, k=4, pipeline=medsearch.Pipeline(max_per_doc=0, mmr=0.3))
    assert len({h.text for h in plain}) < 4 and len({h.text for h in diverse}) == 4
    assert diverse[0].number == plain[0].number
    for bad in (dict(fusion="mean"), dict(candidates=0)):
        with pytest.raises(ValueError):
            medsearch.Pipeline(**bad)
    with pytest.raises(ValueError, match="mmr"):
        medsearch.Pipeline(mmr=2.0)
    with pytest.raises(ValueError, match="bm25_weight"):
        medsearch.Pipeline(bm25_weight=-1.0)
    batch = dense_index.search_batch([q, "chemo brain"], k=3)
    assert [b.mode for b in batch] == ["rerank", "rerank"] and all(0 < b.coverage < 1 for b in batch)
    assert [h.number for h in batch[0]] == [h.number for h in dense_index.search(q, k=3)]


@needs_model
def test_candidate_pool_and_reranker_models(dense_index, tmp_path):
    passages, features = dense_index.candidate_pool("chemo brain", candidates=5)
    assert passages.dtype == np.uint32 and features.shape == (len(passages), len(medsearch.feature_names()))
    assert len(set(passages.tolist())) == len(passages) <= 10
    doc = dense_index.doc_number(int(passages[0]))
    rest, _ = dense_index.candidate_pool("chemo brain", candidates=5, exclude_documents=[doc])
    assert all(dense_index.doc_number(int(p)) != doc for p in rest)
    with pytest.raises(ValueError, match="out of range"):
        dense_index.candidate_pool("chemo brain", exclude_documents=[10**6])
    # A model that ranks by BM25 alone, loaded from a file; then back to the built-in one.
    names = medsearch.feature_names()
    n = len(names)
    weights = [1.0 if f == "bm25" else 0.0 for f in names]
    model = {"format": "medsearch-reranker", "version": 1, "name": "bm25-only", "features": names,
             "model": {"type": "linear", "mean": [0.0] * n, "scale": [1.0] * n, "weights": weights, "bias": 0.0},
             "coverage": {"mean": [0.0] * 8, "scale": [1.0] * 8, "weights": [0.0] * 8, "bias": 0.0}}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(model))
    builtin = dense_index.reranker_name
    dense_index.set_reranker(path)
    try:
        assert dense_index.reranker_name == "bm25-only"
        r = dense_index.search("gemcitabine ramucirumab", k=3)
        assert all(math.isclose(h.score, h.features["bm25"], rel_tol=1e-6) for h in r)
        assert r.coverage == 0.5
    finally:
        dense_index.set_reranker(None)
    assert dense_index.reranker_name == builtin
    path.write_text(json.dumps({**model, "features": names[::-1]}))
    with pytest.raises(ValueError, match="feature set"):
        dense_index.set_reranker(path)
    with pytest.raises(OSError):
        dense_index.set_reranker(tmp_path / "missing.json")


def load_cached_pdq_index():
    """The index tools/main.sh keeps in the cache; skips when it was written by an
    older index format (tools/main.sh builds it again)."""
    try:
        return medsearch.Index.load(PDQ_INDEX)
    except medsearch.OldFormatError as e:
        pytest.skip(f"the cached default-corpus index is of an older format (run tools/main.sh): {e}")


@pytest.mark.skipif(not (PDQ_INDEX / "CURRENT").exists() or not (MODEL_DIR / "model.safetensors").exists(),
                    reason="the default-corpus index with vectors (tools/main.sh) is not built here")
def test_main_question_on_the_default_corpus():
    index = load_cached_pdq_index()
    if not index.has_vectors:
        pytest.skip("cached index has no vectors")
    r = index.search("what happens when first-line treatment for mesothelioma stops working", k=3)
    assert r.mode == "rerank"
    assert "Treatment of Recurrent Malignant Mesothelioma" in r[0].heading_path, [h.heading_path for h in r]
    assert r.coverage >= 0.5


@pytest.mark.skipif(not (PDQ_INDEX / "CURRENT").exists() or not (MODEL_DIR / "model.safetensors").exists(),
                    reason="the default-corpus index with vectors (tools/main.sh) is not built here")
def test_cli_says_when_the_corpus_probably_does_not_answer():
    import subprocess
    from conftest import CLI

    load_cached_pdq_index()

    def search(q):
        return subprocess.run([str(CLI), "search", str(PDQ_INDEX), q, "-k", "3"], capture_output=True, text=True,
                              check=True).stdout

    # Not among the development questions the coverage model was trained on.
    off_topic = search("How often should I change the oil in my car, and which brand of oil is best?")
    assert "The corpus probably does not answer this question" in off_topic, off_topic
    answered = search("what happens when first-line treatment for mesothelioma stops working")
    assert "does not answer" not in answered and "may not answer" not in answered, answered
