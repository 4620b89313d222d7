"""Shared building blocks: scaled embeddings with sinusoidal positions, feed-forward, pooling."""
import math

import keras
import numpy as np
import tensorflow as tf

from model.attention import masked_softmax
from model.dropout import Dropout


def sinusoidal_positions(offset, length, depth: int) -> tf.Tensor:
  """float32 [length, depth] sin/cos encodings of positions offset..offset+length-1.

  Vaswani et al. 2017, section 3.5: channel 2i is sin(p / 10000^(2i/d)), channel 2i+1 the cos.
  Computed on the fly, so there is no maximum length (decoding may run past the training length).
  """
  positions = tf.cast(tf.range(offset, offset + length), tf.float32)[:, None]
  rates = tf.constant(np.exp(-math.log(10000.0) * (np.arange(0, depth, 2) / depth)),
                      tf.float32)[None, :]
  angles = positions * rates  # [L, ceil(D/2)]
  interleaved = tf.reshape(tf.stack([tf.sin(angles), tf.cos(angles)], axis=-1), [length, -1])
  return interleaved[:, :depth]


class TokenEmbedding(keras.layers.Layer):
  """Token embedding * sqrt(d) + sinusoidal positions, then dropout. Also the tied output layer."""

  def __init__(self, vocab_size: int, d_model: int, dropout: float, **kwargs):
    super().__init__(**kwargs)
    if vocab_size < 1 or d_model < 1:
      raise ValueError(f"vocab_size and d_model must be >= 1, got {vocab_size}, {d_model}")
    self.vocab_size, self.d_model, self.dropout_rate = vocab_size, d_model, dropout
    self.embedding = keras.layers.Embedding(
        vocab_size, d_model, name="embedding",
        embeddings_initializer=keras.initializers.RandomNormal(stddev=d_model ** -0.5))
    self.dropout = Dropout(dropout)

  def build(self, input_shape):
    self.embedding.build(input_shape)

  def call(self, ids, offset=0, training=None):
    """ids [B, L] -> [B, L, D]; `offset` is the position of ids[:, 0] (incremental decoding)."""
    x = self.embedding(ids) * tf.cast(math.sqrt(self.d_model), self.compute_dtype)
    pos = sinusoidal_positions(offset, tf.shape(ids)[1], self.d_model)
    return self.dropout(x + tf.cast(pos, x.dtype)[None], training=training)

  def logits(self, x):
    """Tied output projection: [B, L, D] -> float32 [B, L, V]."""
    table = tf.cast(self.embedding.embeddings, x.dtype)
    return tf.cast(tf.einsum("bld,vd->blv", x, table), tf.float32)

  def get_config(self):
    return dict(super().get_config(), vocab_size=self.vocab_size, d_model=self.d_model,
                dropout=self.dropout_rate)


class FeedForward(keras.layers.Layer):
  """Position-wise Dense(ffn_dim, relu) -> dropout -> Dense(d_model): [B, L, D] -> [B, L, D]."""

  def __init__(self, d_model: int, ffn_dim: int, dropout: float, **kwargs):
    super().__init__(**kwargs)
    if d_model < 1 or ffn_dim < 1:
      raise ValueError(f"d_model and ffn_dim must be >= 1, got {d_model}, {ffn_dim}")
    self.d_model, self.ffn_dim, self.dropout_rate = d_model, ffn_dim, dropout
    self.inner = keras.layers.Dense(ffn_dim, activation="relu", name="inner")
    self.outer = keras.layers.Dense(d_model, name="outer")
    self.dropout = Dropout(dropout)

  def build(self, input_shape):
    self.inner.build(input_shape)
    self.outer.build(tuple(input_shape[:-1]) + (self.ffn_dim,))

  def call(self, x, training=None):
    return self.outer(self.dropout(self.inner(x), training=training))

  def get_config(self):
    return dict(super().get_config(), d_model=self.d_model, ffn_dim=self.ffn_dim,
                dropout=self.dropout_rate)


class Pooling(keras.layers.Layer):
  """Masked pooling over real source positions: x [B, S, D], mask [B, S] -> [B, D].

  Modes: `mean` (average of real positions), `max` (elementwise max of real positions), `first`
  (position 0), `attention` (softmax of a learned score over real positions; Lin et al. 2017).
  Rows without any real position give zeros. Pooled in float32, returned in x's dtype.
  """

  MODES = ("mean", "max", "first", "attention")

  def __init__(self, mode: str, **kwargs):
    super().__init__(**kwargs)
    if mode not in self.MODES:
      raise ValueError(f"summary must be one of {'|'.join(self.MODES)}, got {mode!r}")
    self.mode = mode
    self.score = keras.layers.Dense(1, name="score") if mode == "attention" else None

  def build(self, input_shape):
    if self.score is not None:
      self.score.build(input_shape)

  def call(self, x, mask):
    m = tf.cast(mask, tf.float32)[:, :, None]  # [B, S, 1]
    xf = tf.cast(x, tf.float32)
    if self.mode == "mean":
      pooled = tf.math.divide_no_nan(tf.reduce_sum(xf * m, 1), tf.reduce_sum(m, 1))
    elif self.mode == "max":
      pooled = tf.reduce_max(tf.where(m > 0, xf, tf.float32.min), axis=1)
      pooled = tf.where(tf.reduce_any(m > 0, axis=1), pooled, 0.0)
    elif self.mode == "first":
      pooled = xf[:, 0]
    else:
      weights = masked_softmax(tf.transpose(self.score(x), [0, 2, 1]), m[:, None, :, 0])
      pooled = tf.einsum("bqs,bsd->bd", weights, xf)  # q = 1 learned query
    return tf.cast(pooled, x.dtype)

  def get_config(self):
    return dict(super().get_config(), mode=self.mode)
