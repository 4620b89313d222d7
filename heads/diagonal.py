"""The `diagonal` head: a prior towards monotonic (diagonal) cross-attention."""
import tensorflow as tf

from heads.attention import AttentionRegularizer, lengths
from heads.registry import register_head


@register_head("diagonal")
class Diagonal(AttentionRegularizer):
  """Expected distance from the diagonal, sum_s p[t, s] * |t / T - s / S|, per target position.

  Reads: cross_attention (list of [B, H, T, S]), target_mask [B, T], encoder_mask [B, S] (T and
  S are each example's real lengths). Label: none. Normaliser: real target positions.
  Idea: a monotonic-alignment prior, as the diagonal bias of Cohn et al. 2016, "Incorporating
  Structural Alignment Biases into an Attentional Neural Translation Model".
  """

  def pair_loss(self, probs, tmask, smask):
    """probs [B, T, S], tmask [B, T], smask [B, S] -> scalar expected distance."""
    t_len = tf.maximum(lengths(tmask), 1.0)[:, None, None]
    s_len = tf.maximum(lengths(smask), 1.0)[:, None, None]
    t_pos = tf.cast(tf.range(tf.shape(probs)[1]), tf.float32)[None, :, None]
    s_pos = tf.cast(tf.range(tf.shape(probs)[2]), tf.float32)[None, None, :]
    distance = tf.abs(t_pos / t_len - s_pos / s_len)  # [B, T, S]
    return tf.reduce_sum(probs * distance * tmask[:, :, None])
