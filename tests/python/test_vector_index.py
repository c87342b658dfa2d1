"""medsearch.VectorIndex: the Python API over core/vector (issue 4)."""

import threading

import numpy as np
import pytest

import medsearch
from medsearch import VectorIndex


def clustered(n, dim, seed=0, clusters=20, normalize=True):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, clusters, size=n)] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    if normalize:
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x, dtype=np.float32)


def exact(base, queries, k, metric="ip"):
    if metric == "l2":
        d = ((queries[:, None, :] - base[None, :, :]) ** 2).sum(-1)
        return np.argsort(d, axis=1)[:, :k]
    return np.argsort(-(queries @ base.T), axis=1)[:, :k]


def recall(got, truth):
    return np.mean([len(set(g) & set(t)) / len(t) for g, t in zip(got, truth)])


@pytest.fixture(scope="module")
def data():
    return clustered(4000, 32, seed=1), clustered(50, 32, seed=2)


@pytest.mark.parametrize("kind,dtype", [("hnsw", "float32"), ("hnsw", "int8"), ("flat", "float32")])
@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_search_matches_exact(data, kind, dtype, metric):
    base, queries = data
    index = VectorIndex(32, metric=metric, kind=kind, dtype=dtype, M=16, ef_construction=100)
    index.add(base)
    assert len(index) == 4000 and index.dim == 32
    assert (index.kind, index.dtype, index.metric) == (kind, dtype, metric)
    ids, scores = index.search(queries, k=10, ef=100)
    assert ids.shape == (50, 10) and ids.dtype == np.int64
    assert scores.shape == (50, 10) and scores.dtype == np.float32
    assert recall(ids, exact(base, queries, 10, metric)) >= 0.95
    # Scores are exact and sorted best first.
    if metric == "ip":
        np.testing.assert_allclose(scores[:, 0], np.einsum("ij,ij->i", queries, base[ids[:, 0]]), rtol=1e-4, atol=1e-5)
        assert np.all(np.diff(scores, axis=1) <= 1e-6)
    else:
        np.testing.assert_allclose(scores[:, 0], ((queries - base[ids[:, 0]]) ** 2).sum(1), rtol=1e-4, atol=1e-5)
        assert np.all(np.diff(scores, axis=1) >= -1e-6)


def test_ids_filter_remove_compact(data):
    base, queries = data
    index = VectorIndex(32, dtype="int8")
    ids = np.arange(4000, dtype=np.int64) * 7 + 3
    index.add(base, ids)
    assert index.next_id == ids.max() + 1
    got, _ = index.search(queries, k=5)
    assert np.isin(got, ids).all()
    allowed = ids[::50]
    got, _ = index.search(queries, k=5, filter=allowed)
    assert np.isin(got[got >= 0], allowed).all()
    got, _ = index.search(queries, k=5, filter=list(map(int, allowed[:3])))  # a plain list, fewer than k
    assert (got[:, 3:] == -1).all() and np.isin(got[:, :3], allowed[:3]).all()
    index.remove(ids[:2000])
    assert len(index) == 2000 and int(ids[0]) not in index and int(ids[-1]) in index
    got, _ = index.search(queries, k=5)
    assert not np.isin(got, ids[:2000]).any()
    index.compact()
    got2, _ = index.search(queries, k=5)
    assert not np.isin(got2, ids[:2000]).any()
    with pytest.raises((KeyError, ValueError)):
        index.remove([ids[0]])  # already removed
    with pytest.raises((KeyError, ValueError)):
        index.remove([123456789])


def test_empty_and_k_larger_than_size():
    index = VectorIndex(4, metric="l2")
    ids, scores = index.search(np.zeros(4, np.float32), k=3)
    assert ids.shape == (1, 3) and (ids == -1).all() and np.isnan(scores).all()
    index.add(np.eye(4, dtype=np.float32)[:2])
    ids, scores = index.search(np.zeros((1, 4), np.float32), k=3)
    assert sorted(ids[0, :2]) == [0, 1] and ids[0, 2] == -1 and np.isnan(scores[0, 2])


