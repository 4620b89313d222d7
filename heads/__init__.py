"""Heads: importing this package registers every built-in head."""
from heads import translation  # noqa: F401  (registers "translation")
