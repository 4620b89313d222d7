"""Attention, pooling and position encodings on numbers derived by hand."""
import math

import numpy as np
import pytest
import tensorflow as tf

from model.attention import MultiHeadAttention, mask_value, masked_softmax
from model.layers import Pooling, sinusoidal_positions


def test_masked_softmax_by_hand():
  # Row 0: exp(0), exp(ln 2), masked -> 1/3, 2/3, 0. Row 1: nothing kept -> all zeros, not NaN.
  logits = tf.constant([[0.0, math.log(2.0), 5.0], [1.0, 2.0, 3.0]])
  probs = masked_softmax(logits, tf.constant([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])).numpy()
  np.testing.assert_allclose(probs[0], [1 / 3, 2 / 3, 0.0], rtol=1e-6)
  assert probs[0, 2] == 0.0 and (probs[1] == 0.0).all()


def test_mask_value_is_finite_in_every_float_dtype():
  assert mask_value(tf.float32) == -1e9
  for dtype in (tf.float16, tf.bfloat16):
    value = tf.constant(mask_value(dtype), dtype)
    assert np.isfinite(value.numpy().astype(np.float32)) and value.numpy() < -1e4


def test_entropy_gradient_is_finite_with_padding_and_empty_rows():
  logits = tf.Variable([[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
  mask = tf.constant([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
  with tf.GradientTape() as tape:
    p = masked_softmax(logits, mask)
    entropy = -tf.reduce_sum(tf.math.xlogy(p, p))
  grad = tape.gradient(entropy, logits).numpy()
  assert np.isfinite(grad).all()
  assert (grad[:, 2:] == 0.0).all() and (grad[1] == 0.0).all()


def test_multi_head_attention_probabilities_and_exact_zeros():
  layer = MultiHeadAttention(d_model=8, num_heads=2, name="mha")
  query = tf.random.stateless_normal([2, 3, 8], seed=[1, 2])
  memory = tf.random.stateless_normal([2, 5, 8], seed=[3, 4])
  mask = tf.constant([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], tf.float32)[:, None, None, :]
  output, probs = layer(query, memory, mask)
  assert output.shape == (2, 3, 8) and probs.shape == (2, 2, 3, 5) and probs.dtype == tf.float32
  p = probs.numpy()
  np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-6)
  assert (p[0, :, :, 3:] == 0.0).all() and (p[1, :, :, 1:] == 0.0).all()
  # One real key takes everything: 1 to the last bit on AVX512 hosts; TensorFlow's softmax
  # kernel on an AVX2-only host gives 1 - 6e-8 (the masked zeros above stay exact on both).
  np.testing.assert_allclose(p[1, :, :, 0], 1.0, rtol=1e-7)
  assert MultiHeadAttention.from_config(layer.get_config()).num_heads == 2


@pytest.mark.parametrize("kwargs", [dict(d_model=10, num_heads=3), dict(d_model=8, num_heads=2,
                                                                         dropout=1.0)])
def test_multi_head_attention_rejects_bad_arguments(kwargs):
  with pytest.raises(ValueError, match=str(list(kwargs.values())[-1])):
    MultiHeadAttention(**kwargs)


X = tf.constant([[[1.0, -2.0], [3.0, 4.0], [100.0, 100.0]]])  # [B=1, S=3, D=2]; position 2 pads
MASK = tf.constant([[1.0, 1.0, 0.0]])


@pytest.mark.parametrize("mode,expected", [("mean", [2.0, 1.0]), ("max", [3.0, 4.0]),
                                           ("first", [1.0, -2.0])])
def test_pooling_by_hand(mode, expected):
  np.testing.assert_allclose(Pooling(mode)(X, MASK).numpy(), [expected])


def test_attention_pooling_ignores_padding_and_empty_rows_give_zeros():
  pooling = Pooling("attention")
  pooled = pooling(X, MASK).numpy()[0]
  # A convex combination of the two real rows only (the padded 100s would dominate otherwise).
  assert 1.0 <= pooled[0] <= 3.0 and -2.0 <= pooled[1] <= 4.0
  for mode in Pooling.MODES[:2] + ("attention",):
    layer = pooling if mode == "attention" else Pooling(mode)
    np.testing.assert_array_equal(layer(X, tf.zeros([1, 3])).numpy(), [[0.0, 0.0]])
  with pytest.raises(ValueError, match="'median'"):
    Pooling("median")


def test_sinusoidal_positions_by_hand():
  table = sinusoidal_positions(0, 3, 4).numpy()
  # Channel 0/1: sin/cos(p); channel 2/3: sin/cos(p / 100) (10000^(2/4) = 100).
  np.testing.assert_allclose(table[0], [0.0, 1.0, 0.0, 1.0], atol=1e-7)
  np.testing.assert_allclose(table[2], [math.sin(2), math.cos(2), math.sin(0.02),
                                        math.cos(0.02)], rtol=1e-6)
  np.testing.assert_allclose(sinusoidal_positions(2, 1, 4).numpy()[0], table[2], rtol=1e-6)
