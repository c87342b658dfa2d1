"""Hardening (issue "hardening", item 6): bad input through Python raises a clear
Python exception (ValueError, TypeError, IndexError, OverflowError, OSError and
their subclasses) and never crashes the interpreter or allocates absurd memory.

A crash anywhere here takes pytest down with it, so the file runs in-process.
Results of converted input (float64, ints, strided / transposed / Fortran
arrays) must equal those of the contiguous float32 copy.
"""
import gc
import json
import os
import pathlib
import shutil
import time

import numpy as np
import pytest

import medsearch
from medsearch import CorruptIndexError, Index, Pipeline, VectorIndex, WordPieceTokenizer

MODEL_DIR = pathlib.Path(
    os.environ.get("MEDSEARCH_MODEL_DIR", pathlib.Path.home() / ".cache/medsearch/models/all-minilm-l6-v2")
)

# What "a clear Python exception" means for a bad argument.
BAD_ARG = (ValueError, TypeError, OverflowError)
SURROGATES = ["\ud800", "ok \udfff tail", "\udcff"]
DIM = 8
HUGE_K = [10**9, 2**32 - 1, 2**40]
TIME_LIMIT = 10.0  # seconds for any single huge input on a loaded 2-core machine


class Timer:
    def __enter__(self):
        self.t = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.perf_counter() - self.t
        assert self.elapsed < TIME_LIMIT, f"took {self.elapsed:.1f} s"


def answers_or_raises(fn, *exc):
    """Calls fn(); returns its value, or None if it raised one of exc (default BAD_ARG)."""
    try:
        return fn()
    except exc or BAD_ARG:
        return None


def unaligned(a):
    """A C-contiguous float32 copy of `a` whose data pointer is not 4-byte aligned."""
    a = np.asarray(a, dtype=np.float32)
    buf = np.zeros(a.nbytes + 1, dtype=np.uint8)
    out = buf[1:].view(np.float32).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned and out.flags.c_contiguous
    return out


def layouts(a):
    """Non-contiguous, converted and oddly laid out versions of the 1-d or 2-d float32 array `a`."""
    wide = np.zeros(tuple(3 * d for d in a.shape), dtype=np.float32)
    wide[tuple(slice(None, None, 3) for _ in a.shape)] = a
    out = {
        "float64": a.astype(np.float64),
        "big-endian": a.astype(">f4"),
        "strided": wide[tuple(slice(None, None, 3) for _ in a.shape)],
        "negative strides": a[::-1].copy()[::-1],
        "unaligned": unaligned(a),
        "read-only": np.frombuffer(a.tobytes(), dtype=np.float32).reshape(a.shape),
        "list": a.tolist(),
        "object": a.astype(object),
    }
    if a.ndim == 2:
        out["transposed"] = np.ascontiguousarray(a.T).T
        out["fortran"] = np.asfortranarray(a)
    else:
        col = np.zeros((a.shape[0], 2), dtype=np.float32, order="F")
        col[:, 1] = a
        out["column of a Fortran array"] = col[:, 1]
    return out


