"""A crash in the middle of a checkpoint save leaves the previous checkpoint the latest and
usable, and rerunning resumes from it (issue 8: atomic writes).

TensorFlow writes a checkpoint's files first and the `checkpoint` state file (which names the
latest) last, atomically. The two crash points tested: (a) after the files, before the state
update; (b) during the file writes (a truncated file is left behind).
"""
import os

import pytest
import tensorflow as tf
from tensorflow.python.checkpoint import checkpoint_management

from tests_support import tiny_config
from training.loop import train


class Crash(RuntimeError):
  pass


def _crash_state_update(real):
  def update(save_dir, model_checkpoint_path, *args, **kwargs):
    if model_checkpoint_path.endswith("ckpt-4"):
      raise Crash("killed before the state update")
    return real(save_dir, model_checkpoint_path, *args, **kwargs)
  return update


def _crash_file_write(real):
  def write(self, save_path, *args, **kwargs):
    if save_path.endswith("ckpt-4"):
      with open(save_path + ".index", "wb") as f:
        f.write(b"\x00truncated")
      raise Crash("killed while writing the files")
    return real(self, save_path, *args, **kwargs)
  return write


@pytest.mark.parametrize("where", ["state_update", "file_write"])
def test_crash_mid_save_keeps_previous_checkpoint(tmp_path, copy_corpus, monkeypatch, where):
  config = tiny_config(tmp_path / "w", copy_corpus, False, train_steps=4, checkpoint_every=2,
                       precision="float32")
  with monkeypatch.context() as patch:
    if where == "state_update":
      patch.setattr(checkpoint_management, "update_checkpoint_state_internal",
                    _crash_state_update(checkpoint_management.update_checkpoint_state_internal))
    else:
      patch.setattr(tf.train.Checkpoint, "_write", _crash_file_write(tf.train.Checkpoint._write))
    with pytest.raises(Crash):
      train(config)
  ckpt_dir = os.path.join(config.workdir, "checkpoints")
  latest = tf.train.latest_checkpoint(ckpt_dir)
  assert latest.endswith("ckpt-2")
  reader = tf.train.load_checkpoint(latest)  # readable: the previous save is intact
  assert int(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")) == 2
  metrics = train(config)  # the same command again: resumes at 2 and finishes
  assert metrics["step"] == 4
  assert tf.train.latest_checkpoint(ckpt_dir).endswith("ckpt-4")
