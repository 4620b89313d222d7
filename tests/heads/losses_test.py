"""The label-smoothed loss (translation and classifier heads): its written-out gradient against
autodiff of the textbook formula, for token labels [B, T] and example labels [B]."""
import math

import numpy as np
import pytest
import tensorflow as tf

from heads.losses import smoothed_cross_entropy


def test_two_classes_by_hand():
  """z = [0, 0], label 1, eps 0.1: q = [0.05, 0.95], loss = log 2, gradient = p - q."""
  z = tf.zeros([1, 1, 2])
  with tf.GradientTape() as tape:
    tape.watch(z)
    loss = smoothed_cross_entropy(z, tf.constant([[1]]), 0.1)
  np.testing.assert_allclose(loss.numpy(), [[math.log(2.0)]], rtol=1e-6)
  np.testing.assert_allclose(tape.gradient(loss, z).numpy(), [[[0.45, -0.45]]], rtol=1e-6)


@pytest.mark.parametrize("shape", [(3, 5), (4,)])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_value_and_gradient_match_autodiff_of_the_formula(smoothing, shape):
  rng = np.random.default_rng(0)
  z = tf.constant(rng.normal(scale=3.0, size=shape + (11,)), tf.float32)
  labels = tf.constant(rng.integers(0, 11, size=shape), tf.int32)
  upstream = tf.constant(rng.normal(size=shape), tf.float32)  # e.g. a padding mask / weights

  def reference(logits):  # -sum_v q_v log softmax(z)_v
    q = (1.0 - smoothing) * tf.one_hot(labels, 11) + smoothing / 11.0
    return -tf.reduce_sum(q * tf.nn.log_softmax(logits, -1), -1)

  for fn in (smoothed_cross_entropy, lambda logits, *_: reference(logits)):
    with tf.GradientTape() as tape:
      tape.watch(z)
      total = tf.reduce_sum(fn(z, labels, smoothing) * upstream)
    if fn is smoothed_cross_entropy:
      got_value, got_grad = total.numpy(), tape.gradient(total, z).numpy()
    else:
      want_value, want_grad = total.numpy(), tape.gradient(total, z).numpy()
  np.testing.assert_allclose(got_value, want_value, rtol=1e-5)
  np.testing.assert_allclose(got_grad, want_grad, atol=1e-6)


def test_bfloat16_logits_give_float32_loss():
  loss = smoothed_cross_entropy(tf.zeros([2, 3, 4], tf.bfloat16), tf.zeros([2, 3], tf.int32), 0.1)
  assert loss.dtype == tf.float32
  np.testing.assert_allclose(loss.numpy(), np.full((2, 3), math.log(4.0)), rtol=1e-6)
