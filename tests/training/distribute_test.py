"""MirroredStrategy on 2 logical CPU devices gives the same loss and update as one device.

Each replica divides its partial loss sums by the *global* counts (all-reduced), so summing the
replicas' gradients gives exactly the one-device gradient of the whole batch.
"""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.parametrize("combiner", ["fixed", "metabalance", "dwa"])
def test_two_replicas_equal_one_device(tmp_path, copy_corpus, combiner):
  """Issue 18: combiners other than fixed sum per-term gradients over the replicas and combine
  once, so they too equal one device."""
  root = os.path.dirname(os.path.dirname(HERE))
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
             PYTHONPATH=os.pathsep.join([root, os.path.join(root, "tests")]))
  proc = subprocess.run([sys.executable, os.path.join(HERE, "mirrored_worker.py"),
                         str(tmp_path / "w"), copy_corpus, combiner], capture_output=True,
                        text=True, env=env, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  report = json.loads(proc.stdout.strip().splitlines()[-1])
  assert report["replicas"] == 2
  single, mirrored = report["single"], report["mirrored"]
  for key in ("loss", "loss/translation", "loss/price", "loss/attention_entropy",
              "count/translation", "grad_norm"):
    assert mirrored[key] == pytest.approx(single[key], rel=1e-5), key
  assert report["max_weight_diff"] < 1e-5, report
  # The step takes global batches and splits them itself, so one shape-generic graph serves
  # every batch shape from the first call, as on one device (a resume runs the same graph);
  # under metabalance attention_entropy is folded, and the refresh step is a graph of its own.
  assert report["batch_shapes"] == 3, report
  assert report["mirrored_traces"] == ([1, 1] if combiner == "metabalance" else [1]), report


def test_cli_trains_under_mirrored_strategy(tmp_path, copy_corpus):
  """The training loop's distributed path (dataset split, checkpointed iterator) end to end."""
  from tests_support import run_main, tiny_args  # pylint: disable=import-outside-toplevel
  proc = run_main(*tiny_args(tmp_path / "w", copy_corpus, "--distribute=mirrored",
                             "--train_steps=4", "--checkpoint_every=2"))
  assert proc.returncode == 0, proc.stderr[-3000:]
  report = json.loads(proc.stdout.strip().splitlines()[-1])
  assert report["kind"] == "final" and "bleu" in report
  assert os.path.exists(tmp_path / "w" / "checkpoints" / "ckpt-4.index")


def test_multi_worker_needs_valid_tf_config(monkeypatch):
  from configs.errors import UserError  # pylint: disable=import-outside-toplevel
  from training import distribute  # pylint: disable=import-outside-toplevel
  monkeypatch.delenv("TF_CONFIG", raising=False)
  with pytest.raises(UserError, match="needs the TF_CONFIG environment variable"):
    distribute.make_strategy("multi_worker")
  monkeypatch.setenv("TF_CONFIG", "{not json")
  with pytest.raises(UserError, match="TF_CONFIG is not valid JSON"):
    distribute.make_strategy("multi_worker")
  with pytest.raises(UserError, match="unknown --distribute"):
    distribute.make_strategy("tpu")
  assert distribute.make_strategy("none") is None