def unit_rows(n, dim=DIM, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# --------------------------------------------------------------------------- Index fixtures


@pytest.fixture()
def index(small_corpus):
    return Index.build({"guides": small_corpus["guides"], "papers": small_corpus["papers"]})


@pytest.fixture()
def dense_index(index):
    index.attach_vectors(unit_rows(len(index)), model_id="test-vectors")
    return index


def qvec(seed=7):
    return unit_rows(1, seed=seed)[0]


# --------------------------------------------------------------------------- Index.attach_vectors


def test_attach_vectors_converted_dtypes_and_layouts_match_contiguous(index):
    n = len(index)
    base = unit_rows(n)
    index.attach_vectors(base, model_id="m")
    expected = index.vectors().copy()
    for name, v in layouts(base).items():
        index.attach_vectors(v, model_id="m")
        np.testing.assert_allclose(index.vectors(), expected, atol=1e-6, err_msg=name)
    # ints are converted too (documented: any numeric input becomes float32).
    ints = np.arange(n * DIM, dtype=np.int64).reshape(n, DIM) + 1
    index.attach_vectors(ints, model_id="m")
    np.testing.assert_allclose(index.vectors(), ints / np.linalg.norm(ints, axis=1, keepdims=True), atol=1e-6)


def test_attach_vectors_bad_shapes_and_types(index):
    n = len(index)
    bad = [
        np.zeros(DIM, dtype=np.float32),  # 1-d
        np.zeros((n + 1, DIM), dtype=np.float32),  # wrong rows
        np.zeros((n - 1, DIM), dtype=np.float32),
        np.zeros((0, DIM), dtype=np.float32),  # zero rows
        np.zeros((n, 0), dtype=np.float32),  # zero dim
        np.zeros((n, DIM, 1), dtype=np.float32),  # 3-d
        np.float32(1.0),  # 0-d
        np.array([["a"] * DIM] * n),  # strings
        np.array([[None] * DIM] * n, dtype=object),  # objects that are not numbers
        "not an array",
        None,
        [[1.0, 2.0], [3.0]],  # ragged
    ]
    for v in bad:
        with pytest.raises(BAD_ARG):
            index.attach_vectors(v, model_id="m")
    assert not index.has_vectors
    assert index.search("mesothelioma", mode="bm25")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_attach_vectors_rejects_non_finite(index, value):
    v = unit_rows(len(index))
    v[len(index) // 2, 3] = value
    with pytest.raises(ValueError, match="NaN or inf"):
        index.attach_vectors(v, model_id="m")
    assert not index.has_vectors


def test_attach_vectors_all_zero_rows_do_not_crash(index):
    index.attach_vectors(np.zeros((len(index), DIM), dtype=np.float32), model_id="zeros")
    hits = answers_or_raises(lambda: index.search("x", mode="dense", query_vector=qvec()), ValueError)
    assert hits is None or all(np.isfinite(h.score) for h in hits)


def test_attach_vectors_bad_model_id(index):
    with pytest.raises(BAD_ARG):
        index.attach_vectors(unit_rows(len(index)), model_id="\ud800")
    with pytest.raises(TypeError):
        index.attach_vectors(unit_rows(len(index)), model_id=None)


# --------------------------------------------------------------------------- query vectors


def test_query_vector_conversions_match_contiguous(dense_index):
    q = qvec()
    expected = [(h.number, h.score) for h in dense_index.search("", k=5, mode="dense", query_vector=q)]
    assert expected
    for name, v in layouts(q).items():
        got = [(h.number, h.score) for h in dense_index.search("", k=5, mode="dense", query_vector=v)]
        assert [g[0] for g in got] == [e[0] for e in expected], name
        np.testing.assert_allclose([g[1] for g in got], [e[1] for e in expected], atol=1e-5, err_msg=name)


@pytest.mark.parametrize("mode", ["dense", "hybrid", "rerank"])
def test_bad_query_vectors(dense_index, mode):
    bad = [
        np.zeros(DIM - 1, dtype=np.float32),  # wrong dim
        np.zeros(DIM + 1, dtype=np.float32),
        np.zeros((1, DIM), dtype=np.float32),  # 2-d
        np.zeros((1, 1, DIM), dtype=np.float32),  # 3-d
        np.float32(0.5),  # 0-d
        np.array(["a"] * DIM),
        np.array([None] * DIM, dtype=object),
        "query",
        {"a": 1},
    ]
    for v in bad:
        with pytest.raises(BAD_ARG):
            dense_index.search("mesothelioma", mode=mode, query_vector=v)
    for value in (np.nan, np.inf, -np.inf):
        v = qvec()
        v[2] = value
        with pytest.raises(ValueError, match="NaN or inf"):
            dense_index.search("mesothelioma", mode=mode, query_vector=v)
    # An empty vector is no vector: without an encoder, the query cannot be embedded.
    with pytest.raises(ValueError):
        dense_index.search("mesothelioma", mode=mode, query_vector=np.zeros(0, dtype=np.float32))
    # A zero vector is finite: answer or refuse, never crash.
    hits = answers_or_raises(lambda: dense_index.search("mesothelioma", mode=mode, query_vector=np.zeros(DIM)))
    assert hits is None or all(not np.isnan(h.score) for h in hits)


def test_dense_modes_without_vectors_or_encoder(index):
    for mode in ("dense", "hybrid", "rerank"):
        with pytest.raises(ValueError):
            index.search("mesothelioma", mode=mode)
        with pytest.raises(ValueError):
            index.search("mesothelioma", mode=mode, query_vector=qvec())


def test_dense_index_without_encoder_needs_query_vector(dense_index):
    for mode in ("dense", "hybrid", "rerank", "auto"):
        with pytest.raises(ValueError):
            dense_index.search("mesothelioma", mode=mode)


# --------------------------------------------------------------------------- query text


@pytest.mark.parametrize("query", ["", " ", "   \t\n\r ", "\u3000\u00a0", "!!! ??? ...", "the of and"])
def test_empty_blank_and_stopword_queries(dense_index, query):
    for mode in ("bm25", "hybrid", "rerank"):
        hits = answers_or_raises(lambda: dense_index.search(query, mode=mode, query_vector=qvec()), ValueError)
        assert hits is None or isinstance(hits, list)
    if not query.strip(" \t\n\r"):
        with pytest.raises(ValueError, match="empty"):
            dense_index.search(query, mode="bm25")
    else:  # Unicode blanks, punctuation, stop words: no hits, or refused.
        hits = answers_or_raises(lambda: dense_index.search(query, mode="bm25"), ValueError)
        assert hits is None or isinstance(hits, list)
    # Dense mode with a query vector needs no text.
    assert dense_index.search(query, mode="dense", query_vector=qvec())
    # A blank query in a batch is refused, or answered with no hits.
    got = answers_or_raises(lambda: dense_index.search_batch(["mesothelioma", query], mode="bm25"), ValueError)
    assert got is None or (len(got) == 2 and got[0])


def test_huge_queries_answer_or_raise_in_bounded_time(dense_index):
    words = " ".join(f"w{i}" for i in range(100_000))  # 100k distinct tokens
    megabyte = ("mesothelioma nivolumab " * 50_000)[: 1 << 20]  # 1 MB, repeated terms
    one_char = "é" * (1 << 19)  # 1 MB of a two-byte character, one huge "word"
    no_spaces = "a" * (1 << 20)
    for text in (words, megabyte, one_char, no_spaces):
        for mode in ("bm25", "hybrid", "rerank", "dense"):
            with Timer():
                hits = answers_or_raises(lambda: dense_index.search(text, k=5, mode=mode, query_vector=qvec()))
            if hits:
                hits[0].text, hits[0].body_score  # explain() re-analyses the huge query
        with Timer():
            answers_or_raises(lambda: dense_index.search_batch([text, text], k=3, mode="bm25"))
        with Timer():
            answers_or_raises(lambda: dense_index.candidate_pool(text))


@pytest.mark.parametrize("text", SURROGATES)
def test_surrogate_strings_are_refused(dense_index, text):
    with pytest.raises(BAD_ARG):
        dense_index.search(text)
    with pytest.raises(BAD_ARG):
        dense_index.search_batch(["ok", text])
    with pytest.raises(BAD_ARG):
        dense_index.search("ok", filters={"audience": text})
    with pytest.raises(BAD_ARG):
        dense_index.search("ok", filters={text: "hp"})
    with pytest.raises(BAD_ARG):
        dense_index.search("ok", mode=text)
    with pytest.raises(BAD_ARG):
        dense_index.search("ok", level=text)
    with pytest.raises(BAD_ARG):
        dense_index.candidate_pool(text)
    with pytest.raises((*BAD_ARG, KeyError)):
        dense_index.clean_text(text)
    with pytest.raises((*BAD_ARG, OSError)):
        Index.load(text)
    with pytest.raises((*BAD_ARG, OSError)):
        Index.build(text)


@pytest.mark.parametrize("raw", [b"\xff\xfe\xfd", b"meso\xc3", b"\xed\xa0\x80", b"nivolumab \x00 trial"])
def test_bytes_queries_with_invalid_utf8_do_not_crash(dense_index, raw):
    for mode in ("bm25", "rerank"):
        hits = answers_or_raises(lambda: dense_index.search(raw, mode=mode, query_vector=qvec()), ValueError, TypeError, UnicodeError)
        if hits:
            for h in hits:
                h.text, h.body_score, h.features
    answers_or_raises(lambda: dense_index.search_batch([raw], mode="bm25"), ValueError, TypeError, UnicodeError)


def test_non_string_queries(index):
    for q in (None, 5, 3.5, ["a", "b"], {"q": 1}, object()):
        with pytest.raises(TypeError):
            index.search(q)
    for qs in (None, "a string is not a list of queries", [1, 2], ["ok", None], 7):
        with pytest.raises(TypeError):
            index.search_batch(qs)
    assert index.search_batch([]) == []


# --------------------------------------------------------------------------- filters


BAD_FILTERS = [
    {"nope": "hp"},
    {"audience": "doctor"},
    {"audience": ["hp", "martian"]},
    {"audience": [1, 2]},
    {"audience": 1},
    {"audience": None},
    {"audience": {"hp": 1}},
    {"audience": [["hp"]]},
    {"audience": b"hp\xff"},
    {"cancer_type": "unicorn-cancer"},
    {"cancer_type": ""},
    {"cancer_type": [3.5]},
    {"corpus": "pubmed"},
    {"corpus": [None]},
    {"reviewed_after": "yesterday"},
    {"reviewed_after": "2025-13-45"},
    {"reviewed_after": "2025/01/01"},
    {"reviewed_after": "99999-01-01"},
    {"reviewed_after": "\x00"},
    {"reviewed_after": 20250101},
    {"reviewed_after": ["2024-01-01"]},
    {"reviewed_after": None},
    {1: "hp"},
    {None: "hp"},
]


@pytest.mark.parametrize("filters", BAD_FILTERS, ids=repr)
def test_bad_filters_raise(dense_index, filters):
    for mode in ("bm25", "dense", "rerank"):
        with pytest.raises(BAD_ARG):
            dense_index.search("mesothelioma", filters=filters, mode=mode, query_vector=qvec())
    with pytest.raises(BAD_ARG):
        dense_index.search_batch(["mesothelioma"], filters=filters)


def test_filters_of_wrong_container_type(index):
    for filters in (["audience", "hp"], "audience=hp", 5, {("audience",): "hp"}):
        with pytest.raises(BAD_ARG):
            index.search("mesothelioma", filters=filters)


def test_good_filters_still_work(dense_index):
    for filters in (
        {"audience": "hp"},
        {"audience": ["hp", "patient"]},
        {"audience": []},
        {"corpus": ("papers",)},
        {"cancer_type": "mesothelioma"},
        {"reviewed_after": "2024-01-01"},
        {},
    ):
        dense_index.search("mesothelioma", filters=filters, mode="bm25")
        dense_index.search("mesothelioma", filters=filters, mode="rerank", query_vector=qvec())
    hits = dense_index.search("mesothelioma", filters={"reviewed_after": "2030-01-01"}, mode="dense", query_vector=qvec())
    assert list(hits) == []


# --------------------------------------------------------------------------- k, level, mode, pipeline


@pytest.mark.parametrize("k", [0, -1, -(2**40)])
def test_non_positive_k(dense_index, k):
    for mode in ("bm25", "dense", "hybrid", "rerank"):
        with pytest.raises(BAD_ARG):
            dense_index.search("mesothelioma", k=k, mode=mode, query_vector=qvec())
    with pytest.raises(BAD_ARG):
        dense_index.search_batch(["mesothelioma"], k=k)


@pytest.mark.parametrize("k", HUGE_K)
@pytest.mark.parametrize("level", ["passage", "doc"])
@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid", "rerank"])
def test_huge_k_is_clamped_or_refused(dense_index, k, level, mode):
    n = len(dense_index)
    with Timer():
        hits = answers_or_raises(
            lambda: dense_index.search("mesothelioma", k=k, level=level, mode=mode, query_vector=qvec()),
            OverflowError, ValueError,
        )
    if hits is not None:
        assert 0 < len(hits) <= n
        numbers = [h.number for h in hits]
        assert len(set(numbers)) == len(numbers)
        expected = dense_index.search("mesothelioma", k=n, level=level, mode=mode, query_vector=qvec())
        assert numbers == [h.number for h in expected]
    with Timer():
        answers_or_raises(lambda: dense_index.search_batch(["mesothelioma", "aspirin"], k=k, level=level, mode="bm25"),
                          OverflowError, ValueError)


def test_k_of_wrong_type(index):
    for k in (None, "5", 2.5, [5]):
        with pytest.raises(TypeError):
            index.search("mesothelioma", k=k)
    with pytest.raises(BAD_ARG):
        index.search("mesothelioma", k=2**70)


def test_bad_level_and_mode_names(dense_index):
    for level in ("", "Passage", "docs", "sentence", "passage "):
        with pytest.raises(ValueError, match="level"):
            dense_index.search("mesothelioma", level=level)
    for mode in ("", "BM25", "sparse", "dense ", "rrf"):
        with pytest.raises(ValueError, match="mode"):
            dense_index.search("mesothelioma", mode=mode, query_vector=qvec())
        with pytest.raises(ValueError, match="mode"):
            dense_index.search_batch(["mesothelioma"], mode=mode)
    for v in (None, 1):
        with pytest.raises(TypeError):
            dense_index.search("mesothelioma", level=v)
        with pytest.raises(TypeError):
            dense_index.search("mesothelioma", mode=v)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fusion": "sum"},
        {"fusion": ""},
        {"fusion": None},
        {"candidates": 0},
        {"candidates": -1},
        {"candidates": 2**40},
        {"rerank_depth": -5},
        {"rerank_depth": 2**40},
        {"max_per_doc": -1},
        {"mmr": 1.5},
        {"mmr": -0.1},
        {"mmr": float("nan")},
        {"mmr": float("inf")},
        {"mmr": "high"},
        {"bm25_weight": 1.01},
        {"bm25_weight": -1.0},
        {"bm25_weight": float("nan")},
        {"bm25_weight": "half"},
        {"unknown_option": 1},
    ],
    ids=repr,
)
def test_pipeline_options_out_of_range(dense_index, kwargs):
    """Refused when the Pipeline is made, or at the latest when a search uses it."""
    try:
        pipeline = Pipeline(**kwargs)
    except BAD_ARG:
        return
    for mode in ("hybrid", "rerank"):
        with pytest.raises(BAD_ARG):
            dense_index.search("mesothelioma", mode=mode, query_vector=qvec(), pipeline=pipeline)


