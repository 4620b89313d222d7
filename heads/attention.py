"""Attention regularisers on the decoder's cross-attention: shared selection and reduction.

Every regulariser reads `cross_attention` (list over decoder layers of [B, H, T, S] float32
probabilities, exact zeros on padded source positions), `target_mask` and `encoder_mask`; it is
computed in float32 and normalised by real target positions. Options select layers
(`all` | `last` | indices like `0+2`, negative allowed) and heads (`all` | indices), and
`reduce=mean` (one term: the mean over the selected (layer, head) pairs) or `reduce=per_head`
(one loss term per (layer, head), named `<head>/l<L>h<H>`: the seed-001 setting).
"""
import dataclasses
from typing import Dict, List, Literal

import tensorflow as tf

from configs.errors import UserError
from heads.base import Head, HeadOptions, LossTerm
from model import outputs as out


@dataclasses.dataclass(frozen=True)
class AttentionOptions(HeadOptions):
  """layers/heads: all | last | '+'-separated indices; reduce: mean | per_head."""
  weight: float = 0.05
  layers: str = "all"
  heads: str = "all"
  reduce: Literal["mean", "per_head"] = "mean"


def select(spec: str, count: int, what: str, head: str) -> List[int]:
  """Indices chosen by `spec` among `count` (all | last | '+'-separated, negative from the end)."""
  if spec == "all":
    return list(range(count))
  if spec == "last":
    return [count - 1]
  try:
    chosen = [int(part) for part in spec.split("+") if part]
  except ValueError:
    raise UserError(f"head {head!r}: option {what!r} expects all, last or indices like 0+2, "
                    f"got {spec!r}") from None
  for i in chosen:
    if not -count <= i < count:
      raise UserError(f"head {head!r}: {what} index {i} is out of range; the model has {count}")
  return sorted({i % count for i in chosen})


class AttentionRegularizer(Head):
  """Base: subclasses implement `pair_loss(p [B, T, S], tmask [B, T], smask [B, S]) -> sum`."""
  reads = (out.CROSS_ATTENTION, out.TARGET_MASK, out.ENCODER_MASK)
  labels = ()
  Options = AttentionOptions
  per_layer = False  # head_disagreement compares heads within a layer

  def __init__(self, options, context, **kwargs):
    super().__init__(options, context, **kwargs)
    self.layer_ids = select(options.layers, context.num_layers, "layers", self.head_name)
    self.head_ids = select(options.heads, context.num_attention_heads, "heads", self.head_name)

  def pair_loss(self, probs, tmask, smask):
    raise NotImplementedError

  def layer_loss(self, probs, tmask, smask):
    """Per-layer loss over the selected heads, for regularisers defined across heads."""
    raise NotImplementedError

  def _terms(self, outputs) -> Dict[str, tf.Tensor]:
    tmask = tf.cast(outputs[out.TARGET_MASK], tf.float32)
    smask = tf.cast(outputs[out.ENCODER_MASK], tf.float32)
    sums = {}
    for layer in self.layer_ids:
      probs = tf.cast(outputs[out.CROSS_ATTENTION][layer], tf.float32)
      if self.per_layer:
        chosen = tf.gather(probs, self.head_ids, axis=1)
        sums[f"{self.head_name}/l{layer}"] = self.layer_loss(chosen, tmask, smask)
        continue
      for head in self.head_ids:
        sums[f"{self.head_name}/l{layer}h{head}"] = self.pair_loss(probs[:, head], tmask, smask)
    return sums

  def loss_terms(self, outputs, batch, training) -> Dict[str, LossTerm]:
    count = tf.reduce_sum(tf.cast(outputs[out.TARGET_MASK], tf.float32))
    return reduce_terms(self.head_name, self._terms(outputs), count, self.options.reduce)

  def loss(self, outputs, batch, training):
    terms = self.loss_terms(outputs, batch, training)
    return LossTerm(tf.add_n([t.total for t in terms.values()]), next(iter(terms.values())).count)

  def metric_stats(self, outputs, batch):
    term = self.loss(outputs, batch, False)
    return {"sum": term.total, "count": term.count}

  def metric_results(self, stats):
    count = float(stats.get("count", 0))
    return {"value": float(stats["sum"]) / count} if count else {}


def lengths(mask: tf.Tensor) -> tf.Tensor:
  return tf.reduce_sum(mask, axis=1)


def reduce_terms(name: str, sums: Dict[str, tf.Tensor], count: tf.Tensor,
                 reduce: str) -> Dict[str, LossTerm]:
  """One LossTerm per (layer, head) sum (`per_head`), or one named `name` with their mean."""
  if reduce == "per_head":
    return {key: LossTerm(total, count) for key, total in sums.items()}
  return {name: LossTerm(tf.add_n(list(sums.values())) / len(sums), count)}
