"""Built-in attention regularisers (see heads/attention.py for selection and normalisation)."""
import dataclasses

import tensorflow as tf

from configs.errors import UserError
from heads.attention import AttentionOptions, AttentionRegularizer, lengths
from heads.registry import register_head


@dataclasses.dataclass(frozen=True)
class EntropyOptions(AttentionOptions):
  """sign: +1 minimises the entropy (sharper attention), -1 maximises it (smoother)."""
  sign: float = 1.0


@register_head("attention_entropy")
class AttentionEntropy(AttentionRegularizer):
  """Entropy of each target position's cross-attention distribution, sum_s -p log p.

  Reads: cross_attention, target_mask. No label. Normaliser: real target positions. NaN-safe at
  p = 0 through tf.math.xlogy. Idea: the per-(layer, head) attention loss of seed 001; entropy
  regularisation of attention as in e.g. Correia et al. 2019 ("Adaptively Sparse Transformers").
  """
  Options = EntropyOptions

  def pair_loss(self, probs, tmask, smask):
    entropy = -tf.reduce_sum(tf.math.xlogy(probs, probs), axis=-1)  # [B, T]
    return self.options.sign * tf.reduce_sum(entropy * tmask)


@register_head("coverage")
class Coverage(AttentionRegularizer):
  """Penalises source positions attended more than once in total: sum_s relu(sum_t p - 1).

  Reads: cross_attention, target_mask, encoder_mask. Normaliser: real target positions.
  Idea: coverage (Tu et al. 2016, "Modeling Coverage for Neural Machine Translation"; the
  coverage penalty of Wu et al. 2016, GNMT).
  """

  def pair_loss(self, probs, tmask, smask):
    coverage = tf.reduce_sum(probs * tmask[:, :, None], axis=1)  # [B, S]
    return tf.reduce_sum(tf.nn.relu(coverage - 1.0) * smask)


@register_head("diagonal")
class Diagonal(AttentionRegularizer):
  """Prior towards monotonic alignment: expected |t/T - s/S| under the attention.

  Reads: cross_attention, target_mask, encoder_mask. Normaliser: real target positions.
  Idea: diagonal / monotonic attention priors (e.g. Cohn et al. 2016, "Incorporating Structural
  Alignment Biases into an Attentional Neural Translation Model").
  """

  def pair_loss(self, probs, tmask, smask):
    t_len = tf.maximum(lengths(tmask), 1.0)[:, None, None]
    s_len = tf.maximum(lengths(smask), 1.0)[:, None, None]
    t_pos = tf.cast(tf.range(tf.shape(probs)[1]), tf.float32)[None, :, None]
    s_pos = tf.cast(tf.range(tf.shape(probs)[2]), tf.float32)[None, None, :]
    distance = tf.abs(t_pos / t_len - s_pos / s_len)
    return tf.reduce_sum(probs * distance * tmask[:, :, None])


@register_head("head_disagreement")
class HeadDisagreement(AttentionRegularizer):
  """Mean cosine similarity between the attention distributions of every pair of heads.

  Reads: cross_attention, target_mask. Normaliser: real target positions; one term per layer
  with reduce=per_head. Idea: Li et al. 2018, "Multi-Head Attention with Disagreement
  Regularization" (penalise heads that attend alike).
  """
  per_layer = True

  def __init__(self, options, context, **kwargs):
    super().__init__(options, context, **kwargs)
    if len(self.head_ids) < 2:
      raise UserError(f"head 'head_disagreement' compares attention heads and needs at least 2; "
                      f"{len(self.head_ids)} selected (the RNN has one)")

  def layer_loss(self, probs, tmask, smask):
    h = len(self.head_ids)
    unit = tf.math.l2_normalize(probs, axis=-1)  # [B, H, T, S]
    cos = tf.einsum("bhts,bgts->bthg", unit, unit)
    off_diagonal = tf.reduce_sum(cos, axis=[-1, -2]) - tf.linalg.trace(cos)  # [B, T]
    return tf.reduce_sum(off_diagonal / (h * (h - 1)) * tmask)


