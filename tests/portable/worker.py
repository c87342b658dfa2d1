"""One run of tests/portable/compare_cpus.py on one CPU (natively or under
qemu-x86_64): the Python module's side. Prints one JSON object.

    worker.py CORPUS TINY_MODEL_DIR REAL_INDEX_DIR PRECISION QUERIES_JSON
"""
import json
import sys
import tempfile

import medsearch

MODES = ("bm25", "dense", "hybrid", "rerank")


def hits(results):
    return [[h.passage_id, h.score, h.dense_score] for h in results]


def main():
    corpus, tiny, real_index, precision, queries = sys.argv[1:6]
    queries = json.loads(queries)
    out = {"build_info": medsearch.build_info(), "runs": {}}
    # A small index with embeddings from the tiny model: built here, every mode.
    encoder = medsearch.Encoder(model_dir=tiny, precision=precision)
    index = medsearch.Index.build(corpus, encoder=encoder)
    with tempfile.TemporaryDirectory() as d:  # and through a save and load
        index.save(d)
        index = medsearch.Index.load(d, encoder=encoder)
        for mode in MODES:
            for q in queries["tiny"]:
                out["runs"][f"python/tiny/{mode}/{q}"] = hits(index.search(q, k=5, mode=mode))
            batch = index.search_batch(queries["tiny"], k=5, mode=mode)
            for q, r in zip(queries["tiny"], batch):
                out["runs"][f"python/tiny-batch/{mode}/{q}"] = hits(r)
    # The index of the real model, built natively: its queries embedded here.
    index = medsearch.Index.load(real_index, encoder=medsearch.Encoder(precision=precision))
    for mode in MODES:
        for q in queries["real"]:
            out["runs"][f"python/real/{mode}/{q}"] = hits(index.search(q, k=5, mode=mode))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
