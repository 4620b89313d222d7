"""The `head_disagreement` head: keeps the attention heads of a layer from attending alike."""
import tensorflow as tf

from configs.errors import UserError
from heads.attention import AttentionRegularizer
from heads.registry import register_head


@register_head("head_disagreement")
class HeadDisagreement(AttentionRegularizer):
  """Mean cosine similarity between the attention distributions of every pair of heads.

  Reads: cross_attention (list of [B, H, T, S]), target_mask [B, T]. Label: none.
  Normaliser: real target positions; per layer (`reduce=per_head` gives one term per layer,
  named `head_disagreement/l<L>`). Needs >= 2 heads (not the RNN).
  Idea: Li et al. 2018, "Multi-Head Attention with Disagreement Regularization" (their
  attended-positions variant: penalise the cosine similarity of heads' attention).
  """
  per_layer = True

  def __init__(self, options, context, **kwargs):
    super().__init__(options, context, **kwargs)
    if len(self.head_ids) < 2:
      raise UserError(f"head 'head_disagreement' compares attention heads and needs at least 2; "
                      f"{len(self.head_ids)} selected (the RNN has one)")

  def layer_loss(self, probs, tmask, smask):
    """probs [B, H', T, S] (selected heads), tmask [B, T] -> scalar summed mean pair cosine."""
    del smask
    h = len(self.head_ids)
    unit = tf.math.l2_normalize(probs, axis=-1)  # rows are never all zero on real positions
    cos = tf.einsum("bhts,bgts->bthg", unit, unit)  # [B, T, H', H']
    off_diagonal = tf.reduce_sum(cos, axis=[-1, -2]) - tf.linalg.trace(cos)  # [B, T]
    return tf.reduce_sum(off_diagonal / (h * (h - 1)) * tmask)
