"""What validation scores drive: the best checkpoint, early stopping, learning-rate control.

All three follow one chosen metric (`--select_metric`, any reported metric including a head's,
e.g. `price/accuracy`) in its own direction — never the training loss (seed 001: LR control
reacted to the total score).
"""
import json
import os

import tensorflow as tf
from absl import logging

from configs.errors import UserError
from evaluation.scorers import higher_is_better
from training import workdir as wd

NEWBOB_THRESHOLD = 0.01  # relative improvement below which newbob starts decaying


def metric_value(metrics: dict, name: str) -> float:
  value = metrics
  for part in name.split("/"):
    value = value.get(part) if isinstance(value, dict) else None
  if value is None:
    raise UserError(f"--select_metric {name!r} is not among the validation metrics: "
                    f"{', '.join(sorted(k for k in metrics if k != 'signature'))}")
  return float(value)


class Selection:
  """Keeps WORKDIR/best (max_to_keep=1) and the state of early stopping and LR control."""

  def __init__(self, components, checkpoint):
    train = components.config.train
    self.train, self.schedule = train, components.schedule
    self.metric, self.higher = train.select_metric, higher_is_better(train.select_metric)
    directory = os.path.join(components.config.workdir, "best")
    self.manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=1)
    self.state_path = os.path.join(directory, "best.json")
    state = {}
    if os.path.exists(self.state_path):
      with open(self.state_path, encoding="utf-8") as f:
        state = json.load(f)
    self.best = state.get("value")
    self.bad_evals = state.get("bad_evals", 0)
    self.newbob_ramping = state.get("newbob_ramping", False)

  def _improvement(self, value: float) -> float:
    """Relative improvement over the best so far (positive = better)."""
    if self.best is None:
      return float("inf")
    delta = value - self.best if self.higher else self.best - value
    return delta / max(abs(self.best), 1e-9)

  def update(self, metrics: dict, step: int) -> bool:
    """Records a validation result; returns True when training should stop early."""
    value = metric_value(metrics, self.metric)
    gain = self._improvement(value)
    if gain > 0:
      self.best, self.bad_evals = value, 0
      self.manager.save(checkpoint_number=step)
    else:
      self.bad_evals += 1
    self._control_lr(gain)
    os.makedirs(os.path.dirname(self.state_path), exist_ok=True)
    wd.atomic_write_text(self.state_path, json.dumps(
        {"metric": self.metric, "value": self.best, "step": step, "bad_evals": self.bad_evals,
         "newbob_ramping": self.newbob_ramping}))
    patience = self.train.early_stop_patience
    return bool(patience and self.bad_evals >= patience)

  def _control_lr(self, gain: float) -> None:
    control = self.train.lr_control
    decay = (control == "plateau" and gain <= 0) or (
        control == "newbob" and (self.newbob_ramping or gain < NEWBOB_THRESHOLD))
    if control == "newbob" and gain < NEWBOB_THRESHOLD:
      self.newbob_ramping = True
    if decay and self.schedule is not None:
      self.schedule.scale.assign(self.schedule.scale * self.train.lr_decay)
      logging.info("%s: learning rate scale now %.4g", control, float(self.schedule.scale))
