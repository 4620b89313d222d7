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
from heads.registry import register_head
from model import outputs as out


def smoothed_cross_entropy(logits, labels, smoothing):
  """Per-token label-smoothed CE. logits [B, T, V] (any float), labels [B, T] int -> [B, T] f32.

  loss = logsumexp(z) - (1 - eps) z[label] - eps mean(z), the cross-entropy against the target
  distribution q = (1 - eps) one_hot + eps / V. Its gradient is written out (softmax(z) - q):
  left to autodiff, the gather of z[label] becomes a scatter into a zero [B*T*V] tensor and the
  log-softmax is kept, about 3x the time of this loss on a [64, 30, 8000] batch
  (docs/results.md, Throughput: the profile).
  """
  logits = tf.cast(logits, tf.float32)

  @tf.custom_gradient
  def cross_entropy(z):
    lse = tf.reduce_logsumexp(z, axis=-1)
    z_label = tf.gather(z, labels, axis=-1, batch_dims=2)
    loss = lse - (1.0 - smoothing) * z_label
    if smoothing:
      loss -= smoothing * tf.reduce_mean(z, axis=-1)

    def grad(upstream):
      vocab = tf.cast(tf.shape(z)[-1], tf.float32)
      q = tf.one_hot(labels, tf.shape(z)[-1], on_value=1.0 - smoothing + smoothing / vocab,
                     off_value=smoothing / vocab, dtype=tf.float32)
      return upstream[..., None] * (tf.exp(z - lse[..., None]) - q)
    return loss, grad

  return cross_entropy(logits)


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
