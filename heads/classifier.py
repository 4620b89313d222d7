"""Shared pieces of classification heads on encoder_summary: the MLP and streaming metrics."""
import dataclasses
from typing import Tuple

import keras
import numpy as np
import tensorflow as tf

from heads.losses import smoothed_cross_entropy


@dataclasses.dataclass(frozen=True)
class MLPOptions:
  """hidden: '+'-separated layer widths; activation; dropout; batch_norm after each hidden layer."""
  hidden: Tuple[int, ...] = (128,)
  activation: str = "relu"
  dropout: float = 0.1
  batch_norm: bool = False


class MLP(keras.layers.Layer):
  """Dense -> [BatchNorm] -> activation -> Dropout, per hidden width; then Dense(outputs)."""

  def __init__(self, options: MLPOptions, outputs: int, **kwargs):
    super().__init__(**kwargs)
    if outputs < 1:
      raise ValueError(f"outputs must be >= 1, got {outputs}")
    self.blocks = []
    for i, width in enumerate(options.hidden):
      block = [keras.layers.Dense(width, name=f"dense_{i}")]
      if options.batch_norm:
        block.append(keras.layers.BatchNormalization(name=f"batch_norm_{i}"))
      block += [keras.layers.Activation(options.activation, name=f"act_{i}"),
                keras.layers.Dropout(options.dropout, name=f"dropout_{i}")]
      self.blocks.append(block)
    self.out = keras.layers.Dense(outputs, name="logits")

  def build(self, input_shape):
    shape = tuple(input_shape)
    for block in self.blocks:
      for layer in block:
        layer.build(shape)
        if isinstance(layer, keras.layers.Dense):
          shape = shape[:-1] + (layer.units,)
    self.out.build(shape)
    self.built = True

  def call(self, x, training=None):
    x = tf.cast(x, tf.float32)
    for block in self.blocks:
      for layer in block:
        x = layer(x, training=training)
    return tf.cast(self.out(x), tf.float32)


def masked_cross_entropy(logits, labels, smoothing: float = 0.0):
  """Sum of CE over examples with label >= 0, and their count. logits [B, C], labels int [B].

  smoothing: eps of label smoothing (heads/losses.py): the target is (1 - eps) on the label plus
  eps spread uniformly over the C classes.
  """
  valid = labels >= 0
  ce = smoothed_cross_entropy(logits, tf.where(valid, labels, 0), smoothing)
  mask = tf.cast(valid, tf.float32)
  return tf.reduce_sum(ce * mask), tf.reduce_sum(mask)


def confusion_stats(logits, labels, num_classes):
  """{"confusion": [C, C] counts of (label, prediction) over labelled examples}."""
  valid = labels >= 0
  pred = tf.argmax(logits, -1, output_type=tf.int32)
  matrix = tf.math.confusion_matrix(tf.boolean_mask(labels, valid), tf.boolean_mask(pred, valid),
                                    num_classes=num_classes, dtype=tf.float32)
  return {"confusion": matrix}


def classification_results(stats) -> dict:
  """Accuracy and macro-F1 (over classes that occur as label or prediction) from a confusion."""
  matrix = np.asarray(stats.get("confusion", np.zeros((1, 1))), np.float64)
  total = matrix.sum()
  if total == 0:
    return {}
  tp = np.diag(matrix)
  support, predicted = matrix.sum(1), matrix.sum(0)
  present = (support + predicted) > 0
  f1 = np.where(present, 2 * tp / np.maximum(support + predicted, 1), 0.0)
  majority = support.max() / total
  return {"accuracy": float(tp.sum() / total), "macro_f1": float(f1[present].mean()),
          "majority_baseline": float(majority), "examples": float(total)}
