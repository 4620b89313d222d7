"""Crash and resume: SIGKILL mid-run, rerun the same command, end bit-identical to a run that was
never interrupted (data position, dropout RNG state and optimizer state all restored)."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

from tests_support import ROOT, run_main, tiny_args


def _final_weights(workdir):
  reader = tf.train.load_checkpoint(str(workdir / "checkpoints"))
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
          if k.startswith(("model/", "head_", "optimizer/", "step"))}


def test_sigkill_then_rerun_equals_uninterrupted(tmp_path, copy_corpus):
  common = ["--train_steps=25", "--checkpoint_every=5", "--deterministic", "--dropout=0.1",
            "--max_eval_examples=5"]
  straight = tmp_path / "straight"
  assert run_main(*tiny_args(straight, copy_corpus, *common)).returncode == 0

  crashed = tmp_path / "crashed"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "main.py"),
                           *tiny_args(crashed, copy_corpus, *common)], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  marker = crashed / "checkpoints" / "ckpt-10.index"
  deadline = time.time() + 300
  while not marker.exists() and proc.poll() is None and time.time() < deadline:
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert marker.exists()
  killed_at = max(int(p.name.split("-")[1].split(".")[0])
                  for p in (crashed / "checkpoints").glob("ckpt-*.index"))
  assert killed_at < 25, "the run finished before it could be killed"
  resumed = run_main(*tiny_args(crashed, copy_corpus, *common))
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert "resumed from" in resumed.stderr
  a, b = _final_weights(straight), _final_weights(crashed)
  assert a.keys() == b.keys() and len(a) > 20
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)
