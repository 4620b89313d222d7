"""Multi-head attention that returns its probabilities and supports incremental decoding.

Masks add a large *finite* negative to the logits (never -inf) and the probabilities are then
multiplied by the mask, so padded key positions get probability exactly 0.0 and any function of
the probabilities has finite gradients (seed 001).
"""
import keras
import tensorflow as tf

NEG = -1e9  # logits are computed in float32, where this is finite and exp() underflows to 0.


def masked_softmax(logits: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
  """Softmax over the last axis of float32 `logits`; `mask` (1 keep / 0 drop) broadcasts.

  Rows with no kept position give all zeros (not NaN).
  """
  mask = tf.cast(mask, tf.float32)
  probs = tf.nn.softmax(logits + (1.0 - mask) * NEG, axis=-1)
  return probs * mask


class MultiHeadAttention(keras.layers.Layer):
  """Scaled dot-product attention with `num_heads` heads (Vaswani et al. 2017).

  call(query [B, T, D], memory [B, S, D], mask [B, 1|T, S] or [B, 1, 1, S], training)
    -> (output [B, T, D], probabilities [B, H, T, S] float32).
  """

  def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0, **kwargs):
    super().__init__(**kwargs)
    if d_model % num_heads:
      raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
    self.d_model, self.num_heads, self.dropout_rate = d_model, num_heads, dropout
    self.depth = d_model // num_heads
    self.query = keras.layers.Dense(d_model, use_bias=False, name="query")
    self.key = keras.layers.Dense(d_model, use_bias=False, name="key")
    self.value = keras.layers.Dense(d_model, use_bias=False, name="value")
    self.output_dense = keras.layers.Dense(d_model, use_bias=False, name="output")
    self.dropout = keras.layers.Dropout(dropout)

  def build(self, query_shape, memory_shape=None):
    for layer in (self.query, self.key, self.value, self.output_dense):
      layer.build(query_shape)
    self.built = True

  def split_heads(self, x):
    """[B, L, D] -> [B, H, L, D/H]."""
    b, length = tf.shape(x)[0], tf.shape(x)[1]
    return tf.transpose(tf.reshape(x, [b, length, self.num_heads, self.depth]), [0, 2, 1, 3])

  def project_memory(self, memory):
    """Keys and values of `memory`, [B, H, S, D/H] each (cached once for cross-attention)."""
    return self.split_heads(self.key(memory)), self.split_heads(self.value(memory))

  def attend(self, query, keys, values, mask, training=None):
    """query [B, T, D], keys/values [B, H, S, D/H], mask broadcastable to [B, H, T, S]."""
    q = self.split_heads(self.query(query))
    logits = tf.einsum("bhtd,bhsd->bhts", tf.cast(q, tf.float32), tf.cast(keys, tf.float32))
    probs = masked_softmax(logits * (self.depth ** -0.5), mask)
    dropped = self.dropout(probs, training=training)
    context = tf.einsum("bhts,bhsd->bhtd", tf.cast(dropped, values.dtype), values)
    b, t = tf.shape(context)[0], tf.shape(context)[2]
    context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [b, t, self.d_model])
    return self.output_dense(context), probs

  def call(self, query, memory, mask, training=None):
    keys, values = self.project_memory(memory)
    return self.attend(query, keys, values, mask, training=training)

  def get_config(self):
    return dict(super().get_config(), d_model=self.d_model, num_heads=self.num_heads,
                dropout=self.dropout_rate)
