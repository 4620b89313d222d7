"""Heads: importing this package registers every built-in head (one module per head)."""
from heads import attention_entropy  # noqa: F401
from heads import bag_of_words  # noqa: F401
from heads import coverage  # noqa: F401
from heads import diagonal  # noqa: F401
from heads import domain  # noqa: F401
from heads import guided_alignment  # noqa: F401
from heads import head_disagreement  # noqa: F401
from heads import length_ratio  # noqa: F401
from heads import price  # noqa: F401
from heads import rdrop  # noqa: F401
from heads import translation  # noqa: F401
