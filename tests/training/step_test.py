"""The one-tape step: matches model.fit(), passes training=True, weights and grad_scale act exactly."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from heads.base import Head, HeadOptions, LossTerm
from training.combine import FixedCombiner, UncertaintyCombiner
from training.step import compute_losses, make_train_step


class Wrapped(keras.Model):
  """A plain Keras model presented as an auxseq model: its output is `encoder_summary`."""

  def __init__(self, inner):
    super().__init__()
    self.inner = inner

  def call(self, batch, training=None):
    return {"encoder_summary": self.inner(batch["x"], training=training)}


class _MSEHead(Head):
  """Mean squared error of encoder_summary[:, 0] against batch['y']; normaliser: examples."""
  head_name = "mse"
  reads = ("encoder_summary",)

  def loss(self, outputs, batch, training):
    err = outputs["encoder_summary"][:, 0] - batch["y"]
    return LossTerm(tf.reduce_sum(err * err), tf.cast(tf.size(err), tf.float32))


def _plain_model(seed):
  keras.utils.set_random_seed(seed)
  model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8),
                            keras.layers.BatchNormalization(), keras.layers.Activation("relu"),
                            keras.layers.Dropout(0.0), keras.layers.Dense(1)])
  return model


def test_custom_step_matches_model_fit():
  """Seed 002: BatchNorm in training mode in both; same SGD updates, same weights after 5 steps."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(40, 4)).astype("float32")
  y = rng.normal(size=(40,)).astype("float32")
  reference = _plain_model(3)
  reference.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
  reference.fit(x, y[:, None], batch_size=8, epochs=1, shuffle=False, verbose=0)

  ours = Wrapped(_plain_model(3))
  head = _MSEHead(HeadOptions(), context=None)
  optimizer = keras.optimizers.SGD(0.1)
  step = make_train_step(ours, [head], FixedCombiner(["mse"]), optimizer)
  for i in range(0, 40, 8):
    step({"x": tf.constant(x[i:i + 8]), "y": tf.constant(y[i:i + 8])})
  for a, b in zip(reference.weights, ours.inner.weights):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)
  moving_mean = ours.inner.layers[1].moving_mean.numpy()
  assert np.abs(moving_mean).max() > 0  # BatchNorm statistics moved: it ran in training mode


def _toy():
  model = Wrapped(_plain_model(5))
  batch = {"x": tf.ones((4, 4)), "y": tf.constant([1.0, 2.0, 3.0, 4.0])}
  return model, batch


def test_weight_scales_loss_and_grad_scale_only_scales_gradient():
  model, batch = _toy()
  base = _MSEHead(HeadOptions(weight=1.0), None)
  scaled = _MSEHead(HeadOptions(weight=1.0, grad_scale=-0.5), None)
  grads = []
  for head in (base, scaled):
    with tf.GradientTape() as tape:
      _, losses, weights, _ = compute_losses(model, [head], batch, training=False)
      total, _ = FixedCombiner(["mse"]).combine(losses, weights)
    grads.append(tape.gradient(total, model.trainable_variables))
    values = float(total)
  assert values == pytest.approx(float(compute_losses(model, [base], batch, False)[1]["mse"]))
  for g0, g1 in zip(*grads):
    np.testing.assert_allclose(g1.numpy(), -0.5 * g0.numpy(), rtol=1e-6, atol=1e-7)


def test_nonfinite_loss_is_reported_and_not_applied():
  model, batch = _toy()
  batch["y"] = tf.constant([np.nan, 1.0, 1.0, 1.0])
  optimizer = keras.optimizers.SGD(0.1)
  step = make_train_step(model, [_MSEHead(HeadOptions(), None)], FixedCombiner(["mse"]), optimizer)
  before = [v.numpy().copy() for v in model.trainable_variables]
  result = step(batch)
  assert not bool(result["finite"]) and np.isnan(float(result["loss/mse"]))
  for a, v in zip(before, model.trainable_variables):
    np.testing.assert_array_equal(a, v.numpy())


def test_uncertainty_combiner_by_hand():
  """Kendall et al.: w * (exp(-s) L + s); at s = 0 it equals the fixed sum; d/ds = w (1 - L e^-s)."""
  comb = UncertaintyCombiner(["a", "b"])
  losses = {"a": tf.constant(2.0), "b": tf.constant(0.5)}
  with tf.GradientTape() as tape:
    total, used = comb.combine(losses, {"a": 1.0, "b": 0.3})
  assert float(total) == pytest.approx(2.0 + 0.3 * 0.5)
  grads = tape.gradient(total, [comb.log_vars["a"].value, comb.log_vars["b"].value])
  assert [float(g) for g in grads] == pytest.approx([1 - 2.0, 0.3 * (1 - 0.5)])
  assert float(used["b"]) == pytest.approx(0.3)


