"""medsearch.PrecomputedEmbedder: your own model's vectors, looked up by text, wherever an Encoder goes."""
import numpy as np
import pytest

import medsearch


def unit(rows):
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def test_builds_and_queries_an_index_with_your_vectors(small_corpus, tmp_path):
    plain = medsearch.Index.build({"guides": small_corpus["guides"], "papers": small_corpus["papers"]})
    texts = [plain.embedding_text(p) for p in range(len(plain))]
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((len(texts), 24)).astype(np.float32)
    questions = ["what if my cancer comes back", "aspirin and colorectal adenoma"]
    qrows = rng.standard_normal((2, 24)).astype(np.float32)
    pe = medsearch.PrecomputedEmbedder(texts, rows, "my-model-v1", query_texts=questions, query_vectors=qrows)
    assert pe.dim == 24 and len(pe) == len(texts) and "my-model-v1" in repr(pe)

    index = medsearch.Index.build({"guides": small_corpus["guides"], "papers": small_corpus["papers"]}, encoder=pe)
    assert index.stats()["model_id"] == "my-model-v1"
    np.testing.assert_allclose(index.vectors(), unit(rows), atol=1e-6)
    for q, qv in zip(questions, qrows):
        hits = index.search(q, k=3, mode="dense", level="passage")
        exact = np.argsort(-(unit(rows) @ unit(qv)), kind="stable")[:3]
        assert [h.passage_id for h in hits] == [index.passage(int(p)).passage_id for p in exact]
        np.testing.assert_allclose([h.dense_score for h in hits], (unit(rows) @ unit(qv))[exact], atol=1e-5)
    with pytest.raises(ValueError, match="no query vector"):
        index.search("a question nobody embedded", mode="dense")
    # Saved and loaded, the index takes the same embedder back (same model_id).
    index.save(tmp_path / "idx")
    loaded = medsearch.Index.load(tmp_path / "idx", encoder=pe)
    assert [h.passage_id for h in loaded.search(questions[0], mode="dense")] == \
        [h.passage_id for h in index.search(questions[0], mode="dense")]


def test_vectors_are_used_in_place_and_served_normalised():
    rows = np.array([[3.0, 4.0], [0.0, 2.0]], dtype=np.float32)
    pe = medsearch.PrecomputedEmbedder(["a", "b"], rows, "m")
    np.testing.assert_allclose(pe.embed(["b", "a"]), [[0, 1], [0.6, 0.8]], atol=1e-7)
    rows[0] = [1.0, 0.0]  # float32, C-contiguous: no copy was made
    np.testing.assert_allclose(pe.embed(["a"]), [[1, 0]])
    as64 = medsearch.PrecomputedEmbedder(["a", "b"], rows.astype(np.float64), "m")  # converted once
    np.testing.assert_allclose(as64.embed(["a"]), [[1, 0]])
    with pytest.raises(ValueError, match="no passage vector"):
        pe.embed(["c"])
    with pytest.raises(ValueError, match="no query vector"):
        pe.embed(["a"], kind="query")  # passages and queries are separate tables


@pytest.mark.parametrize("args, message", [
    ((["a"], np.ones((2, 3), np.float32), "m"), "rows for 1 texts"),
    ((["a", "b"], np.ones(6, np.float32), "m"), "2-D"),
    ((["a", "a"], np.ones((2, 3), np.float32), "m"), "repeats"),
    ((["a", "b"], np.array([[1, 0], [np.nan, 1]], np.float32), "m"), "NaN"),
    ((["a", "b"], np.array([[1, 0], [0, 0]], np.float32), "m"), "zeros"),
    ((["a"], np.ones((1, 3), np.float32), ""), "model_id"),
    (([], np.ones((0, 3), np.float32), "m"), "no texts"),
])
def test_bad_tables_are_clear_errors(args, message):
    with pytest.raises(ValueError, match=message):
        medsearch.PrecomputedEmbedder(*args)


def test_query_table_must_match(small_corpus):
    rows = np.ones((1, 3), np.float32)
    with pytest.raises(ValueError, match="go together"):
        medsearch.PrecomputedEmbedder(["a"], rows, "m", query_texts=["q"])
    with pytest.raises(ValueError, match="dimension 2"):
        medsearch.PrecomputedEmbedder(["a"], rows, "m", query_texts=["q"], query_vectors=np.ones((1, 2), np.float32))
    with pytest.raises(TypeError):
        medsearch.Index.build(small_corpus["papers"], encoder="not an embedder")
