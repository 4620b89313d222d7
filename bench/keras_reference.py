"""The plain-Keras reference: the Transformer a user would write from the Keras examples.

Modelled on keras.io "English-to-Spanish translation with a sequence-to-sequence Transformer":
learned token + position embeddings, post-LN blocks of `keras.layers.MultiHeadAttention`,
`LayerNormalization`, `Dense` FFN and `Dropout`, a `Dense(vocab)` output layer, Adam and
`SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)` (padding masked), trained with
`model.fit` on batches of a fixed size padded to their longest sentence, in float32 or, as the
Keras mixed-precision guide has it, under the `mixed_bfloat16` policy with a float32 output
layer (so that auxseq is compared with the reference at the same precision). Token ids
are random (Zipf-distributed, so there is something to learn); only the lengths are real.
"""
import time
from typing import Dict, List, Tuple

import keras
import numpy as np
import tensorflow as tf

from bench import flops as flops_lib
from bench.lengths import Lengths


class PositionalEmbedding(keras.layers.Layer):
  """Token embedding + learned position embedding: int [B, L] -> [B, L, D]."""

  def __init__(self, vocab_size: int, d_model: int, max_length: int, **kwargs):
    super().__init__(**kwargs)
    self.tokens = keras.layers.Embedding(vocab_size, d_model)
    self.positions = keras.layers.Embedding(max_length, d_model)

  def call(self, ids):
    positions = keras.ops.arange(keras.ops.shape(ids)[-1])
    return self.tokens(ids) + self.positions(positions)[None]


def _ffn(x, d_model, ffn_dim, dropout):
  h = keras.layers.Dense(ffn_dim, activation="relu")(x)
  return keras.layers.Dropout(dropout)(keras.layers.Dense(d_model)(h))


def _encoder_block(x, mask, d_model, num_heads, ffn_dim, dropout):
  attention = keras.layers.MultiHeadAttention(num_heads, d_model // num_heads, dropout=dropout)
  h = attention(x, x, attention_mask=mask)
  x = keras.layers.LayerNormalization()(x + keras.layers.Dropout(dropout)(h))
  return keras.layers.LayerNormalization()(x + _ffn(x, d_model, ffn_dim, dropout))


def _decoder_block(y, memory, memory_mask, d_model, num_heads, ffn_dim, dropout):
  self_attention = keras.layers.MultiHeadAttention(num_heads, d_model // num_heads,
                                                   dropout=dropout)
  h = self_attention(y, y, use_causal_mask=True)
  y = keras.layers.LayerNormalization()(y + keras.layers.Dropout(dropout)(h))
  cross = keras.layers.MultiHeadAttention(num_heads, d_model // num_heads, dropout=dropout)
  h = cross(y, memory, attention_mask=memory_mask)
  y = keras.layers.LayerNormalization()(y + keras.layers.Dropout(dropout)(h))
  return keras.layers.LayerNormalization()(y + _ffn(y, d_model, ffn_dim, dropout))


def build_reference_model(vocab_size: int, d_model: int, num_layers: int, num_heads: int,
                          ffn_dim: int, dropout: float = 0.1, max_length: int = 128,
                          learning_rate: float = 1e-3, precision: str = "float32") -> keras.Model:
  """Compiled encoder-decoder under the dtype policy `precision` (float32 | mixed_bfloat16):
  {source [B, S], target_in [B, T]} -> float32 logits [B, T, V]."""
  previous = keras.mixed_precision.global_policy().name
  keras.mixed_precision.set_global_policy(precision)
  try:
    source = keras.Input((None,), dtype="int32", name="source")
    target_in = keras.Input((None,), dtype="int32", name="target_in")
    mask = keras.ops.expand_dims(keras.ops.not_equal(source, 0), 1)  # [B, 1, S]
    x = keras.layers.Dropout(dropout)(PositionalEmbedding(vocab_size, d_model, max_length)(source))
    for _ in range(num_layers):
      x = _encoder_block(x, mask, d_model, num_heads, ffn_dim, dropout)
    y = keras.layers.Dropout(dropout)(
        PositionalEmbedding(vocab_size, d_model, max_length)(target_in))
    for _ in range(num_layers):
      y = _decoder_block(y, x, mask, d_model, num_heads, ffn_dim, dropout)
    logits = keras.layers.Dense(vocab_size, dtype="float32")(y)  # float32 logits and loss
    model = keras.Model({"source": source, "target_in": target_in}, logits, name="reference")
  finally:
    keras.mixed_precision.set_global_policy(previous)
  model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0))
  return model


