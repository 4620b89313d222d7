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


class Combiner(keras.layers.Layer):
  """Base: `combine(losses, weights)` -> (total loss, the weight each term was given).

  Args (of combine):
    losses: {term name: float32 scalar}, each already normalised by its own count.
    weights: {term name: python float}, the head's `weight` option.
  """
  combiner_name = ""

  def __init__(self, term_names, **kwargs):
    super().__init__(name=f"combiner_{self.combiner_name}", **kwargs)
    self.term_names = tuple(term_names)

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
