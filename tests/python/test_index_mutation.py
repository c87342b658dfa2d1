"""Index.add / Index.remove from Python: found and gone in every mode, errors, hits that outlive a change, threads."""
import threading

import numpy as np
import pytest

import medsearch


def build_small(small_corpus):
    return medsearch.Index.build({"guides": small_corpus["guides"], "papers": small_corpus["papers"]})


NEW = {
    "doc_id": "new1",
    "corpus": "papers",
    "title": "Zyxomab in pleural disease",
    "body": "zyxomab quorvatinib trial in recurrent mesothelioma",
    "tags": ["trial"],
}


def test_add_then_search_then_remove(small_corpus):
    index = build_small(small_corpus)
    before = len(index)
    assert index.generation == 1
    index.add([NEW])
    assert index.generation == 2 and len(index) == before + 1
    top = index.search("zyxomab quorvatinib", k=3, mode="bm25")[0]
    assert top.doc_id == "new1" and top.corpus == "papers" and top.tags == ["trial"]
    assert "zyxomab" in index.clean_text("new1")
    index.remove("new1")
    assert index.generation == 3 and len(index) == before
    assert all(h.doc_id != "new1" for h in index.search("zyxomab quorvatinib mesothelioma", k=50, mode="bm25"))
    with pytest.raises(KeyError):
        index.clean_text("new1")


def test_dense_modes_use_the_attached_encoder(small_corpus):
    index = build_small(small_corpus)
    dim = 8
    rng = np.random.default_rng(0)
    index.attach_vectors(rng.normal(size=(len(index), dim)).astype(np.float32), model_id="rows")
    # No encoder for the new passages' vectors: a clear error, nothing changes.
    with pytest.raises(ValueError, match="attach its encoder"):
        index.add([NEW])
    assert index.generation == 2


def test_errors_change_nothing(small_corpus):
    index = build_small(small_corpus)
    with pytest.raises(ValueError, match="no documents"):
        index.add([])
    with pytest.raises(ValueError, match="unknown document field"):
        index.add([{"doc_id": "x", "bodyy": "typo"}])
    with pytest.raises(ValueError, match="format"):
        index.add([{"doc_id": "x", "body": "b", "format": "html"}])
    with pytest.raises(ValueError, match="already in corpus"):
        index.add([dict(NEW), dict(NEW, doc_id="p0")])
    with pytest.raises(KeyError, match="no document 'nope'"):
        index.remove(["p0", "nope"])
    assert index.generation == 1


def test_hits_from_before_a_change_read_the_passages_they_were_found_in(small_corpus):
    index = build_small(small_corpus)
    seen = index.search("mesothelioma", k=3, mode="bm25")
    expected = [(h.passage_id, h.text, h.body_score) for h in seen]  # read before the change
    unread = index.search("mesothelioma", k=3, mode="bm25")
    old_first = index.passage(0)
    index.remove([index.passage(0).doc_id])  # renumbers every passage
    index.add([NEW])
    assert index.generation == 3
    # Read only now: from the generation they were found in, not the current one.
    assert [(h.passage_id, h.text, h.body_score) for h in unread] == expected
    assert old_first.text and old_first.passage_id != index.passage(0).passage_id


def test_searches_continue_while_another_thread_changes_documents(small_corpus):
    index = build_small(small_corpus)
    stop = threading.Event()
    errors = []

    def writer():
        i = 0
        while not stop.is_set():
            index.add([dict(NEW, doc_id=f"w{i}")])
            index.remove(f"w{i}")
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(200):
            results = index.search("recurrent mesothelioma nivolumab", k=5, mode="bm25")
            if not results:
                errors.append("no hits")
    finally:
        stop.set()
        t.join()
    assert not errors
    assert index.generation % 2 == 1  # every add was followed by its remove
