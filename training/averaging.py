"""Weights for evaluation: an exponential moving average (EMA) and checkpoint averaging.

Both replace only the weights that produce outputs — the model's and every head's — never the
optimizer slots, the combiner, the step or the data position.

* EMA (`--ema_decay=d`, Polyak & Juditsky 1992): after every optimizer step each trainable
  weight w of the model and the heads moves its float32 shadow s <- d_t s + (1 - d_t) w with
  d_t = min(d, (1 + t) / (10 + t)), t the number of steps before this one (the warm-up of
  `tf.train.ExponentialMovingAverage(num_updates=...)`: with a plain d = 0.999 the initial
  random weights would still hold 0.999^800 = 45% of the shadow after the default job's 800
  steps). Shadows start equal to the initial weights, are saved in every checkpoint (slot
  `ema`), and are swapped in for validation/test (then swapped back: training goes on with the
  raw weights) and for translate/export. Keras's `optimizer(use_ema=True)` is not used: it can
  only overwrite the weights, not swap them in and out around a mid-training validation.
* Checkpoint averaging (`--average_last=N`, as in Vaswani et al. 2017 and fairseq's
  average_checkpoints): the element-wise float32 mean of the evaluated weights of the last N
  checkpoints of WORKDIR/checkpoints (the EMA shadows where a run has them). Integer variables
  (dropout seed-generator states) are taken from the newest checkpoint.
"""
import contextlib
import os
from typing import List

import numpy as np
import tensorflow as tf
from absl import logging

from configs.errors import UserError


def _weight_layers(c) -> list:
  """The model and every head: the layers whose weights are evaluated."""
  return [c.model] + list(c.heads)


class EMA:
  """float32 shadows of the trainable weights of the model and the heads.

  Attributes:
    decay: the configured d in (0, 1).
    variables: the tracked Keras variables (model first, then each head, in their order).
    shadows: one float32 tf.Variable per tracked variable, same shapes.
  """

  def __init__(self, layers, decay: float):
    if not 0.0 < decay < 1.0:
      raise UserError(f"--ema_decay must be in [0, 1) (0 = off), got {decay}")
    self.decay = float(decay)
    self.variables = [v for layer in layers for v in layer.trainable_variables]
    self.shadows = [tf.Variable(tf.cast(v.value, tf.float32), trainable=False,
                                name=f"ema_{i:04d}") for i, v in enumerate(self.variables)]

  def checkpoint(self) -> tf.train.Checkpoint:
    """The shadows keyed by position (as training/components.py keys the weights)."""
    return tf.train.Checkpoint(**{f"v{i:04d}": s for i, s in enumerate(self.shadows)})

  def effective_decay(self, step) -> tf.Tensor:
    """d_t = min(d, (1 + t) / (10 + t)) for t = `step` optimizer steps before this update."""
    t = tf.cast(step, tf.float32)
    return tf.minimum(tf.constant(self.decay, tf.float32), (1.0 + t) / (10.0 + t))

  @tf.function
  def update(self, step) -> None:
    """s <- d_t s + (1 - d_t) w for every shadow; `step` = optimizer steps before this one."""
    decay = self.effective_decay(step)
    for shadow, variable in zip(self.shadows, self.variables):
      shadow.assign(decay * shadow + (1.0 - decay) * tf.cast(variable.value, tf.float32))

  def copy_to_weights(self) -> None:
    """Overwrites the tracked weights with the shadows (cast to each weight's dtype)."""
    for shadow, variable in zip(self.shadows, self.variables):
      variable.assign(tf.cast(shadow, variable.dtype))

  @contextlib.contextmanager
  def swapped_in(self):
    """Within the block the weights are the shadows; afterwards exactly the raw weights again."""
    raw = [np.array(v.numpy(), copy=True) for v in self.variables]
    self.copy_to_weights()
    try:
      yield
    finally:
      for variable, value in zip(self.variables, raw):
        variable.assign(value)


def has_ema(path: str) -> bool:
  """Whether the checkpoint at `path` holds EMA shadows (slot `ema`)."""
  return any(name.startswith("ema/") for name, _ in tf.train.list_variables(path))


def attach_ema(c) -> None:
  """Sets `c.ema` to a fresh EMA of the current weights when `--ema_decay` > 0, else None.

  Call it before make_checkpoint (which saves/restores the `ema` slot when c.ema is set).

  Raises:
    UserError: a decay outside [0, 1), or EMA asked of a workdir whose checkpoints have none
      (shadows cannot be made up for steps already taken).
  """
  decay = c.config.train.ema_decay
  c.ema = EMA(_weight_layers(c), decay) if decay != 0 else None  # EMA checks the range
  latest = tf.train.latest_checkpoint(os.path.join(c.config.workdir, "checkpoints"))
  if c.ema is not None and latest and not has_ema(latest):
    raise UserError(f"--ema_decay={decay}: checkpoint {latest!r} has no EMA weights (trained "
                    "without --ema_decay); drop the flag or use a new --workdir")


@contextlib.contextmanager
def evaluation_weights(c):
  """With --ema_decay the EMA shadows are swapped in for the block, otherwise nothing changes."""
  ema = getattr(c, "ema", None)
  if ema is None:
    yield
  else:
    with ema.swapped_in():
      yield


def use_evaluation_weights(c) -> None:
  """For inference after a restore: the EMA shadows become the weights (no swap back)."""
  ema = getattr(c, "ema", None)
  if ema is not None:
    ema.copy_to_weights()


def last_checkpoints(directory: str, n: int) -> List[str]:
  """Paths of the newest `n` checkpoints in `directory` (oldest first); fewer if fewer exist."""
  if n < 1:
    raise UserError(f"--average_last must be >= 1 to average (0 = off), got {n}")
  state = tf.train.get_checkpoint_state(directory)
  paths = list(state.all_model_checkpoint_paths) if state else []
  if not paths:
    raise UserError(f"--average_last={n}: no checkpoint in {directory!r}; train there first")
  if len(paths) < n:
    logging.warning("--average_last=%d: only %d checkpoint(s) in %s (the manager keeps "
                    "--keep_checkpoints); averaging those", n, len(paths), directory)
  return paths[-n:]


def average_checkpoints(c, paths: List[str]) -> List[str]:
  """Sets the model's and heads' weights to the mean over `paths` of each one's evaluated weights.

  Every checkpoint is read into the live variables (model, heads and EMA shadows only), its
  EMA shadows are copied in where the run has them, and each float variable is accumulated in
  float32; integer variables keep the newest checkpoint's value (it is read last). Returns
  `paths`.
  """
  from training.components import make_checkpoint  # lazily: components imports this module too
  full = make_checkpoint(c)
  parts = {name: getattr(full, name) for name in ("model", "ema") if hasattr(full, name)}
  parts.update({f"head_{h.head_name}": getattr(full, f"head_{h.head_name}") for h in c.heads})
  weights_only = tf.train.Checkpoint(**parts)
  variables = [v for layer in _weight_layers(c) for v in layer.variables]
  sums = [None] * len(variables)
  for path in paths:
    weights_only.read(path).expect_partial()
    use_evaluation_weights(c)
    for i, v in enumerate(variables):
      if v.dtype in ("float16", "bfloat16", "float32", "float64"):
        value = np.asarray(v.numpy(), np.float32)
        sums[i] = value if sums[i] is None else sums[i] + value
  for v, total in zip(variables, sums):
    if total is not None:
      v.assign(tf.cast(total / np.float32(len(paths)), v.dtype))
  logging.info("weights: the average of %d checkpoint(s): %s", len(paths), ", ".join(paths))
  return list(paths)
