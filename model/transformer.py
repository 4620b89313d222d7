"""Pre-LayerNorm Transformer encoder and decoder (Vaswani et al. 2017; pre-LN as in Xiong et al.
2020, which trains stably without a long warm-up)."""
import keras
import tensorflow as tf

from model.attention import MultiHeadAttention
from model.dropout import Dropout
from model.layers import FeedForward


def _norm(name):
  return keras.layers.LayerNormalization(epsilon=1e-6, name=name)


class _Configured(keras.layers.Layer):
  """Stores and validates the shared (d_model, num_heads, ffn_dim, dropout[, num_layers]) args."""

  def __init__(self, d_model, num_heads, ffn_dim, dropout, num_layers=None, **kwargs):
    super().__init__(**kwargs)
    if d_model < 1 or num_heads < 1 or d_model % num_heads:
      raise ValueError(f"d_model ({d_model}) must be a positive multiple of num_heads "
                       f"({num_heads})")
    if ffn_dim < 1 or (num_layers is not None and num_layers < 1):
      raise ValueError(f"ffn_dim and num_layers must be >= 1, got {ffn_dim}, {num_layers}")
    if not 0.0 <= dropout < 1.0:
      raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    self._layer_args = dict(d_model=d_model, num_heads=num_heads, ffn_dim=ffn_dim, dropout=dropout)
    if num_layers is not None:
      self._layer_args["num_layers"] = num_layers

  def get_config(self):
    return dict(super().get_config(), **self._layer_args)


class EncoderLayer(_Configured):
  """x + SelfAttention(LN(x)); x + FFN(LN(x))."""

  def __init__(self, d_model, num_heads, ffn_dim, dropout, **kwargs):
    super().__init__(d_model, num_heads, ffn_dim, dropout, **kwargs)
    self.attention = MultiHeadAttention(d_model, num_heads, dropout, name="self_attention")
    self.ffn = FeedForward(d_model, ffn_dim, dropout, name="ffn")
    self.norm1, self.norm2 = _norm("norm1"), _norm("norm2")
    self.dropout = Dropout(dropout)

  def build(self, input_shape):
    for layer in (self.norm1, self.norm2, self.ffn, self.attention):
      layer.build(input_shape)

  def call(self, x, mask, training=None):
    """x [B, S, D], mask [B, 1, 1, S]."""
    h = self.norm1(x)
    h, _ = self.attention(h, h, mask, training=training)
    x = x + self.dropout(h, training=training)
    return x + self.dropout(self.ffn(self.norm2(x), training=training), training=training)


class DecoderLayer(_Configured):
  """Causal self-attention, cross-attention over the encoder, FFN; each pre-LN + residual."""

  def __init__(self, d_model, num_heads, ffn_dim, dropout, **kwargs):
    super().__init__(d_model, num_heads, ffn_dim, dropout, **kwargs)
    self.self_attention = MultiHeadAttention(d_model, num_heads, dropout, name="self_attention")
    self.cross_attention = MultiHeadAttention(d_model, num_heads, dropout, name="cross_attention")
    self.ffn = FeedForward(d_model, ffn_dim, dropout, name="ffn")
    self.norm1, self.norm2, self.norm3 = _norm("norm1"), _norm("norm2"), _norm("norm3")
    self.dropout = Dropout(dropout)

  def build(self, input_shape):
    for layer in (self.norm1, self.norm2, self.norm3, self.ffn, self.self_attention,
                  self.cross_attention):
      layer.build(input_shape)

  def call(self, x, self_kv, self_mask, cross_kv, cross_mask, training=None):
    """x [B, T, D]; self_kv / cross_kv: (keys, values) [B, H, L, D/H]; masks broadcast to
    [B, H, T, L]. Returns (x [B, T, D], cross-attention probabilities [B, H, T, S])."""
    h, _ = self.self_attention.attend(self.norm1(x), *self_kv, self_mask, training=training)
    x = x + self.dropout(h, training=training)
    h, probs = self.cross_attention.attend(self.norm2(x), *cross_kv, cross_mask, training=training)
    x = x + self.dropout(h, training=training)
    x = x + self.dropout(self.ffn(self.norm3(x), training=training), training=training)
    return x, probs


