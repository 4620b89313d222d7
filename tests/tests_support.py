"""Helpers shared by tests (importable as `tests_support`; pytest puts tests/ on the path)."""
import dataclasses

from configs import presets
from configs.config import DataSourceConfig


def tiny_config(workdir, data_dir, mix_listings=True, **train_overrides):
  """The `tiny` preset on a parallel_text corpus (plus the embedded listings for price labels)."""
  base = presets.tiny()
  sources = (DataSourceConfig("parallel_text", data_dir),)
  if mix_listings:
    sources += (DataSourceConfig("tsv", "", 0.2),)
  data = dataclasses.replace(base.data, sources=sources, vocab_size=300 if mix_listings else 64)
  train = dataclasses.replace(base.train, **train_overrides)
  return dataclasses.replace(base, workdir=str(workdir), data=data, train=train)