def test_xla_compiled_step_matches_the_plain_step():
  """--jit_compile runs the same step through XLA: same weights after 3 SGD steps."""
  results = []
  rng = np.random.default_rng(1)
  batch = {"x": tf.constant(rng.normal(size=(8, 4)), tf.float32),  # varied rows: BatchNorm's
           "y": tf.constant(rng.normal(size=(8,)), tf.float32)}   # variance is not 0
  for jit in (False, True):
    model = Wrapped(_plain_model(5))
    head = _MSEHead(HeadOptions(), None)
    step = make_train_step(model, [head], FixedCombiner(["mse"]), keras.optimizers.SGD(0.05),
                           jit_compile=jit)
    for _ in range(3):
      out = step(batch)
    assert bool(out["finite"])
    results.append([v.numpy() for v in model.trainable_variables])
  for a, b in zip(*results):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_head_weight_multiplies_its_loss_and_its_gradient():
  """Varying a head's weight scales exactly its term of the combined loss and its gradient."""
  model, batch = _toy()
  totals, grads = [], []
  for weight in (1.0, 2.5, 0.25):
    head = _MSEHead(HeadOptions(weight=weight), None)
    with tf.GradientTape() as tape:
      _, losses, weights, _ = compute_losses(model, [head], batch, training=False)
      total, used = FixedCombiner(["mse"]).combine(losses, weights)
    assert float(used["mse"]) == weight
    totals.append(float(total))
    grads.append(tape.gradient(total, model.trainable_variables))
  assert totals[1] == pytest.approx(2.5 * totals[0], rel=1e-6)
  assert totals[2] == pytest.approx(0.25 * totals[0], rel=1e-6)
  for g1, g25 in zip(grads[0], grads[1]):
    np.testing.assert_allclose(g25.numpy(), 2.5 * g1.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("arch", ["transformer", "rnn"])
def test_grad_scale_reaches_the_encoder_through_cross_attention(arch):
  """An attention regulariser's gradient into the encoder is multiplied by its grad_scale; its
  gradient into the decoder is not."""
  from configs.config import ModelConfig  # pylint: disable=import-outside-toplevel
  from heads.registry import get_head_class  # pylint: disable=import-outside-toplevel
  from heads.base import HeadContext  # pylint: disable=import-outside-toplevel
  from model.seq2seq import build_model  # pylint: disable=import-outside-toplevel
  keras.utils.set_random_seed(1)
  model = build_model(ModelConfig(model=arch, d_model=16, num_layers=2, num_heads=2, ffn_dim=16,
                                  dropout=0.0, tie_embeddings=False), 20, 20)
  batch = {"source": tf.constant([[5, 6, 7, 3], [8, 9, 3, 0]]),
           "target_in": tf.constant([[2, 5, 6], [2, 7, 0]]),
           "target_out": tf.constant([[5, 6, 3], [7, 3, 0]])}
  model(batch)
  context = HeadContext(vocab_size=20, d_model=16, summary_dim=model.summary_dim,
                        num_layers=model.num_cross_attention_layers,
                        num_attention_heads=model.num_attention_heads)
  encoder = [v for v in model.trainable_variables
             if "encoder" in v.path or "source_embedding" in v.path]
  decoder = [v for v in model.trainable_variables if v.path.startswith("seq2seq/decoder")
             or "/decoder" in v.path]
  assert encoder and decoder

  def grads(scale):
    cls = get_head_class("attention_entropy")
    head = cls(cls.Options(layers="all", grad_scale=scale), context)
    with tf.GradientTape() as tape:
      _, losses, _, _ = compute_losses(model, [head], batch, training=True)
      loss = losses["attention_entropy"]
    variables = encoder + decoder
    return [np.zeros(v.shape) if g is None else tf.convert_to_tensor(g).numpy()
            for v, g in zip(variables, tape.gradient(loss, variables))]

  base = grads(1.0)
  size = max(np.abs(g).max() for g in base[:len(encoder)])
  assert size > 0
  for scale in (0.5, 0.0, -1.0):
    scaled = grads(scale)
    for g1, gs in zip(base[:len(encoder)], scaled[:len(encoder)]):
      np.testing.assert_allclose(gs, scale * g1, rtol=1e-4, atol=1e-4 * size)
    for g1, gs in zip(base[len(encoder):], scaled[len(encoder):]):
      np.testing.assert_allclose(gs, g1, rtol=1e-4, atol=1e-4 * size)


@pytest.mark.parametrize("combiner", ["fixed", "pcgrad"])
def test_train_step_detaches_an_attention_head_with_grad_scale_zero(combiner):
  """The real step (summed or per-term gradients): with translation at weight 0 and only
  attention_entropy:grad_scale=0 training, one SGD step moves decoder weights but no encoder
  weight; with grad_scale=1 the encoder moves too."""
  from configs.config import HeadSpec, ModelConfig  # pylint: disable=import-outside-toplevel
  from heads.base import HeadContext  # pylint: disable=import-outside-toplevel
  from heads.spec import build_heads  # pylint: disable=import-outside-toplevel
  from model.seq2seq import build_model  # pylint: disable=import-outside-toplevel
  from training import combine_grad  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  from training.combine import get_combiner_class  # pylint: disable=import-outside-toplevel
  from training.step import trainable_variables  # pylint: disable=import-outside-toplevel
  batch = {"source": tf.constant([[5, 6, 7, 3], [8, 9, 3, 0]]),
           "target_in": tf.constant([[2, 5, 6], [2, 7, 0]]),
           "target_out": tf.constant([[5, 6, 3], [7, 3, 0]])}
  moved = {}
  for scale in ("0", "1"):
    keras.utils.set_random_seed(2)
    model = build_model(ModelConfig(d_model=16, num_layers=2, num_heads=2, ffn_dim=16,
                                    dropout=0.0, tie_embeddings=False), 20, 20)
    model(batch)
    context = HeadContext(vocab_size=20, d_model=16, summary_dim=16, num_layers=2,
                          num_attention_heads=2, seed=1)
    heads = build_heads([HeadSpec("translation", (("weight", "0"),)),
                         HeadSpec("attention_entropy", (("layers", "all"), ("weight", "1"),
                                                        ("grad_scale", scale)))], context)
    terms = ["translation", "attention_entropy"]
    comb = get_combiner_class(combiner)(terms)
    optimizer = keras.optimizers.SGD(1.0)
    optimizer.build(trainable_variables(model, heads, comb))
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    make_train_step(model, heads, comb, optimizer)(batch)
    moved[scale] = {p for p, value in before.items()
                    if not np.array_equal(value, next(v for v in model.trainable_variables
                                                      if v.path == p).numpy())}
  encoder = lambda paths: {p for p in paths if "encoder" in p or "source_embedding" in p}  # noqa: E731
  assert encoder(moved["1"]) and not encoder(moved["0"]), (sorted(moved["0"]))
  assert moved["0"] - encoder(moved["0"])  # the decoder still learns from the head


def test_rdrop_gets_a_second_dropout_pass_in_training_only():
  """With dropout the two passes differ (rdrop > 0) and the step trains; evaluation
  (training=False) hands the same outputs twice (rdrop = 0)."""
  from configs.config import HeadSpec, ModelConfig  # pylint: disable=import-outside-toplevel
  from heads.base import HeadContext  # pylint: disable=import-outside-toplevel
  from heads.spec import build_heads  # pylint: disable=import-outside-toplevel
  from model.seq2seq import build_model  # pylint: disable=import-outside-toplevel
  from training.step import trainable_variables  # pylint: disable=import-outside-toplevel
  keras.utils.set_random_seed(4)
  model = build_model(ModelConfig(d_model=16, num_layers=1, num_heads=2, ffn_dim=16,
                                  dropout=0.3), 20, 20)
  batch = {"source": tf.constant([[5, 6, 7, 3], [8, 9, 3, 0]]),
           "target_in": tf.constant([[2, 5, 6], [2, 7, 0]]),
           "target_out": tf.constant([[5, 6, 3], [7, 3, 0]])}
  model(batch)
  heads = build_heads([HeadSpec("rdrop")], HeadContext(vocab_size=20, d_model=16,
                                                       summary_dim=16, num_layers=1,
                                                       num_attention_heads=2))
  _, losses, _, counts = compute_losses(model, heads, batch, training=False)
  assert float(losses["rdrop"]) == 0.0 and float(counts["rdrop"]) == 5.0
  _, losses, _, _ = compute_losses(model, heads, batch, training=True)
  assert float(losses["rdrop"]) > 0.0
  combiner = FixedCombiner(["translation", "rdrop"])
  optimizer = keras.optimizers.Adam(1e-2)
  optimizer.build(trainable_variables(model, heads, combiner))
  result = make_train_step(model, heads, combiner, optimizer)(batch)
  assert float(result["loss/rdrop"]) > 0.0 and int(optimizer.iterations.numpy()) == 1
