from ._core import CorruptIndexError as CorruptIndexError, OldFormatError as OldFormatError, Encoder as Encoder, Hit as Hit, Index as Index
from ._core import Pipeline as Pipeline, PrecomputedEmbedder as PrecomputedEmbedder, StaleError as StaleError
from ._core import VectorIndex as VectorIndex, WordPieceTokenizer as WordPieceTokenizer
from ._core import build_info as build_info
from ._core import feature_names as feature_names
from ._results import Results as Results

__all__: list[str]
__version__: str
