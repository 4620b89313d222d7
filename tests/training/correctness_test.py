"""The seed failures, made impossible: determinism, head-independent init, weight 0 = no-op."""
import dataclasses

import numpy as np
import tensorflow as tf

from heads.spec import parse_heads_spec
from training import loop
from tests_support import tiny_config


def checkpoint_values(workdir, prefix="model/"):
  """{variable key: value} of the latest checkpoint in WORKDIR/checkpoints under `prefix`."""
  reader = tf.train.load_checkpoint(str(workdir / "checkpoints"))
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
          if k.startswith(prefix) and "OPTIMIZER_SLOT" not in k}


def _run(tmp_path, name, corpus, heads="", steps=30, **train):
  config = tiny_config(tmp_path / name, corpus, train_steps=steps, checkpoint_every=max(steps, 1),
                       deterministic=True, **train)
  config = dataclasses.replace(config, heads=parse_heads_spec(heads),
                               model=dataclasses.replace(config.model, dropout=0.1))
  metrics = loop.train(config)
  return checkpoint_values(tmp_path / name), metrics


def test_two_seeded_runs_are_bit_identical(tmp_path, copy_corpus):
  a, ma = _run(tmp_path, "a", copy_corpus)
  b, mb = _run(tmp_path, "b", copy_corpus)
  assert a.keys() == b.keys() and len(a) > 10
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)
  assert ma["translation"] == mb["translation"] and ma["bleu"] == mb["bleu"]


def test_weight_zero_head_is_an_exact_no_op(tmp_path, copy_corpus):
  """Seed 001: 30 steps with dropout, with and without a weight-0 per-head attention loss."""
  plain, _ = _run(tmp_path, "plain", copy_corpus)
  zero, _ = _run(tmp_path, "zero", copy_corpus, heads="attention_entropy:weight=0,reduce=per_head")
  for key in plain:
    np.testing.assert_array_equal(plain[key], zero[key], err_msg=key)


def test_adding_heads_leaves_other_initial_weights_unchanged(tmp_path, copy_corpus):
  """--train_steps=0 writes the initial checkpoint; the model's and price head's initial values
  are the same whichever other heads exist."""
  base, _ = _run(tmp_path, "base", copy_corpus, heads="price", steps=0)
  more, _ = _run(tmp_path, "more", copy_corpus, heads="domain;length_ratio;price", steps=0)
  assert len(base) > 10
  for key in base:
    np.testing.assert_array_equal(base[key], more[key], err_msg=key)
  price_a = checkpoint_values(tmp_path / "base", "head_price/")
  price_b = checkpoint_values(tmp_path / "more", "head_price/")
  assert price_a.keys() == price_b.keys() and len(price_a) > 2
  for key in price_a:
    np.testing.assert_array_equal(price_a[key], price_b[key], err_msg=key)
