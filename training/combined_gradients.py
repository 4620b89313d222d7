"""The step's one gradient from per-term gradients over the weights (issue 18).

`term_gradients` takes each loss term's gradient apart (one forward pass per row group); this
module combines them into the one gradient the optimizer applies: per-term clipping first
(`clip_terms`), then the combiner, on the weights at least two terms reach
(`shared_positions`), and each term's weighted gradient elsewhere. Under a capped fold, a
refresh step also sets the scale translation's regularisers fold at
(`_add_refreshed_regularisers`). `combined_gradients` and `replicated_combined_gradients` are
what `training/step.py` calls, on one device and under a tf.distribute strategy.
"""
from typing import List

import keras
import tensorflow as tf

from training import distribute
from training.term_gradients import (AUXILIARIES, REGULARISERS, add_gradients, fold_refresh_every,
                                     folds_regularisers, merges_auxiliaries, term_gradients)


def _add_refreshed_regularisers(combiner, grads, variables):
  """A refresh step of a capped fold: sets the combiner's `fold_scale` from the main term's and
  the regularisers' gradients (`refresh_fold_scale`) and adds the regularisers to the main term
  at that scale, as the steps until the next refresh do in one backward."""
  grads = dict(grads)
  main, regularisers = grads[combiner.main_task], grads.pop(REGULARISERS)
  both = [j for j, (g, r) in enumerate(zip(main, regularisers))
          if g is not None and r is not None]
  scale = combiner.refresh_fold_scale([_dense(main[j], variables[j]) for j in both],
                                      [_dense(regularisers[j], variables[j]) for j in both])
  grads[combiner.main_task] = [add_gradients(g, None if r is None else scale * r)
                               for g, r in zip(main, regularisers)]
  return grads


def _term_options(combiner, refresh):
  """`term_gradients`' merge/fold arguments for this combiner: the main task to merge the
  auxiliaries against, whether translation's regularisers fold, the scale they fold at (None:
  their fixed weights, or nothing folded) and whether this step refreshes it."""
  return dict(merge=merges_auxiliaries(combiner), fold=folds_regularisers(combiner),
              fold_scale=combiner.fold_scale if fold_refresh_every(combiner) else None,
              refresh=refresh)


def _loss_scale(optimizer):
  """The dynamic loss scale (float32) under mixed precision, else None. Per-term gradients are
  taken of scaled losses and unscaled at once; the combined gradient is scaled again, since the
  optimizer unscales in `apply`."""
  if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
    return tf.cast(optimizer.dynamic_scale, tf.float32)
  return None


def _scaled(grads, scale):
  if scale is None:
    return grads
  return [None if g is None else g * tf.cast(scale, g.dtype) for g in grads]


def combined_gradients(model, heads, combiner, optimizer, variables, batches, refresh=False):
  """The step's gradient from per-term gradients over the weights:
  (grads, total, losses, used, counts), as step.summed_gradients returns them. `refresh`: a
  refresh step of a capped fold (`fold_refresh_every`)."""
  scale = _loss_scale(optimizer)
  grads, losses, weights, counts = term_gradients(model, heads, batches, variables, scale,
                                                  **_term_options(combiner, refresh))
  combined, total, used = combine_terms(combiner, losses, weights, grads, variables)
  return _scaled(combined, scale), total, losses, used, counts


def replicated_combined_gradients(strategy, model, heads, combiner, optimizer, variables,
                                  batches, refresh=False):
  """`combined_gradients` under a tf.distribute strategy, on global batches: each replica takes
  per-term gradients of its rows (`distribute.replica_rows`, divided by the global counts), they
  are summed over replicas, and the combiner runs once, in cross-replica context (its state is
  updated once, on every copy)."""
  scale = _loss_scale(optimizer)
  static = {}  # trace-time structure: head weights and which gradients are None

  def replica(batches):
    grads, losses, weights, counts = term_gradients(model, heads, distribute.replica_rows(batches),
                                                    variables, scale,
                                                    **_term_options(combiner, refresh))
    static.update(weights=weights, reached={n: [g is not None for g in gs]
                                            for n, gs in grads.items()})
    return {n: [g for g in gs if g is not None] for n, gs in grads.items()}, losses, counts

  grads, losses, counts = strategy.run(replica, args=(batches,))
  add = lambda v: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)  # noqa: E731
  first = lambda v: strategy.experimental_local_results(v)[0]  # noqa: E731
  summed = {n: iter([add(g) for g in gs]) for n, gs in grads.items()}
  grads = {n: [next(summed[n]) if reached else None for reached in static["reached"][n]]
           for n in summed}
  losses = {n: add(v) for n, v in losses.items()}
  combined, total, used = combine_terms(combiner, losses, static["weights"], grads, variables)
  return _scaled(combined, scale), total, losses, used, {n: first(v) for n, v in counts.items()}


