"""The list Index.search() returns."""
from __future__ import annotations

import math


class Results(list):
    """Hits, best first (a plain list of Hit), with what the engine knows about the
    answer as a whole:

    coverage: in rerank mode, the calibrated probability that one of the top 3
        passages answers the question (low values: the corpus may not cover it);
        NaN in other modes and without hits.
    mode: the mode that answered ('bm25', 'dense', 'hybrid', 'rerank').
    """

    __slots__ = ("coverage", "mode")

    def __init__(self, hits=(), coverage: float = math.nan, mode: str = ""):
        super().__init__(hits)
        self.coverage = coverage
        self.mode = mode

    def __repr__(self) -> str:
        return f"Results({len(self)} hits, mode={self.mode!r}, coverage={self.coverage:.3f})"
