"""Loss combiners: how the per-term normalised losses become the one loss of the step.

A combiner is a Keras layer (so learnable balancing variables are trained by the same optimizer
in the same `apply_gradients` call and saved in the same checkpoint). Registry: `--combiner`.
"""
from typing import Dict, Type

import keras
import tensorflow as tf

from configs.errors import UserError

_COMBINERS: Dict[str, Type["Combiner"]] = {}


def register_combiner(name: str):
  def decorate(cls):
    if name in _COMBINERS:
      raise ValueError(f"combiner {name!r} is already registered")
    cls.combiner_name = name
    _COMBINERS[name] = cls
    return cls
  return decorate


def get_combiner_class(name: str):
  if name not in _COMBINERS:
    raise UserError(f"unknown combiner {name!r}; known combiners: {', '.join(sorted(_COMBINERS))}")
  return _COMBINERS[name]


def known_combiners():
  return sorted(_COMBINERS)


GRADIENT_SPACES = ("weights", "boundary")


def check_options(train, term_names):
  """The combiner class for `train` (a TrainConfig), or a UserError for options that do not fit
  these loss terms (`term_names`; a head's name also stands for its terms "head/...")."""
  cls = get_combiner_class(train.combiner)
  if train.gradient_space not in GRADIENT_SPACES:
    raise UserError(f"--gradient_space={train.gradient_space}: known: "
                    f"{', '.join(GRADIENT_SPACES)}")
  main = train.main_task
  if cls.needs_main_task and main not in term_names and main.split("/")[0] not in term_names:
    raise UserError(f"--main_task={main}: --combiner={train.combiner} balances towards it, but "
                    f"it is not a loss term; terms: {', '.join(term_names)}")
  if train.gradient_space == "boundary" and cls.needs_variables:
    raise UserError(f"--gradient_space=boundary has no per-weight gradients: use "
                    f"--gradient_space=weights with --combiner={train.combiner}")
  return cls


def clips_per_term(train, cls, term_names) -> bool:
  """Whether `--clip_per_term` applies: where the step takes per-term gradients over the
  weights anyway (a gradient combiner, at least two terms, the joint schedule) and --clip_norm
  > 0. Elsewhere (loss-based combiners, one term, the boundary, the baseline schedules) the one
  global clip of the summed gradient does it, at no extra cost."""
  return bool(train.clip_per_term and train.clip_norm and cls.needs_gradients
              and train.gradient_space == "weights" and len(term_names) > 1
              and train.schedule == "joint")


def make_combiner(train, term_names, variables=()):
  """The combiner `train.combiner` (a TrainConfig) for these loss terms. `variables`: the model
  and heads' trainable variables, for combiners that keep state per weight tensor.

  Raises:
    UserError: unknown combiner, main task that is not a term, or options that do not fit.
  """
  cls = check_options(train, term_names)
  clip = train.clip_norm if clips_per_term(train, cls, term_names) else 0.0
  kwargs = dict(main_task=train.main_task, term_clip_norm=clip, gradient_space=train.gradient_space,
                fold_regularisers=train.fold_regularisers,
                fold_refresh_every=train.fold_refresh_every)
  if cls.needs_variables:
    kwargs["variables"] = list(variables)
    kwargs["relax"] = train.balance_relax
    if cls.balances_magnitude:
      kwargs.update(strategy=train.balance_strategy, target=train.balance_target)
  return cls(term_names, **kwargs)


