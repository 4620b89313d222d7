"""The translation head: label-smoothed token cross-entropy. Always on, weight 1.

Reads: logits. Label: target_out (0 = padding; an all-pad row = no translation for that example).
Normaliser: number of non-pad target tokens.
Label smoothing as in Szegedy et al. 2016 ("Rethinking the Inception Architecture"): the target
distribution is (1 - eps) * one_hot + eps / V.
"""
import dataclasses
import math

import tensorflow as tf

from heads.base import Head, HeadOptions, LossTerm
from heads.losses import smoothed_cross_entropy
from heads.registry import register_head
from model import outputs as out


@dataclasses.dataclass(frozen=True)
class TranslationOptions(HeadOptions):
  """label_smoothing: eps of the smoothed target distribution."""
  label_smoothing: float = 0.1


@register_head("translation")
class TranslationHead(Head):
  """Token cross-entropy of the decoder (label-smoothed); normalised by target tokens.

  Reads: logits [B, T, V]. Label: target_out int32 [B, T] (0 = pad). Normaliser: non-pad target
  tokens. Paper: label smoothing, Szegedy et al. 2016.
  """
  reads = (out.LOGITS,)
  labels = ("target_out",)
  Options = TranslationOptions

  def loss(self, outputs, batch, training):
    labels = batch["target_out"]
    mask = tf.cast(tf.not_equal(labels, 0), tf.float32)
    per_token = smoothed_cross_entropy(outputs[out.LOGITS], labels, self.options.label_smoothing)
    return LossTerm(tf.reduce_sum(per_token * mask), tf.reduce_sum(mask))

  def metric_stats(self, outputs, batch):
    labels = batch["target_out"]
    mask = tf.cast(tf.not_equal(labels, 0), tf.float32)
    logits = tf.cast(outputs[out.LOGITS], tf.float32)
    nll = smoothed_cross_entropy(logits, labels, 0.0)
    correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=labels.dtype), labels), tf.float32)
    return {"nll_sum": tf.reduce_sum(nll * mask), "correct": tf.reduce_sum(correct * mask),
            "tokens": tf.reduce_sum(mask)}

  def metric_results(self, stats):
    tokens = float(stats["tokens"])
    if tokens == 0:
      return {}
    nll = float(stats["nll_sum"]) / tokens
    return {"token_accuracy": float(stats["correct"]) / tokens, "nll": nll,
            "perplexity": math.exp(min(nll, 50.0))}
