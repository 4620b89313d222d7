"""The `coverage` head: penalises source positions attended more than once in total."""
import tensorflow as tf

from heads.attention import AttentionRegularizer
from heads.registry import register_head


@register_head("coverage")
class Coverage(AttentionRegularizer):
  """Over-attention penalty sum_s relu(sum_t p[t, s] - 1) over real source positions.

  Reads: cross_attention (list of [B, H, T, S]), target_mask [B, T], encoder_mask [B, S].
  Label: none. Normaliser: real *target* positions (the same as every attention regulariser, so
  their weights are comparable; the penalty itself is summed over source positions).
  Idea: coverage, Tu et al. 2016, "Modeling Coverage for Neural Machine Translation" (and the
  coverage penalty of Wu et al. 2016, GNMT): each source word should be translated about once.
  """

  def pair_loss(self, probs, tmask, smask):
    """probs [B, T, S], tmask [B, T], smask [B, S] -> scalar sum of over-coverage."""
    coverage = tf.reduce_sum(probs * tmask[:, :, None], axis=1)  # [B, S]
    return tf.reduce_sum(tf.nn.relu(coverage - 1.0) * smask)
