"""Both architectures: output shapes, exact-zero masked attention, finite gradients, seeding."""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs.config import ModelConfig
from configs.errors import UserError
from model import outputs as out
from model.seq2seq import build_model

ARCHS = ("transformer", "rnn")
SOURCE = tf.constant([[5, 6, 7, 8, 3, 0, 0, 0], [9, 3, 0, 0, 0, 0, 0, 0]], tf.int32)
TARGET_IN = tf.constant([[2, 5, 6, 0], [0, 0, 0, 0]], tf.int32)  # row 1: no translation
BATCH = {"source": SOURCE, "target_in": TARGET_IN, "price": tf.constant([np.nan, 2.0]),
         "source_text": tf.constant(["a", "b"])}  # extra keys are ignored


def tiny(arch, seed=7, source_vocab=40, target_vocab=40, **overrides):
  keras.utils.set_random_seed(seed)
  config = ModelConfig(model=arch, d_model=16, num_layers=2, num_heads=2, ffn_dim=32,
                       dropout=0.0)
  return build_model(dataclasses.replace(config, **overrides), source_vocab, target_vocab)


@pytest.mark.parametrize("arch", ARCHS)
def test_output_shapes(arch):
  model = tiny(arch)
  outputs = model(BATCH, training=False)
  layers, heads = (2, 2) if arch == "transformer" else (1, 1)
  assert set(outputs) == set(out.ALL)
  assert outputs[out.LOGITS].shape == (2, 4, 40) and outputs[out.LOGITS].dtype == tf.float32
  assert outputs[out.ENCODER_OUTPUTS].shape == (2, 8, 16)
  assert outputs[out.ENCODER_SUMMARY].shape == (2, model.summary_dim)
  assert model.summary_dim == (16 if arch == "transformer" else 32)  # rnn: 2 layers x 16
  assert len(outputs[out.CROSS_ATTENTION]) == layers == model.num_cross_attention_layers
  assert model.num_attention_heads == heads
  for probs in outputs[out.CROSS_ATTENTION]:
    assert probs.shape == (2, heads, 4, 8) and probs.dtype == tf.float32
  np.testing.assert_array_equal(outputs[out.TARGET_MASK].numpy(), [[1, 1, 1, 0], [0, 0, 0, 0]])
  np.testing.assert_array_equal(outputs[out.ENCODER_MASK].numpy(),
                                [[1, 1, 1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0]])


@pytest.mark.parametrize("arch", ARCHS)
def test_attention_rows_sum_to_one_and_padding_is_exactly_zero(arch):
  outputs = tiny(arch)(BATCH, training=False)
  for probs in outputs[out.CROSS_ATTENTION]:
    p = probs.numpy()
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-5)
    assert (p[0, :, :, 5:] == 0.0).all() and (p[1, :, :, 2:] == 0.0).all()
    assert (p[0, :, :, :5] > 0.0).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_entropy_of_attention_has_finite_gradients_on_heavy_padding(arch):
  model = tiny(arch, dropout=0.1)
  source = tf.constant([[5, 3] + [0] * 30, [7, 8, 9, 3] + [0] * 28], tf.int32)
  with tf.GradientTape() as tape:
    outputs = model({"source": source, "target_in": TARGET_IN}, training=True)
    entropy = sum(tf.reduce_sum(-tf.math.xlogy(p, p)) for p in outputs[out.CROSS_ATTENTION])
  grads = tape.gradient(entropy, model.trainable_variables)
  encoder_grads = [g for g, v in zip(grads, model.trainable_variables)
                   if g is not None and "encoder" in v.path]
  assert encoder_grads, "the entropy must reach the encoder"
  for g, v in zip(grads, model.trainable_variables):
    if g is not None:
      assert np.all(np.isfinite(tf.convert_to_tensor(g).numpy())), v.path


@pytest.mark.parametrize("arch", ARCHS)
def test_seeded_construction_is_reproducible(arch):
  a, b, c = tiny(arch, seed=11), tiny(arch, seed=11), tiny(arch, seed=12)
  assert len(a.weights) == len(b.weights) > 0
  for va, vb in zip(a.weights, b.weights):
    np.testing.assert_array_equal(va.numpy(), vb.numpy())
  assert any(not np.array_equal(va.numpy(), vc.numpy())
             for va, vc in zip(a.trainable_weights, c.trainable_weights))


def test_tied_embeddings_share_one_table_only_for_equal_vocabularies():
  tied, untied = tiny("transformer"), tiny("transformer", target_vocab=41)
  assert tied.output_projection is None and tied.target_embedding is tied.source_embedding
  assert untied.output_projection is not None
  assert len(untied.trainable_weights) == len(tied.trainable_weights) + 3  # table, kernel, bias
  logits = untied({"source": SOURCE, "target_in": TARGET_IN})[out.LOGITS]
  assert logits.shape == (2, 4, 41)