def random_batch(lengths: Lengths, batch_size: int, vocab_size: int,
                 rng) -> Tuple[Dict, np.ndarray]:
  """One batch of `batch_size` pairs with sampled real lengths, padded to its longest sentence.

  Returns:
    ({"source": int32 [B, S], "target_in": int32 [B, T]}, target_out int32 [B, T]); ids >= 4
    drawn Zipf-like, BOS = 2 first in target_in, padding 0.
  """
  rows = rng.integers(0, len(lengths.source), size=batch_size)
  src_len, tgt_len = lengths.source[rows], lengths.target[rows]
  source = np.zeros([batch_size, src_len.max()], np.int32)
  target = np.zeros([batch_size, tgt_len.max() + 1], np.int32)
  for i, (s, t) in enumerate(zip(src_len, tgt_len)):
    source[i, :s] = 4 + np.minimum(rng.zipf(1.3, size=s) - 1, vocab_size - 5)
    target[i, 0] = 2
    target[i, 1:t + 1] = 4 + np.minimum(rng.zipf(1.3, size=t) - 1, vocab_size - 5)
  return {"source": source, "target_in": target[:, :-1]}, target[:, 1:]


class _BatchEnds(keras.callbacks.Callback):
  """Records perf_counter() at the end of every training batch."""

  def __init__(self):
    super().__init__()
    self.times: List[float] = []

  def on_train_batch_end(self, batch, logs=None):
    self.times.append(time.perf_counter())


class ReferenceTrainer:
  """Times `model.fit` on fresh random batches; one `run(n)` = one `fit` call of n + 1 steps.

  The first step of each `fit` call carries its set-up cost and is not timed: the n intervals
  between consecutive batch ends are (what a user's epoch sees per step, callbacks included).
  """
  name = "reference"

  def __init__(self, lengths: Lengths, batch_size: int, model_args: Dict, seed: int = 0,
               learning_rate: float = 1e-3, precision: str = "float32"):
    self.lengths, self.batch_size, self.model_args = lengths, batch_size, model_args
    self.rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    max_length = int(max(lengths.source.max(), lengths.target.max())) + 2
    self.model = build_reference_model(max_length=max_length, learning_rate=learning_rate,
                                       precision=precision, **model_args)
    self.probe = random_batch(lengths, batch_size, model_args["vocab_size"], self.rng)
    self.losses: List[float] = [self.probe_loss()]

  def probe_loss(self) -> float:
    """Loss on one fixed batch (dropout off): falls as the model trains."""
    return float(self.model.test_on_batch(*self.probe))

  def _dataset(self, batches):
    signature = ({"source": tf.TensorSpec([None, None], tf.int32),
                  "target_in": tf.TensorSpec([None, None], tf.int32)},
                 tf.TensorSpec([None, None], tf.int32))
    return tf.data.Dataset.from_generator(lambda: iter(batches),
                                          output_signature=signature).prefetch(2)

  def run(self, steps: int) -> Dict:
    """Trains `steps` + 1 batches in one `fit`; returns the timing of the last `steps`."""
    vocab = self.model_args["vocab_size"]
    batches = [random_batch(self.lengths, self.batch_size, vocab, self.rng)
               for _ in range(steps + 1)]
    timer = _BatchEnds()
    self.model.fit(self._dataset(batches), epochs=1, steps_per_epoch=steps + 1, verbose=0,
                   shuffle=False, callbacks=[timer])
    if len(timer.times) != steps + 1:
      raise RuntimeError(f"fit ran {len(timer.times)} steps, expected {steps + 1}")
    self.losses.append(self.probe_loss())
    timed = batches[1:]
    src = [flops_lib.lengths_of_batch(x["source"], y) for x, y in timed]
    return {"durations": list(np.diff(timer.times)),
            "tokens": int(sum(np.count_nonzero(y) for _, y in timed)),
            "padded_tokens": int(sum(y.size for _, y in timed)),
            "flops": sum(flops_lib.train_flops(s, t, **_flop_args(self.model_args))
                         for s, t in src)}


def _flop_args(model_args: Dict) -> Dict:
  return {k: model_args[k] for k in ("d_model", "num_layers", "ffn_dim", "vocab_size")}
