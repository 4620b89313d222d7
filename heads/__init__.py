"""Heads: importing this package registers every built-in head."""
from heads import attention_heads  # noqa: F401  attention_entropy, coverage, diagonal, head_disagreement
from heads import domain  # noqa: F401
from heads import price  # noqa: F401
from heads import sequence_heads  # noqa: F401  length_ratio, bag_of_words
from heads import translation  # noqa: F401