def test_bad_inputs():
    index = VectorIndex(8)
    x = np.random.default_rng(0).normal(size=(20, 8)).astype(np.float32)
    index.add(x)
    with pytest.raises(ValueError):
        index.add(np.zeros((2, 7), np.float32))  # wrong dim
    with pytest.raises(ValueError):
        index.add(np.zeros((2, 2, 8), np.float32))  # wrong ndim
    bad = x[:2].copy()
    bad[1, 3] = np.nan
    with pytest.raises(ValueError):
        index.add(bad)
    with pytest.raises(ValueError):
        index.add(x[:2], ids=[1, 2])  # already present
    with pytest.raises(ValueError):
        index.add(x[:2], ids=[100, 100])  # duplicate
    with pytest.raises(ValueError):
        index.add(x[:2], ids=[-1, 100])
    with pytest.raises(ValueError):
        index.add(x[:2], ids=[2**32 - 1, 100])
    with pytest.raises(ValueError):
        index.add(x[:2], ids=[1.5, 100.0])
    with pytest.raises(ValueError):
        index.add(x[:2], ids=[100])  # length mismatch
    with pytest.raises(ValueError):
        index.add(["a", "b"])
    assert len(index) == 20
    q = x[:1].copy()
    with pytest.raises(ValueError):
        index.search(q, k=0)
    with pytest.raises(ValueError):
        index.search(q, k=-3)
    with pytest.raises(ValueError):
        index.search(q, ef=0)
    with pytest.raises(ValueError):
        index.search(np.zeros((1, 9), np.float32))
    q[0, 0] = np.inf
    with pytest.raises(ValueError):
        index.search(q)
    with pytest.raises(ValueError):
        index.search(x[:1], filter=[-5])
    with pytest.raises(ValueError):
        VectorIndex(8, metric="cosine-ish")
    with pytest.raises(ValueError):
        VectorIndex(8, kind="ivf")
    with pytest.raises(ValueError):
        VectorIndex(8, kind="flat", dtype="int8")
    with pytest.raises(ValueError):
        VectorIndex(0)
    # float64 and integer inputs are converted to float32 (documented).
    ids64, _ = index.search(x[:3].astype(np.float64), k=1)
    ids32, _ = index.search(x[:3], k=1)
    assert (ids64 == ids32).all()
    index.add(np.ones((1, 8), dtype=np.int32))
    assert len(index) == 21


@pytest.mark.parametrize("kind,dtype", [("hnsw", "float32"), ("hnsw", "int8"), ("flat", "float32")])
def test_save_load_identical(tmp_path, data, kind, dtype):
    base, queries = data
    index = VectorIndex(32, kind=kind, dtype=dtype, ef_construction=64)
    index.add(base)
    index.remove([5, 6])
    ids, scores = index.search(queries, k=10, ef=40)
    path = tmp_path / "vectors.msv"
    index.save(path)
    loaded = VectorIndex.load(str(path))
    loaded.save(tmp_path / "again.msv")
    again = VectorIndex.load(tmp_path / "again.msv")
    for other in (loaded, again):
        i2, s2 = other.search(queries, k=10, ef=40)
        np.testing.assert_array_equal(i2, ids)
        np.testing.assert_array_equal(s2, scores)
        assert len(other) == len(index) and 5 not in other
    assert path.read_bytes() == (tmp_path / "again.msv").read_bytes()


def test_corrupt_and_missing_files(tmp_path):
    index = VectorIndex(8)
    index.add(np.random.default_rng(3).normal(size=(100, 8)).astype(np.float32))
    path = tmp_path / "v.msv"
    index.save(path)
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(medsearch.CorruptIndexError):
        VectorIndex.load(path)
    path.write_bytes(bytes(blob[: len(blob) // 2]))
    with pytest.raises(medsearch.CorruptIndexError):
        VectorIndex.load(path)
    with pytest.raises(FileNotFoundError):
        VectorIndex.load(tmp_path / "missing.msv")


def test_memory_int8_vs_float32():
    x = clustered(5000, 128, seed=4)
    f32 = VectorIndex(128, dtype="float32")
    i8 = VectorIndex(128, dtype="int8")
    f32.add(x)
    i8.add(x)
    # Per vector, int8 saves 3 bytes per component (the rest is graph links
    # and fixed costs shared by both).
    assert f32.memory_bytes() - i8.memory_bytes() >= 0.95 * 5000 * 128 * 3
    assert i8.mapped_bytes() >= 5000 * 128 * 4  # the float32 rescoring rows, file-backed
    assert f32.mapped_bytes() == 0


def test_threads_correctness(data):
    """Searches from several Python threads (GIL released) and with a TBB arena agree with serial ones."""
    base, queries = data
    index = VectorIndex(32, dtype="int8", ef_construction=64)
    index.add(base[:2000])
    expected, _ = index.search(queries, k=10, ef=50)
    results, errors = [], []

    def worker(ef):
        try:
            for _ in range(20):
                got, _ = index.search(queries, k=10, ef=ef)
                results.append((ef, got))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(ef,)) for ef in (50, 50, 200)]
    for t in threads:
        t.start()
    index.add(base[2000:], threads=2)  # concurrent add: searches see old or new data, never garbage
    for t in threads:
        t.join()
    assert not errors
    assert all(((g >= 0) & (g < 4000)).all() for _, g in results)
    after, _ = index.search(queries, k=10, ef=50, threads=2)
    serial, _ = index.search(queries, k=10, ef=50, threads=1)
    np.testing.assert_array_equal(after, serial)
    with pytest.raises(ValueError):
        index.search(queries, threads=0)
