"""The Head contract: what every auxiliary head (and translation itself) implements.

A head is a Keras layer that reads named model outputs (`model/outputs.py`) and batch labels
(DESIGN.md's batch table) and returns loss terms as (sum, count). The training step divides each
term's sum by its *global* count, multiplies by the head's `weight`, and adds it to the one loss
that one optimizer step minimises.

Rules a head follows (tests in tests/heads/contract_test.py check them for every registered head):
  * create every sublayer in `__init__` (the framework seeds each head separately, so adding a
    head never changes another head's or the model's initial weights);
  * pass `training` through to sublayers (BatchNorm/Dropout behave differently in the two modes);
  * compute losses in float32, mask missing labels (label -1 / NaN / all-pad) and return count 0
    with total 0 (never NaN) when nothing is labelled;
  * `metric_stats` returns *additive* per-batch statistics (sums, counts, confusion matrices) so
    that evaluation can sum them over batches and replicas; `metric_results` turns summed stats
    into the reported numbers.
"""
import contextlib
import dataclasses
import inspect
from typing import Any, Callable, ClassVar, Dict, Mapping, NamedTuple, Tuple

import keras
import numpy as np
import tensorflow as tf

from configs.errors import UserError


class LossTerm(NamedTuple):
  """A loss as an unnormalised sum and its normaliser (e.g. number of labelled items)."""
  total: tf.Tensor
  count: tf.Tensor


@dataclasses.dataclass(frozen=True)
class HeadOptions:
  """Options every head has. Subclass it (as a frozen dataclass) to add a head's own options.

  Attributes:
    weight: multiplies the head's normalised loss; 0 removes the head from the step entirely.
    grad_scale: multiplies only the gradient flowing from this head back into the encoder
      (encoder_outputs / encoder_summary): 1 = unchanged, 0 = detached, negative = reversal.
  """
  weight: float = 1.0
  grad_scale: float = 1.0


@dataclasses.dataclass(frozen=True)
class HeadContext:
  """What a head may know when it is built.

  Attributes:
    vocab_size: target vocabulary size.
    d_model: width of encoder_outputs.
    summary_dim: width of encoder_summary.
    num_layers: number of cross-attention tensors (decoder layers; 1 for the RNN).
    num_attention_heads: heads per cross-attention tensor (1 for the RNN).
    label_info: facts from the *training* split, e.g. `price` -> np.ndarray of finite prices,
      `domain` -> tuple of domain names (index = label id).
    seed: the global seed.
  """
  vocab_size: int
  d_model: int
  summary_dim: int
  num_layers: int
  num_attention_heads: int
  label_info: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  seed: int = 0


class Head(keras.layers.Layer):
  """Base class of all heads. Register subclasses with `@register_head("name")`.

  Class attributes:
    head_name: set by the registry decorator.
    reads: model output keys this head reads (from model/outputs.py).
    labels: batch keys this head needs as labels.
    Options: frozen dataclass (subclass of HeadOptions) with the head's options and defaults.
    second_pass: ask the step for a second forward pass (outputs[SECOND_PASS]).
  """
  head_name: ClassVar[str] = ""
  reads: ClassVar[Tuple[str, ...]] = ()
  labels: ClassVar[Tuple[str, ...]] = ()
  Options: ClassVar[type] = HeadOptions
  # True: the step runs the model twice on each batch (two dropout draws) and hands the second
  # pass's outputs under outputs[SECOND_PASS] (model/outputs.py); costs one more forward and
  # backward per step. For consistency regularisers such as R-Drop.
  second_pass: ClassVar[bool] = False

  def __init__(self, options: HeadOptions, context: HeadContext, **kwargs):
    super().__init__(name=kwargs.pop("name", self.head_name or None), **kwargs)
    self.options = options
    self.context = context

  def loss(self, outputs: Mapping[str, Any], batch: Mapping[str, tf.Tensor],
           training: bool) -> LossTerm:
    """The head's loss as (sum, count), in float32."""
    raise NotImplementedError

  def loss_terms(self, outputs, batch, training) -> Dict[str, LossTerm]:
    """Named loss terms; one term named after the head unless a head splits its loss."""
    return {self.head_name: self.loss(outputs, batch, training)}

  def metric_stats(self, outputs, batch) -> Dict[str, tf.Tensor]:
    """Additive statistics of one evaluation batch (summed over batches by the caller)."""
    return {}

  def metric_results(self, stats: Mapping[str, np.ndarray]) -> Dict[str, float]:
    """Reported metrics from summed `metric_stats`; keys without the head's name prefix."""
    return {}

  def predict(self, outputs) -> Dict[str, tf.Tensor]:
    """Optional per-example predictions, each [B, ...]."""
    return {}


def scale_gradient(x: tf.Tensor, scale: float) -> tf.Tensor:
  """Identity forward; the backward gradient is multiplied by `scale` (0 = stop, <0 = reverse)."""
  if scale == 1.0:
    return x
  if scale == 0.0:
    return tf.stop_gradient(x)
  return scale * x + (1.0 - scale) * tf.stop_gradient(x)


def safe_mean(term: LossTerm) -> tf.Tensor:
  """total / count, 0 where count == 0 (never NaN)."""
  total = tf.cast(term.total, tf.float32)
  return tf.math.divide_no_nan(total, tf.cast(term.count, tf.float32))


def _to_float32(value):
  if isinstance(value, dict):
    return {key: _to_float32(v) for key, v in value.items()}
  if isinstance(value, (list, tuple)):
    return type(value)(_to_float32(v) for v in value)
  dtype = getattr(value, "dtype", None)
  if dtype is not None and tf.as_dtype(dtype).is_floating and tf.as_dtype(dtype) != tf.float32:
    return tf.cast(value, tf.float32)
  return value


def float32_outputs(outputs: Mapping[str, Any]) -> Dict[str, Any]:
  """Model outputs as every head sees them: floating tensors in float32.

  Heads run in float32 whatever the model's precision (they are small, and their losses must
  be float32 anyway), so a head written and tested in float32 also works under mixed_bfloat16
  and mixed_float16. Gradients flow back through the casts into the model unchanged.
  """
  return {key: _to_float32(value) for key, value in outputs.items()}


@contextlib.contextmanager
def float32_policy():
  """Keras layers created inside (a head and its sublayers) compute in float32."""
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy("float32")
  try:
    yield
  finally:
    keras.config.set_dtype_policy(previous)


def is_builtin(head) -> bool:
  return type(head).__module__.split(".")[0] == "heads"


def call_head(head: "Head", method: Callable, *args, **kwargs):
  """`method(*args, **kwargs)` of `head`. An exception inside a user's own head (one from
  --head_modules) becomes `UserError("head NAME (FILE): ...")`, one line instead of a
  TensorFlow traceback; a built-in head's exception is a bug and keeps its traceback."""
  if is_builtin(head):
    return method(*args, **kwargs)
  try:
    return method(*args, **kwargs)
  except UserError:
    raise
  except Exception as e:  # the user's code, reported in one line  pylint: disable=broad-except
    where = inspect.getsourcefile(type(head)) or type(head).__module__
    message = " ".join(str(e).split())
    raise UserError(f"head {head.head_name!r} ({where}): {type(e).__name__}: {message}") from e
