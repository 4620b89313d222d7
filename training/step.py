"""The train step: one forward pass, every head's loss, one tape, one `apply_gradients`.

Built by a factory so that the traced function closes over the model, heads, combiner and
optimizer and has no Python side effects. Seed 002: the model *and every head* are called with
`training=True` here, and with `training=False` in evaluation.
"""
from typing import Dict, Sequence

import keras
import tensorflow as tf

from heads.base import Head, call_head, float32_outputs, safe_mean, scale_gradient
from model import outputs as out
from training import distribute


def head_view(outputs: Dict, head: Head) -> Dict:
  """The outputs a head sees: encoder-side tensors carry the head's grad_scale on their gradient,
  and so does its cross-attention where `with_scaled_attention` provided a copy for that scale."""
  scale = float(head.options.grad_scale)
  if scale == 1.0:
    return outputs
  view = dict(outputs)
  for key in (k for k in out.ENCODER_SIDE if k in outputs):
    view[key] = scale_gradient(outputs[key], scale)
  scaled_attention = _scaled_attention_key(scale)
  if scaled_attention in outputs:
    view[out.CROSS_ATTENTION] = outputs[scaled_attention]
  return view


def _scaled_attention_key(scale: float) -> str:
  return f"{out.CROSS_ATTENTION}@grad_scale={scale!r}"


def with_scaled_attention(model, outputs: Dict, heads: Sequence[Head], batch, training: bool):
  """Adds, for each grad_scale != 1 of a head reading cross-attention, the cross-attention of a
  decoder pass over gradient-scaled encoder outputs: the same values (with dropout off), but the
  gradient such a head sends into the encoder through the attention keys is scaled. One extra
  decoder forward per distinct scale; none when no attention head sets grad_scale."""
  scales = {float(h.options.grad_scale) for h in heads
            if out.CROSS_ATTENTION in h.reads and float(h.options.grad_scale) != 1.0}
  if not scales or not hasattr(model, "decode"):
    return outputs
  outputs = dict(outputs)
  encoded = {k: outputs[k] for k in (out.ENCODER_OUTPUTS, out.ENCODER_MASK, out.ENCODER_SUMMARY)}
  for scale in sorted(scales):
    scaled = {k: scale_gradient(v, scale) if k in out.ENCODER_SIDE else v
              for k, v in encoded.items()}
    decoded = model.decode({"target_in": batch["target_in"]}, scaled, training=training)
    outputs[_scaled_attention_key(scale)] = decoded[out.CROSS_ATTENTION]
  return outputs


def head_terms(outputs, heads: Sequence[Head], batch, training: bool):
  """Every head's loss terms, unnormalised: ({term: LossTerm}, {term: weight})."""
  terms, weights = {}, {}
  outputs = float32_outputs(outputs)  # heads compute in float32 under every precision
  for head in heads:
    view = head_view(outputs, head)
    for name, term in call_head(head, head.loss_terms, view, batch, training).items():
      terms[name] = term
      weights[name] = float(head.options.weight)
  return terms, weights


def head_losses(outputs, heads: Sequence[Head], batch, training: bool):
  """Every head's loss terms, each normalised by its own count in this batch.

  Returns:
    (losses {term: float32 scalar mean}, weights {term: float}, counts {term: scalar}).
  """
  terms, weights = head_terms(outputs, heads, batch, training)
  losses = {name: safe_mean(term) for name, term in terms.items()}
  counts = {name: tf.cast(term.count, tf.float32) for name, term in terms.items()}
  return losses, weights, counts


def forward(model, heads: Sequence[Head], batch, training: bool) -> Dict:
  """The model's outputs for `batch`, with the extra cross-attention copies that heads with a
  grad_scale need (`with_scaled_attention`) and, when a head asks for it (`second_pass`), a
  second forward pass under outputs[SECOND_PASS]. Every training path calls this."""
  outputs = with_scaled_attention(model, model(batch, training=training), heads, batch, training)
  if any(getattr(head, "second_pass", False) for head in heads):
    second = model(batch, training=True) if training else outputs  # same when not training
    outputs = dict(outputs, **{out.SECOND_PASS: second})
  return outputs


def compute_losses(model, heads: Sequence[Head], batch, training: bool):
  """Forward pass and every head's loss terms: (outputs, losses, weights, counts)."""
  outputs = forward(model, heads, batch, training)
  return (outputs,) + head_losses(outputs, heads, batch, training)


