"""Small synthetic model outputs and batches shaped by a HeadContext.

`build_heads` runs every new head once on these (so its variables exist right away and a broken
head fails at build time, not in the middle of training), and tests use them instead of a model.
Values are fixed (no randomness), so using them never moves any random number generator.
"""
import math
from typing import Dict, Iterable

import numpy as np
import tensorflow as tf

from model import outputs as out

BATCH, SOURCE_LEN, TARGET_LEN = 2, 4, 3
# Example 0: 4 source tokens, 3 target tokens. Example 1: 2 source tokens, no translation.
_SOURCE = [[5, 6, 7, 3], [8, 3, 0, 0]]
_TARGET_OUT = [[5, 6, 3], [0, 0, 0]]
_TARGET_IN = [[2, 5, 6], [0, 0, 0]]


def _attention(heads: int, salt: int) -> np.ndarray:
  """[B, H, T, S] probabilities, distinct per head, rows summing to 1 over real source positions
  and exactly 0 on padding (as the model produces)."""
  s = np.arange(SOURCE_LEN, dtype=np.float64)
  scores = np.cos(np.arange(BATCH * heads * TARGET_LEN)[:, None] * 0.7 + s[None, :] * (1 + salt))
  scores = scores.reshape(BATCH, heads, TARGET_LEN, SOURCE_LEN)
  mask = (np.asarray(_SOURCE) != 0)[:, None, None, :]
  probs = np.where(mask, np.exp(2.0 * scores), 0.0)
  return (probs / probs.sum(-1, keepdims=True)).astype(np.float32)


def synthetic_outputs(context) -> Dict[str, object]:
  """Model outputs (model/outputs.py keys) for a batch of 2 with S = 4, T = 3."""
  vocab, d, summary = context.vocab_size, context.d_model, context.summary_dim
  grid = np.arange(BATCH * TARGET_LEN * vocab, dtype=np.float32).reshape(BATCH, TARGET_LEN, vocab)
  enc = np.arange(BATCH * SOURCE_LEN * d, dtype=np.float32).reshape(BATCH, SOURCE_LEN, d)
  summ = np.arange(BATCH * summary, dtype=np.float32).reshape(BATCH, summary)
  second = {out.LOGITS: tf.constant(np.sin(grid + 0.5)),  # another dropout draw's logits
            out.TARGET_MASK: tf.constant((np.asarray(_TARGET_OUT) != 0).astype(np.float32))}
  return {
      out.SECOND_PASS: second,
      out.LOGITS: tf.constant(np.sin(grid)),
      out.ENCODER_OUTPUTS: tf.constant(np.cos(0.3 * enc)),
      out.ENCODER_MASK: tf.constant((np.asarray(_SOURCE) != 0).astype(np.float32)),
      out.ENCODER_SUMMARY: tf.constant(np.sin(0.5 * summ + 0.1)),
      out.CROSS_ATTENTION: [tf.constant(_attention(context.num_attention_heads, layer))
                            for layer in range(context.num_layers)],
      out.TARGET_MASK: tf.constant((np.asarray(_TARGET_OUT) != 0).astype(np.float32)),
  }


def synthetic_batch(context, extra_labels: Iterable[str] = (), missing: bool = False):
  """A batch matching `synthetic_outputs`, labelled (example 0 translated and priced, example 1
  with a domain), or with every label missing (`missing=True`: NaN prices, -1 classes, all-pad
  targets, empty alignments). `extra_labels`: further int32 [B] class keys (e.g. a domain head's
  `label` option)."""
  classes = max(1, len(context.label_info.get("domain", ())))
  batch = {
      "source": tf.constant(_SOURCE, tf.int32),
      "target_in": tf.constant(_TARGET_IN, tf.int32),
      "target_out": tf.constant(_TARGET_OUT, tf.int32),
      "price": tf.constant([120.0, math.nan], tf.float32),
      "domain": tf.constant([-1, classes - 1], tf.int32),
      "alignment": tf.constant(["0-0 1-1 3-2", ""]),
  }
  for key in extra_labels:
    batch.setdefault(key, tf.constant([0, -1], tf.int32))
  if missing:
    batch.update(target_in=tf.zeros_like(batch["target_in"]),
                 target_out=tf.zeros_like(batch["target_out"]),
                 price=tf.fill([BATCH], math.nan), alignment=tf.constant(["", ""]))
    for key, value in batch.items():
      if key not in ("source", "target_in", "target_out", "price", "alignment"):
        batch[key] = tf.fill([BATCH], -1) if value.dtype == tf.int32 else value
  return batch


def missing_outputs(outputs: Dict[str, object]) -> Dict[str, object]:
  """Outputs for the all-missing batch: the target mask is 0 where target_out is all pad."""
  return dict(outputs, **{out.TARGET_MASK: tf.zeros_like(outputs[out.TARGET_MASK])})