def test_pipeline_positional_and_wrong_type(dense_index):
    with pytest.raises(TypeError):
        Pipeline("rrf")
    with pytest.raises(TypeError):
        dense_index.search("mesothelioma", mode="hybrid", query_vector=qvec(), pipeline={"fusion": "rrf"})
    with pytest.raises(TypeError):
        dense_index.search("mesothelioma", mode="hybrid", query_vector=qvec(), pipeline=None)


@pytest.mark.parametrize("opts", [{"candidates": 10**9}, {"rerank_depth": 10**9}, {"candidates": 2**32 - 1},
                                  {"rerank_depth": 2**32 - 1, "candidates": 2**32 - 1}, {"max_per_doc": 2**32 - 1}])
def test_huge_pipeline_depths_answer_in_bounded_time(dense_index, opts):
    pipeline = Pipeline(**opts)
    for mode in ("hybrid", "rerank"):
        for level in ("passage", "doc"):
            with Timer():
                hits = answers_or_raises(lambda: dense_index.search(
                    "mesothelioma", k=3, level=level, mode=mode, query_vector=qvec(), pipeline=pipeline),
                    OverflowError, ValueError)
            assert hits is None or 0 < len(hits) <= 3


def test_candidate_pool_bad_arguments(dense_index):
    """candidate_pool() embeds the query itself: without an encoder every call is a ValueError,
    bad arguments included (they are checked first); with the model, see test_encoder_candidate_pool."""
    nd = dense_index.num_documents
    with pytest.raises(ValueError, match="out of range"):
        dense_index.candidate_pool("mesothelioma", exclude_documents=[nd])
    with pytest.raises(ValueError, match="out of range"):
        dense_index.candidate_pool("mesothelioma", exclude_documents=[2**32 - 1])
    for bad in ([-1], [2**40], ["0"], [0.5], 3, None):
        with pytest.raises(BAD_ARG):
            dense_index.candidate_pool("mesothelioma", exclude_documents=bad)
    for c in (-1, 2**40, None):
        with pytest.raises(BAD_ARG):
            dense_index.candidate_pool("mesothelioma", candidates=c)
    with pytest.raises(ValueError):
        dense_index.candidate_pool("   ")
    with pytest.raises(ValueError):
        dense_index.candidate_pool("mesothelioma")


def test_passage_number_out_of_range(dense_index):
    n = len(dense_index)
    for fn in (dense_index.passage, dense_index.embedding_text, dense_index.doc_number):
        with pytest.raises(IndexError):
            fn(n)
        with pytest.raises(IndexError):
            fn(2**32 - 1)
        for bad in (-1, 2**40, "0", None, 1.5):
            with pytest.raises((IndexError, *BAD_ARG)):
                fn(bad)
    with pytest.raises(KeyError):
        dense_index.clean_text("no such doc")


