"""Learning-rate schedules: values derived by hand."""
import numpy as np
import pytest

from configs.config import TrainConfig
from training.schedules import InverseSqrtWarmup, LinearWarmupDecay, make_schedule


def _rates(schedule, iterations):
  return [float(schedule(i)) for i in iterations]


def test_inverse_sqrt_warms_up_then_decays_as_the_root():
  # Iteration i is step i + 1: 1/4 at the first step, the peak at step 4, sqrt(4/16) at 16.
  np.testing.assert_allclose(_rates(InverseSqrtWarmup(1.0, 4), [0, 3, 15]), [0.25, 1.0, 0.5])


def test_linear_reaches_zero_after_the_last_step():
  # warmup 2, total 6: 1/2, 1 (warm-up), then (6 - step + 1) / 4 for steps 3..6, 0 after.
  rates = _rates(LinearWarmupDecay(1.0, 2, 6), range(8))
  np.testing.assert_allclose(rates, [0.5, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0])


def test_scale_multiplies_every_rate():
  schedule = LinearWarmupDecay(2.0, 2, 6)
  schedule.scale.assign(0.5)
  np.testing.assert_allclose(_rates(schedule, [1, 3]), [1.0, 0.75])


def test_make_schedule_follows_the_config():
  linear = make_schedule(TrainConfig(lr_schedule="linear", train_steps=10, warmup_steps=0))
  assert isinstance(linear, LinearWarmupDecay) and (linear.warmup, linear.total) == (1, 10)
  assert isinstance(make_schedule(TrainConfig()), InverseSqrtWarmup)
  with pytest.raises(ValueError, match="total > warmup"):
    LinearWarmupDecay(1.0, 5, 5)
