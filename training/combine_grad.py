"""Combiners that look at per-loss gradients: over the shared weights (default) or at the
encoder boundary (`gradient_space="boundary"`).

Over the weights (training/combined_gradients.py) the step calls `combine_tensors` with each term's
gradient on every shared weight tensor (those at least two terms reach: encoder, embeddings,
the decoder when attention regularisers share it with translation); at the boundary, it calls
`combine_gradients` with {term: flat gradient of that term's normalised loss with respect to
the encoder outputs}. Either returns the weight each term gets for the *task-specific*
parameters (decoder, heads) and the combined gradient G of the shared part (DESIGN.md "The
step").
"""
import tensorflow as tf

from training.combine import Combiner, register_combiner


def _stack(grads, names):
  return tf.stack([grads[n] for n in names])  # [K, N]


class GradientCombiner(Combiner):
  """Base: `combine_gradients(losses, weights, grads)` -> (used weights, G [N], extra loss)."""
  needs_gradients = True

  def combine(self, losses, weights):  # used only without gradients (e.g. to build variables)
    return tf.add_n([weights[n] * losses[n] for n in self.term_names]), weights

  def combine_gradients(self, losses, weights, grads):
    raise NotImplementedError

  def combine_tensors(self, losses, weights, grads, positions):
    """Over the weights: grads {term: [gradient of each shared tensor]}, positions (each
    tensor's index among the step's variables) -> (used, [G of each shared tensor], extra).

    Default: the tensors flattened into one vector, then `combine_gradients` (the papers'
    treatment of "the shared parameters" as one vector)."""
    del positions
    names = self.term_names
    first = grads[names[0]]
    if not first:  # nothing shared (e.g. one term): the weighted sums do it all
      return {n: tf.constant(weights[n], tf.float32) for n in names}, [], tf.constant(0.0)
    flat = {n: tf.concat([tf.reshape(g, [-1]) for g in grads[n]], axis=0) for n in names}
    used, shared, extra = self.combine_gradients(losses, weights, flat)
    parts = tf.split(shared, [int(g.shape.num_elements()) for g in first])
    return used, [tf.reshape(p, g.shape) for p, g in zip(parts, first)], extra

  @tf.autograph.experimental.do_not_convert
  def after_apply(self):
    """Called after the optimizer step (e.g. to renormalise learnable weights). The default does
    nothing (not converted by AutoGraph, which cannot transform an empty body)."""


@register_combiner("pcgrad")
class PCGrad(GradientCombiner):
  """Yu et al. 2020, "Gradient Surgery for Multi-Task Learning" (PCGrad).

  Each weighted term gradient g_i is projected onto the normal plane of every other g_j it
  conflicts with (g_i . g_j < 0), in a fixed order; G = sum of the projected gradients.
  `protect_main=True` (default) never projects the main task's gradient (`--main_task`).
  Over the weights, g_i is term i's gradient on all shared tensors as one vector (the paper's
  "shared parameters"); weights only one term reaches get the plain weighted sum.
  """
  protect_main = True

  def combine_gradients(self, losses, weights, grads):
    names = self.term_names
    g = _stack(grads, names) * tf.constant([[weights[n]] for n in names], tf.float32)
    projected = []
    for i, name in enumerate(names):
      gi = g[i]
      if not (self.protect_main and name == self.main_task):
        for j in range(len(names)):
          if j == i:
            continue
          dot = tf.reduce_sum(gi * g[j])
          norm2 = tf.reduce_sum(g[j] * g[j])
          gi = gi - tf.where(dot < 0, tf.math.divide_no_nan(dot, norm2), 0.0) * g[j]
      projected.append(gi)
    used = {n: tf.constant(weights[n], tf.float32) for n in names}
    return used, tf.add_n(projected), tf.constant(0.0)


