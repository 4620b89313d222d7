"""Best checkpoint, early stopping and LR control follow the chosen metric in its direction."""
import dataclasses

import pytest
import tensorflow as tf

from configs.config import Config, TrainConfig
from configs.errors import UserError
from training.schedules import InverseSqrtWarmup
from training.selection import Selection


def _selection(tmp_path, **train):
  config = Config(workdir=str(tmp_path), train=TrainConfig(**train))
  schedule = InverseSqrtWarmup(1.0, 1)
  c = dataclasses.make_dataclass("C", ["config", "schedule"])(config, schedule)
  return Selection(c, tf.train.Checkpoint(v=tf.Variable(1.0))), schedule


def test_ter_lower_is_better_and_plateau_halves_lr_then_early_stop(tmp_path):
  sel, schedule = _selection(tmp_path, select_metric="ter", lr_control="plateau",
                             early_stop_patience=2)
  assert sel.update({"ter": 50.0}, 1) is False and sel.best == 50.0
  assert sel.update({"ter": 40.0}, 2) is False and sel.best == 40.0  # lower TER is better
  assert float(schedule.scale) == 1.0
  assert sel.update({"ter": 45.0}, 3) is False and float(schedule.scale) == 0.5
  assert sel.update({"ter": 41.0}, 4) is True and float(schedule.scale) == 0.25
  assert tf.train.latest_checkpoint(str(tmp_path / "best")).endswith("ckpt-2")


def test_head_metric_and_newbob(tmp_path):
  sel, schedule = _selection(tmp_path, select_metric="price/accuracy", lr_control="newbob")
  sel.update({"price": {"accuracy": 0.50}}, 1)
  sel.update({"price": {"accuracy": 0.60}}, 2)   # +20%: no decay
  assert float(schedule.scale) == 1.0
  sel.update({"price": {"accuracy": 0.603}}, 3)  # +0.5% < 1%: starts ramping
  sel.update({"price": {"accuracy": 0.70}}, 4)   # keeps decaying once ramping
  assert float(schedule.scale) == 0.25


def test_state_survives_a_restart_and_unknown_metric_is_a_user_error(tmp_path):
  sel, _ = _selection(tmp_path, select_metric="bleu")
  sel.update({"bleu": 12.0}, 5)
  again, _ = _selection(tmp_path, select_metric="bleu")
  assert again.best == 12.0
  with pytest.raises(UserError, match="'chrf2' is not among the validation metrics: bleu"):
    _selection(tmp_path, select_metric="chrf2")[0].update({"bleu": 1.0}, 6)
