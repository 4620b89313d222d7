"""Magnitude balancing towards the main task, per shared weight tensor (issue 18).

Both combiners take per-term gradients over the shared weights (training/term_gradients.py),
leave the main task's gradient (`--main_task`, default `translation`) as it is, and rescale
every auxiliary gradient towards a target magnitude, rho times the main one's
(`--balance_target`, rho = 1 in the paper), with relax factor r (`--balance_relax`):
g_aux <- g_aux * (r * rho * m_main / m_aux + 1 - r); r = 0 is the plain weighted sum, r = 1 puts
the auxiliary gradient at the target. `--balance_strategy` says which gradients are rescaled
(He et al. 2022, Section 4, strategies A-C): `shrink` only those above the target (a cap;
metabalance puts it on the auxiliaries' weighted sum: together they can never move a shared
tensor more than rho times the main task does, see `balances_auxiliaries_together`),
`enlarge` only those below it, `both` all of them.
Their state (moving averages per term and tensor) is non-trainable combiner state, saved in the
checkpoint with the rest of the combiner. Weights only one term reaches (the heads' own, the
decoder when only translation reads it) get the plain weighted gradient.
"""
import tensorflow as tf

from training import term_gradients
from training.combine import register_combiner
from training.combine_grad import GradientCombiner


# An auxiliary gradient below this fraction of the main one (on a tensor, or an element) is
# float round-off of a true zero (e.g. attention entropy's gradient on the encoder's last
# LayerNorm bias, to which the softmax is invariant: ~1e-9 of translation's); scaling it up to
# the main magnitude would turn noise into a full-size update. It is left unscaled.
NEGLIGIBLE = 1e-6


def _check_relax(relax: float) -> float:
  if not 0.0 <= relax <= 1.0:
    raise ValueError(f"relax factor must be in [0, 1], got {relax}")
  return float(relax)


STRATEGIES = ("both", "shrink", "enlarge")


def _check_strategy(strategy: str, target: float):
  if strategy not in STRATEGIES:
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
  if not target > 0:
    raise ValueError(f"target must be > 0, got {target}")
  return strategy, float(target)


def rescale_factor(main, aux, relax, strategy, target):
  """The factor each auxiliary gradient is multiplied by, elementwise over `main` / `aux`
  (magnitudes of the main and an auxiliary gradient, >= 0): r rho main / aux + 1 - r where the
  strategy applies, 1 where it does not, where the main task has no gradient, or where the
  auxiliary one is negligible against it."""
  goal = target * main
  applies = (main > 0) & (aux > NEGLIGIBLE * main)
  if strategy == "shrink":
    applies &= aux > goal
  elif strategy == "enlarge":
    applies &= aux < goal
  return tf.where(applies, relax * tf.math.divide_no_nan(goal, aux) + 1 - relax, 1.0)


def _moving_norms(combiner, current, tracked, positions):
  """MetaBalance's m <- beta m + (1 - beta) current ([K, S], S = the tracked tensors, at
  `positions[k]` for k in `tracked`), stored in `combiner.norms`; returns m."""
  index = tf.constant([positions[k] for k in tracked], tf.int32)
  norms = combiner.norms
  previous = tf.gather(tf.convert_to_tensor(norms), index, axis=1)
  moving = combiner.beta * previous + (1 - combiner.beta) * current
  norms.assign(tf.transpose(tf.tensor_scatter_nd_update(
      tf.transpose(tf.convert_to_tensor(norms)), index[:, None], tf.transpose(moving))))
  return moving


