"""Per-term gradients at the encoder boundary (`--gradient_space=boundary`, and
`--log_grad_stats_every`): cheaper than over the weights, blind to terms on different rows
(docs/balancing.md)."""
from typing import Dict

import tensorflow as tf

from training.step import head_losses


def gradient_combined_loss(tape, model, heads, combiner, batch):
  """Per-term gradients at the encoder boundary -> combiner -> one surrogate loss.

  The decoder and heads see a detached copy z' of the encoder outputs; each term's gradient
  g_i = dL_i/dz' is taken on an inner tape (not recorded by the outer one). The returned loss is
  sum_i used_i * L_i(z') (task-specific gradients) + <stop_gradient(G), z> (G into the encoder)
  + the combiner's own extra loss (e.g. GradNorm's, for its learnable weights).
  """
  encoded, keys, detached, inner, losses, weights, counts = boundary_forward(model, heads, batch)
  with tape.stop_recording():
    grads = boundary_gradients(inner, losses, [detached[k] for k in keys])
  del inner
  used, shared, extra = combiner.combine_gradients(losses, weights, grads)
  total = tf.add_n([tf.stop_gradient(used[n]) * losses[n] for n in losses]) + extra
  offsets, surrogate = 0, 0.0
  for k in keys:
    size = tf.size(encoded[k])
    g = tf.reshape(tf.stop_gradient(shared[offsets:offsets + size]), tf.shape(encoded[k]))
    surrogate += tf.reduce_sum(tf.cast(g, tf.float32) * tf.cast(encoded[k], tf.float32))
    offsets += size
  # The surrogate has value 0 in the reported loss but carries G into the encoder.
  total = total + surrogate - tf.stop_gradient(surrogate)
  return total, losses, used, counts


def boundary_forward(model, heads, batch):
  """Training forward pass whose decoder and heads read a detached copy z' of the model's
  boundary outputs (`model.boundary_keys`; what is computed from them is re-derived from z'),
  recorded on a persistent tape so each term's gradient dL_i/dz' can be taken.

  Returns (encoded, keys, detached {key: z'}, inner tape, losses, weights, counts).
  """
  encoded = model.encode(batch["source"], training=True)
  keys = [k for k in model.boundary_keys if k in encoded]
  detached = {k: tf.stop_gradient(encoded[k]) for k in keys}
  with tf.GradientTape(persistent=True) as inner:
    inner.watch([detached[k] for k in keys])
    view = model.derive_from_boundary(dict(encoded, **detached))
    outputs = model.decode(batch, view, training=True)
    losses, weights, counts = head_losses(outputs, heads, batch, training=True)
  return encoded, keys, detached, inner, losses, weights, counts


def boundary_gradients(inner, losses, sources) -> Dict[str, tf.Tensor]:
  """{term: dL_term/d(sources), flattened and concatenated, float32 (under mixed precision the
  sources are bfloat16/float16; gradient arithmetic in the combiners stays float32); zeros where
  a term does not reach}."""
  grads = {}
  for name, loss in losses.items():
    parts = inner.gradient(loss, sources)
    grads[name] = tf.concat([tf.reshape(tf.cast(tf.zeros_like(x) if g is None else g, tf.float32),
                                        [-1]) for g, x in zip(parts, sources)], axis=0)
  return grads
