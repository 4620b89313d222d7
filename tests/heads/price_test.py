"""The price head's options: label smoothing of its bucket cross-entropy, and bad values."""
import math

import numpy as np
import pytest
import tensorflow as tf

from configs.config import HeadSpec
from configs.errors import UserError
from heads import price
from heads.base import HeadContext
from heads.classifier import masked_cross_entropy
from heads.spec import build_heads, make_options, parse_heads_spec

CTX = HeadContext(vocab_size=50, d_model=8, summary_dim=8, num_layers=1, num_attention_heads=2,
                  label_info={"price": np.array([10.0, 50, 90]), "domain": ()}, seed=5)


def test_label_smoothing_by_hand():
  """logits (0, ln 3, 0) -> p = (0.2, 0.6, 0.2), label 1, eps 0.1:
  0.9 * -ln 0.6 + 0.1 * (-(2 ln 0.2 + ln 0.6) / 3); the masked row adds nothing."""
  logits = tf.constant([[0.0, math.log(3), 0.0], [5.0, 1.0, 0.0]])
  total, count = masked_cross_entropy(logits, tf.constant([1, -1]), 0.1)
  expected = 0.9 * -math.log(0.6) + 0.1 * -(2 * math.log(0.2) + math.log(0.6)) / 3
  assert float(total) == pytest.approx(expected, rel=1e-6) and float(count) == 1.0
  plain, _ = masked_cross_entropy(logits, tf.constant([1, -1]))
  assert float(plain) == pytest.approx(-math.log(0.6), rel=1e-6)


def test_price_head_loss_uses_its_label_smoothing():
  """Same weights (same seed), eps 0 vs 0.2: the smoothed loss is the by-hand mix of the two."""
  plain, smooth = (build_heads(parse_heads_spec(spec), CTX)[-1]
                   for spec in ("price", "price:label_smoothing=0.2"))
  summary = tf.constant(np.random.default_rng(0).normal(size=(3, 8)), tf.float32)
  batch = {"price": tf.constant([20.0, math.nan, 80.0])}
  outputs = {"encoder_summary": summary}
  logits = plain(summary, training=False)
  labels = price.bucketize(batch["price"], plain.edges)
  uniform = -tf.reduce_mean(tf.nn.log_softmax(logits, -1), -1)
  nll = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.maximum(labels, 0), logits)
  mask = tf.cast(labels >= 0, tf.float32)
  expected = tf.reduce_sum((0.8 * nll + 0.2 * uniform) * mask)
  total, count = smooth.loss(outputs, batch, training=False)
  assert float(count) == 2.0
  assert float(total) == pytest.approx(float(expected), rel=1e-5)
  assert float(total) != pytest.approx(float(plain.loss(outputs, batch, False).total), rel=1e-3)


@pytest.mark.parametrize("option, value, message", [
    ("label_smoothing", "1", "label_smoothing must be in \\[0, 1\\), got 1.0"),
    ("label_smoothing", "-0.1", "label_smoothing must be in \\[0, 1\\), got -0.1"),
    ("dropout", "1", "dropout must be in \\[0, 1\\), got 1.0"),
])
def test_bad_option_values_are_refused(option, value, message):
  with pytest.raises(UserError, match=f"head 'price': {message}"):
    make_options(price.PriceHead, HeadSpec("price", ((option, value),)))
