"""A loss that turns NaN: the run stops naming the term, and the last good checkpoint stays the
latest (nothing is saved from a non-finite state); with --on_nonfinite=skip the run completes."""
import numpy as np
import tensorflow as tf

from tests_support import run_main, tiny_args

EXPLODING_HEAD = '''
import tensorflow as tf
from heads.base import Head, HeadOptions, LossTerm
from heads.registry import register_head


@register_head("explode")
class ExplodeHead(Head):
  """Finite for its first calls, then NaN."""
  reads = ("encoder_summary",)

  def __init__(self, options, context, **kwargs):
    super().__init__(options, context, **kwargs)
    self.calls = self.add_weight(name="calls", shape=(), initializer="zeros", trainable=False)

  def loss(self, outputs, batch, training):
    self.calls.assign_add(1.0)
    value = 0.0 * tf.reduce_sum(outputs["encoder_summary"])
    value += tf.where(self.calls > 7.0, float("nan"), 0.0)
    return LossTerm(value, tf.constant(1.0))
'''


def _setup(tmp_path, copy_corpus, *extra):
  module = tmp_path / "explode.py"
  module.write_text(EXPLODING_HEAD, encoding="utf-8")
  return tiny_args(tmp_path / "w", copy_corpus, f"--head_modules={module}",
                   "--heads=explode", "--checkpoint_every=2", "--train_steps=12", *extra)


def test_stop_names_the_term_and_keeps_the_last_good_checkpoint(tmp_path, copy_corpus):
  result = run_main(*_setup(tmp_path, copy_corpus))
  assert result.returncode == 2
  error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
  assert len(error) == 1 and "explode" in error[0] and "non-finite loss at step" in error[0]
  latest = tf.train.latest_checkpoint(str(tmp_path / "w" / "checkpoints"))
  assert latest.endswith("ckpt-6"), latest
  reader = tf.train.load_checkpoint(latest)
  for key, dtype in reader.get_variable_to_dtype_map().items():
    if dtype.is_floating:
      assert np.all(np.isfinite(reader.get_tensor(key))), key


def test_skip_mode_completes(tmp_path, copy_corpus):
  result = run_main(*_setup(tmp_path, copy_corpus, "--on_nonfinite=skip"))
  assert result.returncode == 0, result.stderr[-2000:]
  assert "skipped: non-finite" in result.stderr
  assert tf.train.latest_checkpoint(str(tmp_path / "w" / "checkpoints")).endswith("ckpt-12")