def trainable_variables(model, heads, combiner):
  variables = list(model.trainable_variables)
  for layer in list(heads) + [combiner]:
    variables.extend(layer.trainable_variables)
  return variables


def all_reduce_sum(values: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  """Sum over replicas (identity without tf.distribute)."""
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return values
  return context.all_reduce(tf.distribute.ReduceOp.SUM, values)


def global_counts(model, heads, batches) -> Dict[str, tf.Tensor]:
  """Each term's count over every micro-batch of every replica.

  An inference-mode forward pass whose losses are unused: inside tf.function only the ops the
  counts depend on (masks and labels) are kept, so this costs little.
  """
  totals = {}
  for batch in batches:
    _, _, _, counts = compute_losses(model, heads, batch, training=False)
    for name, count in counts.items():
      totals[name] = totals.get(name, 0.0) + count
  return all_reduce_sum(totals)


class ShapeGenericFunction:
  """A `tf.function` of one batch argument whose first trace already has every batch dimension
  unknown (None), so every call runs the same graph from the first step on.

  With plain `reduce_retracing`, the first call traces a graph for that batch's exact shapes and
  only later calls get the shape-generic one. A resumed run's first step then ran a graph that
  the uninterrupted run never ran for that step, and the two graphs round differently (oneDNN
  picks kernels by shape; seen on AVX512 hosts): the resumed run was no longer bit-identical.
  Under a strategy the argument is the global batch too: the step splits it between the
  replicas (`distribute.replica_rows`). Leaves that are not plain tensors keep the plain
  behaviour.
  """

  def __init__(self, fn, jit_compile: bool = False):
    self.function = tf.function(fn, jit_compile=jit_compile, reduce_retracing=True)
    self._generic = False

  def __call__(self, batch):
    if not self._generic:
      self._generic = True
      leaves = tf.nest.flatten(batch)
      if all(isinstance(t, tf.Tensor) for t in leaves):
        self.function.get_concrete_function(tf.nest.map_structure(
            lambda t: tf.TensorSpec([None] * t.shape.rank, t.dtype), batch))
    return self.function(batch)

  def experimental_get_tracing_count(self) -> int:
    return self.function.experimental_get_tracing_count()


def make_train_step(model, heads, combiner, optimizer, jit_compile: bool = False,
                    strategy: tf.distribute.Strategy = None):
  """Returns `step(batch) -> dict of scalars`: loss, loss/<term>, weight/<term>, count/<term>,
  grad_norm, finite (every loss (and gradient) finite; when False nothing was applied).

  `batch` is one batch dict, or a tuple of micro-batches (gradient accumulation). Every loss is
  divided by its *global* count: over all micro-batches and, under `strategy`, all replicas, so
  a step on 4 micro-batches (or 2 replicas) equals one step on their concatenation. How the
  terms' gradients become the one update is `gradient_fn`'s choice; there is exactly one
  `optimizer.apply` per step, in `apply_fn`.
  """
  # pylint: disable-next=import-outside-toplevel  (both import this module)
  from training import combined_gradients, term_gradients
  variables = trainable_variables(model, heads, combiner)
  gradients = gradient_fn(model, heads, combiner, optimizer, variables)
  apply = apply_fn(combiner, optimizer, variables, strategy)

  refresh_every = (term_gradients.fold_refresh_every(combiner)
                   if term_gradients.uses_term_gradients(combiner) else 0)

  def step(batch, refresh=False):
    batches = tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)
    if strategy is None:
      grads, total, losses, used, counts = (gradients(batches, refresh) if refresh_every
                                            else gradients(batches))
    elif term_gradients.uses_term_gradients(combiner) or combiner.combiner_name != "fixed":
      # per-term gradients summed over replicas, combined once (cross-replica context)
      grads, total, losses, used, counts = combined_gradients.replicated_combined_gradients(
          strategy, model, heads, combiner, optimizer, variables, batches, refresh)
    else:  # losses and gradients are partial sums per replica: add them up
      per_replica = strategy.run(lambda batches: gradients(distribute.replica_rows(batches)),
                                 args=(batches,))
      grads, total, losses, used, counts = _reduce_replicas(strategy, per_replica)
    grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
    grad_norm, finite = norm_and_finite(optimizer, grads, total, losses)
    tf.cond(finite, lambda: apply(grads, grad_norm), lambda: tf.constant(False))
    result = step_result(total, grad_norm, finite, losses, used, counts)
    if refresh_every:  # the capped fold's current scale, logged with the losses
      result["fold_scale"] = tf.identity(combiner.fold_scale)
    return result

  if refresh_every:
    return RefreshingStep(step, optimizer, refresh_every, jit_compile)
  return ShapeGenericFunction(step, jit_compile)


