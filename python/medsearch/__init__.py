"""medsearch: passage retrieval over clinical guidelines and biomedical literature.

    >>> import medsearch
    >>> index = medsearch.Index.build("../shared/data/nci-pdq")
    >>> for hit in index.search("recurrent mesothelioma treatment", k=3):
    ...     print(hit.score, " > ".join(hit.heading_path), hit.url)
"""

from ._core import CorruptIndexError, Hit, Index

__all__ = ["Index", "Hit", "CorruptIndexError"]
__version__ = "0.1.0"