def test_vectors_of_index_without_vectors(index):
    with pytest.raises(ValueError):
        index.vectors()


# --------------------------------------------------------------------------- build arguments


def test_build_bad_arguments(small_corpus, tmp_path):
    guides = small_corpus["guides"]
    for corpora in (None, 5, [], {}, [5], [("name",)], [("a", "b", "c")], {"a": 5}, {"a": None}):
        with pytest.raises(BAD_ARG):
            Index.build(corpora)
    with pytest.raises(FileNotFoundError):
        Index.build(tmp_path / "missing")
    for kwargs in ({"max_tokens": 0}, {"max_tokens": 15}, {"max_tokens": -1}, {"k1": float("nan")}, {"k1": -1.0},
                   {"b": 1.5}, {"b": float("nan")}, {"max_tokens": 2**40}, {"progress": 5}, {"encoder": 5},
                   {"encoder": "auto"}, {"skip_malformed": "yes"}):
        with pytest.raises(BAD_ARG):
            Index.build(guides, **kwargs)
    # Extreme but valid values still build.
    for kwargs in ({"max_tokens": 2**31}, {"heading_weight": 0.0}, {"k1": 1e30}):
        assert len(Index.build(guides, **kwargs)) > 0


def test_build_from_nothing(tmp_path):
    papers = tmp_path / "papers"
    papers.mkdir()
    (papers / "corpus.jsonl").write_text("")
    with pytest.raises(ValueError):
        Index.build(papers)
    (tmp_path / "md").mkdir()
    with pytest.raises((ValueError, FileNotFoundError)):
        Index.build(tmp_path / "md")


def test_build_progress_callback_that_raises(small_corpus):
    def progress(stage, done, total):
        raise KeyError("stop here")

    with pytest.raises(KeyError, match="stop here"):
        Index.build(small_corpus["guides"], progress=progress)

    def wrong_signature():
        pass

    with pytest.raises(TypeError):
        Index.build(small_corpus["guides"], progress=wrong_signature)
    # The interpreter and the module are fine afterwards.
    assert len(Index.build(small_corpus["guides"], progress=lambda *a: None)) > 0


def test_build_rejects_non_utf8_files(tmp_path):
    md = tmp_path / "md"
    md.mkdir()
    (md / "bad.md").write_bytes(b"---\ntitle: \xff\xfe\n---\n\n# H\xc3\n\nbody \xed\xa0\x80 text\n")
    index = answers_or_raises(lambda: Index.build(md), ValueError, OSError)
    if index is not None and len(index):
        hit = index.passage(0)
        answers_or_raises(lambda: (hit.text, hit.title, hit.heading_path), UnicodeError)
    papers = tmp_path / "papers"
    papers.mkdir()
    (papers / "corpus.jsonl").write_bytes(b'{"_id": "a", "text": "ok"}\n{"_id": 5, "text": \n\xff\n')
    with pytest.raises(ValueError):
        Index.build(papers)
    answers_or_raises(lambda: Index.build(papers, skip_malformed=True), ValueError)


def test_attach_encoder_bad_values(dense_index):
    for enc in ("nope", "AUTO", ""):
        with pytest.raises(ValueError):
            dense_index.attach_encoder(enc)
    for enc in (5, object(), dense_index):
        with pytest.raises(TypeError):
            dense_index.attach_encoder(enc)
    dense_index.attach_encoder(None)


def test_set_reranker_bad_paths(dense_index, tmp_path):
    with pytest.raises(OSError):  # an OSError, not (yet) a FileNotFoundError
        dense_index.set_reranker(tmp_path / "missing.json")
    for content in (b"", b"{", b"[]", b'{"weights": "x"}', b"\xff\xfe", b'{"features": [1, 2], "weights": [1e999]}'):
        p = tmp_path / "bad.json"
        p.write_bytes(content)
        with pytest.raises(ValueError):
            dense_index.set_reranker(p)
    with pytest.raises((IsADirectoryError, ValueError, OSError)):
        dense_index.set_reranker(tmp_path)
    with pytest.raises(TypeError):
        dense_index.set_reranker(5)
    dense_index.set_reranker(None)
    assert dense_index.search("mesothelioma", mode="rerank", query_vector=qvec())


# --------------------------------------------------------------------------- load: missing and corrupt


def _damage_variants(saved):
    """(description, function(dir)) pairs, each damaging a copy of a saved index."""
    gen = next(p for p in saved.iterdir() if p.name.startswith("gen-"))
    names = sorted(p.name for p in gen.iterdir())

    def truncate(name, keep):
        def f(d):
            p = d / gen.name / name
            data = p.read_bytes()
            p.write_bytes(data[: int(len(data) * keep)])
        return f

    def flip(name, where):
        def f(d):
            p = d / gen.name / name
            data = bytearray(p.read_bytes())
            data[int(len(data) * where) % len(data)] ^= 0x5A
            p.write_bytes(bytes(data))
        return f

    def replace(name, content):
        def f(d):
            (d / name).write_bytes(content)
        return f

    out = []
    for name in names:
        out += [(f"{name} empty", truncate(name, 0)), (f"{name} half", truncate(name, 0.5)),
                (f"{name} two bytes short", lambda d, n=name: (d / gen.name / n).write_bytes((d / gen.name / n).read_bytes()[:-2])),
                (f"{name} flipped start", flip(name, 0.0)), (f"{name} flipped middle", flip(name, 0.5)),
                (f"{name} flipped end", flip(name, 0.999)),
                (f"{name} deleted", lambda d, n=name: (d / gen.name / n).unlink())]
    out += [
        ("CURRENT garbage", replace("CURRENT", b"\xff\xfe garbage")),
        ("CURRENT empty", replace("CURRENT", b"")),
        ("CURRENT points nowhere", replace("CURRENT", b"gen-999999\n")),
        ("CURRENT escapes", replace("CURRENT", b"../../../etc\n")),
        ("CURRENT deleted", lambda d: (d / "CURRENT").unlink()),
        ("manifest not a medsearch one", replace(f"{gen.name}/manifest.json", b'{"format": "other", "version": 1}')),
        ("manifest future version", lambda d: (d / gen.name / "manifest.json").write_text(
            (d / gen.name / "manifest.json").read_text().replace('"version": 3', '"version": 99'))),
        ("manifest older version", lambda d: (d / gen.name / "manifest.json").write_text(
            (d / gen.name / "manifest.json").read_text().replace('"version": 3', '"version": 2'))),
        ("manifest huge sizes", lambda d: (d / gen.name / "manifest.json").write_text(
            (d / gen.name / "manifest.json").read_text().replace('"bytes": ', '"bytes": 9999999999'))),
        ("manifest bytes negative", lambda d: (d / gen.name / "manifest.json").write_text(
            (d / gen.name / "manifest.json").read_text().replace('"bytes": ', '"bytes": -'))),
    ]
    return out


