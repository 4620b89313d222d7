"""A checkpoint's data position is restored only into the input pipeline that saved it."""
import tensorflow as tf

import data
from data import pipeline
from tests_support import tiny_config
from training import loop
from training.components import pipeline_fingerprint


def test_data_position_of_another_pipeline_is_not_restored(tmp_path, copy_corpus, monkeypatch):
  """An earlier auxseq's batches had a different set of fields. Restoring that iterator state
  into today's stream fails: here at the restore (the stream's ops differ), and for a real
  2026-11-30 Multi30k workdir silently, then two batches later ("Expected 5 components but got
  4"). Now the weights, optimizer and step resume and the data stream starts afresh."""
  workdir = tmp_path / "run"
  original = data.DataBundle.train_dataset

  def with_one_more_field(self, *args, **kwargs):
    return original(self, *args, **kwargs).map(
        lambda b: dict(b, old_field=tf.zeros_like(b["source"][:, 0])))

  monkeypatch.setattr(data.DataBundle, "train_dataset", with_one_more_field)
  loop.train(tiny_config(workdir, copy_corpus, False, train_steps=2, checkpoint_every=2))
  monkeypatch.setattr(data.DataBundle, "train_dataset", original)
  warnings = []
  monkeypatch.setattr(loop.logging, "warning", lambda fmt, *a: warnings.append(fmt % a))
  resumed = loop.train(tiny_config(workdir, copy_corpus, False, train_steps=8,
                                   checkpoint_every=4))
  assert resumed["step"] == 8
  assert any("was saved by another input pipeline" in w for w in warnings), warnings
  warnings.clear()
  loop.train(tiny_config(workdir, copy_corpus, False, train_steps=10, checkpoint_every=5))
  assert not any("input pipeline" in w for w in warnings), warnings  # same pipeline: restored


def test_fingerprint_names_the_length_buckets():
  """A data position holds each length bucket's unfinished batch, so it is only restored into a
  stream with the same buckets (the loop passes `DataBundle.length_buckets`, `auto` resolved,
  which tests/data/pipeline_test.py checks): a workdir resumed with --jit_compile toggled must
  not take the other bucketing's state."""
  dataset = tf.data.Dataset.from_tensors({"source": tf.zeros([1, 2], tf.int32)})
  exact = pipeline_fingerprint(dataset, "exact")
  assert exact != pipeline_fingerprint(dataset, "geometric")
  assert exact.startswith(f"{pipeline.PIPELINE_VERSION}|exact|")
