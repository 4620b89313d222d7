"""Checkpoint averaging and EMA weights, checked against numpy on values read back from disk."""
import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from configs.errors import UserError
from tests_support import tiny_config
from training import averaging, loop, modes
from training.components import make_checkpoint


def _with_eval(config, **eval_overrides):
  return dataclasses.replace(config, eval=dataclasses.replace(config.eval, **eval_overrides))


def _inference(config):
  return modes.components_for_inference(dataclasses.replace(config, mode="evaluate"))


def test_average_last_is_the_float32_mean_of_the_saved_checkpoints(tmp_path, copy_corpus):
  workdir = tmp_path / "avg"
  config = _with_eval(tiny_config(workdir, copy_corpus, False, train_steps=6, checkpoint_every=2),
                      average_last=3)
  final = loop.train(config)
  paths = [str(workdir / "checkpoints" / f"ckpt-{n}") for n in (2, 4, 6)]
  assert final["averaged_checkpoints"] == paths
  record = json.loads((workdir / "metrics.jsonl").read_text().splitlines()[-1])
  assert record["kind"] == "final" and record["averaged_checkpoints"] == paths

  c = _inference(config)
  readers = [tf.train.load_checkpoint(p) for p in paths]
  checked = 0
  for i, variable in enumerate(c.model.variables):
    key = f"model/v{i:04d}/.ATTRIBUTES/VARIABLE_VALUE"
    saved = [r.get_tensor(key) for r in readers]
    if saved[0].dtype != np.float32:
      continue
    if not np.array_equal(saved[0], saved[2]):  # trained weights moved between checkpoints
      checked += 1
    np.testing.assert_allclose(variable.numpy(), np.mean(saved, axis=0), rtol=1e-6, atol=1e-7)
  assert checked > 5
  assert int(c.step.numpy()) == 6  # everything else comes from the newest checkpoint
  # Inference builds no optimizer (its slots are never read there, so they are not averaged).
  assert c.optimizer is None and c.combiner is None

  # Fewer checkpoints than asked: those that exist are averaged.
  assert averaging.last_checkpoints(str(workdir / "checkpoints"), 10) == [
      str(workdir / "checkpoints" / f"ckpt-{n}") for n in (2, 4, 6)]
  # EMA asked of a run trained without it: one clear error, not random shadows.
  no_ema = dataclasses.replace(config, train=dataclasses.replace(config.train, ema_decay=0.9))
  with pytest.raises(UserError, match="has no EMA weights"):
    _inference(no_ema)


def _weights_and_shadows(c, path):
  make_checkpoint(c).read(path).expect_partial()
  return ([np.array(v.numpy()) for v in c.ema.variables],
          [np.array(s.numpy()) for s in c.ema.shadows])


def test_ema_follows_the_recurrence_and_resumes(tmp_path, copy_corpus):
  """Step 0 saved by a 0-step run, steps 1..3 by a resumed run: s_t = d_t s_{t-1} + (1-d_t) w_t,
  d_t = min(d, (1 + (t-1)) / (10 + (t-1))), s_0 = w_0. With d = 0.15: d_1 = 0.1 (warm-up),
  d_2 = d_3 = 0.15 (capped)."""
  workdir, decay = tmp_path / "ema", 0.15
  make = lambda steps, every=0: tiny_config(workdir, copy_corpus, False, train_steps=steps,
                                            checkpoint_every=1, ema_decay=decay, eval_every=every)
  loop.train(make(0))
  loop.train(make(3, every=2))  # resumes from step 0; validates (EMA swapped in) at step 2
  c = _inference(make(3))
  recorded = [_weights_and_shadows(c, str(workdir / "checkpoints" / f"ckpt-{t}"))
              for t in range(4)]
  weights = [w for w, _ in recorded]
  for w, s in zip(weights[0], recorded[0][1]):
    np.testing.assert_array_equal(s, w)  # shadows start as the initial weights
  expected = [np.array(w, np.float32) for w in weights[0]]
  for t in range(1, 4):
    d = min(decay, t / (9.0 + t))
    assert d == pytest.approx(0.1 if t == 1 else 0.15)
    expected = [np.float32(d) * s + np.float32(1 - d) * w for s, w in zip(expected, weights[t])]
    for s_hand, s_saved in zip(expected, recorded[t][1]):
      np.testing.assert_allclose(s_saved, s_hand, rtol=1e-5, atol=1e-7)
  moved = sum(not np.allclose(s, w) for s, w in zip(recorded[3][1], weights[3]))
  assert moved > 5  # the shadows are not simply the weights
  # The best checkpoint, saved right after the step-2 validation, holds the raw weights again.
  best_weights, _ = _weights_and_shadows(c, str(workdir / "best" / "ckpt-2"))
  for w_best, w_2 in zip(best_weights, weights[2]):
    np.testing.assert_array_equal(w_best, w_2)

  # Swapping in shows the shadows; swapping back restores the raw weights bit for bit.
  raw = [np.array(v.numpy()) for v in c.ema.variables]
  with averaging.evaluation_weights(c):
    for v, s in zip(c.ema.variables, c.ema.shadows):
      np.testing.assert_array_equal(v.numpy(), s.numpy())
  for v, r in zip(c.ema.variables, raw):
    np.testing.assert_array_equal(v.numpy(), r)


def test_inference_uses_the_ema_weights(tmp_path, copy_corpus):
  """restore_for_inference with --ema_decay: the model holds the saved shadows, not the weights."""
  workdir = tmp_path / "ema_inf"
  config = tiny_config(workdir, copy_corpus, False, train_steps=4, checkpoint_every=4,
                       ema_decay=0.5)
  loop.train(config)
  c = _inference(config)
  reader = tf.train.load_checkpoint(str(workdir / "checkpoints" / "ckpt-4"))
  for i, variable in enumerate(c.ema.variables):
    np.testing.assert_array_equal(variable.numpy(),
                                  reader.get_tensor(f"ema/v{i:04d}/.ATTRIBUTES/VARIABLE_VALUE"))
  assert os.path.exists(workdir / "test.hyp")


def test_bad_values_are_user_errors():
  with pytest.raises(UserError, match="--average_last must be >= 1"):
    averaging.last_checkpoints("/nonexistent", 0)
  with pytest.raises(UserError, match="no checkpoint"):
    averaging.last_checkpoints("/nonexistent", 2)
  with pytest.raises(UserError, match="--ema_decay must be in"):
    averaging.EMA([], 1.0)
