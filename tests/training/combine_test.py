"""Loss combiners with hand-checkable numbers on toy losses."""
import math

import pytest
import tensorflow as tf

from configs.errors import UserError
from training import combine


def _run(comb, sequence, weights):
  out = []
  for la, lb in sequence:
    total, used = comb.combine({"a": tf.constant(la), "b": tf.constant(lb)}, weights)
    out.append((float(total), float(used["a"]), float(used["b"])))
  return out


def test_fixed_is_weighted_sum():
  total, used = combine.FixedCombiner(["a", "b"]).combine(
      {"a": tf.constant(2.0), "b": tf.constant(3.0)}, {"a": 1.0, "b": 0.5})
  assert float(total) == 3.5 and float(used["b"]) == 0.5


def test_dwa_by_hand():
  """Steps 1-2: no usable history -> weights 1. Step 3: rates (1.9/2, 1/1) with T = 2."""
  comb = combine.DynamicWeightAverage(["a", "b"])
  out = _run(comb, [(2.0, 1.0), (1.0, 1.0), (1.0, 1.0)], {"a": 1.0, "b": 1.0})
  assert out[0][1:] == (1.0, 1.0) and out[1][1:] == pytest.approx((1.0, 1.0))
  ea, eb = math.exp(0.95 / 2), math.exp(1.0 / 2)
  assert out[2][1:] == pytest.approx((2 * ea / (ea + eb), 2 * eb / (ea + eb)), rel=1e-5)


def test_rlw_weights_sum_to_k_and_are_reproducible():
  first = _run(combine.RandomLossWeighting(["a", "b"], seed=3), [(1.0, 1.0)] * 3,
               {"a": 1.0, "b": 1.0})
  again = _run(combine.RandomLossWeighting(["a", "b"], seed=3), [(1.0, 1.0)] * 3,
               {"a": 1.0, "b": 1.0})
  assert first == again
  for total, wa, wb in first:
    assert wa + wb == pytest.approx(2.0, rel=1e-6) and total == pytest.approx(2.0, rel=1e-6)
  assert len({round(w[1], 6) for w in first}) == 3  # a new draw every step


def test_unknown_combiner_lists_known():
  with pytest.raises(UserError, match="known combiners: .*fixed"):
    combine.get_combiner_class("magic")
  assert {"fixed", "uncertainty", "dwa", "rlw"} <= set(combine.known_combiners())


def test_famo_by_hand():
  """Step 1: xi = 0, z = (1/2, 1/2), L = (2, 1): c = 1 / (0.25 + 0.5) = 4/3,
  effective weights c z_i / L_i = (1/3, 2/3), d total / d L_a = 1/3.
  Step 2 with L = (1, 1): delta = (log 2, 0), xi_a falls (loss a fell faster) so z_a < z_b."""
  comb = combine.FAMO(["a", "b"])
  la, lb = tf.Variable(2.0), tf.Variable(1.0)
  with tf.GradientTape() as tape:
    total, used = comb.combine({"a": la * 1.0, "b": lb * 1.0}, {"a": 1.0, "b": 1.0})
  assert [float(used["a"]), float(used["b"])] == pytest.approx([1 / 3, 2 / 3], rel=1e-5)
  assert float(tape.gradient(total, la)) == pytest.approx(1 / 3, rel=1e-5)
  comb.combine({"a": tf.constant(1.0), "b": tf.constant(1.0)}, {"a": 1.0, "b": 1.0})
  xi = comb.xi.numpy()
  assert xi[0] < 0 < xi[1]
  # softmax Jacobian at z = (1/2, 1/2) times delta = (log 2, 0) is (log 2 / 4, -log 2 / 4).
  assert xi.tolist() == pytest.approx([-0.025 * math.log(2) / 4, 0.025 * math.log(2) / 4],
                                      rel=1e-4)