@register_combiner("metabalance")
class MetaBalance(GradientCombiner):
  """He et al. 2022, "MetaBalance: Improving Multi-Task Recommendations via Adapting Gradient
  Magnitudes of Auxiliary Tasks" (WWW 2022, Algorithm 1).

  For every shared tensor k and term i, m_ik <- beta m_ik + (1 - beta) ||w_i g_ik|| (beta = 0.9,
  starting from 0 as in the paper's code); each auxiliary gradient becomes
  w_i g_ik (r m_main,k / m_ik + 1 - r); G_k = the sum over terms. A tensor the main task does not
  reach keeps its auxiliary gradients unscaled (the paper assumes the main task reaches every
  shared tensor), and so does a negligible auxiliary gradient (`NEGLIGIBLE`, our addition).
  With strategy `shrink` the auxiliaries are balanced together: the cap acts on their weighted
  sum (`combine_auxiliaries`; docs/balancing.md; per-term clipping then clips the main term and
  that sum), and the step needs two gradients per row group instead of one per term.
  State: m, [K, tensors of the model].
  """
  needs_main_task = True
  needs_variables = True
  balances_magnitude = True
  beta = 0.9

  def __init__(self, term_names, variables=(), relax: float = 0.7, strategy: str = "both",
               target: float = 1.0, **kwargs):
    super().__init__(term_names, **kwargs)
    self.relax = _check_relax(relax)
    self.strategy, self.target = _check_strategy(strategy, target)
    # shrink is a cap, and the cap that means something is on what the auxiliary heads do
    # together: "on no shared tensor do they move the weights by more than rho times the main
    # task" (per term, K heads could move it K rho times). It needs two gradients per row group
    # instead of one per term (combine_auxiliaries). With --clip_per_term the main term and the
    # auxiliaries' sum are clipped separately (for one auxiliary: exactly per-term clipping).
    self.balances_auxiliaries_together = self._together(strategy)
    self.slots = len(variables)
    self.norms = self.add_weight(name="grad_norm_ema", shape=(len(self.term_names),
                                                              max(self.slots, 1)),
                                 initializer="zeros", trainable=False)
    if term_gradients.fold_refresh_every(self):
      # --fold_regularisers with a refreshed cap: the scale at which translation's regularisers
      # join its backward between refreshes (training/term_gradients.py, `REGULARISERS`).
      self.fold_scale = self.add_weight(name="fold_scale", shape=(), initializer="ones",
                                        trainable=False)

  @staticmethod
  def _together(strategy: str) -> bool:
    return strategy == "shrink"

  @classmethod
  def merges_auxiliaries_with(cls, train) -> bool:
    return cls._together(train.balance_strategy)

  def combine_auxiliaries(self, main_weight, main, auxiliaries, positions):
    """The shrink cap on the auxiliaries' sum (`balances_auxiliaries_together`): main [the main
    term's unweighted gradient on each tensor], auxiliaries [the gradient of the weighted sum of
    every other term] -> [G of each tensor] = w_main g_main + f * sum_aux w_i g_i, with
    f = rescale_factor(m_main, m_aux) from the moving norms of the two. Every auxiliary row of
    the state holds m_aux (the checkpoint keeps its [K, tensors] shape)."""
    weighted = [main_weight * g for g in main]
    tracked = [k for k, p in enumerate(positions) if p < self.slots]
    if not tracked:
      return [g + a for g, a in zip(weighted, auxiliaries)]
    names = self.term_names
    first = min(i for i, n in enumerate(names) if n != self.main_task)
    main_norms = tf.stack([tf.norm(weighted[k]) for k in tracked])
    aux_norms = tf.stack([tf.norm(auxiliaries[k]) for k in tracked])
    moving = _moving_norms(self, tf.stack([main_norms if n == self.main_task else aux_norms
                                           for n in names]), tracked, positions)
    main_moving = moving[names.index(self.main_task)]
    factor = rescale_factor(main_moving, moving[first], self.relax, self.strategy, self.target)
    column = {k: s for s, k in enumerate(tracked)}
    return [g + (factor[column[k]] * a if k in column else a)
            for k, (g, a) in enumerate(zip(weighted, auxiliaries))]

  def refresh_fold_scale(self, main, regularisers):
    """The refresh of a capped fold (`--fold_refresh_every`): main [the main term's gradient on
    each tensor it and the regularisers both reach], regularisers [their gradient, in the main
    term's units] -> s, stored in `fold_scale`: the scalar whose s * regularisers is closest in
    least squares to the shrink cap applied to them tensor by tensor with this step's norms,
    s = sum_k f_k a_k^2 / sum_k a_k^2 (a_k = ||regularisers_k||, f_k = `rescale_factor` of
    ||main_k|| and a_k; 1 when they have no gradient). Until the next refresh they join the
    main term's one backward at that scale."""
    main_norms = tf.stack([tf.norm(g) for g in main])
    reg_norms = tf.stack([tf.norm(g) for g in regularisers])
    factor = rescale_factor(main_norms, reg_norms, self.relax, self.strategy, self.target)
    squares = tf.square(reg_norms)
    total = tf.reduce_sum(squares)
    scale = tf.where(total > 0, tf.math.divide_no_nan(tf.reduce_sum(factor * squares), total),
                     1.0)
    self.fold_scale.assign(scale)
    return scale

  def combine_tensors(self, losses, weights, grads, positions):
    names = self.term_names
    used = {n: tf.constant(weights[n], tf.float32) for n in names}
    tracked = [k for k, p in enumerate(positions) if p < self.slots]
    if not tracked:
      return used, [tf.add_n([weights[n] * grads[n][k] for n in names])
                    for k in range(len(positions))], tf.constant(0.0)
    current = tf.stack([tf.stack([tf.norm(weights[n] * grads[n][k]) for k in tracked])
                        for n in names])  # [K, S]
    moving = _moving_norms(self, current, tracked, positions)
    main = names.index(self.main_task)
    factor = rescale_factor(moving[main][None, :], moving, self.relax, self.strategy,
                            self.target)  # [K, S]
    column = {k: s for s, k in enumerate(tracked)}
    shared = []
    for k in range(len(positions)):
      parts = []
      for i, n in enumerate(names):
        scale = 1.0 if (i == main or k not in column) else factor[i, column[k]]
        parts.append(scale * weights[n] * grads[n][k])
      shared.append(tf.add_n(parts))
    return used, shared, tf.constant(0.0)


