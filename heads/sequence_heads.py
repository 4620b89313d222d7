"""Further encoder heads that need no extra labels: target length ratio and bag of words."""
import dataclasses

import keras
import tensorflow as tf

from heads.base import Head, HeadOptions, LossTerm
from heads.classifier import MLP, MLPOptions
from heads.registry import register_head
from model import outputs as out


def _has_translation(batch):
  return tf.reduce_any(tf.not_equal(batch["target_out"], 0), axis=1)


def _length(ids):
  return tf.reduce_sum(tf.cast(tf.not_equal(ids, 0), tf.float32), axis=1)


@dataclasses.dataclass(frozen=True)
class LengthRatioOptions(HeadOptions, MLPOptions):
  """An MLP regressor; the defaults of MLPOptions apply."""
  weight: float = 0.1


@register_head("length_ratio")
class LengthRatioHead(Head):
  """Regresses log(target length / source length) from encoder_summary (squared error).

  Reads: encoder_summary. Label: derived from source and target_out (masked where there is no
  translation). Normaliser: examples with a translation. Idea: length prediction from the encoder
  (e.g. Gu et al. 2018, "Non-Autoregressive Neural Machine Translation", fertility/length).
  """
  reads = (out.ENCODER_SUMMARY,)
  labels = ("target_out",)
  Options = LengthRatioOptions

  def __init__(self, options, context, **kwargs):
    super().__init__(options, context, **kwargs)
    self.mlp = MLP(options, 1, name="mlp")
    self.mlp.build((None, context.summary_dim))

  def _errors(self, outputs, batch, training):
    predicted = self.mlp(outputs[out.ENCODER_SUMMARY], training=training)[:, 0]
    valid = _has_translation(batch)
    ratio = tf.math.divide_no_nan(_length(batch["target_out"]), _length(batch["source"]))
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


@dataclasses.dataclass(frozen=True)
class BagOfWordsOptions(HeadOptions):
  """A linear layer to the target vocabulary."""
  weight: float = 0.1


@register_head("bag_of_words")
class BagOfWordsHead(Head):
  """Predicts the set of target token ids from encoder_summary (multi-label sigmoid CE).

  Reads: encoder_summary. Label: the multi-hot set of target_out ids (pad and EOS excluded).
  Normaliser: examples with a translation (loss summed over the vocabulary). Idea: Weng et al.
  2017, "Neural Machine Translation with Word Predictions".
  """
  reads = (out.ENCODER_SUMMARY,)
  labels = ("target_out",)
  Options = BagOfWordsOptions

  def __init__(self, options, context, **kwargs):
    super().__init__(options, context, **kwargs)
    self.vocab_size = context.vocab_size
    self.projection = keras.layers.Dense(context.vocab_size, name="projection")
    self.projection.build((None, context.summary_dim))

  def _multi_hot(self, target_out):
    hot = tf.reduce_max(tf.one_hot(target_out, self.vocab_size), axis=1)  # [B, V]
    return hot * tf.concat([[0.0, 1.0, 1.0, 0.0], tf.ones([self.vocab_size - 4])], 0)[None]

  def loss(self, outputs, batch, training):
    logits = tf.cast(self.projection(tf.cast(outputs[out.ENCODER_SUMMARY], tf.float32)),
                     tf.float32)
    labels = self._multi_hot(batch["target_out"])
    ce = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels, logits), axis=1)
    mask = tf.cast(_has_translation(batch), tf.float32)
    return LossTerm(tf.reduce_sum(ce * mask), tf.reduce_sum(mask))
