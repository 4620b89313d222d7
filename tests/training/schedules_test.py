"""Learning-rate schedules: values derived by hand."""
import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from configs.config import TrainConfig
from tests_support import tiny_config
from training import loop
from training.schedules import EndFitter, InverseSqrtWarmup, LinearWarmupDecay, make_schedule


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
  assert isinstance(linear, LinearWarmupDecay) and (linear.warmup, int(linear.total)) == (1, 10)
  timed = make_schedule(TrainConfig(lr_schedule="linear_time", train_steps=10, warmup_steps=3))
  assert isinstance(timed, LinearWarmupDecay) and (timed.warmup, int(timed.total)) == (3, 10)
  assert isinstance(make_schedule(TrainConfig()), InverseSqrtWarmup)
  with pytest.raises(ValueError, match="total > warmup"):
    LinearWarmupDecay(1.0, 5, 5)


def _fitter(deadline, bound=1000, warmup=10, eval_every=100):
  # This process started at step 0 at time 0; the schedule's end starts at the bound.
  return EndFitter(LinearWarmupDecay(1.0, warmup, bound), bound, eval_every, start_step=0,
                   start=0.0, deadline=deadline)


def test_end_fitter_spends_the_time_left_at_the_measured_step_time():
  # 100 steps in 50 s: 0.5 s a step; 250 s left give 500 more steps, so the end is step 600.
  fitter = _fitter(deadline=300.0)
  assert fitter.fitted_end(100, 50.0) == 600
  # A 10-s validation among 60 s: steps took 0.5 s, and each step to come also carries a
  # hundredth of a validation (0.1 s): 240 s left / 0.6 s = 400 more steps.
  fitter.record_eval(10.0)
  assert fitter.fitted_end(100, 60.0) == 500
  # Refitting moves the schedule: the rate is 0 from the step after the new end (iteration 500).
  assert fitter.refit(100, 60.0) == 500 and int(fitter.schedule.total) == 500
  np.testing.assert_allclose(_rates(fitter.schedule, [9, 499, 500]), [1.0, 1 / 490, 0.0],
                             rtol=1e-6)


def test_end_fitter_stays_within_the_warm_up_the_step_and_the_bound():
  assert _fitter(deadline=1e6).fitted_end(100, 50.0) == 1000  # time for more: --train_steps
  assert _fitter(deadline=40.0).fitted_end(100, 50.0) == 101  # past the deadline: the next step
  assert _fitter(deadline=40.0).fitted_end(5, 50.0) == 11  # never before the warm-up ends
  assert _fitter(deadline=300.0).fitted_end(0, 50.0) == 1000  # no step timed yet: unchanged


def _train_records(workdir, after_step=0):
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  return [r for r in records if r["kind"] == "train" and r["step"] > after_step]


def test_linear_time_trains_to_the_fitted_end_and_a_rerun_gets_its_own(tmp_path, copy_corpus,
                                                                       monkeypatch):
  """The loop fits the end at every checkpoint and stops where the rate reaches 0; the end is
  saved. A rerun of the finished run with steps left below --train_steps trains on at rate 0
  until its first fit, then decays to its own end; with no steps left it adds none. The fit is
  replaced by a fixed answer (6 steps after the process's first step): its arithmetic is pinned
  above, and real step times would make the end vary."""
  monkeypatch.setattr(EndFitter, "fitted_end", lambda self, step, now: self.start_step + 6)
  workdir = tmp_path / "run"
  config = tiny_config(workdir, copy_corpus, False, lr_schedule="linear_time", train_steps=40,
                       warmup_steps=2, checkpoint_every=3, log_every=1, max_minutes=30.0)
  assert loop.train(config)["step"] == 7  # first step 1, fitted at step 3: end 7
  train = _train_records(workdir)
  assert [r["step"] for r in train] == list(range(1, 8))
  # Steps 1-3 ran towards the bound (40): the rate after step 3 is (40 - 4 + 1) / 38 of 1e-3.
  # From the fit at step 3 the end is 7: (7 - 5 + 1) / 5 after step 4, and 0 after step 7.
  np.testing.assert_allclose([train[2]["learning_rate"], train[3]["learning_rate"],
                              train[6]["learning_rate"]], [1e-3 * 37 / 38, 1e-3 * 3 / 5, 0.0],
                             atol=1e-6)  # metrics.jsonl keeps 6 decimals
  reader = tf.train.load_checkpoint(str(workdir / "checkpoints" / "ckpt-7"))
  assert reader.get_tensor("lr_end/.ATTRIBUTES/VARIABLE_VALUE") == 7
  # The rerun: first step 8, rate 0 through step 9 (the saved end, 7, is passed), fitted at
  # step 9 (a checkpoint): end 14, so (14 - 11 + 1) / 12 after step 10 and 0 after step 14.
  assert loop.train(config)["step"] == 14
  rerun = _train_records(workdir, after_step=7)
  assert [r["step"] for r in rerun] == list(range(8, 15))
  np.testing.assert_allclose([r["learning_rate"] for r in rerun],
                             1e-3 * np.array([0, 0, 4 / 12, 3 / 12, 2 / 12, 1 / 12, 0]), atol=1e-6)
  # With --train_steps at the step reached there is nothing left to fit: no step is added.
  finished = dataclasses.replace(config, train=dataclasses.replace(config.train, train_steps=14))
  assert loop.train(finished)["step"] == 14 and not _train_records(workdir, after_step=14)
