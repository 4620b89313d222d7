"""Shared building blocks: scaled embeddings with sinusoidal positions, feed-forward, pooling."""
import math

import keras
import numpy as np
import tensorflow as tf

from model.attention import NEG


def sinusoidal_positions(length: int, depth: int) -> np.ndarray:
  """[length, depth] sin/cos position table (Vaswani et al. 2017, section 3.5)."""
  positions = np.arange(length)[:, None]
  rates = np.exp(-math.log(10000.0) * (np.arange(0, depth, 2) / depth))[None, :]
  table = np.zeros((length, depth), np.float32)
  table[:, 0::2] = np.sin(positions * rates)
  table[:, 1::2] = np.cos(positions * rates)[:, : depth // 2]
  return table


class TokenEmbedding(keras.layers.Layer):
  """Token embedding * sqrt(d) + sinusoidal positions, then dropout. Also the tied output layer."""

  def __init__(self, vocab_size: int, d_model: int, dropout: float, max_positions: int = 1024,
               **kwargs):
    super().__init__(**kwargs)
    self.vocab_size, self.d_model, self.max_positions = vocab_size, d_model, max_positions
    self.embedding = keras.layers.Embedding(
        vocab_size, d_model, name="embedding",
        embeddings_initializer=keras.initializers.RandomNormal(stddev=d_model ** -0.5))
    self.dropout = keras.layers.Dropout(dropout)
    self.positions = tf.constant(sinusoidal_positions(max_positions, d_model))

  def build(self, input_shape):
    self.embedding.build(input_shape)
    self.built = True

  def call(self, ids, offset=0, training=None):
    """ids [B, L] -> [B, L, D]; `offset` is the position of ids[:, 0] (incremental decoding)."""
    x = self.embedding(ids) * tf.cast(math.sqrt(self.d_model), self.compute_dtype)
    length = tf.shape(ids)[1]
    pos = tf.slice(self.positions, [offset, 0], [length, self.d_model])
    return self.dropout(x + tf.cast(pos, x.dtype)[None], training=training)

  def logits(self, x):
    """Tied output projection: [B, L, D] -> float32 [B, L, V]."""
    table = tf.cast(self.embedding.embeddings, x.dtype)
    return tf.cast(tf.einsum("bld,vd->blv", x, table), tf.float32)


class FeedForward(keras.layers.Layer):
  """Dense(ffn, relu) -> dropout -> Dense(d)."""

  def __init__(self, d_model: int, ffn_dim: int, dropout: float, **kwargs):
    super().__init__(**kwargs)
    self.inner = keras.layers.Dense(ffn_dim, activation="relu", name="inner")
    self.outer = keras.layers.Dense(d_model, name="outer")
    self.dropout = keras.layers.Dropout(dropout)

  def build(self, input_shape):
    self.inner.build(input_shape)
    self.outer.build(tuple(input_shape[:-1]) + (self.inner.units,))
    self.built = True

  def call(self, x, training=None):
    return self.outer(self.dropout(self.inner(x), training=training))


class Pooling(keras.layers.Layer):
  """Masked pooling of [B, S, D] to [B, D]: mean | max | first | attention (learned query)."""

  MODES = ("mean", "max", "first", "attention")

  def __init__(self, mode: str, **kwargs):
    super().__init__(**kwargs)
    if mode not in self.MODES:
      raise ValueError(f"summary must be one of {self.MODES}, got {mode!r}")
    self.mode = mode
    self.score = keras.layers.Dense(1, name="score") if mode == "attention" else None

  def build(self, input_shape):
    if self.score is not None:
      self.score.build(input_shape)
    self.built = True

  def call(self, x, mask):
    m = tf.cast(mask, x.dtype)[:, :, None]
    if self.mode == "mean":
      return tf.reduce_sum(x * m, 1) / tf.maximum(tf.reduce_sum(m, 1), tf.cast(1.0, x.dtype))
    if self.mode == "max":
      return tf.reduce_max(tf.where(m > 0, x, tf.cast(-1e4, x.dtype)), axis=1)
    if self.mode == "first":
      return x[:, 0]
    scores = tf.cast(self.score(x), tf.float32) + (1.0 - tf.cast(m, tf.float32)) * NEG
    weights = tf.nn.softmax(scores, axis=1) * tf.cast(m, tf.float32)
    return tf.reduce_sum(tf.cast(weights, x.dtype) * x, axis=1)

  def get_config(self):
    return dict(super().get_config(), mode=self.mode)
