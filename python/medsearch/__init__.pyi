from ._core import CorruptIndexError as CorruptIndexError, Hit as Hit, Index as Index

__version__: str