@register_combiner("task_moments")
class TaskMoments(GradientCombiner):
  """Per-task second moments: an answer to one task dominating Adam's second moments (the
  problem AdaTask, Yang et al., AAAI 2023, solves with per-task Adam accumulators).

  For every element of every shared tensor, v_i <- beta2 v_i + (1 - beta2) (w_i g_i)^2 per term
  (beta2 = 0.98, Adam's here); each auxiliary gradient becomes
  w_i g_i (r sqrt(v_main) / (sqrt(v_i) + eps) + 1 - r), elementwise (1 where v_main = 0 or
  sqrt(v_i) is negligible against sqrt(v_main), `NEGLIGIBLE`). With
  r = 1 every auxiliary gradient enters the one Adam at the main task's per-element RMS, so
  Adam's second moment is at most about K times the main task's own instead of being set by a
  task whose gradient is 3-15x larger; the update stays one Adam step (AdaTask instead keeps
  K Adam states and sums K normalised steps). The bias corrections of v_main and v_i cancel
  in the ratio. State: K copies of every model weight (memory K x model size).
  """
  needs_main_task = True
  needs_variables = True
  balances_magnitude = True
  beta_2 = 0.98

  def __init__(self, term_names, variables=(), relax: float = 0.7, strategy: str = "both",
               target: float = 1.0, **kwargs):
    super().__init__(term_names, **kwargs)
    self.relax = _check_relax(relax)
    self.strategy, self.target = _check_strategy(strategy, target)
    self.slots = len(variables)
    self.moments = [[self.add_weight(name=f"v_{i}_{j}", shape=tuple(v.shape),
                                     initializer="zeros", trainable=False)
                     for j, v in enumerate(variables)] for i in range(len(self.term_names))]

  def combine_tensors(self, losses, weights, grads, positions):
    names = self.term_names
    main = names.index(self.main_task)
    shared = []
    for k, p in enumerate(positions):
      weighted = [weights[n] * grads[n][k] for n in names]
      if p >= self.slots:
        shared.append(tf.add_n(weighted))
        continue
      v = []
      for i, g in enumerate(weighted):
        v.append(self.beta_2 * self.moments[i][p] + (1 - self.beta_2) * tf.square(g))
        self.moments[i][p].assign(v[i])
      rms_main = tf.sqrt(v[main])
      parts = []
      for i, g in enumerate(weighted):
        if i == main:
          parts.append(g)
          continue
        parts.append(g * rescale_factor(rms_main, tf.sqrt(v[i]), self.relax, self.strategy,
                                        self.target))
      shared.append(tf.add_n(parts))
    used = {n: tf.constant(weights[n], tf.float32) for n in names}
    return used, shared, tf.constant(0.0)


