"""Domain classifier on encoder_summary (the gettext catalog a string comes from, by default)."""
import dataclasses

import tensorflow as tf

from heads.base import Head, HeadOptions, LossTerm
from heads.classifier import (MLP, MLPOptions, classification_results, confusion_stats,
                              masked_cross_entropy)
from heads.registry import register_head
from model import outputs as out


@dataclasses.dataclass(frozen=True)
class DomainOptions(HeadOptions, MLPOptions):
  """label: the batch key holding the int32 class id (-1 = missing)."""
  label: str = "domain"


@register_head("domain")
class DomainHead(Head):
  """Sequence classifier on encoder_summary for an integer label column (default: domain).

  Reads: encoder_summary. Label: `domain` int32 [B] (-1 = missing); classes = the training data's
  domain names. Normaliser: labelled examples. Idea: domain classification as an auxiliary task
  for NMT (Britz, Le & Pryzant 2017, "Effective Domain Mixing for Neural Machine Translation").
  """
  reads = (out.ENCODER_SUMMARY,)
  labels = ("domain",)
  Options = DomainOptions

  def __init__(self, options, context, **kwargs):
    super().__init__(options, context, **kwargs)
    self.labels = (options.label,)  # the batch key actually read
    self.num_classes = max(1, len(context.label_info.get("domain", ())))
    self.mlp = MLP(options, self.num_classes, name="mlp")
    self.mlp.build((None, context.summary_dim))

  def _labels(self, batch):
    return tf.cast(batch[self.options.label], tf.int32)

  def loss(self, outputs, batch, training):
    logits = self.mlp(outputs[out.ENCODER_SUMMARY], training=training)
    return LossTerm(*masked_cross_entropy(logits, self._labels(batch)))

  def metric_stats(self, outputs, batch):
    logits = self.mlp(outputs[out.ENCODER_SUMMARY], training=False)
    return confusion_stats(logits, self._labels(batch), self.num_classes)

  def metric_results(self, stats):
    return classification_results(stats)

  def predict(self, outputs):
    logits = self.mlp(outputs[out.ENCODER_SUMMARY], training=False)
    return {"domain": tf.argmax(logits, -1, output_type=tf.int32)}
