"""The `bag_of_words` head: predicts which target tokens the translation will contain."""
import dataclasses
from typing import Tuple

import keras
import numpy as np
import tensorflow as tf

from heads.base import Head, HeadOptions, LossTerm
from heads.length_ratio import has_translation
from heads.registry import register_head
from model import outputs as out


@dataclasses.dataclass(frozen=True)
class BagOfWordsOptions(HeadOptions):
  """ignore_ids: '+'-separated token ids never counted as words (default pad 0 and EOS 3)."""
  weight: float = 0.1
  ignore_ids: Tuple[int, ...] = (0, 3)


@register_head("bag_of_words")
class BagOfWordsHead(Head):
  """Predicts the set of target token ids from encoder_summary (multi-label sigmoid CE).

  Reads: encoder_summary [B, D']. Label: the multi-hot [B, V] set of target_out ids (ignore_ids
  excluded). Normaliser: examples with a translation (the CE is summed over the vocabulary).
  Idea: Weng et al. 2017, "Neural Machine Translation with Word Predictions" (the encoder state
  should predict the target's words).
  """
  reads = (out.ENCODER_SUMMARY,)
  labels = ("target_out",)
  Options = BagOfWordsOptions

  def __init__(self, options, context, **kwargs):
    super().__init__(options, context, **kwargs)
    self.vocab_size = context.vocab_size
    keep = np.ones([context.vocab_size], np.float32)
    keep[[i for i in options.ignore_ids if 0 <= i < context.vocab_size]] = 0.0
    self.keep = tf.constant(keep)
    self.projection = keras.layers.Dense(context.vocab_size, name="projection")
    self.projection.build((None, context.summary_dim))

  def multi_hot(self, target_out):
    """int [B, T] -> float32 [B, V]: 1 for every (kept) id present in the row."""
    hot = tf.reduce_max(tf.one_hot(target_out, self.vocab_size, dtype=tf.float32), axis=1)
    return hot * self.keep[None]

  def _logits(self, outputs):
    return tf.cast(self.projection(tf.cast(outputs[out.ENCODER_SUMMARY], tf.float32)), tf.float32)

  def loss(self, outputs, batch, training):
    labels = self.multi_hot(batch["target_out"])
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=self._logits(outputs))
    mask = tf.cast(has_translation(batch["target_out"]), tf.float32)
    return LossTerm(tf.reduce_sum(tf.reduce_sum(ce * self.keep[None], axis=1) * mask),
                    tf.reduce_sum(mask))

  def metric_stats(self, outputs, batch):
    """Micro counts at threshold 0.5 over examples with a translation."""
    labels = self.multi_hot(batch["target_out"])
    mask = tf.cast(has_translation(batch["target_out"]), tf.float32)[:, None] * self.keep[None]
    predicted = tf.cast(self._logits(outputs) > 0.0, tf.float32) * mask
    return {"true_positive": tf.reduce_sum(predicted * labels),
            "predicted": tf.reduce_sum(predicted), "actual": tf.reduce_sum(labels * mask)}

  def metric_results(self, stats):
    tp, pred, act = (float(stats.get(k, 0)) for k in ("true_positive", "predicted", "actual"))
    if act == 0:
      return {}
    precision, recall = (tp / pred if pred else 0.0), tp / act
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}

  def predict(self, outputs):
    return {"bag_of_words": tf.sigmoid(self._logits(outputs))}