class Combiner(keras.layers.Layer):
  """Base: `combine(losses, weights)` -> (total loss, the weight each term was given).

  Args (of combine):
    losses: {term name: float32 scalar}, each already normalised by its own count.
    weights: {term name: python float}, the head's `weight` option.

  Args (of __init__; how the step treats the terms, see training/term_gradients.py):
    term_names: the loss terms, in the step's order.
    main_task: the term the auxiliary ones are balanced against (`--main_task`).
    term_clip_norm: > 0 clips each term's weighted gradient to this global norm before the
      terms are combined (`--clip_per_term`; the optimizer's global clip is then off).
    gradient_space: "weights" (per-term gradients over the shared weights) or "boundary" (at
      the encoder outputs; cheaper, blind to terms on different rows). Gradient combiners only.
    fold_regularisers: translation's regularisers (heads reading its logits or cross-attention)
      join translation's backward instead of being balanced with the auxiliaries; only where
      the auxiliaries are balanced together (`--fold_regularisers`).
    fold_refresh_every: with fold_regularisers, the regularisers join at a scale refreshed
      every N steps from separate gradients (`fold_scale`, `refresh_fold_scale`); 0 = at their
      fixed weights (`--fold_refresh_every`).
  """
  combiner_name = ""
  needs_gradients = False
  needs_main_task = False  # balances towards main_task: it must be one of the terms
  needs_variables = False  # keeps state per weight tensor: built with the model's variables
  learns_weights = False  # has trainable balancing variables (not yet under several replicas)
  balances_magnitude = False  # takes --balance_strategy and --balance_target
  # Balances the auxiliary terms' sum, not each term: the step then takes two gradients per row
  # group (the main term's, the weighted sum of the others'), not one per term, and calls
  # `combine_auxiliaries` instead of `combine_tensors` (training/combined_gradients.py).
  balances_auxiliaries_together = False

  @classmethod
  def merges_auxiliaries_with(cls, train) -> bool:
    """Whether an instance built from TrainConfig `train` has `balances_auxiliaries_together`
    (asked before any combiner exists, e.g. by the run summary)."""
    return False

  def __init__(self, term_names, main_task: str = "translation", term_clip_norm: float = 0.0,
               gradient_space: str = "weights", fold_regularisers: bool = False,
               fold_refresh_every: int = 0, **kwargs):
    super().__init__(name=f"combiner_{self.combiner_name}", **kwargs)
    self.fold_regularisers = bool(fold_regularisers)
    self.fold_refresh_every = int(fold_refresh_every) if fold_regularisers else 0
    self.term_names = tuple(term_names)
    self.main_task = main_task
    self.term_clip_norm = float(term_clip_norm)
    self.gradient_space = gradient_space

  def combine(self, losses, weights):
    raise NotImplementedError


@register_combiner("fixed")
class FixedCombiner(Combiner):
  """sum_i weight_i * loss_i (the default; weights are the heads' `weight` options)."""

  def combine(self, losses, weights):
    total = tf.add_n([weights[name] * losses[name] for name in self.term_names])
    return total, {name: tf.constant(weights[name], tf.float32) for name in self.term_names}


@register_combiner("uncertainty")
class UncertaintyCombiner(Combiner):
  """Kendall, Gal & Cipolla 2018, "Multi-Task Learning Using Uncertainty to Weigh Losses".

  total = sum_i weight_i * (exp(-s_i) * loss_i + s_i), with one learnable log-variance s_i per
  term (initialised to 0, i.e. the `fixed` combination at step 0).
  """
  learns_weights = True

  def __init__(self, term_names, **kwargs):
    super().__init__(term_names, **kwargs)
    self.log_vars = {name: self.add_weight(name=f"log_var_{i}", shape=(), initializer="zeros")
                     for i, name in enumerate(self.term_names)}

  def combine(self, losses, weights):
    parts, used = [], {}
    for name in self.term_names:
      s = tf.convert_to_tensor(self.log_vars[name])
      used[name] = weights[name] * tf.exp(-s)
      parts.append(weights[name] * (tf.exp(-s) * losses[name] + s))
    return tf.add_n(parts), used


@register_combiner("dwa")
class DynamicWeightAverage(Combiner):
  """Liu, Johns & Davison 2019, "End-to-End Multi-Task Learning with Attention" (DWA).

  w_i = K * softmax_i(r_i / T) with r_i = L_i(t-1) / L_i(t-2), the rate at which term i fell,
  times the head's weight. The paper uses epoch averages; here the rates use exponential moving
  averages of the per-step losses (decay 0.9), so that the weights do not jump with batch noise.
  The first steps (no history yet) use weight 1 per term.
  """
  temperature = 2.0
  decay = 0.9

  def __init__(self, term_names, **kwargs):
    super().__init__(term_names, **kwargs)
    k = len(self.term_names)
    self.prev = self.add_weight(name="ema_prev", shape=(k,), initializer="zeros", trainable=False)
    self.prev2 = self.add_weight(name="ema_prev2", shape=(k,), initializer="zeros",
                                 trainable=False)

  def combine(self, losses, weights):
    k = len(self.term_names)
    current = tf.stop_gradient(tf.stack([losses[n] for n in self.term_names]))
    prev, prev2 = tf.convert_to_tensor(self.prev), tf.convert_to_tensor(self.prev2)
    have_history = tf.reduce_all(prev2 > 0)
    rates = tf.math.divide_no_nan(prev, prev2)
    dwa = k * tf.nn.softmax(rates / self.temperature)
    lam = tf.where(have_history, dwa, tf.ones([k]))
    self.prev2.assign(tf.where(prev > 0, prev, current))
    self.prev.assign(tf.where(prev > 0, self.decay * prev + (1 - self.decay) * current, current))
    used = {n: weights[n] * lam[i] for i, n in enumerate(self.term_names)}
    return tf.add_n([used[n] * losses[n] for n in self.term_names]), used


