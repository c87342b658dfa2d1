"""Vectors for the sharded-index tests without an encoder: hashed words, L2-normalised, served by a
PrecomputedEmbedder. TableEmbedder is a picklable factory, so Ray tasks and actors (which import this
module: the test session puts tests/python on their PYTHONPATH) make the same embedder."""
import re
import zlib

import numpy as np

DIM = 64
MODEL_ID = "hashed-words-64"


def hashed_vectors(texts):
    out = np.zeros((len(texts), DIM), np.float32)
    for i, text in enumerate(texts):
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            out[i, zlib.crc32(word.encode()) % DIM] += 1.0
        if not out[i].any():
            out[i, 0] = 1.0
    return out / np.linalg.norm(out, axis=1, keepdims=True)


class TableEmbedder:
    """Makes a PrecomputedEmbedder of these passage and query texts (duplicates dropped)."""

    def __init__(self, passages, queries):
        self.passages = list(dict.fromkeys(passages))
        self.queries = list(dict.fromkeys(queries))

    def __call__(self):
        import medsearch

        return medsearch.PrecomputedEmbedder(self.passages, hashed_vectors(self.passages), MODEL_ID,
                                             query_texts=self.queries, query_vectors=hashed_vectors(self.queries))