class RefreshingStep:
  """The train step of a capped fold (`--fold_refresh_every=N`): every N-th optimizer step (by
  `optimizer.iterations`, so a resumed run refreshes on the same steps) runs the refresh graph,
  the others the one-backward graph; each is one `ShapeGenericFunction`."""

  def __init__(self, step, optimizer, every: int, jit_compile: bool = False):
    self.optimizer, self.every = optimizer, int(every)
    self.refresh = ShapeGenericFunction(lambda batch: step(batch, refresh=True), jit_compile)
    self.folded = ShapeGenericFunction(lambda batch: step(batch, refresh=False), jit_compile)

  def __call__(self, batch):
    if int(self.optimizer.iterations.numpy()) % self.every == 0:
      return self.refresh(batch)
    return self.folded(batch)

  def experimental_get_tracing_count(self) -> int:
    return (self.refresh.experimental_get_tracing_count()
            + self.folded.experimental_get_tracing_count())


def gradient_fn(model, heads, combiner, optimizer, variables):
  """`batches -> (grads, total, losses, used, counts)` for this combiner: the summed gradient
  of the combined loss (loss-based combiners, the default), per-term gradients over the
  weights (training/term_gradients.py, training/combined_gradients.py: gradient combiners,
  per-term clipping), or per-term gradients at the encoder boundary (gradient combiners with
  `gradient_space="boundary"`)."""
  # pylint: disable-next=import-outside-toplevel  (both import this module)
  from training import boundary as boundary_lib, combined_gradients, term_gradients
  scales_loss = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
  if term_gradients.uses_term_gradients(combiner):
    return lambda batches, refresh=False: combined_gradients.combined_gradients(
        model, heads, combiner, optimizer, variables, batches, refresh)
  if term_gradients.combines_gradients(combiner):  # boundary: one device, one micro-batch
    def boundary(batches):
      with tf.GradientTape() as tape:
        total, losses, used, counts = boundary_lib.gradient_combined_loss(tape, model, heads,
                                                                      combiner, batches[0])
        scaled = optimizer.scale_loss(total) if scales_loss else total
      return tape.gradient(scaled, variables), total, losses, used, counts
    return boundary

  def summed(batches):
    if len(batches) > 1 and combiner.combiner_name != "fixed":  # combine once, exactly
      return combined_gradients.combined_gradients(model, heads, combiner, optimizer,
                                                   variables, batches)
    return summed_gradients(model, heads, combiner, optimizer, variables, batches)
  return summed


def summed_gradients(model, heads, combiner, optimizer, variables, batches):
  """The gradient of the combined loss, summed over micro-batches (each term divided by its
  global count): (grads, total, losses, used, counts)."""
  scales_loss = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
  counts = global_counts(model, heads, batches) if len(batches) > 1 else None
  grads, total, losses = None, 0.0, {}
  for batch in batches:
    with tf.GradientTape() as tape:
      outputs = forward(model, heads, batch, training=True)
      terms, weights = head_terms(outputs, heads, batch, training=True)
      if counts is None:
        counts = all_reduce_sum({n: tf.cast(t.count, tf.float32) for n, t in terms.items()})
      micro = {n: tf.math.divide_no_nan(tf.cast(t.total, tf.float32), counts[n])
               for n, t in terms.items()}
      micro_total, used = combiner.combine(micro, weights)
      scaled = optimizer.scale_loss(micro_total) if scales_loss else micro_total
    micro_grads = [tf.zeros_like(v) if g is None else g
                   for g, v in zip(tape.gradient(scaled, variables), variables)]
    grads = micro_grads if grads is None else [a + b for a, b in zip(grads, micro_grads)]
    total += micro_total
    losses = {n: losses.get(n, 0.0) + value for n, value in micro.items()}
  return grads, total, losses, used, counts


