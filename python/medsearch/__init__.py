"""medsearch: passage retrieval over clinical guidelines and biomedical literature.

    >>> import medsearch
    >>> index = medsearch.Index.build("../shared/data/nci-pdq")
    >>> for hit in index.search("recurrent mesothelioma treatment", k=3):
    ...     print(hit.score, " > ".join(hit.heading_path), hit.url)
"""

from ._core import CorruptIndexError, Encoder, Hit, Index, OldFormatError, PrecomputedEmbedder, StaleError, VectorIndex
from ._core import Pipeline, WordPieceTokenizer, build_info, feature_names
from ._results import Results

__all__ = ["Index", "Hit", "Encoder", "PrecomputedEmbedder", "CorruptIndexError", "OldFormatError", "StaleError", "WordPieceTokenizer", "VectorIndex", "Pipeline", "Results", "feature_names", "build_info"]
__version__ = "0.1.0"