class TransformerEncoder(_Configured):
  """Embedded source [B, S, D] + mask [B, S] -> top-layer outputs [B, S, D] (final LayerNorm)."""

  def __init__(self, d_model, num_layers, num_heads, ffn_dim, dropout, **kwargs):
    super().__init__(d_model, num_heads, ffn_dim, dropout, num_layers, **kwargs)
    self.layers_ = [EncoderLayer(d_model, num_heads, ffn_dim, dropout, name=f"layer_{i}")
                    for i in range(num_layers)]
    self.final_norm = _norm("final_norm")

  def build(self, input_shape):
    for layer in self.layers_ + [self.final_norm]:
      layer.build(input_shape)

  def call(self, x, mask, training=None):
    attn_mask = tf.cast(mask, tf.float32)[:, None, None, :]
    for layer in self.layers_:
      x = layer(x, attn_mask, training=training)
    return self.final_norm(x)


class TransformerDecoder(_Configured):
  """Decoder stack. Full-sequence (teacher forcing) and one-step (cached) paths share weights."""

  def __init__(self, d_model, num_layers, num_heads, ffn_dim, dropout, **kwargs):
    super().__init__(d_model, num_heads, ffn_dim, dropout, num_layers, **kwargs)
    self.num_heads, self.depth = num_heads, d_model // num_heads
    self.layers_ = [DecoderLayer(d_model, num_heads, ffn_dim, dropout, name=f"layer_{i}")
                    for i in range(num_layers)]
    self.final_norm = _norm("final_norm")

  def build(self, input_shape):
    for layer in self.layers_ + [self.final_norm]:
      layer.build(input_shape)

  def memory_kv(self, memory):
    """Per-layer cross-attention (keys, values) of the encoder outputs."""
    return [layer.cross_attention.project_memory(memory) for layer in self.layers_]

  def call(self, x, memory, memory_mask, training=None):
    """x [B, T, D] embedded targets -> (outputs [B, T, D], list of [B, H, T, S])."""
    t = tf.shape(x)[1]
    causal = tf.linalg.band_part(tf.ones([t, t]), -1, 0)[None, None]
    cross_mask = tf.cast(memory_mask, tf.float32)[:, None, None, :]
    attention = []
    for layer, cross_kv in zip(self.layers_, self.memory_kv(memory)):
      self_kv = layer.self_attention.project_memory(layer.norm1(x))
      x, probs = layer(x, self_kv, causal, cross_kv, cross_mask, training=training)
      attention.append(probs)
    return self.final_norm(x), attention

  def init_cache(self, batch_size, max_length, dtype):
    shape = [batch_size, self.num_heads, max_length, self.depth]
    return [{"k": tf.zeros(shape, dtype), "v": tf.zeros(shape, dtype)} for _ in self.layers_]

  def step(self, x, step, cache, cross_kv, memory_mask):
    """One position: x [B, 1, D] at index `step` -> (y [B, 1, D], new cache)."""
    max_length = tf.shape(cache[0]["k"])[2]
    position = tf.one_hot(step, max_length, dtype=x.dtype)[None, None, :, None]
    self_mask = tf.cast(tf.range(max_length) <= step, tf.float32)[None, None, None, :]
    cross_mask = tf.cast(memory_mask, tf.float32)[:, None, None, :]
    new_cache = []
    for layer, layer_cache, kv in zip(self.layers_, cache, cross_kv):
      k_new, v_new = layer.self_attention.project_memory(layer.norm1(x))
      k = layer_cache["k"] + position * k_new
      v = layer_cache["v"] + position * v_new
      x, _ = layer(x, (k, v), self_mask, kv, cross_mask, training=False)
      new_cache.append({"k": k, "v": v})
    return self.final_norm(x), new_cache
