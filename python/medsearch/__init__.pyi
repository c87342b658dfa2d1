from ._core import CorruptIndexError as CorruptIndexError, Encoder as Encoder, Hit as Hit, Index as Index
from ._core import VectorIndex as VectorIndex, WordPieceTokenizer as WordPieceTokenizer

__version__: str