@pytest.mark.parametrize("summary", ["max", "first", "attention"])
def test_summary_modes(summary):
  model = tiny("transformer", num_layers=1, summary=summary)
  outputs = model(BATCH)
  assert outputs[out.ENCODER_SUMMARY].shape == (2, 16)
  if summary == "first":
    np.testing.assert_array_equal(outputs[out.ENCODER_SUMMARY], outputs[out.ENCODER_OUTPUTS][:, 0])


@pytest.mark.parametrize("arch", ARCHS)
def test_decode_state_is_batch_major(arch):
  model = tiny(arch, num_layers=1)
  encoded = model.encode(SOURCE, training=False)
  state = model.init_decode_state(encoded)
  for leaf in tf.nest.flatten(state):
    assert leaf.shape[0] == 2
  logits, new_state = model.decode_step(tf.constant([2, 2]), tf.constant(0), state, encoded)
  assert logits.shape == (2, 40) and logits.dtype == tf.float32
  tf.nest.assert_same_structure(state, new_state)


@pytest.mark.parametrize("arch", ARCHS)
def test_mixed_bfloat16_gives_float32_logits(arch):
  keras.mixed_precision.set_global_policy("mixed_bfloat16")
  try:
    outputs = tiny(arch, num_layers=1)(BATCH, training=False)
  finally:
    keras.mixed_precision.set_global_policy("float32")
  assert outputs[out.LOGITS].dtype == tf.float32
  assert outputs[out.ENCODER_OUTPUTS].dtype == tf.bfloat16
  assert outputs[out.CROSS_ATTENTION][0].dtype == tf.float32
  assert np.all(np.isfinite(outputs[out.LOGITS].numpy()))
  assert (outputs[out.CROSS_ATTENTION][0].numpy()[1, :, :, 2:] == 0.0).all()


def test_unknown_model_lists_known():
  with pytest.raises(UserError, match="known models: rnn, transformer"):
    build_model(ModelConfig(model="lstm2"), 10, 10)


@pytest.mark.parametrize("overrides,match", [
    (dict(model="transformer", num_heads=3), "num_heads"),
    (dict(model="transformer", summary="median"), "median"),
    (dict(model="rnn", rnn_cell="elman"), "elman"),
    (dict(model="rnn", d_model=15), "d_model=15"),
])
def test_bad_arguments_raise_value_error_naming_the_value(overrides, match):
  with pytest.raises(ValueError, match=match):
    build_model(dataclasses.replace(ModelConfig(d_model=16, num_layers=1), **overrides), 10, 10)


def test_gru_seq2seq_learns_a_copy_task():
  """The GRU cell is built (GRU variables, one state) and trained by the real step: loss falls."""
  import keras  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from configs.config import ModelConfig  # pylint: disable=import-outside-toplevel
  from heads.base import HeadContext  # pylint: disable=import-outside-toplevel
  from heads.spec import build_heads  # pylint: disable=import-outside-toplevel
  from model.seq2seq import build_model  # pylint: disable=import-outside-toplevel
  from training.combine import FixedCombiner  # pylint: disable=import-outside-toplevel
  from training.step import make_train_step, trainable_variables  # pylint: disable=import-outside-toplevel
  keras.utils.set_random_seed(0)
  model = build_model(ModelConfig(model="rnn", rnn_cell="gru", d_model=32, num_layers=1,
                                  dropout=0.0, tie_embeddings=False), 12, 12)
  assert model.init_decode_state(model.encode(tf.constant([[5, 3]])))["rnn"].__len__() == 1
  context = HeadContext(vocab_size=12, d_model=32, summary_dim=model.summary_dim, num_layers=1,
                        num_attention_heads=1)
  heads = build_heads((), context)
  combiner = FixedCombiner(["translation"])
  optimizer = keras.optimizers.Adam(1e-2)
  model({"source": tf.constant([[5, 3]]), "target_in": tf.constant([[2, 5]])})
  optimizer.build(trainable_variables(model, heads, combiner))
  assert any("gru" in v.path for v in model.trainable_variables)
  step = make_train_step(model, heads, combiner, optimizer)
  rng = np.random.default_rng(0)
  losses = []
  for _ in range(60):
    seq = rng.integers(4, 12, size=(16, 5)).astype(np.int32)
    batch = {"source": np.concatenate([seq, np.full((16, 1), 3)], 1),
             "target_in": np.concatenate([np.full((16, 1), 2), seq], 1),
             "target_out": np.concatenate([seq, np.full((16, 1), 3)], 1)}
    losses.append(float(step({k: tf.constant(v, tf.int32) for k, v in batch.items()})["loss"]))
  assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 1.0, losses
