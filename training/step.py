"""The train step: one forward pass, every head's loss, one tape, one `apply_gradients`.

Built by a factory so that the traced function closes over the model, heads, combiner and
optimizer and has no Python side effects. Seed 002: the model *and every head* are called with
`training=True` here, and with `training=False` in evaluation.
"""
from typing import Dict, Sequence

import keras
import tensorflow as tf

from heads.base import Head, safe_mean, scale_gradient
from model import outputs as out


def head_view(outputs: Dict, head: Head) -> Dict:
  """The outputs a head sees: encoder-side tensors carry the head's grad_scale on their gradient."""
  scale = float(head.options.grad_scale)
  if scale == 1.0:
    return outputs
  view = dict(outputs)
  for key in (k for k in out.ENCODER_SIDE if k in outputs):
    view[key] = scale_gradient(outputs[key], scale)
  return view


def head_losses(outputs, heads: Sequence[Head], batch, training: bool):
  """Every head's normalised loss terms on given model outputs.

  Returns:
    (losses {term: float32 scalar mean}, weights {term: float}, counts {term: scalar}).
  """
  losses, weights, counts = {}, {}, {}
  for head in heads:
    for name, term in head.loss_terms(head_view(outputs, head), batch, training).items():
      losses[name] = safe_mean(term)
      counts[name] = tf.cast(term.count, tf.float32)
      weights[name] = float(head.options.weight)
  return losses, weights, counts


def compute_losses(model, heads: Sequence[Head], batch, training: bool):
  """Forward pass and every head's loss terms: (outputs, losses, weights, counts)."""
  outputs = model(batch, training=training)
  return (outputs,) + head_losses(outputs, heads, batch, training)


def trainable_variables(model, heads, combiner):
  variables = list(model.trainable_variables)
  for layer in list(heads) + [combiner]:
    variables.extend(layer.trainable_variables)
  return variables


def make_train_step(model, heads, combiner, optimizer, jit_compile: bool = False):
  """Returns `step(batch) -> dict of scalars`: loss, loss/<term>, weight/<term>, count/<term>,
  grad_norm, finite (every loss (and gradient) finite; when False nothing was applied)."""
  variables = trainable_variables(model, heads, combiner)
  scales_loss = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
  forward = (_gradient_combined_loss if getattr(combiner, "needs_gradients", False)
             else _combined_loss)

  def step(batch):
    with tf.GradientTape() as tape:
      total, losses, used, counts = forward(tape, model, heads, combiner, batch)
      scaled = optimizer.scale_loss(total) if scales_loss else total
    grads = tape.gradient(scaled, variables)
    grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
    grad_norm = tf.linalg.global_norm(grads)
    finite = tf.math.is_finite(total)
    for value in losses.values():
      finite &= tf.math.is_finite(value)
    if scales_loss:  # float16: the loss-scale optimizer unscales, and skips overflowing steps.
      grad_norm = grad_norm / tf.cast(optimizer.dynamic_scale, grad_norm.dtype)
    else:
      finite &= tf.math.is_finite(grad_norm)

    def apply():
      optimizer.apply(grads, variables)
      if hasattr(combiner, "after_apply"):
        combiner.after_apply()
      return tf.constant(True)

    tf.cond(finite, apply, lambda: tf.constant(False))
    result = {"loss": total, "grad_norm": grad_norm, "finite": finite}
    for name in losses:
      result[f"loss/{name}"] = losses[name]
      result[f"weight/{name}"] = tf.cast(used[name], tf.float32)
      result[f"count/{name}"] = counts[name]
    return result

  return tf.function(step, jit_compile=jit_compile, reduce_retracing=True)


def _combined_loss(tape, model, heads, combiner, batch):
  del tape
  _, losses, weights, counts = compute_losses(model, heads, batch, training=True)
  total, used = combiner.combine(losses, weights)
  return total, losses, used, counts


def _gradient_combined_loss(tape, model, heads, combiner, batch):
  """Per-term gradients at the encoder boundary -> combiner -> one surrogate loss.

  The decoder and heads see a detached copy z' of the encoder outputs; each term's gradient
  g_i = dL_i/dz' is taken on an inner tape (not recorded by the outer one). The returned loss is
  sum_i used_i * L_i(z') (task-specific gradients) + <stop_gradient(G), z> (G into the encoder)
  + the combiner's own extra loss (e.g. GradNorm's, for its learnable weights).
  """
  encoded = model.encode(batch["source"], training=True)
  keys = [k for k in out.ENCODER_SIDE if k in encoded]
  detached = {k: tf.stop_gradient(encoded[k]) for k in keys}
  with tf.GradientTape(persistent=True) as inner:
    inner.watch([detached[k] for k in keys])
    outputs = model.decode(batch, dict(encoded, **detached), training=True)
    losses, weights, counts = head_losses(outputs, heads, batch, training=True)
  with tape.stop_recording():
    grads = {}
    for name, loss in losses.items():
      parts = inner.gradient(loss, [detached[k] for k in keys])
      grads[name] = tf.concat([tf.reshape(tf.zeros_like(detached[k]) if g is None else g, [-1])
                               for g, k in zip(parts, keys)], axis=0)
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