@register_combiner("rlw")
class RandomLossWeighting(Combiner):
  """Lin et al. 2021, "Reasonable Effectiveness of Random Weighting" (RLW).

  Each step draws lambda = K * softmax(N(0, I)) (stateless, seeded by the step counter, so runs
  are reproducible) and uses weight_i * lambda_i.
  """

  def __init__(self, term_names, seed: int = 0, **kwargs):
    super().__init__(term_names, **kwargs)
    self.seed = seed
    self.calls = self.add_weight(name="calls", shape=(), dtype="int64", initializer="zeros",
                                 trainable=False)

  def combine(self, losses, weights):
    k = len(self.term_names)
    seed = tf.stack([tf.constant(self.seed, tf.int64), tf.convert_to_tensor(self.calls)])
    lam = k * tf.nn.softmax(tf.random.stateless_normal([k], seed=seed))
    self.calls.assign_add(1)
    used = {n: weights[n] * lam[i] for i, n in enumerate(self.term_names)}
    return tf.add_n([used[n] * losses[n] for n in self.term_names]), used


@register_combiner("famo")
class FAMO(Combiner):
  """Liu et al. 2023, "FAMO: Fast Adaptive Multitask Optimization".

  Task logits xi, z = softmax(xi). The step minimises c * sum_i weight_i z_i log(L_i + eps) with
  c = 1 / sum_i (weight_i z_i / (L_i + eps)) held constant, i.e. the gradient
  sum_i c weight_i z_i / (L_i + eps) * grad L_i, which balances the *rates* at which the losses
  fall. xi is updated from the observed log-loss decrease delta_i = log L_i(t-1) - log L_i(t):
  xi <- xi - lr * (J_softmax^T delta + gamma * xi). The paper measures delta on the same batch
  after the update (an extra forward pass); here it uses consecutive steps' batches (no extra
  cost, noisier). lr = 0.025, gamma = 0.001 as in the paper's defaults.
  """
  lr = 0.025
  gamma = 0.001
  eps = 1e-8

  def __init__(self, term_names, **kwargs):
    super().__init__(term_names, **kwargs)
    k = len(self.term_names)
    self.xi = self.add_weight(name="xi", shape=(k,), initializer="zeros", trainable=False)
    self.prev = self.add_weight(name="prev_losses", shape=(k,), initializer="zeros",
                                trainable=False)

  def combine(self, losses, weights):
    names = self.term_names
    current = tf.stack([losses[n] for n in names])
    log_now = tf.math.log(tf.stop_gradient(current) + self.eps)
    prev = tf.convert_to_tensor(self.prev)
    delta = tf.where(prev > 0, tf.math.log(prev + self.eps) - log_now, 0.0)
    xi = tf.convert_to_tensor(self.xi)
    with tf.GradientTape() as tape:
      tape.watch(xi)
      z = tf.nn.softmax(xi)
    xi_grad = tape.gradient(z, xi, output_gradients=delta)
    self.xi.assign(xi - self.lr * (xi_grad + self.gamma * xi))
    self.prev.assign(tf.stop_gradient(current))
    w = tf.constant([weights[n] for n in names], tf.float32) * tf.nn.softmax(self.xi)
    c = tf.stop_gradient(1.0 / tf.reduce_sum(w / (tf.stop_gradient(current) + self.eps)))
    total = c * tf.reduce_sum(w * tf.math.log(current + self.eps))
    used_vec = c * w / (tf.stop_gradient(current) + self.eps)
    return total, {n: used_vec[i] for i, n in enumerate(names)}
