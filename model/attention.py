"""Multi-head attention that returns its probabilities and supports incremental decoding.

Masks add a large *finite* negative to the logits (never -inf) and the probabilities are then
multiplied by the mask, so padded key positions get probability exactly 0.0 and any function of
the probabilities (e.g. an entropy via `tf.math.xlogy`) has finite gradients (seed 001).
"""
import keras
import tensorflow as tf

from model.dropout import Dropout

NEG = -1e9  # the float32 mask value: finite, and exp(NEG - max) underflows to exactly 0.


def mask_value(dtype) -> float:
  """The additive mask for logits of `dtype`: -1e9 in float32/64, min/2 in float16/bfloat16."""
  dtype = tf.as_dtype(dtype)
  if dtype in (tf.float32, tf.float64):
    return NEG
  return float(dtype.min) / 2.0


def masked_softmax(logits: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
  """Softmax over the last axis, computed in float32; exact zeros where `mask` is 0.

  Args:
    logits: [..., S] attention scores (any float dtype; cast to float32).
    mask: 1 keep / 0 drop, broadcastable to `logits`.

  Returns:
    float32 [..., S] probabilities; rows with no kept position are all 0 (never NaN).
  """
  logits = tf.cast(logits, tf.float32)
  mask = tf.cast(mask, tf.float32)
  probs = tf.nn.softmax(logits + (1.0 - mask) * mask_value(tf.float32), axis=-1)
  return probs * mask


class MultiHeadAttention(keras.layers.Layer):
  """Scaled dot-product attention with `num_heads` heads (Vaswani et al. 2017), einsum based.

  `call(query [B, T, D], memory [B, S, D], mask, training)` returns
  `(output [B, T, D], probabilities float32 [B, H, T, S])`. For incremental decoding, project the
  memory once with `project_memory` (or keep a growing self-attention cache) and call `attend`.
  The scores are computed in the compute dtype and the softmax in float32, so mixed precision
  keeps its speed and the probabilities heads read are float32.
  """

  def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0, **kwargs):
    super().__init__(**kwargs)
    if num_heads < 1 or d_model < 1 or d_model % num_heads:
      raise ValueError(f"d_model ({d_model}) must be a positive multiple of num_heads "
                       f"({num_heads})")
    if not 0.0 <= dropout < 1.0:
      raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    self.d_model, self.num_heads, self.dropout_rate = d_model, num_heads, dropout
    self.depth = d_model // num_heads
    self.query = keras.layers.Dense(d_model, use_bias=False, name="query")
    self.key = keras.layers.Dense(d_model, use_bias=False, name="key")
    self.value = keras.layers.Dense(d_model, use_bias=False, name="value")
    self.output_dense = keras.layers.Dense(d_model, use_bias=False, name="output")
    self.dropout = Dropout(dropout)

  def build(self, query_shape, memory_shape=None, mask_shape=None):
    for layer in (self.query, self.key, self.value, self.output_dense):
      layer.build(query_shape)

  def split_heads(self, x):
    """[B, L, D] -> [B, H, L, D/H]."""
    b, length = tf.shape(x)[0], tf.shape(x)[1]
    return tf.transpose(tf.reshape(x, [b, length, self.num_heads, self.depth]), [0, 2, 1, 3])

  def project_memory(self, memory):
    """Keys and values of `memory` [B, S, D]: a pair of [B, H, S, D/H] (cacheable)."""
    return self.split_heads(self.key(memory)), self.split_heads(self.value(memory))

  def attend(self, query, keys, values, mask, training=None):
    """Attention of `query` over projected keys/values.

    Args:
      query: [B, T, D].
      keys, values: [B, H, S, D/H] from `project_memory` (or a decoding cache).
      mask: 1 keep / 0 drop, broadcastable to [B, H, T, S] (e.g. [B, 1, 1, S], [1, 1, T, S]).
      training: enables attention dropout.

    Returns:
      (output [B, T, D], probabilities float32 [B, H, T, S]; exactly 0 where mask is 0).
    """
    q = self.split_heads(self.query(query)) * tf.cast(self.depth ** -0.5, query.dtype)
    scores = tf.einsum("bhtd,bhsd->bhts", q, tf.cast(keys, q.dtype))
    probs = masked_softmax(scores, mask)
    dropped = self.dropout(probs, training=training)
    context = tf.einsum("bhts,bhsd->bhtd", tf.cast(dropped, values.dtype), values)
    b, t = tf.shape(context)[0], tf.shape(context)[2]
    context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [b, t, self.d_model])
    return self.output_dense(context), probs

  def call(self, query, memory, mask, training=None):
    """query [B, T, D], memory [B, S, D], mask broadcastable to [B, H, T, S]."""
    keys, values = self.project_memory(memory)
    return self.attend(query, keys, values, mask, training=training)

  def get_config(self):
    return dict(super().get_config(), d_model=self.d_model, num_heads=self.num_heads,
                dropout=self.dropout_rate)
