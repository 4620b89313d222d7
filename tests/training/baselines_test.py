"""Baseline schedules (alternating, two optimizers) and gradient statistics logging."""
import json
import math

import numpy as np
import pytest
import tensorflow as tf

from tests_support import run_main, tiny_args
from training.grad_stats import gradient_statistics


def test_gradient_statistics_by_hand():
  stats = gradient_statistics({"a": tf.constant([3.0, 4.0, 0.0]),
                               "b": tf.constant([0.0, 4.0, 3.0]),
                               "c": tf.constant([0.0, 0.0, 0.0])})
  assert float(stats["grad_norm/a"]) == pytest.approx(5.0)
  assert float(stats["grad_cos/a|b"]) == pytest.approx(16.0 / 25.0)
  assert float(stats["grad_cos/a|c"]) == 0.0  # a term that does not reach the encoder
  assert set(stats) == {"grad_norm/a", "grad_norm/b", "grad_norm/c", "grad_cos/a|b",
                        "grad_cos/a|c", "grad_cos/b|c"}


def _records(workdir, kind):
  with open(workdir / "metrics.jsonl", encoding="utf-8") as f:
    return [r for r in map(json.loads, f) if r.get("kind") == kind]


def test_alternating_schedule_and_grad_stats(tmp_path, copy_corpus):
  workdir = tmp_path / "w"
  proc = run_main(*tiny_args(workdir, copy_corpus, "--schedule=alternating",
                             "--alternate_ratio=2", "--train_steps=6", "--log_every=1",
                             "--log_grad_stats_every=3"))
  assert proc.returncode == 0, proc.stderr[-3000:]
  train = {r["step"]: r for r in _records(workdir, "train")}
  assert sorted(train) == [1, 2, 3, 4, 5, 6]
  # Steps 3 and 6 are auxiliary-only (period 2 + 1): no translation loss; the others only it.
  for step in (3, 6):
    assert "loss/translation" not in train[step] and "loss/price" in train[step]
  for step in (1, 2, 4, 5):
    assert "loss/translation" in train[step] and "loss/price" not in train[step]
  stats = _records(workdir, "grad_stats")
  assert [r["step"] for r in stats] == [3, 6]
  assert all(math.isfinite(v) for r in stats for k, v in r.items() if k.startswith("grad_"))
  assert stats[0]["grad_norm/translation"] > 0 and stats[0]["grad_norm/price"] > 0


def test_two_optimizers_schedule_trains(tmp_path, copy_corpus):
  workdir = tmp_path / "w"
  proc = run_main(*tiny_args(workdir, copy_corpus, "--schedule=two_optimizers",
                             "--train_steps=3", "--log_every=1"))
  assert proc.returncode == 0, proc.stderr[-3000:]
  train = _records(workdir, "train")
  assert len(train) == 3
  assert all("loss/translation" in r and "loss/price" in r for r in train)
  assert np.isfinite([r["loss"] for r in train]).all()


def test_baseline_schedules_need_an_auxiliary_head(tmp_path, copy_corpus):
  args = [a for a in tiny_args(tmp_path / "w", copy_corpus) if not a.startswith("--heads")]
  proc = run_main(*args, "--heads=", "--schedule=alternating", "--train_steps=2")
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].startswith("error: --schedule=alternating needs")