def test_load_missing(tmp_path):
    with pytest.raises(FileNotFoundError):
        Index.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises((FileNotFoundError, CorruptIndexError)):
        Index.load(tmp_path / "empty")
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises((FileNotFoundError, CorruptIndexError, NotADirectoryError)):
        Index.load(tmp_path / "file")
    with pytest.raises(FileNotFoundError):
        VectorIndex.load(tmp_path / "missing.idx")
    with pytest.raises((CorruptIndexError, OSError)):  # a directory: "cannot map ...: No such device"
        VectorIndex.load(tmp_path / "empty")
    for bad in (None, 5):
        with pytest.raises(TypeError):
            Index.load(bad)
        with pytest.raises(TypeError):
            VectorIndex.load(bad)


@pytest.mark.parametrize("with_vectors", [False, True])
def test_load_corrupt_index(small_corpus, tmp_path, with_vectors):
    index = Index.build({"guides": small_corpus["guides"], "papers": small_corpus["papers"]})
    if with_vectors:
        index.attach_vectors(unit_rows(len(index)), model_id="test-vectors")
    saved = tmp_path / "saved"
    index.save(saved)
    expected = [h.number for h in index.search("mesothelioma", mode="bm25")]
    assert [h.number for h in Index.load(saved, encoder=None).search("mesothelioma", mode="bm25")] == expected
    variants = _damage_variants(saved)
    assert len(variants) >= 25
    for i, (what, damage) in enumerate(variants):
        copy = tmp_path / f"copy{i}"
        shutil.copytree(saved, copy)
        damage(copy)
        try:
            loaded = Index.load(copy, encoder=None)
        except (CorruptIndexError, FileNotFoundError) as e:
            assert str(e), what
            # An older format is its own error (build again); damage and future versions are not.
            assert isinstance(e, medsearch.OldFormatError) == (what == "manifest older version"), (what, e)
        else:
            # The manifest is not checksummed; a flip in a field the loader does not read is harmless.
            assert what.startswith("manifest.json flipped"), f"loaded with {what}"
            assert [h.number for h in loaded.search("mesothelioma", mode="bm25")] == expected, what
    assert issubclass(CorruptIndexError, ValueError) and issubclass(medsearch.OldFormatError, CorruptIndexError)


_M64 = (1 << 64) - 1
_P1, _P2, _P3, _P4, _P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                           0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & _M64


def _round(acc, lane):
    return _rotl((acc + lane * _P2) & _M64, 31) * _P1 & _M64


def xxh64(data: bytes, seed: int = 0) -> int:
    """Reference XXH64 (the manifest's checksum), so tests can forge files that pass it."""
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + _P1 + _P2) & _M64, (seed + _P2) & _M64, seed, (seed - _P1) & _M64]
        while i + 32 <= n:
            for j in range(4):
                v[j] = _round(v[j], int.from_bytes(data[i + 8 * j: i + 8 * j + 8], "little"))
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _M64
        for x in v:
            h = ((h ^ _round(0, x)) * _P1 + _P4) & _M64
    else:
        h = (seed + _P5) & _M64
    h = (h + n) & _M64
    while i + 8 <= n:
        h = (_rotl(h ^ _round(0, int.from_bytes(data[i:i + 8], "little")), 27) * _P1 + _P4) & _M64
        i += 8
    if i + 4 <= n:
        h = (_rotl(h ^ (int.from_bytes(data[i:i + 4], "little") * _P1 & _M64), 23) * _P2 + _P3) & _M64
        i += 4
    while i < n:
        h = (_rotl(h ^ (data[i] * _P5 & _M64), 11) * _P1) & _M64
        i += 1
    h ^= h >> 33
    h = h * _P2 & _M64
    h ^= h >> 29
    h = h * _P3 & _M64
    return h ^ (h >> 32)


