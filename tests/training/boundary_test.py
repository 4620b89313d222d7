"""The encoder boundary of the gradient combiners: every term's gradient lives on the same tensor.

Regression: the Transformer's pooled summary used to be a boundary tensor of its own. The price
head (reads the summary) and translation (reads the per-position outputs) then had gradients
with disjoint supports, every dot product was exactly 0, and `pcgrad` trained bit-identically
to `fixed` (seed-000 experiment, docs/results.md).
"""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from heads.spec import parse_heads_spec
from model import outputs as out
from tests_support import tiny_config
from training.components import build_components
from training.grad_stats import make_grad_stats_fn
from training.boundary import boundary_forward, boundary_gradients


def _components(tmp_path, corpus, heads, mix_listings=False):
  config = tiny_config(tmp_path / "w", corpus, mix_listings, precision="float32")
  return build_components(dataclasses.replace(config, heads=parse_heads_spec(heads)))


def _gradients(c, batch):
  _, keys, detached, inner, losses, _, _ = boundary_forward(c.model, c.heads, batch)
  return detached, boundary_gradients(inner, losses, [detached[k] for k in keys])


def test_summary_head_and_translation_meet_on_the_encoder_outputs(tmp_path, copy_corpus):
  """bag_of_words reads the pooled summary of the same rows translation reads position-wise."""
  c = _components(tmp_path, copy_corpus, "bag_of_words")
  assert c.model.boundary_keys == (out.ENCODER_OUTPUTS,)
  detached, grads = _gradients(c, next(iter(c.bundle.train_dataset(256, 0))))
  translation, bow = grads["translation"].numpy(), grads["bag_of_words"].numpy()
  assert translation.shape == bow.shape == (int(tf.size(detached[out.ENCODER_OUTPUTS])),)
  assert ((translation != 0) & (bow != 0)).sum() > 0
  assert abs(float(np.dot(translation, bow))) > 0.0
  stats = make_grad_stats_fn(c.model, c.heads)(next(iter(c.bundle.train_dataset(256, 1))))
  (cosine,) = [float(v) for k, v in stats.items() if k.startswith("grad_cos/")]
  assert cosine != 0.0


def test_terms_on_disjoint_rows_never_meet_at_the_boundary(tmp_path, copy_corpus):
  """A known limit, pinned: listing rows carry a price and no translation target, so per-row
  boundary gradients of price and translation have disjoint supports and their dot product is
  exactly 0; pcgrad then never projects and mgda_ub weights by norms alone (docs/balancing.md)."""
  c = _components(tmp_path, copy_corpus, "price:dropout=0", mix_listings=True)
  for batch in c.bundle.train_dataset(512, 0).take(100):  # listing rows and sentence pairs
    if np.any(batch["price"].numpy() > 0) and np.any(batch["target_out"].numpy() != 0):
      break
  else:
    raise AssertionError("no batch with both listing rows and sentence pairs")
  _, grads = _gradients(c, batch)
  translation, price = grads["translation"].numpy(), grads["price"].numpy()
  assert np.abs(price).sum() > 0 and np.abs(translation).sum() > 0
  assert ((translation != 0) & (price != 0)).sum() == 0
  assert float(np.dot(translation, price)) == 0.0