def norm_and_finite(optimizer, grads, total, losses):
  """(global norm of the (unscaled) gradient, whether every loss and the gradient are finite)."""
  grad_norm = tf.linalg.global_norm(grads)
  finite = tf.math.is_finite(total)
  for value in losses.values():
    finite &= tf.math.is_finite(value)
  if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
    # float16: the loss-scale optimizer unscales, and skips overflowing steps.
    grad_norm = grad_norm / tf.cast(optimizer.dynamic_scale, grad_norm.dtype)
  else:
    finite &= tf.math.is_finite(grad_norm)
  return grad_norm, finite


def apply_fn(combiner, optimizer, variables, strategy=None):
  """`apply(grads, grad_norm) -> True`: the step's one `optimizer.apply`, then the combiner's
  `after_apply` (e.g. GradNorm's renormalisation)."""
  def apply(grads, grad_norm):
    if strategy is None:
      optimizer.apply(grads, variables)
    else:
      # Keras applies in replica context and sums the replicas' gradients itself: give each
      # replica 1/n of the (already summed, clipped) gradient. Clipping here first makes
      # Keras' own global-norm clip of the 1/n shares a no-op.
      clipped = grads
      if optimizer.global_clipnorm:
        clipped, _ = tf.clip_by_global_norm(grads, optimizer.global_clipnorm, grad_norm)
      n = strategy.num_replicas_in_sync
      strategy.extended.call_for_each_replica(  # the shares are made on each replica's device
          lambda: optimizer.apply([g / n for g in clipped], variables))
    if hasattr(combiner, "after_apply"):
      combiner.after_apply()
    return tf.constant(True)
  return apply


def step_result(total, grad_norm, finite, losses, used, counts):
  """The scalars the loop logs: loss, grad_norm, finite, loss/ weight/ count/<term>."""
  result = {"loss": total, "grad_norm": grad_norm, "finite": finite}
  for name in losses:
    result[f"loss/{name}"] = losses[name]
    result[f"weight/{name}"] = tf.cast(used[name], tf.float32)
    result[f"count/{name}"] = counts[name]
  return result


def _reduce_replicas(strategy, per_replica):
  """Gradients, total and losses summed over replicas; used weights and counts (the same on
  every replica) taken from the first."""
  grads, total, losses, used, counts = per_replica
  add = lambda v: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)  # noqa: E731
  first = lambda v: strategy.experimental_local_results(v)[0]  # noqa: E731
  return ([None if g is None else add(g) for g in grads], add(total),
          {n: add(v) for n, v in losses.items()}, {n: first(v) for n, v in used.items()},
          {n: first(v) for n, v in counts.items()})


def check_step_options(combiner_name: str, accum_steps: int, replicas: int,
                       gradient_space: str = "weights", clip_per_term: bool = False) -> None:
  """Refuses what the step cannot do exactly.

  Accumulation and several replicas: `fixed` sums the micro-batches' (replicas') gradients;
  every other combiner (and per-term clipping) combines once per step, on per-term gradients
  summed over the micro-batches and replicas (training/term_gradients.py), except gradient
  combiners at the encoder boundary, which see one micro-batch on one device. Combiners with
  learnable weights (uncertainty, gradnorm) are refused on several replicas: their gradient
  would be taken in cross-replica context, where mirrored variables have no handle.
  """
  from configs.errors import UserError  # pylint: disable=import-outside-toplevel
  from training.combine import get_combiner_class  # pylint: disable=import-outside-toplevel
  if accum_steps < 1:
    raise UserError(f"--accum_steps must be >= 1, got {accum_steps}")
  cls = get_combiner_class(combiner_name)
  if replicas > 1 and cls.learns_weights:
    raise UserError(f"--combiner={combiner_name} trains balancing weights, which the step "
                    f"cannot differentiate across replicas yet; with several replicas use "
                    f"a combiner without learnable weights (fixed, pcgrad, metabalance, ...)")
  boundary = cls.needs_gradients and gradient_space == "boundary"
  if (accum_steps > 1 or replicas > 1) and boundary:
    raise UserError(f"--combiner={combiner_name} --gradient_space=boundary sees one "
                    f"micro-batch on one device; with --accum_steps > 1 or several replicas "
                    f"use --gradient_space=weights")
