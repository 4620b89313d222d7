"""Per-loss gradient statistics at the encoder boundary (`--log_grad_stats_every`).

The seed-000 question ("how do I rescale the gradients meeting at the encoder state?") needs
numbers: for each loss term, the norm of its gradient with respect to the encoder-side outputs
(encoder_outputs / encoder_summary), and the cosine between every pair of terms' gradients.
Computed on a separate pass, only every N steps, so training speed is untouched otherwise.
"""
import itertools

import tensorflow as tf

from training.boundary import boundary_forward, boundary_gradients


def make_grad_stats_fn(model, heads):
  """A traced `batch -> {"grad_norm/<term>": .., "grad_cos/<a>|<b>": .., "loss/<term>": ..}`."""
  @tf.function(reduce_retracing=True)
  def stats(batch):
    _, keys, detached, inner, losses, _, _ = boundary_forward(model, heads, batch)
    grads = boundary_gradients(inner, losses, [detached[k] for k in keys])
    del inner
    return gradient_statistics(grads)
  return stats


def gradient_statistics(grads) -> dict:
  """Norms and pairwise cosines of flat gradient vectors ({term: [N]}); cosine 0 when either
  gradient is zero (e.g. a term that does not reach the encoder)."""
  result = {}
  flat = {name: tf.cast(g, tf.float32) for name, g in grads.items()}
  norms = {name: tf.norm(g) for name, g in flat.items()}
  for name, norm in norms.items():
    result[f"grad_norm/{name}"] = norm
  for a, b in itertools.combinations(sorted(flat), 2):
    dot = tf.reduce_sum(flat[a] * flat[b])
    result[f"grad_cos/{a}|{b}"] = tf.math.divide_no_nan(dot, norms[a] * norms[b])
  return result