@register_combiner("gcs")
class GradientCosineSimilarity(GradientCombiner):
  """Du et al. 2018, "Adapting Auxiliary Losses Using Gradient Similarity" (arXiv:1812.02224),
  unweighted variant: an auxiliary gradient is added only when its cosine with the main task's
  gradient over the shared weights (one vector) is positive. Stateless; works at the boundary
  too. The auxiliary term's own weights (its head) always get its gradient.
  """
  needs_main_task = True

  def combine_gradients(self, losses, weights, grads):
    names = self.term_names
    main = grads[self.main_task] * weights[self.main_task]
    shared = main
    for n in names:
      if n == self.main_task:
        continue
      g = weights[n] * grads[n]
      cosine = tf.math.divide_no_nan(tf.reduce_sum(g * main), tf.norm(g) * tf.norm(main))
      shared += tf.where(cosine > 0, 1.0, 0.0) * g
    used = {n: tf.constant(weights[n], tf.float32) for n in names}
    return used, shared, tf.constant(0.0)


@register_combiner("bloop")
class Bloop(GradientCombiner):
  """Hsieh et al., "Careful with that Scalpel: Improving Gradient Surgery with an EMA", ICML 2024
  (arXiv:2402.02998; Bloop): the update is g_main + lambda * (the auxiliary gradient projected
  orthogonally to an exponential moving average of the main gradient). Here lambda is the head
  weight, the shared tensors form one vector, e <- beta e + (1 - beta) w_main g_main (beta = 0.9,
  our choice), and G = w_main g_main + sum_aux (w g - (w g . e / ||e||^2) e). The paper shows
  that projecting against the EMA rather than the mini-batch gradient keeps descent on the main
  loss in expectation. State: one copy of every model weight.
  """
  needs_main_task = True
  needs_variables = True
  beta = 0.9

  def __init__(self, term_names, variables=(), relax: float = 0.7, **kwargs):
    del relax  # shared option of the magnitude balancers; not used here
    super().__init__(term_names, **kwargs)
    self.slots = len(variables)
    self.main_average = [self.add_weight(name=f"main_ema_{j}", shape=tuple(v.shape),
                                         initializer="zeros", trainable=False)
                         for j, v in enumerate(variables)]

  def combine_tensors(self, losses, weights, grads, positions):
    names = self.term_names
    main = [weights[self.main_task] * g for g in grads[self.main_task]]
    average = []
    for k, p in enumerate(positions):
      if p < self.slots:
        average.append(self.beta * self.main_average[p] + (1 - self.beta) * main[k])
        self.main_average[p].assign(average[-1])
      else:
        average.append(main[k])
    norm2 = tf.add_n([tf.reduce_sum(a * a) for a in average])
    shared = list(main)
    for n in names:
      if n == self.main_task:
        continue
      g = [weights[n] * x for x in grads[n]]
      coeff = tf.math.divide_no_nan(tf.add_n([tf.reduce_sum(a * b) for a, b in zip(g, average)]),
                                    norm2)
      shared = [s + x - coeff * a for s, x, a in zip(shared, g, average)]
    used = {n: tf.constant(weights[n], tf.float32) for n in names}
    return used, shared, tf.constant(0.0)
