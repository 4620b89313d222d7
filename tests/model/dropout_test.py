"""model/dropout.py: 16-bit dropout keeps Keras' contract (rate, expectation, seeding)."""
import numpy as np
import pytest
import tensorflow as tf

from model.dropout import Dropout
from model.seeding import component_seed


def test_rate_and_scale_by_hand():
  """rate 0.1: threshold round(0.1 * 65536) = 6554, kept values scaled by 65536 / 58982."""
  with component_seed(7, "t"):
    layer = Dropout(0.1)
  y = layer(tf.ones([200, 1000]), training=True).numpy()
  kept = y != 0
  np.testing.assert_allclose(y[kept], 65536 / 58982, rtol=1e-6)
  assert abs(1.0 - kept.mean() - 6554 / 65536) < 0.003  # 200k draws: sd 0.0007
  assert abs(y.mean() - 1.0) < 0.01  # the expectation is kept


def test_inference_and_odd_width_paths():
  with component_seed(7, "t"):
    layer = Dropout(0.3)
  x = tf.random.normal([4, 6])
  np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())
  odd = layer(tf.ones([300, 301]), training=True).numpy()  # Keras' own path: scale 1 / 0.7
  np.testing.assert_allclose(odd[odd != 0], 1 / 0.7, rtol=1e-6)


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
def test_same_seed_same_mask_and_draws_advance(dtype):
  def masks():
    with component_seed(3, "layer"):
      layer = Dropout(0.5)
    x = tf.ones([8, 16], dtype)
    return [layer(x, training=True).numpy() != 0 for _ in range(2)]
  first, second = masks(), masks()
  np.testing.assert_array_equal(first[0], second[0])
  np.testing.assert_array_equal(first[1], second[1])
  assert (first[0] != first[1]).any()  # each call draws afresh


def test_gradient_is_the_mask_times_the_scale():
  with component_seed(1, "g"):
    layer = Dropout(0.25)
  x = tf.ones([16, 32])
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = layer(x, training=True)
    total = tf.reduce_sum(y)
  grad = tape.gradient(total, x).numpy()
  np.testing.assert_allclose(grad, y.numpy(), rtol=1e-6)  # y = mask * scale on ones
