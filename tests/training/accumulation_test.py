"""Exact loss normalisation: accumulating micro-batches equals one step on their concatenation.

Every loss is divided by its count over *all* micro-batches, so the gradient of 4 accumulated
micro-batches equals the gradient of the one batch that holds all of them. With plain SGD (lr 1)
the weights after one step are w - g, so equal weights mean equal gradients.
"""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs.errors import UserError
from heads.spec import parse_heads_spec
from tests_support import tiny_config
from training.components import build_components
from training.step import check_step_options, make_train_step, trainable_variables


def concat_batches(batches):
  """Pads every 2-D key to a common width and concatenates along the batch axis."""
  joined = {}
  for key in batches[0]:
    parts = [b[key].numpy() for b in batches]
    if parts[0].ndim == 2:
      width = max(p.shape[1] for p in parts)
      parts = [np.pad(p, [(0, 0), (0, width - p.shape[1])]) for p in parts]
    joined[key] = tf.constant(np.concatenate(parts, axis=0))
  return joined


def sgd_step_weights(config, batches):
  c = build_components(config)
  variables = trainable_variables(c.model, c.heads, c.combiner)
  optimizer = keras.optimizers.SGD(learning_rate=1.0)
  optimizer.build(variables)
  result = make_train_step(c.model, c.heads, c.combiner, optimizer)(batches)
  return result, [v.numpy() for v in variables]


def test_four_micro_batches_equal_one_concatenated_batch(tmp_path, copy_corpus):
  config = tiny_config(tmp_path / "w", copy_corpus, True, precision="float32")
  config = dataclasses.replace(config, heads=parse_heads_spec("price:dropout=0;attention_entropy"))
  data = build_components(config).bundle
  iterator = iter(data.train_dataset(256, 0))
  micro = tuple(next(iterator) for _ in range(4))
  # The point of the test: counts differ between micro-batches (else per-batch means would do).
  counts = [int(np.sum(b["target_out"].numpy() != 0)) for b in micro]
  assert len(set(counts)) > 1, counts
  accumulated, weights_a = sgd_step_weights(config, micro)
  whole, weights_b = sgd_step_weights(config, concat_batches(micro))
  for key in ("loss", "loss/translation", "loss/price", "loss/attention_entropy"):
    assert float(accumulated[key]) == pytest.approx(float(whole[key]), rel=1e-5), key
  assert float(accumulated["count/translation"]) == sum(counts)
  for a, b in zip(weights_a, weights_b):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_per_micro_batch_means_would_differ(tmp_path, copy_corpus):
  """Guards the test above: the naive mean of per-micro-batch means is measurably different."""
  config = tiny_config(tmp_path / "w", copy_corpus, False, precision="float32")
  c = build_components(config)
  iterator = iter(c.bundle.train_dataset(256, 0))
  micro = tuple(next(iterator) for _ in range(4))
  step = make_train_step(c.model, c.heads, c.combiner, keras.optimizers.SGD(0.0))
  per_batch = [float(step(b)["loss/translation"]) for b in micro]
  exact = float(step(micro)["loss/translation"])
  assert abs(np.mean(per_batch) - exact) > 1e-4


@pytest.mark.parametrize("combiner", ["uncertainty", "pcgrad", "metabalance"])
def test_non_linear_combiners_accumulate_exactly(tmp_path, copy_corpus, combiner):
  """Issue 18: a combiner that is not linear in the losses combines once per step, on per-term
  gradients summed over the micro-batches, so 4 micro-batches still equal their concatenation."""
  config = tiny_config(tmp_path / "w", copy_corpus, True, precision="float32",
                       combiner=combiner)
  config = dataclasses.replace(config, heads=parse_heads_spec("price:dropout=0"))
  data = build_components(config).bundle
  iterator = iter(data.train_dataset(256, 0))
  micro = tuple(next(iterator) for _ in range(4))
  accumulated, weights_a = sgd_step_weights(config, micro)
  whole, weights_b = sgd_step_weights(config, concat_batches(micro))
  for key in ("loss", "loss/translation", "loss/price", "weight/price"):
    assert float(accumulated[key]) == pytest.approx(float(whole[key]), rel=1e-5), key
  moved = 0
  for a, b in zip(weights_a, weights_b):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  fresh = build_components(config)
  for a, v in zip(weights_a, trainable_variables(fresh.model, fresh.heads, fresh.combiner)):
    moved += int(not np.allclose(a, v.numpy()))
  assert moved > 10


def test_options_the_step_cannot_do_exactly_are_refused():
  with pytest.raises(UserError, match="trains balancing weights"):
    check_step_options("uncertainty", 1, 2)
  with pytest.raises(UserError, match="trains balancing weights"):
    check_step_options("gradnorm", 1, 2)
  with pytest.raises(UserError, match="--gradient_space=boundary sees one micro-batch"):
    check_step_options("pcgrad", 4, 1, "boundary")
  with pytest.raises(UserError, match="--gradient_space=boundary sees one micro-batch"):
    check_step_options("mgda_ub", 1, 2, "boundary")
  check_step_options("fixed", 4, 2)
  check_step_options("uncertainty", 4, 1)
  check_step_options("metabalance", 4, 2, "weights", True)
  check_step_options("pcgrad", 1, 2)
