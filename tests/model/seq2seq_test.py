"""Both architectures: output shapes, exact-zero masked attention, finite gradients, decoding."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from configs.config import ModelConfig
from configs.errors import UserError
from model import decoding, outputs as out
from model.seq2seq import build_model

ARCHS = ("transformer", "rnn")
SOURCE = tf.constant([[5, 6, 7, 8, 3, 0, 0, 0], [9, 3, 0, 0, 0, 0, 0, 0]], tf.int32)
TARGET_IN = tf.constant([[2, 5, 6, 0], [2, 0, 0, 0]], tf.int32)


def tiny(arch, seed=7, **overrides):
  keras.utils.set_random_seed(seed)
  config = ModelConfig(model=arch, d_model=16, num_layers=2, num_heads=2, ffn_dim=32,
                       dropout=overrides.pop("dropout", 0.0), **overrides)
  return build_model(config, 40, 40)


@pytest.mark.parametrize("arch", ARCHS)
def test_output_shapes(arch):
  model = tiny(arch)
  outputs = model({"source": SOURCE, "target_in": TARGET_IN}, training=False)
  layers, heads = (2, 2) if arch == "transformer" else (1, 1)
  assert outputs[out.LOGITS].shape == (2, 4, 40) and outputs[out.LOGITS].dtype == tf.float32
  assert outputs[out.ENCODER_OUTPUTS].shape == (2, 8, 16)
  assert outputs[out.ENCODER_SUMMARY].shape == (2, model.summary_dim)
  assert len(outputs[out.CROSS_ATTENTION]) == layers == model.num_cross_attention_layers
  assert outputs[out.CROSS_ATTENTION][0].shape == (2, heads, 4, 8)
  np.testing.assert_array_equal(outputs[out.TARGET_MASK].numpy(), [[1, 1, 1, 0], [1, 0, 0, 0]])
  np.testing.assert_array_equal(outputs[out.ENCODER_MASK].numpy()[1], [1, 1, 0, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("arch", ARCHS)
def test_attention_rows_sum_to_one_and_padding_is_exactly_zero(arch):
  outputs = tiny(arch)({"source": SOURCE, "target_in": TARGET_IN}, training=False)
  for probs in outputs[out.CROSS_ATTENTION]:
    p = probs.numpy()
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-5)
    assert (p[0, :, :, 5:] == 0.0).all() and (p[1, :, :, 2:] == 0.0).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_entropy_of_attention_has_finite_gradients_on_heavy_padding(arch):
  model = tiny(arch, dropout=0.1)
  source = tf.constant([[5, 3] + [0] * 30, [7, 8, 9, 3] + [0] * 28], tf.int32)
  with tf.GradientTape() as tape:
    outputs = model({"source": source, "target_in": TARGET_IN}, training=True)
    entropy = sum(tf.reduce_sum(-tf.math.xlogy(p, p)) for p in outputs[out.CROSS_ATTENTION])
  grads = tape.gradient(entropy, model.trainable_variables)
  assert any(g is not None for g in grads)
  for g, v in zip(grads, model.trainable_variables):
    if g is not None:
      assert np.all(np.isfinite(tf.convert_to_tensor(g).numpy())), v.path


@pytest.mark.parametrize("arch", ARCHS)
def test_cached_greedy_equals_uncached_and_beam1_equals_greedy(arch):
  model = tiny(arch, seed=3)
  cached = decoding.greedy_search(model, SOURCE, 12).numpy()
  uncached = decoding.greedy_search_uncached(model, SOURCE, 12).numpy()
  np.testing.assert_array_equal(cached, uncached)
  np.testing.assert_array_equal(decoding.beam_search(model, SOURCE, 1, 0.0, 12).numpy(), cached)
  beams = decoding.beam_search(model, SOURCE, 4, 0.6, 12).numpy()
  for row in beams:
    n = int(np.count_nonzero(row))
    assert row[n - 1] == decoding.EOS or n == row.shape[0]  # ends at EOS or at the length limit
    assert (row[n:] == 0).all() and 0 not in row[:n] and decoding.BOS not in row[:n]


@pytest.mark.parametrize("arch", ARCHS)
def test_seeded_construction_is_reproducible(arch):
  a, b, c = tiny(arch, seed=11), tiny(arch, seed=11), tiny(arch, seed=12)
  for va, vb in zip(a.weights, b.weights):
    np.testing.assert_array_equal(va.numpy(), vb.numpy())
  assert any(not np.array_equal(va.numpy(), vc.numpy())
             for va, vc in zip(a.trainable_weights, c.trainable_weights))


def test_mixed_bfloat16_gives_float32_logits():
  keras.mixed_precision.set_global_policy("mixed_bfloat16")
  try:
    outputs = tiny("transformer")({"source": SOURCE, "target_in": TARGET_IN}, training=False)
    assert outputs[out.LOGITS].dtype == tf.float32
    assert outputs[out.ENCODER_OUTPUTS].dtype == tf.bfloat16
    assert np.all(np.isfinite(outputs[out.LOGITS].numpy()))
  finally:
    keras.mixed_precision.set_global_policy("float32")


def test_unknown_model_lists_known():
  with pytest.raises(UserError, match="known models: rnn, transformer"):
    build_model(ModelConfig(model="lstm2"), 10, 10)