def test_load_structurally_corrupt_files_with_valid_checksums(small_corpus, tmp_path):
    """Damage the index files and fix up the manifest's sizes and checksums, so that the
    deserialisers themselves meet garbage: huge counts, out-of-range references, short
    data. Each load must raise CorruptIndexError or give an index that answers (or raises)
    without crashing."""
    index = Index.build({"guides": small_corpus["guides"], "papers": small_corpus["papers"]})
    index.attach_vectors(unit_rows(len(index)), model_id="test-vectors")
    saved = tmp_path / "saved"
    index.save(saved)
    gen = next(p for p in saved.iterdir() if p.name.startswith("gen-"))
    manifest_path = gen / "manifest.json"
    manifest_text = manifest_path.read_text()
    manifest = json.loads(manifest_text)
    assert manifest["files"]["documents.bin"]["xxh64"] == f"{xxh64((gen / 'documents.bin').read_bytes()):016x}"
    # Without dense.idx the loader rebuilds the dense index from vectors.bin (no XXH3 to forge).
    (gen / "dense.idx").unlink()
    del manifest["files"]["dense.idx"]
    originals = {name: (gen / name).read_bytes() for name in ("documents.bin", "lexical.bin", "vectors.bin")}
    rng = np.random.default_rng(2024)
    outcomes = {"corrupt": 0, "loaded": 0}

    def forge(name, data):
        (gen / name).write_bytes(data)
        m = json.loads(json.dumps(manifest))
        m["files"][name] = {"bytes": len(data), "xxh64": f"{xxh64(data):016x}"}
        manifest_path.write_text(json.dumps(m))

    for name, data in originals.items():
        n = len(data)
        offsets = sorted(set(range(0, min(n, 64), 4)) | set(int(x) for x in rng.integers(0, n, 24)))
        mutations = [data[:cut] for cut in (0, 4, 8, n // 3, n // 2, n - 8, n - 1)] + [data + b"\0" * 8]
        for off in offsets:
            for patch in (b"\xff\xff\xff\xff", b"\xff" * 8, b"\x00\x00\x00\x00", b"\x00\x00\x00\x80", b"\x07"):
                m = bytearray(data)
                m[off:off + len(patch)] = patch
                mutations.append(bytes(m[:n]))
        for damaged in mutations:
            forge(name, damaged)
            try:
                with Timer():
                    loaded = Index.load(saved, encoder=None)
            except CorruptIndexError:
                outcomes["corrupt"] += 1
                continue
            except MemoryError:
                pytest.fail(f"{name}: a forged count made the loader allocate too much")
            outcomes["loaded"] += 1
            # A loadable index must be usable: answer or raise, never crash.
            for mode in ("bm25", "rerank"):
                hits = answers_or_raises(lambda: loaded.search("mesothelioma nivolumab", k=5, mode=mode, query_vector=qvec()),
                                         ValueError, UnicodeError)
                for h in hits or []:
                    answers_or_raises(lambda: (h.text, h.title, h.heading_path, h.doc_id, h.body_score, h.features),
                                      ValueError, UnicodeError, IndexError)
            for p in range(len(loaded)):
                answers_or_raises(lambda: (loaded.passage(p).text, loaded.embedding_text(p)), ValueError, UnicodeError)
        forge(name, data)
    assert outcomes["corrupt"] > 0
    assert Index.load(saved, encoder=None).search("mesothelioma", mode="bm25")


def test_vector_index_load_corrupt(tmp_path):
    for kind, dtype in (("hnsw", "float32"), ("hnsw", "int8"), ("flat", "float32")):
        vi = VectorIndex(DIM, kind=kind, dtype=dtype)
        vi.add(unit_rows(100))
        path = tmp_path / f"{kind}-{dtype}.idx"
        vi.save(path)
        data = path.read_bytes()
        damaged = {
            "empty": b"",
            "one byte": data[:1],
            "half": data[: len(data) // 2],
            "one byte short": data[:-1],
            "one byte long": data + b"\0",
            "garbage": os.urandom(len(data)),
        }
        for where in (0, 8, 12, 16, 24, 32, 64, len(data) // 2, len(data) - 20, len(data) - 9, len(data) - 1):
            b = bytearray(data)
            b[where] ^= 0x5A
            damaged[f"flip {where}"] = bytes(b)
        for what, content in damaged.items():
            bad = tmp_path / "bad.idx"
            bad.write_bytes(content)
            with pytest.raises(CorruptIndexError):
                VectorIndex.load(bad)
                pytest.fail(f"{kind}/{dtype}: {what} loaded")
        assert len(VectorIndex.load(path)) == 100


def test_save_to_bad_paths(dense_index, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError):
        dense_index.save(tmp_path / "file" / "sub")
    vi = VectorIndex(DIM)
    vi.add(unit_rows(3))
    with pytest.raises(OSError):
        vi.save(tmp_path / "file" / "sub.idx")
    with pytest.raises(OSError):
        vi.save(tmp_path)


# --------------------------------------------------------------------------- hits outlive their index


def test_hits_outlive_their_index(small_corpus):
    index = Index.build({"guides": small_corpus["guides"], "papers": small_corpus["papers"]})
    index.attach_vectors(unit_rows(len(index)), model_id="test-vectors")
    hits = index.search("nivolumab mesothelioma", k=3, mode="bm25")
    rerank_hits = index.search("nivolumab mesothelioma", k=3, mode="rerank", query_vector=qvec())
    batch = index.search_batch(["aspirin", "nivolumab"], mode="bm25")
    one = index.passage(0)
    view = index.vectors()
    expected_view = view.copy()
    del index
    gc.collect()
    for h in [*hits, *rerank_hits, *batch[0], *batch[1], one]:
        assert isinstance(h.text, str) and h.doc_id and repr(h)
        h.body_score, h.heading_score, h.dense_score, h.features, h.contributions, h.span, h.tags
    np.testing.assert_array_equal(view, expected_view)
    with pytest.raises(ValueError):
        view[0, 0] = 1.0  # read-only


# --------------------------------------------------------------------------- VectorIndex


@pytest.fixture()
def flat():
    vi = VectorIndex(DIM, kind="flat")
    vi.add(unit_rows(200, seed=1))
    return vi


def test_vector_index_constructor_bad_arguments():
    for kwargs in ({"dim": 0}, {"dim": -1}, {"dim": 2**70}, {"dim": "8"}, {"dim": DIM, "metric": "cos"},
                   {"dim": DIM, "kind": "ivf"}, {"dim": DIM, "dtype": "float16"}, {"dim": DIM, "M": 1},
                   {"dim": DIM, "M": 10**6}, {"dim": DIM, "ef_construction": 0}, {"dim": DIM, "ef_construction": 2**40},
                   {"dim": DIM, "kind": "flat", "dtype": "int8"}, {"dim": DIM, "metric": "\ud800"}):
        with pytest.raises(BAD_ARG):
            VectorIndex(**kwargs)
    # A huge dimension must not allocate at construction.
    vi = answers_or_raises(lambda: VectorIndex(2**40), ValueError, MemoryError)
    if vi is not None:
        assert len(vi) == 0


@pytest.mark.parametrize("kind,dtype", [("flat", "float32"), ("hnsw", "float32"), ("hnsw", "int8")])
def test_vector_index_conversions_match_contiguous(kind, dtype):
    base = unit_rows(300, seed=3)
    queries = unit_rows(20, seed=4)

    def built(vectors):
        vi = VectorIndex(DIM, kind=kind, dtype=dtype)
        vi.add(vectors)
        return vi

    ref = built(base)
    ref_ids, ref_scores = ref.search(queries, k=5)
    for name, v in layouts(base).items():
        ids, scores = built(v).search(queries, k=5)
        np.testing.assert_array_equal(ids, ref_ids, err_msg=name)
        np.testing.assert_allclose(scores, ref_scores, atol=1e-5, err_msg=name)
    for name, q in layouts(queries).items():
        ids, scores = ref.search(q, k=5)
        np.testing.assert_array_equal(ids, ref_ids, err_msg=name)
        np.testing.assert_allclose(scores, ref_scores, atol=1e-6, err_msg=name)
        ids, scores = ref.search(q[3], k=5)  # one 1-d row
        np.testing.assert_array_equal(ids[0], ref_ids[3], err_msg=name)
    # A 1-d query is one row.
    ids1, _ = ref.search(queries[3], k=5)
    np.testing.assert_array_equal(ids1[0], ref_ids[3])
    # Integer input is converted.
    vi = VectorIndex(DIM, kind=kind, dtype=dtype, metric="l2")
    vi.add(np.arange(10 * DIM).reshape(10, DIM))
    ids, _ = vi.search(np.arange(DIM), k=1)
    assert ids[0, 0] == 0


def test_vector_index_bad_shapes_and_types(flat):
    n = len(flat)
    bad = [
        np.zeros((3, DIM + 1), dtype=np.float32),
        np.zeros((3, DIM - 1), dtype=np.float32),
        np.zeros(DIM + 1, dtype=np.float32),
        np.zeros(0, dtype=np.float32),
        np.zeros((2, 3, DIM), dtype=np.float32),
        np.zeros((3, 0), dtype=np.float32),
        np.float32(1.0),
        np.array([["x"] * DIM] * 2),
        np.array([[None] * DIM] * 2, dtype=object),
        "abc",
        None,
        [[1.0] * DIM, [1.0] * (DIM - 1)],
        {"a": 1},
    ]
    for v in bad:
        with pytest.raises(BAD_ARG):
            flat.add(v)
        with pytest.raises(BAD_ARG):
            flat.search(v, k=3)
    assert len(flat) == n
    # Zero rows: nothing added, an empty answer.
    flat.add(np.zeros((0, DIM), dtype=np.float32))
    assert len(flat) == n
    ids, scores = flat.search(np.zeros((0, DIM), dtype=np.float32), k=3)
    assert ids.shape == (0, 3) and scores.shape == (0, 3)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("kind,dtype", [("flat", "float32"), ("hnsw", "float32"), ("hnsw", "int8")])
def test_vector_index_rejects_non_finite(kind, dtype, value):
    vi = VectorIndex(DIM, kind=kind, dtype=dtype)
    vi.add(unit_rows(50))
    v = unit_rows(5, seed=9)
    v[4, 7] = value
    with pytest.raises(ValueError):
        vi.add(v)
    assert len(vi) == 50
    with pytest.raises(ValueError):
        vi.search(v, k=3)
    with pytest.raises(ValueError), np.errstate(over="ignore"):
        vi.add(np.full((1, DIM), 3e38, dtype=np.float64) * 10)  # overflows float32 to inf when converted


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_vector_index_k(kind):
    vi = VectorIndex(DIM, kind=kind)
    vi.add(unit_rows(20))
    q = unit_rows(2, seed=5)
    for k in (0, -1, -(2**40)):
        with pytest.raises(ValueError):
            vi.search(q, k=k)
    for k in (10**9, 2**32 - 1, 2**40, 2**62):
        with Timer():
            got = answers_or_raises(lambda: vi.search(q, k=k), ValueError, OverflowError)
        assert got is None or got[0].shape == (2, k)
    for k in (2**64, 2**100):
        with pytest.raises(BAD_ARG):
            vi.search(q, k=k)
    for k in (None, "3", 2.5):
        with pytest.raises(TypeError):
            vi.search(q, k=k)
    # k above the size pads with -1 / nan.
    ids, scores = vi.search(q, k=30)
    assert (ids[:, 20:] == -1).all() and np.isnan(scores[:, 20:]).all()
    # Many queries times a large k must not allocate absurd memory (m x k x 16 bytes): refused up front.
    for m in (257, 10_000):
        with Timer():
            with pytest.raises(ValueError, match="batches"):
                vi.search(unit_rows(m, seed=6), k=1 << 20)
    ids, _ = vi.search(unit_rows(2, seed=6), k=1 << 20)
    assert ids.shape == (2, 1 << 20) and (ids[:, 20:] == -1).all()


def test_vector_index_other_search_arguments(flat):
    q = unit_rows(2, seed=5)
    for kwargs in ({"ef": 0}, {"ef": -1}, {"ef": 2**40}, {"threads": 0}, {"threads": -1}, {"threads": 2**40},
                   {"ef": "64"}, {"rescore": "x"}):
        with pytest.raises(BAD_ARG):
            flat.search(q, k=3, **kwargs)
    for kwargs in ({"rescore": -(2**40)}, {"rescore": 2**40}, {"rescore": 0}, {"threads": 64}):
        flat.search(q, k=3, **kwargs)
    # More threads than the machine has are fine (TBB used to crash tearing down a 100000-slot arena).
    expected = flat.search(q, k=3)[0]
    for t in (64, 10**5, 10**6, 2**31 - 1):
        np.testing.assert_array_equal(flat.search(q, k=3, threads=t)[0], expected)
        flat.add(unit_rows(2, seed=t % 1000), threads=t)
        hnsw = VectorIndex(DIM)
        hnsw.add(unit_rows(40, seed=1), threads=t)
        hnsw.search(q, k=3, threads=t)
    for kwargs in ({"threads": 0}, {"threads": -3}):
        with pytest.raises(ValueError):
            flat.add(unit_rows(2), **kwargs)


def test_vector_index_ids(flat):
    n = len(flat)
    rows = unit_rows(3, seed=11)
    bad_ids = [
        [1000, 1001],  # too few
        [1000, 1001, 1002, 1003],  # too many
        [],  # none for three rows
        [1000, -1, 1002],  # negative
        [1000, 2**32 - 1, 1002],  # the reserved id
        [1000, 2**40, 1002],  # too large
        [1000, 1000, 1001],  # duplicates within the batch
        [0, 1000, 1001],  # already present
        np.array([1000.0, 1001.0, 1002.0]),  # floats
        ["a", "b", "c"],
        [None, 1, 2],
        np.array([1000, 1001, 1002], dtype=np.uint64) + np.uint64(2**63),
        "abc",
        5,
    ]
    for ids in bad_ids:
        with pytest.raises(BAD_ARG):
            flat.add(rows, ids=ids)
        assert len(flat) == n, ids
    # Good ids in other integer dtypes and layouts.
    flat.add(rows, ids=np.array([[1000], [1001], [1002]], dtype=np.uint16)[:, 0])
    flat.add(rows, ids=np.arange(2000, 2006, dtype=np.int32)[::2])
    assert 1001 in flat and 2004 in flat and 2001 not in flat
    for probe in (-1, 2**32 - 1, 2**40):
        assert probe not in flat
    with pytest.raises(TypeError):
        "x" in flat  # noqa: B015
    # remove: unknown, negative, huge.
    for ids in ([-1], [2**40], ["a"]):
        with pytest.raises(BAD_ARG):
            flat.remove(ids)
    with pytest.raises(KeyError):
        flat.remove([999_999])
    flat.remove([1000])
    assert 1000 not in flat
    with pytest.raises(KeyError):  # an id the index does not hold (any more)
        flat.remove([1000])


def test_vector_index_filters(flat):
    q = unit_rows(3, seed=12)
    for filt in ([-1], [2**40], [2**32 - 1], [0.5], ["a"], [None], "abc"):
        with pytest.raises(BAD_ARG):
            flat.search(q, k=5, filter=filt)
    # Ids that are valid but absent are simply never returned.
    ids, scores = flat.search(q, k=5, filter=[10**6, 3, 2**32 - 2])
    assert (ids[:, 0] == 3).all() and (ids[:, 1:] == -1).all() and np.isnan(scores[:, 1:]).all()
    ids, _ = flat.search(q, k=5, filter=np.array([], dtype=np.int64))
    assert (ids == -1).all() or ids.shape == (3, 5)
    # Non-contiguous filters equal their copies.
    allowed = np.arange(0, 200, dtype=np.int64)[::7]
    np.testing.assert_array_equal(flat.search(q, k=5, filter=allowed)[0],
                                  flat.search(q, k=5, filter=np.ascontiguousarray(allowed))[0])
    hnsw = VectorIndex(DIM)
    hnsw.add(unit_rows(300, seed=2))
    for filt in ([-1], [2**40]):
        with pytest.raises(ValueError):
            hnsw.search(q, k=5, filter=filt)
    ids, _ = hnsw.search(q, k=5, filter=[10**6, 7])
    assert (ids[:, 0] == 7).all() and (ids[:, 1:] == -1).all()


def test_vector_index_after_remove_and_compact():
    vi = VectorIndex(DIM)
    vi.add(unit_rows(100))
    vi.remove(list(range(100)))
    ids, _ = vi.search(unit_rows(2, seed=1), k=5)
    assert (ids == -1).all()
    vi.compact()
    assert len(vi) == 0
    ids, _ = vi.search(unit_rows(2, seed=1), k=5)
    assert (ids == -1).all()
    empty = VectorIndex(DIM, kind="flat")
    ids, _ = empty.search(unit_rows(1), k=3)
    assert (ids == -1).all()


# --------------------------------------------------------------------------- WordPieceTokenizer


@pytest.fixture()
def vocab(tmp_path):
    p = tmp_path / "vocab.txt"
    p.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "meso", "##the", "##lioma", "a", "b", "##b"]) + "\n",
                 encoding="utf-8")
    return p


def test_tokenizer_bad_input(vocab, tmp_path):
    tok = WordPieceTokenizer(vocab)
    assert tok.encode("mesothelioma") == [2, 5, 6, 7, 3]
    for text in SURROGATES:
        with pytest.raises(BAD_ARG):
            tok.encode(text)
        with pytest.raises(BAD_ARG):
            tok.tokenize(text)
        with pytest.raises(BAD_ARG):
            tok.encode_batch(["ok", text])
        with pytest.raises(BAD_ARG):
            tok.token_to_id(text)
    for bad in (None, 5, ["a"]):
        with pytest.raises(TypeError):
            tok.encode(bad)
    for bad in ("a string", None, [1], ["a", None]):
        with pytest.raises(TypeError):
            tok.encode_batch(bad)
    for m in (0, 1, -1, -(2**40)):
        with pytest.raises(ValueError):
            tok.encode("a b", max_tokens=m)
        with pytest.raises(ValueError):
            tok.encode_batch(["a b"], max_tokens=m)
    for m in (2**64, "5", None):
        with pytest.raises(BAD_ARG):
            tok.encode("a", max_tokens=m)
    assert tok.encode("", max_tokens=2) == [2, 3]
    assert tok.encode("a b a", max_tokens=2**40) == [2, 8, 9, 8, 3]
    assert tok.encode_batch([]) == []
    for raw in (b"\xff\xfe", b"a\xc3", b"\xed\xa0\x80b", b"\x00a"):
        ids = tok.encode(raw)
        assert ids[0] == 2 and ids[-1] == 3
        answers_or_raises(lambda: tok.tokenize(raw), UnicodeError)


def test_tokenizer_huge_text(vocab):
    tok = WordPieceTokenizer(vocab)
    words = " ".join(["a", "b", "meso"] * 34_000)  # ~100k tokens
    for text in (words, "a" * (1 << 20), "é" * (1 << 19), "ab" * (1 << 19), ("mesothelioma " * 80_000)[: 1 << 20]):
        with Timer():
            assert len(tok.encode(text)) <= 512
            assert len(tok.encode(text, max_tokens=2**40)) >= 2
            tok.encode_batch([text, text], max_tokens=64)
            tok.tokenize(text)


def test_tokenizer_bad_vocab_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        WordPieceTokenizer(tmp_path / "missing.txt")
    with pytest.raises((IsADirectoryError, ValueError, OSError)):
        WordPieceTokenizer(tmp_path)
    for name, content in {
        "empty": b"",
        "no specials": b"a\nb\n",
        "binary": bytes(range(256)) * 4,
        "only newlines": b"\n\n\n",
        "bad utf8": b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n\xff\xfe\n",
    }.items():
        p = tmp_path / f"{name}.txt"
        p.write_bytes(content)
        tok = answers_or_raises(lambda: WordPieceTokenizer(p), ValueError)
        if tok is not None:
            # A vocabulary without [CLS]/[SEP]/[UNK] must not produce garbage ids or crash.
            ids = answers_or_raises(lambda: tok.encode("a b zzz"), ValueError)
            assert ids is None or all(0 <= i < tok.vocab_size for i in ids), name
            answers_or_raises(lambda: tok.tokenize("a b zzz"), ValueError)


# --------------------------------------------------------------------------- Encoder (needs the model)


@pytest.fixture(scope="module")
def encoder():
    if not (MODEL_DIR / "model.safetensors").exists():
        pytest.skip("model not fetched (tools/fetch_model.sh)")
    return medsearch.Encoder(model_dir=MODEL_DIR)


def test_encoder_bad_input(encoder):
    for text in SURROGATES:
        with pytest.raises(BAD_ARG):
            encoder.embed(["ok", text])
        with pytest.raises(BAD_ARG):
            encoder.tokenize(text)
    for bad in ("a string", None, [1], ["a", None], 5):
        with pytest.raises(TypeError):
            encoder.embed(bad)
    for kind in ("", "Query", "doc", None):
        with pytest.raises(BAD_ARG):
            encoder.embed(["x"], kind=kind)
    out = encoder.embed([])
    assert out.shape == (0, encoder.dim) and out.dtype == np.float32
    for raw in (b"\xff\xfe", b"meso\xc3", b"\xed\xa0\x80"):
        v = encoder.embed([raw])
        assert np.isfinite(v).all()


def test_encoder_huge_text(encoder):
    words = " ".join(f"w{i}" for i in range(100_000))
    with Timer():
        v = encoder.embed([words, "a" * (1 << 20), "é" * (1 << 19)], kind="query")
    assert np.isfinite(v).all()
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    with Timer():
        assert len(encoder.tokenize(words)) == encoder.max_tokens


def test_encoder_bad_model_dirs(tmp_path):
    with pytest.raises(ValueError):
        medsearch.Encoder(model="bert-large")
    with pytest.raises(FileNotFoundError):
        medsearch.Encoder(model_dir=tmp_path / "missing")
    with pytest.raises((FileNotFoundError, CorruptIndexError)):
        medsearch.Encoder(model_dir=tmp_path)
    if not (MODEL_DIR / "model.safetensors").exists():
        pytest.skip("model not fetched")
    for what in ("truncated weights", "garbage weights", "bad config", "no vocab"):
        d = tmp_path / what.replace(" ", "_")
        shutil.copytree(MODEL_DIR, d, ignore=shutil.ignore_patterns("model.safetensors"))
        weights = d / "model.safetensors"
        if what == "truncated weights":
            with open(MODEL_DIR / "model.safetensors", "rb") as f:
                weights.write_bytes(f.read(1 << 16))
        elif what == "garbage weights":
            weights.write_bytes(b"\xff" * 64 + b"{" * 1000)
        else:
            os.symlink(MODEL_DIR / "model.safetensors", weights)
            if what == "bad config":
                (d / "config.json").write_text('{"hidden_size": -5, "num_hidden_layers": 100000}')
            else:
                (d / "vocab.txt").unlink()
        with pytest.raises((CorruptIndexError, FileNotFoundError, ValueError)):
            medsearch.Encoder(model_dir=d)


def test_encoder_with_mismatched_index(encoder, dense_index):
    with pytest.raises(ValueError):
        dense_index.attach_encoder(encoder)  # the index holds 8-d vectors of another model
    hits = dense_index.search("mesothelioma", mode="dense", query_vector=qvec())
    assert hits


def test_encoder_candidate_pool_and_huge_queries(encoder, small_corpus):
    index = Index.build({"guides": small_corpus["guides"], "papers": small_corpus["papers"]}, encoder=encoder)
    nd = index.num_documents
    passages, features = index.candidate_pool("mesothelioma", exclude_documents=list(range(nd)))
    assert len(passages) == 0 and features.shape == (0, len(medsearch.feature_names()))
    for c in (0, 1, 10**9, 2**32 - 1):
        with Timer():
            passages, features = index.candidate_pool("mesothelioma", candidates=c)
        assert len(passages) <= len(index) and features.shape == (len(passages), len(medsearch.feature_names()))
    words = " ".join(f"w{i}" for i in range(100_000))
    for text in (words, "é" * (1 << 19)):
        for mode in ("dense", "hybrid", "rerank"):
            with Timer():
                answers_or_raises(lambda: index.search(text, k=3, mode=mode))
    for k in HUGE_K:
        assert 0 < len(index.search("mesothelioma", k=k, mode="rerank")) <= len(index)
