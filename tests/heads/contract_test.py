"""Every registered head, on both architectures: builds, finite float32 loss, gradients to its
own variables and to the model, and loss 0 (no NaN) when its labels are all missing."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import heads  # noqa: F401  (registers the built-ins)
from configs.config import HeadSpec, ModelConfig
from configs.errors import UserError
from heads.base import HeadContext, safe_mean
from heads.registry import registered_heads
from heads.spec import build_heads
from model.seq2seq import build_model

BATCH = {"source": tf.constant([[5, 6, 7, 3, 0], [8, 9, 3, 0, 0], [5, 3, 0, 0, 0]], tf.int32),
         "target_in": tf.constant([[2, 5, 6, 7], [2, 9, 0, 0], [0, 0, 0, 0]], tf.int32),
         "target_out": tf.constant([[5, 6, 7, 3], [9, 3, 0, 0], [0, 0, 0, 0]], tf.int32),
         "price": tf.constant([math.nan, 150.0, 40.0], tf.float32),
         "domain": tf.constant([1, 0, -1], tf.int32)}
MISSING = dict(BATCH, price=tf.fill([3], math.nan), domain=tf.fill([3], -1),
               target_in=tf.zeros([3, 4], tf.int32), target_out=tf.zeros([3, 4], tf.int32))


def _setup(arch, name):
  keras.utils.set_random_seed(0)
  model = build_model(ModelConfig(model=arch, d_model=16, num_layers=2, num_heads=2, ffn_dim=32,
                                  dropout=0.0), 30, 30)
  context = HeadContext(vocab_size=30, d_model=16, summary_dim=model.summary_dim,
                        num_layers=model.num_cross_attention_layers,
                        num_attention_heads=model.num_attention_heads,
                        label_info={"price": np.array([30.0, 60, 90, 120, 200, 400]),
                                    "domain": ("a", "b")}, seed=1)
  built = build_heads([HeadSpec(name, (("weight", "1.0"),))], context)
  return model, built[-1]


@pytest.mark.parametrize("arch", ["transformer", "rnn"])
@pytest.mark.parametrize("name", sorted(registered_heads()))
def test_head_contract(arch, name):
  if (arch, name) == ("rnn", "head_disagreement"):
    with pytest.raises(UserError, match="needs at least 2"):
      _setup(arch, name)
    return
  model, head = _setup(arch, name)
  assert head.head_name == name
  with tf.GradientTape(persistent=True) as tape:
    outputs = model(BATCH, training=True)
    terms = head.loss_terms(outputs, BATCH, training=True)
    total = tf.add_n([safe_mean(t) for t in terms.values()])
  for term_name, term in terms.items():
    assert term.total.dtype == tf.float32 and np.isfinite(float(term.total)), term_name
    assert term_name.split("/")[0] == name
  own = head.trainable_variables
  for g, v in zip(tape.gradient(total, own), own):
    assert g is not None and np.all(np.isfinite(tf.convert_to_tensor(g).numpy())), v.path
  if own:
    assert any(np.any(tf.convert_to_tensor(g).numpy()) for g in tape.gradient(total, own))
  encoder_grads = [g for g in tape.gradient(total, model.trainable_variables) if g is not None]
  assert encoder_grads and any(np.any(tf.convert_to_tensor(g).numpy()) for g in encoder_grads)
  with tf.GradientTape() as tape:
    outputs = model(MISSING, training=True)
    missing = head.loss_terms(outputs, MISSING, training=True)
    total = tf.add_n([safe_mean(t) for t in missing.values()])
  for term in missing.values():
    assert float(term.total) == 0.0 and float(term.count) == 0.0
  for g in tape.gradient(total, model.trainable_variables + own):
    if g is not None:
      assert np.all(np.isfinite(tf.convert_to_tensor(g).numpy()))
  stats = head.metric_stats(model(BATCH, training=False), BATCH)
  head.metric_results({k: v.numpy() for k, v in stats.items()})
