"""Gradient-based combiners on two toy losses whose gradients at the shared layer are known."""
import pytest
import tensorflow as tf

from training import combine_grad

LOSSES = {"a": tf.constant(1.0), "b": tf.constant(1.0)}
ONE = {"a": 1.0, "b": 1.0}


def test_pcgrad_projects_conflicting_gradients_by_hand():
  """g_a = (1, 0), g_b = (-1, 1): g_a.g_b = -1 < 0.
  g_a' = g_a - (-1/2) g_b = (0.5, 0.5); g_b' = g_b - (-1/1) g_a = (0, 1); G = (0.5, 1.5)."""
  grads = {"a": tf.constant([1.0, 0.0]), "b": tf.constant([-1.0, 1.0])}
  _, shared, _ = combine_grad.PCGrad(["a", "b"]).combine_gradients(LOSSES, ONE, grads)
  assert shared.numpy().tolist() == pytest.approx([0.5, 1.5])


def test_pcgrad_never_projects_translation():
  grads = {"translation": tf.constant([1.0, 0.0]), "b": tf.constant([-1.0, 1.0])}
  losses = {"translation": tf.constant(1.0), "b": tf.constant(1.0)}
  _, shared, _ = combine_grad.PCGrad(["translation", "b"]).combine_gradients(
      losses, {"translation": 1.0, "b": 1.0}, grads)
  assert shared.numpy().tolist() == pytest.approx([1.0 + 0.0, 0.0 + 1.0])


def test_pcgrad_leaves_agreeing_gradients_alone():
  grads = {"a": tf.constant([1.0, 0.0]), "b": tf.constant([1.0, 1.0])}
  _, shared, _ = combine_grad.PCGrad(["a", "b"]).combine_gradients(LOSSES, ONE, grads)
  assert shared.numpy().tolist() == pytest.approx([2.0, 1.0])


def test_mgda_min_norm_by_hand():
  """g_a = (2, 0), g_b = (0, 1): min over a of 4a^2 + (1-a)^2 -> a = 0.2."""
  grads = {"a": tf.constant([2.0, 0.0]), "b": tf.constant([0.0, 1.0])}
  used, shared, _ = combine_grad.MGDAUpperBound(["a", "b"]).combine_gradients(LOSSES, ONE, grads)
  assert [float(used["a"]), float(used["b"])] == pytest.approx([0.4, 1.6], abs=1e-4)
  assert shared.numpy().tolist() == pytest.approx([0.4 * 2, 1.6 * 1], abs=1e-4)  # sum used_i g_i


def test_gradnorm_by_hand():
  """w = (1, 1), ||g|| = (2, 1), first step: r = 1, target = mean(G) = 1.5,
  extra = |2 - 1.5| + |1 - 1.5| = 1, d extra / dw = (+2, -1); after renormalising, sum w = 2."""
  comb = combine_grad.GradNorm(["a", "b"])
  grads = {"a": tf.constant([2.0, 0.0]), "b": tf.constant([0.0, 1.0])}
  with tf.GradientTape() as tape:
    used, shared, extra = comb.combine_gradients(LOSSES, ONE, grads)
  assert float(extra) == pytest.approx(1.0)
  assert tape.gradient(extra, comb.task_weights.value).numpy().tolist() == pytest.approx([2., -1.])
  assert shared.numpy().tolist() == pytest.approx([2.0, 1.0])
  comb.task_weights.assign([3.0, 1.0])
  comb.after_apply()
  assert comb.task_weights.numpy().tolist() == pytest.approx([1.5, 0.5])
  del used
