"""NaN-safe masks (seed 001), training flag reaching heads (seed 002), diagnosis (seed 004)."""
import dataclasses
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs.config import HeadSpec, ModelConfig
from heads.base import Head, HeadContext, HeadOptions, LossTerm
from heads.spec import build_heads, parse_heads_spec
from model.seq2seq import build_model
from training import combine
from training.diagnose import diagnose
from training.step import compute_losses

PADDED = {"source": tf.constant([[5, 3] + [0] * 30, [7, 8, 9, 3] + [0] * 28], tf.int32),
          "target_in": tf.constant([[2, 5, 6, 0, 0, 0], [2, 0, 0, 0, 0, 0]], tf.int32),
          "target_out": tf.constant([[5, 6, 3, 0, 0, 0], [3, 0, 0, 0, 0, 0]], tf.int32),
          "price": tf.constant([80.0, math.nan]), "domain": tf.constant([0, -1])}


def _model_and_context(arch="transformer", dropout=0.1, seed=0):
  keras.utils.set_random_seed(seed)
  model = build_model(ModelConfig(model=arch, d_model=16, num_layers=2, num_heads=2, ffn_dim=32,
                                  dropout=dropout), 30, 30)
  context = HeadContext(vocab_size=30, d_model=16, summary_dim=model.summary_dim,
                        num_layers=model.num_cross_attention_layers,
                        num_attention_heads=model.num_attention_heads,
                        label_info={"price": np.array([50.0, 100, 150]), "domain": ("a",)})
  return model, context


def _total_gradients(model, heads):
  with tf.GradientTape() as tape:
    _, losses, weights, _ = compute_losses(model, heads, PADDED, training=True)
    total, _ = combine.FixedCombiner(list(losses)).combine(losses, weights)
  return tape.gradient(total, model.trainable_variables)


@pytest.mark.parametrize("weight", ["0.0001", "1"])
def test_entropy_gradients_are_finite_on_heavy_padding(weight):
  """translation + w * entropy (per head) has finite gradients everywhere; weight 0 would not
  even build the head, so a tiny weight stands for "0 * entropy" in the graph."""
  model, context = _model_and_context()
  heads = build_heads(parse_heads_spec(f"attention_entropy:weight={weight},reduce=per_head"),
                      context)
  for g, v in zip(_total_gradients(model, heads), model.trainable_variables):
    assert g is not None and np.all(np.isfinite(tf.convert_to_tensor(g).numpy())), v.path


def test_naive_minus_inf_mask_with_naive_entropy_gives_nan():
  """Why the guard is needed: a -inf mask and p * log(p) give NaN gradients, even at weight 0."""
  logits = tf.Variable([[1.0, 2.0, 0.5]])
  mask = tf.constant([[1.0, 1.0, 0.0]])
  with tf.GradientTape() as tape:
    p = tf.nn.softmax(tf.where(mask > 0, logits, -np.inf))
    naive = 0.0 * -tf.reduce_sum(p * tf.math.log(p))
  assert np.isnan(tape.gradient(naive, logits).numpy()).any()
  from model.attention import masked_softmax
  with tf.GradientTape() as tape:
    p = masked_softmax(logits, mask)
    safe = 0.0 * -tf.reduce_sum(tf.math.xlogy(p, p))
  assert p.numpy()[0, 2] == 0.0
  assert np.all(np.isfinite(tape.gradient(safe, logits).numpy()))


def test_price_head_batchnorm_and_dropout_follow_the_training_flag():
  """Seed 002: outputs differ between training=True and False; BatchNorm statistics move only
  in training."""
  _, context = _model_and_context()
  head = build_heads([HeadSpec("price", (("batch_norm", "true"), ("dropout", "0.5")))],
                     context)[-1]
  summary = tf.random.stateless_normal([8, context.summary_dim], seed=[1, 2])
  bn = [layer for block in head.mlp.blocks for layer in block
        if isinstance(layer, keras.layers.BatchNormalization)][0]
  before = bn.moving_mean.numpy().copy()
  inference = head(summary, training=False).numpy()
  np.testing.assert_array_equal(bn.moving_mean.numpy(), before)
  training = head(summary, training=True).numpy()
  assert not np.allclose(inference, training)
  assert not np.array_equal(bn.moving_mean.numpy(), before)
  np.testing.assert_array_equal(head(summary, training=False).numpy(),
                                head(summary, training=False).numpy())


def test_diagnose_names_zero_initialised_embedding():
  """Seed 004: all-zero embeddings and zero biases -> reported by variable name with the cause."""
  model, context = _model_and_context(dropout=0.0)
  heads = build_heads((), context)
  for v in model.trainable_variables:
    if "embedding" in v.path or "bias" in v.path or "output_projection" in v.path:
      v.assign(tf.zeros_like(v))
  c = dataclasses.make_dataclass("C", ["model", "heads", "combiner"])(
      model, heads, combine.FixedCombiner(["translation"]))
  report = diagnose(c, [PADDED], steps=1)
  text = "\n".join(report.lines())
  assert any(e.startswith("seq2seq/source_embedding/embedding/embeddings: all-zero weight matrix")
             for e in report.errors), text
  assert any("encoder/layer_0" in e and "through the all-zero weights" in e
             for e in report.errors), text


class _NaNHead(Head):
  head_name = "broken"
  reads = ()

  def loss(self, outputs, batch, training):
    return LossTerm(tf.constant(float("nan")), tf.constant(1.0))


def _diagnose_with_extra_head(head_cls):
  """diagnose() on translation + one extra head of `head_cls`, over one padded batch."""
  model, context = _model_and_context(dropout=0.0)
  heads = build_heads((), context) + [head_cls(HeadOptions(), context)]
  c = dataclasses.make_dataclass("C", ["model", "heads", "combiner"])(
      model, heads, combine.FixedCombiner(["translation", head_cls.head_name]))
  return diagnose(c, [PADDED], steps=1)


def test_diagnose_names_the_head_whose_loss_is_nan():
  report = _diagnose_with_extra_head(_NaNHead)
  assert any("'broken'" in e and "nan" in e for e in report.errors), report.lines()
  assert not any("translation" in e for e in report.errors)


class _DetachedHead(Head):
  """Has a sublayer that no loss uses: its variables are unconnected."""
  head_name = "detached"
  reads = ()

  def __init__(self, options, context, **kwargs):
    super().__init__(options, context, **kwargs)
    self.unused = keras.layers.Dense(2, name="unused")
    self.unused.build((None, 3))

  def loss(self, outputs, batch, training):
    return LossTerm(tf.constant(0.0), tf.constant(1.0))


def test_diagnose_reports_unconnected_variables_by_name():
  report = _diagnose_with_extra_head(_DetachedHead)
  unconnected = [w for w in report.warnings if w.endswith("no loss term reaches it (unconnected)")]
  assert sorted(w.split(":")[0].split("/")[-1] for w in unconnected) == ["bias", "kernel"], (
      report.lines())
  assert all("unused" in w for w in unconnected)
  assert not any("translation" in w or "seq2seq" in w for w in unconnected)
