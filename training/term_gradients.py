"""Per-term gradients over the weights, at about the cost of one joint pass (issue 18).

Gradient combiners (`pcgrad`, `mgda_ub`, `gradnorm`, `metabalance`, `task_moments`) and
per-term clipping need one gradient per loss term over the *shared weights* (encoder and
embeddings): at the encoder boundary, terms computed on different rows (price on listing
titles, translation on sentence pairs) never meet (docs/balancing.md).

Cost: heads are grouped by the rows their labels live on (`row_keys`, `ROW_GROUPS`): sentence
pairs (translation, domain, attention regularisers) and listings (price). Each group runs its
own forward pass on its own rows only, so groups on disjoint rows together cost about one joint
pass. Within a group the first term costs one backward; every further term on the same rows
costs one extra backward (e.g. an attention regulariser or the domain head beside translation),
unless the combiner balances the auxiliaries together (`merges_auxiliaries`: metabalance's
shrink cap): then a group takes one backward for the main term and one for the weighted sum of
its other terms, two at most whatever the number of heads. With `--fold_regularisers` (off by
default: it made the default job worse, docs/results.md) the regularisers of translation itself
(heads reading its logits or cross-attention: attention_entropy, coverage, rdrop, ...) join the
main term's backward instead (`folds_regularisers`), at a scale refreshed every
`--fold_refresh_every` steps from their gradient and translation's apart (`REGULARISERS`; 0: at
their fixed weights): translation plus an attention regulariser then costs one backward, as
under `fixed`, on all but the refresh steps (docs/balancing.md).
A row outside a head's rows contributes exactly 0 to its loss (the Head contract masks missing
labels), so restricting the head to its rows changes neither its sum nor its count
(tests/training/term_gradients_test.py compares with whole-batch gradients).
"""
from typing import Dict, List

import keras
import tensorflow as tf

from model import outputs as out
from training import step as step_lib

# Label key -> bool [B]: the rows where the label is present (others give the head loss 0).
ROW_RULES = {
    "target_out": lambda b: tf.reduce_any(tf.not_equal(b["target_out"], 0), axis=1),
    "domain": lambda b: tf.greater_equal(b["domain"], 0),
    "alignment": lambda b: tf.not_equal(b["alignment"], ""),
    "price": lambda b: tf.logical_not(tf.math.is_nan(b["price"])),
}
# Label key -> the forward pass (row group) its heads join: labels that come with sentence pairs
# share translation's pass, listing labels have their own. A group's pass runs on the union of
# its heads' rows, so a grouping that is wrong for some data costs time, never exactness.
ROW_GROUPS = {"target_out": "sentence_pairs", "domain": "sentence_pairs",
              "alignment": "sentence_pairs", "price": "listings"}
# Outputs that exist only where there is a target: a head reading them lives on target rows.
DECODER_SIDE = (out.LOGITS, out.CROSS_ATTENTION, out.TARGET_MASK)


# Outputs of the translation model itself: a head that reads them shapes translation's own
# distribution or attention (a regulariser at a fixed strength), not a task of its own.
TRANSLATION_OUTPUTS = (out.LOGITS, out.CROSS_ATTENTION, out.SECOND_PASS)


# The key, beside the main term's, of the gradient of the weighted sum of every other term when
# the combiner balances the auxiliaries together (`merges_auxiliaries`).
AUXILIARIES = "auxiliaries"
# The key, on a refresh step of a capped fold (`fold_refresh_every`), of the gradient of the
# folded regularisers' sum, in the main term's units (their weight over the main term's).
REGULARISERS = "regularisers"


def merges_auxiliaries(combiner):
  """The main task's name when the combiner balances the auxiliary terms' sum rather than each
  term (`balances_auxiliaries_together`, e.g. metabalance's shrink cap): two gradients per row
  group then replace one per term. None otherwise."""
  if getattr(combiner, "balances_auxiliaries_together", False):
    return combiner.main_task
  return None


def folds_regularisers(combiner) -> bool:
  """Whether the main term's backward also carries the regularisers of translation
  (`regularises_translation`) at their fixed weights: with a combiner that balances the
  auxiliaries together, translation as the main task and `--fold_regularisers` on."""
  return would_fold(bool(merges_auxiliaries(combiner)), getattr(combiner, "main_task", ""),
                    getattr(combiner, "fold_regularisers", False))


def fold_refresh_every(combiner) -> int:
  """N > 0 when translation's regularisers are folded at a scale refreshed every N steps
  (`--fold_refresh_every`): the step then needs to know which steps refresh. 0 otherwise."""
  if not folds_regularisers(combiner):
    return 0
  return int(getattr(combiner, "fold_refresh_every", 0))