def combine_terms(combiner, losses, weights, grads, variables):
  """Per-term gradients -> the one gradient over `variables`: (grads, total, used).

  Loss-based combiners: each term's gradient times d(combined loss)/d(loss_i). Gradient
  combiners: `combine_tensors` over the tensors at least two terms reach (shared), the
  weighted sum `used_i g_i` elsewhere. Per-term clipping (`term_clip_norm`) first, on the
  weighted gradient of each term over every weight it reaches.

  `grads` with an `AUXILIARIES` entry (`term_gradients(..., merge=main)`): `combine_auxiliaries`
  on the tensors both the main term and the auxiliaries' sum reach; elsewhere the main term's
  weighted gradient plus that sum, which on a head's own weights is exactly its own weighted
  gradient (no other term reaches them). Per-term clipping then clips the main term and the
  auxiliaries' sum, each over every weight it reaches. Under `folds_regularisers` the main
  term's gradient carries translation's regularisers, and `grads` may hold the main term alone
  (translation and its regularisers only: nothing to balance).
  """
  names = combiner.term_names
  merged = merges_auxiliaries(combiner)
  if REGULARISERS in grads:
    grads = _add_refreshed_regularisers(combiner, grads, variables)
  if AUXILIARIES in grads or (merged is not None and set(grads) == {merged}):
    main = combiner.main_task
    pair = (main, AUXILIARIES)
    grads = {n: grads.get(n, [None] * len(variables)) for n in pair}
    grads = clip_terms(grads, {main: weights[main], AUXILIARIES: 1.0}, combiner.term_clip_norm)
    shared = shared_positions(grads, pair)
    shared_grads = combiner.combine_auxiliaries(
        weights[main], [_dense(grads[main][j], variables[j]) for j in shared],
        [_dense(grads[AUXILIARIES][j], variables[j]) for j in shared], shared)
    used = {n: tf.constant(weights[n], tf.float32) for n in names}
    total = tf.add_n([used[n] * losses[n] for n in names])
    coeffs = {main: used[main], AUXILIARIES: tf.constant(1.0)}
    return _assemble(variables, pair, grads, coeffs, dict(zip(shared, shared_grads)), {}), \
        total, used
  if getattr(combiner, "needs_gradients", False):
    grads = clip_terms(grads, {n: weights[n] for n in names}, combiner.term_clip_norm)
    shared = shared_positions(grads, names)
    with tf.GradientTape() as tape:  # the combiner's own learnable weights (GradNorm)
      used, shared_grads, extra = combiner.combine_tensors(
          losses, weights, {n: [_dense(grads[n][j], variables[j]) for j in shared]
                            for n in names}, shared)
    total = tf.add_n([tf.stop_gradient(used[n]) * losses[n] for n in names]) + extra
    own = _own_gradients(tape, extra, combiner)
    coeffs = {n: tf.stop_gradient(tf.cast(used[n], tf.float32)) for n in names}
  else:
    total, used, coeffs, own = loss_coefficients(combiner, losses, weights)
    grads = clip_terms(grads, coeffs, combiner.term_clip_norm)
    shared, shared_grads = [], []
  return _assemble(variables, names, grads, coeffs, dict(zip(shared, shared_grads)), own), \
      total, used


def loss_coefficients(combiner, losses, weights):
  """A loss-based combiner on constant losses: (total, used, {term: d total / d loss_term},
  {id(variable): gradient} of the combiner's own learnable variables)."""
  names = combiner.term_names
  values = {n: tf.stop_gradient(losses[n]) for n in names}
  with tf.GradientTape(persistent=True) as tape:
    tape.watch([values[n] for n in names])
    total, used = combiner.combine(values, weights)
  coeffs = dict(zip(names, tape.gradient(total, [values[n] for n in names])))
  coeffs = {n: tf.zeros([]) if c is None else c for n, c in coeffs.items()}
  own = _own_gradients(tape, total, combiner)
  del tape
  # The reported total is the combined loss of the step's losses (its value; not a gradient).
  return total, used, coeffs, own


def _own_gradients(tape, target, combiner):
  own = combiner.trainable_variables
  if not own:
    return {}
  return {id(v): g for v, g in zip(own, tape.gradient(target, own))}


def clip_terms(grads, coeffs, clip_norm: float):
  """Scales each term's gradient so that ||coeff_i * g_i|| (over every weight it reaches) is at
  most `clip_norm` (0 = no clipping). One term's norm no longer shrinks another's update."""
  if not clip_norm:
    return grads
  clipped = {}
  for name, parts in grads.items():
    norm = tf.linalg.global_norm([g for g in parts if g is not None]) * tf.abs(coeffs[name])
    factor = float(clip_norm) / tf.maximum(norm, float(clip_norm))  # 1 when norm <= clip
    clipped[name] = [None if g is None else g * tf.cast(factor, g.dtype) for g in parts]
  return clipped


def shared_positions(grads, names) -> List[int]:
  """Indices of the variables that at least two terms reach (the shared weights)."""
  length = len(grads[names[0]])
  return [j for j in range(length) if sum(grads[n][j] is not None for n in names) >= 2]


def _dense(grad, variable):
  """float32, with the variable's static shape (a densified embedding gradient has none)."""
  if grad is None:
    return tf.zeros(variable.shape, tf.float32)
  return tf.reshape(tf.cast(grad, tf.float32), variable.shape)


def _assemble(variables, names, grads, coeffs, shared, own):
  """One gradient per variable: the combiner's for shared ones, its own variables' gradients,
  sum_i coeff_i g_i elsewhere (None where no term reaches)."""
  result = []
  for j, variable in enumerate(variables):
    if j in shared:
      result.append(tf.cast(shared[j], variable.dtype))
    elif id(variable) in own:
      result.append(own[id(variable)])
    else:
      parts = [coeffs[n] * grads[n][j] for n in names if grads[n][j] is not None]
      result.append(tf.add_n(parts) if parts else None)
  return result