def min_norm_weights(g: tf.Tensor, iterations: int = 25) -> tf.Tensor:
  """Frank-Wolfe for min_a ||sum_i a_i g_i||^2 on the simplex (Sener & Koltun 2018, Alg. 2).

  Args: g [K, N]. Returns a [K] (non-negative, sums to 1).
  """
  k = tf.shape(g)[0]
  gram = tf.matmul(g, g, transpose_b=True)  # [K, K]
  alpha = tf.fill([k], 1.0 / tf.cast(k, tf.float32))
  for _ in range(iterations):
    grad_alpha = tf.linalg.matvec(gram, alpha)
    t = tf.argmin(grad_alpha)
    e_t = tf.one_hot(t, k)
    # Exact line search between alpha and the vertex e_t for the quadratic alpha^T M alpha.
    d = e_t - alpha
    denom = tf.reduce_sum(d * tf.linalg.matvec(gram, d))
    step = tf.clip_by_value(tf.math.divide_no_nan(-tf.reduce_sum(d * grad_alpha), denom), 0., 1.)
    alpha = alpha + step * d
  return alpha


@register_combiner("mgda_ub")
class MGDAUpperBound(GradientCombiner):
  """Sener & Koltun 2018, "Multi-Task Learning as Multi-Objective Optimization" (MGDA-UB).

  Weights a = the min-norm convex combination of the weighted term gradients over the shared
  weights (or, with gradient_space="boundary", at the shared representation: the paper's "upper
  bound"); each term gets K * a_i * weight_i (K * a = 1 for equal a), G = sum of those.
  """

  def combine_gradients(self, losses, weights, grads):
    names = self.term_names
    w = tf.constant([weights[n] for n in names], tf.float32)
    g = _stack(grads, names) * w[:, None]
    alpha = tf.stop_gradient(min_norm_weights(g)) * float(len(names))
    used = {n: alpha[i] * w[i] for i, n in enumerate(names)}
    return used, tf.linalg.matvec(g, alpha, transpose_a=True), tf.constant(0.0)


@register_combiner("gradnorm")
class GradNorm(GradientCombiner):
  """Chen et al. 2018, "GradNorm: Gradient Normalization for Adaptive Loss Balancing" (seed 003).

  Learnable w_i (init 1, times the head weight). G_i = ||w_i g_i|| over the shared weights (the
  paper takes the last shared layer; gradient_space="boundary": at the encoder outputs);
  target_i = mean(G) * r_i^alpha with r_i the relative inverse training rate
  (L_i / L_i(0)) / mean(L / L(0)); the extra loss sum |G_i - target_i| trains only w (targets and
  gradients held constant), in the same apply_gradients as everything else. After each step w is
  renormalised to sum to K.
  """
  alpha = 1.5
  learns_weights = True

  def __init__(self, term_names, **kwargs):
    super().__init__(term_names, **kwargs)
    k = len(self.term_names)
    self.task_weights = self.add_weight(name="task_weights", shape=(k,), initializer="ones")
    self.initial_losses = self.add_weight(name="initial_losses", shape=(k,), initializer="zeros",
                                          trainable=False)

  def combine_gradients(self, losses, weights, grads):
    names = self.term_names
    head_w = tf.constant([weights[n] for n in names], tf.float32)
    current = tf.stop_gradient(tf.stack([losses[n] for n in names]))
    init = tf.convert_to_tensor(self.initial_losses)
    self.initial_losses.assign(tf.where(init > 0, init, current))
    w = tf.convert_to_tensor(self.task_weights)
    norms = tf.norm(_stack(grads, names), axis=1) * head_w  # ||g_i|| (constant)
    g_w = w * norms
    ratio = tf.math.divide_no_nan(current, tf.where(init > 0, init, current))
    r = tf.math.divide_no_nan(ratio, tf.reduce_mean(ratio))
    target = tf.stop_gradient(tf.reduce_mean(g_w) * r ** self.alpha)
    extra = tf.reduce_sum(tf.abs(g_w - target))
    used_vec = tf.stop_gradient(w) * head_w
    used = {n: used_vec[i] for i, n in enumerate(names)}
    shared = tf.linalg.matvec(_stack(grads, names), used_vec, transpose_a=True)
    return used, shared, extra

  def after_apply(self):
    w = tf.maximum(tf.convert_to_tensor(self.task_weights), 1e-3)
    self.task_weights.assign(w * len(self.term_names) / tf.reduce_sum(w))
