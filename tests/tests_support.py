"""Helpers shared by tests (importable as `tests_support`; pytest puts tests/ on the path)."""
import dataclasses
import os
import subprocess
import sys

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


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_main(*args, stdin=None, cwd=ROOT):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), *args], input=stdin,
                        capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def tiny_args(workdir, data_dir, *extra):
  return ["--preset=tiny", f"--workdir={workdir}", "--dataset=parallel_text",
          f"--data_dir={data_dir}", "--mix=tsv:0.2", "--vocab_size=300",
          "--heads=price;domain;attention_entropy", *extra]


SHARED_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")


def shared_data_dir_or_skip(name: str) -> str:
  """../shared/data/NAME, or skip: users' clones do not have ../shared (CI and dev checkouts do)."""
  import pytest  # pylint: disable=import-outside-toplevel
  path = os.path.join(SHARED_DATA, name)
  if not os.path.isdir(path):
    pytest.skip(f"{path} is absent (../shared/data is only beside the repo in CI and dev "
                f"checkouts)")
  return path


def term_components(tmp_path, corpus, heads="price:dropout=0", **train):
  """Components of the tiny config (listings mixed in, float32) with these heads, for the
  per-term gradient tests."""
  from heads.spec import parse_heads_spec  # pylint: disable=import-outside-toplevel
  from training.components import build_components  # pylint: disable=import-outside-toplevel
  config = tiny_config(tmp_path / "w", corpus, True, precision="float32", **train)
  return build_components(dataclasses.replace(config, heads=parse_heads_spec(heads)))


def mixed_batches(c, limit=100):
  """The batches (of the first `limit`) with both listing rows (price) and sentence pairs
  (translation)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  for batch in c.bundle.train_dataset(512, 0).take(limit):
    if np.any(np.isfinite(batch["price"].numpy())) and np.any(batch["target_out"].numpy() != 0):
      yield batch


def mixed_batch(c):
  """The first batch with both listing rows and sentence pairs."""
  for batch in mixed_batches(c):
    return batch
  raise AssertionError("no batch with both listing rows and sentence pairs")


def traces_per_graph(step) -> list:
  """How often each graph of a train step was traced: the capped fold's step holds two (the
  refresh and the folded step), any other step one."""
  graphs = [step.refresh, step.folded] if hasattr(step, "folded") else [step]
  return [g.experimental_get_tracing_count() for g in graphs]
