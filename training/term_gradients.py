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
its other terms, two at most whatever the number of heads. With `--fold_regularisers` (the
default since 2026-12-05, docs/results.md) the regularisers of translation itself
(heads reading its logits or cross-attention: attention_entropy, coverage, rdrop, ...) join the
main term's backward instead (`folds_regularisers`), at a scale refreshed every
`--fold_refresh_every` steps from their gradient and translation's apart (`REGULARISERS`; 0: at
their fixed weights): translation plus an attention regulariser then costs one backward, as
under `fixed`, on all but the refresh steps (docs/balancing.md).
A row outside a head's rows contributes exactly 0 to its loss (the Head contract masks missing
labels), so restricting the head to its rows changes neither its sum nor its count
(tests/training/term_gradients_test.py compares with whole-batch gradients).
"""
from typing import Dict

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
  `REGULARISERS`, for `combined_gradients.combine_terms` to set the scale and add them (two
  backwards).

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
        grads[name] = grad if name not in grads else [add_gradients(a, b) for a, b in
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


def add_gradients(a, b):
  """a + b, where None (a term that does not reach the weight) adds nothing."""
  if a is None or b is None:
    return b if a is None else a
  return a + b
