"""The `length_ratio` head: predicts how much longer the translation is than the source."""
import dataclasses

import tensorflow as tf

from heads.base import Head, HeadOptions, LossTerm
from heads.classifier import MLP, MLPOptions
from heads.registry import register_head
from model import outputs as out


def has_translation(target_out: tf.Tensor) -> tf.Tensor:
  """bool [B]: the example has at least one non-pad target token. target_out int [B, T]."""
  return tf.reduce_any(tf.not_equal(target_out, 0), axis=1)


def token_count(ids: tf.Tensor) -> tf.Tensor:
  """float32 [B]: non-pad tokens per row of ids int [B, L]."""
  return tf.reduce_sum(tf.cast(tf.not_equal(ids, 0), tf.float32), axis=1)


@dataclasses.dataclass(frozen=True)
class LengthRatioOptions(HeadOptions, MLPOptions):
  """An MLP regressor (hidden, activation, dropout, batch_norm as for `price`)."""
  weight: float = 0.1


@register_head("length_ratio")
class LengthRatioHead(Head):
  """Regresses log(target length / source length) from encoder_summary (squared error).

  Reads: encoder_summary [B, D']. Label: derived from source [B, S] and target_out [B, T]
  (token counts incl. EOS); masked where target_out is all pad. Normaliser: examples with a
  translation. Idea: target-length prediction from the encoder, as in Gu et al. 2018
  ("Non-Autoregressive Neural Machine Translation") and Lee et al. 2018 (length prediction).
  """
  reads = (out.ENCODER_SUMMARY,)
  labels = ("source", "target_out")
  Options = LengthRatioOptions

  def __init__(self, options, context, **kwargs):
    super().__init__(options, context, **kwargs)
    self.mlp = MLP(options, 1, name="mlp")
    self.mlp.build((None, context.summary_dim))

  def _errors(self, outputs, batch, training):
    """(prediction - log ratio) [B], 0 where masked; and the float mask [B]."""
    predicted = self.mlp(outputs[out.ENCODER_SUMMARY], training=training)[:, 0]
    valid = has_translation(batch["target_out"])
    ratio = tf.math.divide_no_nan(token_count(batch["target_out"]), token_count(batch["source"]))
    target = tf.math.log(tf.where(valid, ratio, 1.0))
    return tf.where(valid, predicted - target, 0.0), tf.cast(valid, tf.float32)

  def loss(self, outputs, batch, training):
    err, mask = self._errors(outputs, batch, training)
    return LossTerm(tf.reduce_sum(err * err), tf.reduce_sum(mask))

  def metric_stats(self, outputs, batch):
    err, mask = self._errors(outputs, batch, False)
    return {"abs_error": tf.reduce_sum(tf.abs(err)), "count": tf.reduce_sum(mask)}

  def metric_results(self, stats):
    count = float(stats.get("count", 0))
    return {"mae_log_ratio": float(stats["abs_error"]) / count} if count else {}

  def predict(self, outputs):
    return {"length_ratio": tf.exp(self.mlp(outputs[out.ENCODER_SUMMARY], training=False)[:, 0])}
