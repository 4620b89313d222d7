"""The `guided_alignment` head: cross-attention supervised by given word alignments."""
import dataclasses
from typing import Literal

import tensorflow as tf

from heads.attention import AttentionOptions, AttentionRegularizer, reduce_terms
from heads.registry import register_head
from model import outputs as out


def alignment_matrix(alignment: tf.Tensor, target_len, source_len) -> tf.Tensor:
  """Pharaoh alignments -> row-normalised alignment matrices.

  Args:
    alignment: tf.string [B], e.g. "0-0 1-2 3-2": `i-j` links source position i to target
      position j (0-based positions of `source` and `target_out`); "" = no alignment.
    target_len, source_len: T and S (links outside them are dropped).

  Returns:
    float32 [B, T, S]: for each target position with links, a distribution over the source
    positions it is linked to; all-zero rows for positions without links.
  """
  links = tf.strings.split(alignment)  # ragged [B, None] of "i-j"
  pairs = tf.strings.split(links.flat_values, "-").to_tensor("0", shape=[None, 2])
  pairs = tf.strings.to_number(pairs, tf.int32)  # [N, 2] (source, target)
  rows = tf.cast(links.value_rowids(), tf.int32)
  src, tgt = pairs[:, 0], pairs[:, 1]
  inside = (src >= 0) & (src < source_len) & (tgt >= 0) & (tgt < target_len)
  index = tf.boolean_mask(tf.stack([rows, tgt, src], axis=1), inside)
  shape = tf.stack([tf.shape(alignment)[0], target_len, source_len])
  hits = tf.minimum(tf.scatter_nd(index, tf.ones([tf.shape(index)[0]], tf.float32), shape), 1.0)
  return tf.math.divide_no_nan(hits, tf.reduce_sum(hits, axis=-1, keepdims=True))


@dataclasses.dataclass(frozen=True)
class GuidedAlignmentOptions(AttentionOptions):
  """Defaults: the last layer, every head (one loss per head, averaged), weight 0.05, mode ce."""
  layers: str = "last"
  mode: Literal["ce", "mse"] = "ce"


@register_head("guided_alignment")
class GuidedAlignment(AttentionRegularizer):
  """Cross-attention supervised by given alignments A (row-normalised per target position t).

  `mode=ce` (default): cross-entropy -sum_s A[t, s] log p[t, s]; p is floored at 1e-9 so that a
  link to a zero-probability position has a finite loss and gradient. `mode=mse`: squared error
  sum_s (p[t, s] - A[t, s])^2 of the attention row against the alignment row, summed over the
  source positions (padding contributes 0 on both sides, so the value does not depend on the
  batch's padded width); rows without links are not compared.

  Reads: cross_attention (list of [B, H, T, S]), target_mask [B, T]. Label: `alignment`
  tf.string [B] in Pharaoh `i-j` format at subword positions (source i, target_out j; "" or an
  absent key = none); the data pipeline maps word alignments to these positions. Normaliser
  (both modes): real target positions that have at least one link. Idea: guided alignment
  training with a CE or an MSE loss, Chen et al. 2016 ("Guided Alignment Training for
  Topic-Aware Neural Machine Translation"); Garg et al. 2019 ("Jointly Learning to Align and
  Translate with Transformer Models") for Transformer heads.
  """
  labels = ("alignment",)
  Options = GuidedAlignmentOptions

  def loss_terms(self, outputs, batch, training):
    names = [f"{self.head_name}/l{l}h{h}" for l in self.layer_ids for h in self.head_ids]
    if "alignment" not in batch:  # a dataset without alignments: nothing to learn from
      zero = tf.constant(0.0, tf.float32)
      return reduce_terms(self.head_name, {n: zero for n in names}, zero, self.options.reduce)
    attention = outputs[out.CROSS_ATTENTION]
    shape = tf.shape(attention[0])
    tmask = tf.cast(outputs[out.TARGET_MASK], tf.float32)
    target = alignment_matrix(batch["alignment"], shape[2], shape[3]) * tmask[:, :, None]
    linked = tf.cast(tf.reduce_sum(target, axis=-1, keepdims=True) > 0, tf.float32)  # [B, T, 1]
    count = tf.reduce_sum(linked)
    sums = {}
    for layer in self.layer_ids:
      probs = tf.cast(attention[layer], tf.float32)
      for head in self.head_ids:
        sums[f"{self.head_name}/l{layer}h{head}"] = self._row_loss(probs[:, head], target, linked)
    return reduce_terms(self.head_name, sums, count, self.options.reduce)

  def _row_loss(self, probs, target, linked):
    """Summed loss of the linked rows; probs, target [B, T, S], linked [B, T, 1] in {0, 1}."""
    if self.options.mode == "mse":
      return tf.reduce_sum(linked * tf.square(probs - target))
    return -tf.reduce_sum(target * tf.math.log(tf.maximum(probs, 1e-9)))
