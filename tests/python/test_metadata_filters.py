"""Filters on any metadata key: front matter entries and JSONL metadata, as values,
lists of values or ranges; hits carry the metadata; documents added from Python
carry their own."""
import pytest

import medsearch


@pytest.fixture()
def index(small_corpus):
    return medsearch.Index.build({"guides": small_corpus["guides"], "papers": small_corpus["papers"]})


def ids(results):
    return sorted(h.doc_id for h in results)


def test_values_lists_and_ranges(index):
    q = "nivolumab aspirin pembrolizumab mesothelioma"
    assert ids(index.search(q, filters={"year": {"min": 2021}})) == ["p1", "p2"]
    assert ids(index.search(q, filters={"year": {"min": "2020", "max": 2021}})) == ["p0", "p1"]
    assert ids(index.search(q, filters={"year": 2022})) == ["p2"]
    assert ids(index.search(q, filters={"year": ["2020", 2022]})) == ["p0", "p2"]
    # Front matter: lastReviewed as a date range, combined with a derived field.
    hits = index.search(q, filters={"lastReviewed": {"min": "2024-01-01"}, "audience": "hp"})
    assert {h.doc_id for h in hits} == {"types/meso-hp.md"}
    assert all(h.metadata["lastReviewed"] == ["2025-12-30"] for h in hits)
    assert index.search(q, filters={"year": {"min": 2030}}) == []


def test_hits_carry_metadata(index):
    hit = index.search("aspirin colorectal", k=1, filters={"corpus": "papers"})[0]
    assert hit.doc_id == "p1" and hit.metadata == {"year": ["2021"]}
    page = index.search("second-line gemcitabine", k=1, filters={"corpus": "guides"})[0]
    assert page.metadata["tags"] == ["pdq", "treatment"]


def test_bad_metadata_filters_are_value_errors(index):
    with pytest.raises(ValueError, match="unknown metadata key 'journal'"):
        index.search("aspirin", filters={"journal": "Cell"})
    with pytest.raises(ValueError, match="no document has year = '1999'"):
        index.search("aspirin", filters={"year": 1999})
    with pytest.raises(ValueError, match="neither a number nor a YYYY-MM-DD date"):
        index.search("aspirin", filters={"year": {"min": "soon"}})
    with pytest.raises(ValueError, match="'min' and 'max'"):
        index.search("aspirin", filters={"year": {"from": 2020}})
    with pytest.raises(ValueError, match="strings, numbers or lists"):
        index.search("aspirin", filters={"year": {"min": None}})


def test_added_documents_carry_metadata(index, tmp_path):
    index.add([{"doc_id": "n1", "corpus": "papers", "body": "Aspirin after colorectal surgery.",
                "metadata": {"year": 2024, "journal": "Lancet", "mesh": ["Humans", "Aspirin"], "open": True}}])
    hits = index.search("aspirin", filters={"journal": "Lancet", "year": {"min": 2023}})
    assert ids(hits) == ["n1"]
    assert hits[0].metadata == {"year": ["2024"], "journal": ["Lancet"], "mesh": ["Humans", "Aspirin"], "open": ["true"]}
    index.save(tmp_path / "idx")
    loaded = medsearch.Index.load(tmp_path / "idx", encoder=None)
    assert ids(loaded.search("aspirin", filters={"mesh": "Aspirin"})) == ["n1"]
    with pytest.raises(ValueError, match="metadata takes a dict"):
        index.add([{"doc_id": "n2", "body": "x", "metadata": ["year", 2024]}])
