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


def compute_losses(model, heads: Sequence[Head], batch, training: bool):
  """Forward pass and every head's normalised loss terms.

  Returns:
    (outputs, losses {term: float32 scalar mean}, weights {term: float}, counts {term: scalar}).
  """
  outputs = model(batch, training=training)
  losses, weights, counts = {}, {}, {}
  for head in heads:
    for name, term in head.loss_terms(head_view(outputs, head), batch, training).items():
      losses[name] = safe_mean(term)
      counts[name] = tf.cast(term.count, tf.float32)
      weights[name] = float(head.options.weight)
  return outputs, losses, weights, counts


def trainable_variables(model, heads, combiner):
  variables = list(model.trainable_variables)
  for layer in list(heads) + [combiner]:
    variables.extend(layer.trainable_variables)
  return variables


def make_train_step(model, heads, combiner, optimizer, jit_compile: bool = False):
  """Returns `step(batch) -> dict of scalars`: loss, loss/<term>, weight/<term>, grad_norm,
  finite (bool: every loss and gradient finite; when False nothing was applied)."""
  variables = trainable_variables(model, heads, combiner)
  scales_loss = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

  def step(batch):
    with tf.GradientTape() as tape:
      _, losses, weights, counts = compute_losses(model, heads, batch, training=True)
      total, used = combiner.combine(losses, weights)
      scaled = optimizer.scale_loss(total) if scales_loss else total
    grads = tape.gradient(scaled, variables)
    grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
    grad_norm = tf.linalg.global_norm(grads)
    finite = tf.math.is_finite(total)
    for value in losses.values():
      finite &= tf.math.is_finite(value)
    if scales_loss:  # float16: the loss-scale optimizer unscales, and skips overflowing steps.
      grad_norm = grad_norm / tf.cast(optimizer.loss_scale_factor, grad_norm.dtype)
    else:
      finite &= tf.math.is_finite(grad_norm)

    def apply():
      optimizer.apply(grads, variables)
      return tf.constant(True)

    tf.cond(finite, apply, lambda: tf.constant(False))
    result = {"loss": total, "grad_norm": grad_norm, "finite": finite}
    for name in losses:
      result[f"loss/{name}"] = losses[name]
      result[f"weight/{name}"] = tf.cast(used[name], tf.float32)
      result[f"count/{name}"] = counts[name]
    return result

  return tf.function(step, jit_compile=jit_compile, reduce_retracing=True)