def would_fold(merges: bool, main_task: str, fold_regularisers: bool) -> bool:
  """`folds_regularisers` from its parts (the run summary asks before a combiner exists)."""
  return merges and main_task == "translation" and bool(fold_regularisers)


def regularises_translation(head) -> bool:
  """A head other than translation that reads translation's own outputs (logits,
  cross-attention, a second pass): its weight is a regularisation strength, not a task's share
  of the update, so under `folds_regularisers` it is not balanced."""
  return head.head_name != "translation" and bool(set(head.reads) & set(TRANSLATION_OUTPUTS))


def combines_gradients(combiner) -> bool:
  """Whether a gradient combiner has anything to combine: with one loss term (translation
  alone) every one of them is the plain gradient, which the summed path gives at no extra cost."""
  return getattr(combiner, "needs_gradients", False) and len(combiner.term_names) > 1


def uses_term_gradients(combiner) -> bool:
  """Whether the step takes per-term gradients over the weights for this combiner."""
  if getattr(combiner, "term_clip_norm", 0.0):
    return True
  return (combines_gradients(combiner)
          and getattr(combiner, "gradient_space", "weights") == "weights")


def row_keys(head) -> tuple:
  """The label keys (with a row rule) whose presence a head's loss needs: it is 0 on rows
  missing any of them; () = every row can count. A head reading decoder-side outputs (logits,
  cross-attention, target mask) needs a target (e.g. an attention regulariser)."""
  keys = set(head.labels) | {getattr(head.options, "label", None)}
  if set(head.reads) & set(DECODER_SIDE):
    keys.add("target_out")
  return tuple(k for k in ROW_RULES if k in keys)


def row_groups(heads) -> Dict[str, list]:
  """{group: heads}, in the heads' order (translation's group first); heads without a row
  rule share one pass over every row."""
  groups = {}
  for head in heads:
    keys = row_keys(head)
    groups.setdefault(ROW_GROUPS[keys[0]] if keys else "all_rows", []).append(head)
  return groups


def select_rows(batch, heads):
  """The rows of `batch` on which at least one of `heads` can have a non-zero loss."""
  rows = None
  for head in heads:
    keys = row_keys(head)
    if not keys:
      return batch
    mine = ROW_RULES[keys[0]](batch)
    for key in keys[1:]:
      mine &= ROW_RULES[key](batch)
    rows = mine if rows is None else rows | mine
  return {name: tf.boolean_mask(value, rows) for name, value in batch.items()}


def term_gradients(model, heads, batches, variables, loss_scale=None, merge=None, fold=False,
                   fold_scale=None, refresh=False):
  """Each term's gradient over `variables` of its globally normalised loss, summed over
  micro-batches; one forward pass per row group and micro-batch.

  `merge` (the main task's name, see `merges_auxiliaries`): the gradients are instead the main
  term's (unweighted, under its name) and, under `AUXILIARIES`, the gradient of
  sum_i weight_i * loss_i over every other term: two backwards per row group at most, whatever
  the number of heads. Losses, weights and counts stay per term. `fold` (with `merge`): the
  terms of `regularises_translation` heads are added to the main term, scaled by their weight
  over the main one's (so that the main weight times the main gradient gives each its own
  weight), and left out of the auxiliaries' sum: one backward for a group holding only
  translation and its regularisers. `fold_scale` (a scalar, with `fold`): the regularisers
  join at that scale; on a `refresh` step their gradient is returned apart, under
  `REGULARISERS`, for `combine_terms` to set the scale and add them (two backwards).

  Returns ({term: [dense float32 gradient, or None where the term does not reach]},
  losses {term: scalar}, weights {term: float}, counts {term: scalar}).
  """
  counts = step_lib.global_counts(model, heads, batches) if len(batches) > 1 else None
  grads, losses, weights, all_counts = {}, {}, {}, {}
  for batch in batches:
    for group in row_groups(heads).values():
      part, means, group_weights, group_counts = _group_gradients(
          model, group, select_rows(batch, group), variables, counts, loss_scale, merge, fold,
          fold_scale, refresh)
      for name, grad in part.items():
        grads[name] = grad if name not in grads else [_add(a, b) for a, b in
                                                      zip(grads[name], grad)]
      for name, loss in means.items():
        losses[name] = losses.get(name, 0.0) + loss
      weights.update(group_weights)
      all_counts.update(group_counts)
  return grads, losses, weights, all_counts


