"""The command-line tool end to end: build, search, run, eval."""
import json
import subprocess

import pytest

from conftest import CLI


def cli(*args, check=True):
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, check=check)


@pytest.fixture()
def built(small_corpus, tmp_path):
    out = tmp_path / "index"
    r = cli("build", f"guides={small_corpus['guides']}", small_corpus["papers"], "-o", out)
    assert "indexed 5 documents" in r.stderr
    return out


def test_search_prints_ranked_passages(built):
    r = cli("search", built, "second-line gemcitabine ramucirumab for recurrent mesothelioma", "-k", "3")
    assert "1. Mesothelioma Treatment (PDQ®)–Health Professional Version > Treatment of Recurrent" in r.stdout
    assert "https://www.cancer.gov/types/mesothelioma/hp/meso-pdq" in r.stdout
    js = [json.loads(line) for line in cli("search", built, "aspirin", "--json").stdout.splitlines()]
    assert js[0]["doc_id"] == "p1" and js[0]["corpus"] == "papers" and js[0]["rank"] == 1


def test_run_and_eval(built, small_corpus, tmp_path):
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        json.dumps({"_id": "q1", "text": "nivolumab relapsed mesothelioma"}) + "\n"
        + json.dumps({"_id": "q2", "text": "aspirin colorectal"}) + "\n"
    )
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\tp0\t1\nq2\tp1\t1\n")
    run = tmp_path / "run.trec"
    cli("run", built, "--queries", queries, "--k", "10", "--output", run, "--level", "doc", "--filter", "corpus=papers")
    lines = [l.split() for l in run.read_text().splitlines()]
    assert lines[0][:4] == ["q1", "Q0", "p0", "1"] and lines[0][5] == "medsearch"
    ev = cli("eval", "--qrels", qrels, "--run", run).stdout
    assert "nDCG@10\t1.0000" in ev
    prun = tmp_path / "prun.trec"
    cli("run", built, "--queries", queries, "--k", "5", "--output", prun, "--level", "passage")
    rows = [json.loads(l) for l in (tmp_path / "prun.trec.jsonl").read_text().splitlines()]
    assert {"qid", "rank", "score", "doc_id", "passage_id", "heading_path"} <= rows[0].keys()
    assert isinstance(rows[0]["heading_path"], list)
    assert prun.read_text().split()[2] == rows[0]["passage_id"]


def test_errors_exit_nonzero_with_message(tmp_path):
    r = cli("search", tmp_path / "nope", "x", check=False)
    assert r.returncode != 0 and "no medsearch index" in r.stderr
    r = cli("build", tmp_path / "missing", "-o", tmp_path / "o", check=False)
    assert r.returncode != 0 and "error" in r.stderr
