"""Price-range head on encoder_summary: the seed-000 setting (a price classifier on the encoder's
final state, trained jointly with translation)."""
import dataclasses
from typing import Literal, Tuple

import numpy as np
import tensorflow as tf

from heads.base import Head, HeadOptions, LossTerm
from heads.classifier import (MLP, MLPOptions, classification_results, confusion_stats,
                              masked_cross_entropy)
from heads.registry import register_head
from model import outputs as out


@dataclasses.dataclass(frozen=True)
class PriceOptions(HeadOptions, MLPOptions):
  """buckets: classes from training-set quantiles, unless `edges` (EUR, '+'-separated) is given.
  mode: classification (price range) or regression (log1p price, Huber loss, delta huber_delta).
  label_smoothing: eps of the smoothed bucket target in classification mode (0 = plain CE).
  """
  buckets: int = 5
  edges: Tuple[float, ...] = ()
  mode: Literal["classification", "regression"] = "classification"
  huber_delta: float = 1.0
  label_smoothing: float = 0.0

  def validate(self):
    if self.buckets < 2 and not self.edges:
      raise ValueError(f"buckets must be >= 2, got {self.buckets}")
    if not 0.0 <= self.label_smoothing < 1.0:
      raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
    if list(self.edges) != sorted(set(self.edges)):
      raise ValueError(f"edges must be strictly increasing, got {self.edges}")


def price_edges(options: PriceOptions, train_prices: np.ndarray) -> np.ndarray:
  """Inner bucket edges: given, or the training-set quantiles (buckets - 1 cut points)."""
  if options.edges:
    return np.asarray(options.edges, np.float32)
  if train_prices.size == 0:
    return np.arange(1, options.buckets, dtype=np.float32)  # no priced data: any edges do
  qs = np.linspace(0, 1, options.buckets + 1)[1:-1]
  return np.quantile(train_prices, qs).astype(np.float32)


def bucketize(price: tf.Tensor, edges: tf.Tensor) -> tf.Tensor:
  """int32 bucket of each price (edges are right-inclusive lower bounds); -1 where price is NaN."""
  bucket = tf.searchsorted(edges, price, side="right", out_type=tf.int32)
  return tf.where(tf.math.is_nan(price), -1, bucket)


@register_head("price")
class PriceHead(Head):
  """Price-range classifier (or log-price regressor) on encoder_summary.

  Reads: encoder_summary [B, D']. Label: price float32 [B] (NaN = missing), bucketed in-graph by
  training-set quantiles. Normaliser: examples with a price. Loss: cross-entropy (Huber on
  log1p(price) in regression mode). Idea: the "prices" sub-graph on the hidden state at the end
  of encoding in seed 000; joint multi-task training as in Caruana 1997, "Multitask Learning".
  """
  reads = (out.ENCODER_SUMMARY,)
  labels = ("price",)
  Options = PriceOptions

  def __init__(self, options, context, **kwargs):
    super().__init__(options, context, **kwargs)
    prices = np.asarray(context.label_info.get("price", np.zeros(0)), np.float64)
    self.edges = tf.constant(price_edges(options, prices))
    self.regression = options.mode == "regression"
    self.num_classes = 1 if self.regression else int(self.edges.shape[0]) + 1
    self.mlp = MLP(options, self.num_classes, name="mlp")
    self.mlp.build((None, context.summary_dim))

  def call(self, summary, training=None):
    return self.mlp(summary, training=training)

  def loss(self, outputs, batch, training):
    logits = self(outputs[out.ENCODER_SUMMARY], training=training)
    price = tf.cast(batch["price"], tf.float32)
    if not self.regression:
      return LossTerm(*masked_cross_entropy(logits, bucketize(price, self.edges),
                                            self.options.label_smoothing))
    valid = tf.logical_not(tf.math.is_nan(price))
    target = tf.math.log1p(tf.where(valid, price, 0.0))
    err = tf.abs(logits[:, 0] - target)
    delta = self.options.huber_delta
    huber = tf.where(err <= delta, 0.5 * err * err, delta * (err - 0.5 * delta))
    mask = tf.cast(valid, tf.float32)
    return LossTerm(tf.reduce_sum(huber * mask), tf.reduce_sum(mask))

  def metric_stats(self, outputs, batch):
    logits = self(outputs[out.ENCODER_SUMMARY], training=False)
    price = tf.cast(batch["price"], tf.float32)
    if not self.regression:
      return confusion_stats(logits, bucketize(price, self.edges), self.num_classes)
    valid = tf.logical_not(tf.math.is_nan(price))
    predicted = tf.math.expm1(logits[:, 0])
    abs_err = tf.abs(tf.where(valid, predicted - price, 0.0))
    return {"abs_error": tf.reduce_sum(abs_err), "count": tf.reduce_sum(tf.cast(valid, tf.float32))}

  def metric_results(self, stats):
    if not self.regression:
      return classification_results(stats)
    count = float(stats.get("count", 0))
    return {"mae": float(stats["abs_error"]) / count} if count else {}

  def predict(self, outputs):
    logits = self(outputs[out.ENCODER_SUMMARY], training=False)
    if self.regression:
      price = tf.math.expm1(logits[:, 0])
      return {"price": price, "price_bucket": bucketize(price, self.edges)}
    return {"price_bucket": tf.argmax(logits, -1, output_type=tf.int32)}