def _group_gradients(model, heads, batch, variables, counts, loss_scale, merge=None, fold=False,
                     fold_scale=None, refresh=False):
  """One row group's forward pass: ({key: grads}, {term: normalised loss}, {term: weight},
  {term: global count}). One backward per term from one persistent tape, or with `merge` one
  for the main term (with `fold`, plus translation's regularisers) and one for the weighted sum
  of the group's other terms."""
  with tf.GradientTape(persistent=True) as tape:
    outputs = step_lib.forward(model, heads, batch, training=True)
    terms, weights = step_lib.head_terms(outputs, heads, batch, training=True)
    if counts is None:
      counts = step_lib.all_reduce_sum({n: tf.cast(t.count, tf.float32) for n, t in terms.items()})
    means = {n: tf.math.divide_no_nan(tf.cast(t.total, tf.float32), counts[n])
             for n, t in terms.items()}
    targets = means if loss_scale is None else {n: m * loss_scale for n, m in means.items()}
    if merge is not None:
      folded = _folded_terms(heads, targets, weights, merge) if fold else set()
      main = [targets[merge]] if merge in targets else []
      regularisers = [weights[n] / weights[merge] * targets[n] for n in sorted(folded)]
      others = [weights[n] * t for n, t in targets.items() if n != merge and n not in folded]
      apart = {}
      if regularisers and fold_scale is not None:
        if refresh:
          apart = {REGULARISERS: tf.add_n(regularisers)}
        else:
          main.append(tf.cast(fold_scale, tf.float32) * tf.add_n(regularisers))
      else:
        main += regularisers
      targets = dict({merge: tf.add_n(main)} if main else {}, **apart,
                     **({AUXILIARIES: tf.add_n(others)} if others else {}))
  result = {}
  for name, target in targets.items():
    grads = [None if g is None else tf.convert_to_tensor(g)
             for g in tape.gradient(target, variables)]
    if loss_scale is not None:
      grads = [None if g is None else g / tf.cast(loss_scale, g.dtype) for g in grads]
    result[name] = grads
  del tape
  return result, means, weights, {n: counts[n] for n in means}


def _folded_terms(heads, terms, weights, main):
  """The terms that join the main term's backward: those of `regularises_translation` heads,
  when the main term is in this group with a non-zero weight."""
  if main not in terms or not weights[main]:
    return set()
  regularisers = {h.head_name for h in heads if regularises_translation(h)}
  return {n for n in terms if n != main and n.split("/")[0] in regularisers}


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
  grads[combiner.main_task] = [_add(g, None if r is None else scale * r)
                               for g, r in zip(main, regularisers)]
  return grads


def _add(a, b):
  if a is None or b is None:
    return b if a is None else a
  return a + b


def _term_options(combiner, refresh):
  """`term_gradients`' merge/fold arguments for this combiner: the main task to merge the
  auxiliaries against, whether translation's regularisers fold, the scale they fold at (None:
  their fixed weights, or nothing folded) and whether this step refreshes it."""
  return dict(merge=merges_auxiliaries(combiner), fold=folds_regularisers(combiner),
              fold_scale=combiner.fold_scale if fold_refresh_every(combiner) else None,
              refresh=refresh)


def combined_gradients(model, heads, combiner, optimizer, variables, batches, refresh=False):
  """The step's gradient from per-term gradients over the weights:
  (grads, total, losses, used, counts), as step.summed_gradients returns them. `refresh`: a
  refresh step of a capped fold (`fold_refresh_every`)."""
  scale = None
  if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
    scale = tf.cast(optimizer.dynamic_scale, tf.float32)  # the optimizer unscales in apply
  grads, losses, weights, counts = term_gradients(model, heads, batches, variables, scale,
                                                  **_term_options(combiner, refresh))
  combined, total, used = combine_terms(combiner, losses, weights, grads, variables)
  if scale is not None:
    combined = [None if g is None else g * tf.cast(scale, g.dtype) for g in combined]
  return combined, total, losses, used, counts


def replicated_combined_gradients(strategy, model, heads, combiner, optimizer, variables,
                                  batches, refresh=False):
  """`combined_gradients` under a tf.distribute strategy: each replica takes per-term gradients
  of its rows (divided by the global counts), they are summed over replicas, and the combiner
  runs once, in cross-replica context (its state is updated once, on every copy)."""
  scale = None
  if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
    scale = tf.cast(optimizer.dynamic_scale, tf.float32)
  static = {}  # trace-time structure: head weights and which gradients are None

  def replica(batches):
    grads, losses, weights, counts = term_gradients(model, heads, batches, variables, scale,
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
  if scale is not None:
    combined = [None if g is None else g * tf.cast(scale, g.dtype) for g in combined]
  return combined, total, losses, used, {n: first(v) for n, v in counts.items()}


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


def term_norms(grads, coeffs) -> Dict[str, tf.Tensor]:
  """{term: ||coeff_i * g_i||} over every weight the term reaches."""
  return {n: tf.linalg.global_norm([g for g in parts if g is not None]) * tf.abs(coeffs[n])
          for n, parts in grads.items()}


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
