"""guided_alignment: the mse mode by hand, the label check, and 3 training steps on aligned data."""
import dataclasses
import glob
import math
import os

import numpy as np
import pytest
import tensorflow as tf

from configs.config import HeadSpec
from configs.errors import UserError
from heads import guided_alignment
from heads.base import HeadContext
from heads.spec import build_heads
from tests_support import run_main, tiny_args, tiny_config
from training import loop
from training.components import check_labels

P = [[[[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]]]]  # [B=1, H=1, T=2, S=3]


def _context(**label_info):
  return HeadContext(vocab_size=3, d_model=4, summary_dim=4, num_layers=1, num_attention_heads=1,
                     label_info=label_info)


def _outputs(p, tmask):
  return {"cross_attention": [tf.constant(p, tf.float32)],
          "target_mask": tf.constant(tmask, tf.float32),
          "encoder_mask": tf.ones([1, 3], tf.float32)}


def _head(**options):
  options = guided_alignment.GuidedAlignmentOptions(**options)
  return guided_alignment.GuidedAlignment(options, _context())


def test_mse_by_hand():
  """Links 0-0 (A row 0 = [1, 0, 0]) and 1-1, 2-1 (row 1 = [0, .5, .5]): squared errors
  .25 + .0625 + .0625 = .375 and .04 + .09 + .01 = .14; normaliser 2 linked positions."""
  term = _head(mode="mse").loss(_outputs(P, [[1, 1]]), {"alignment": tf.constant(["0-0 1-1 2-1"])},
                                training=True)
  assert float(term.total) == pytest.approx(0.515, rel=1e-6) and float(term.count) == 2.0


def test_mse_skips_unlinked_and_padded_rows():
  """Only row 0 is linked (row 1 has no link; with tmask 0 a link there is masked too)."""
  head = _head(mode="mse")
  only_first = head.loss(_outputs(P, [[1, 1]]), {"alignment": tf.constant(["0-0"])}, True)
  padded = head.loss(_outputs(P, [[1, 0]]), {"alignment": tf.constant(["0-0 2-1"])}, True)
  for term in (only_first, padded):
    assert float(term.total) == pytest.approx(0.375, rel=1e-6) and float(term.count) == 1.0


def test_ce_is_still_the_default():
  term = _head().loss(_outputs(P, [[1, 1]]), {"alignment": tf.constant(["0-0 1-1 2-1"])}, True)
  expected = -math.log(0.5) - 0.5 * (math.log(0.2) + math.log(0.6))
  assert float(term.total) == pytest.approx(expected, rel=1e-6)


def test_unknown_mode_is_a_user_error():
  with pytest.raises(UserError, match="mode.*one of ce, mse.*'l1'"):
    build_heads([HeadSpec("guided_alignment", (("mode", "l1"),))], _context())


def test_check_labels_needs_alignments_in_the_data():
  without = build_heads([HeadSpec("guided_alignment")], _context(alignment=0))
  with pytest.raises(UserError, match="head 'guided_alignment' needs label 'alignment', which "
                     "the data does not provide; give word alignment files .*train.align"):
    check_labels(without)
  check_labels(build_heads([HeadSpec("guided_alignment")], _context(alignment=12)))


def _align_files(corpus):
  """Identity word alignments for the copy corpus (target = source)."""
  for path in glob.glob(os.path.join(corpus, "*.en")):
    lines = open(path, encoding="utf-8").read().splitlines()
    links = [" ".join(f"{i}-{i}" for i in range(len(line.split()))) for line in lines]
    with open(path[:-3] + ".align", "w", encoding="utf-8") as f:
      f.write("\n".join(links) + "\n")


def _scalars(workdir, tag):
  values = {}
  for path in glob.glob(os.path.join(workdir, "tensorboard", "train", "events.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == tag:
          values[event.step] = float(tf.make_ndarray(value.tensor))
  return values


def test_three_steps_on_aligned_parallel_text(tmp_path, copy_corpus):
  _align_files(copy_corpus)
  # Without the listings: length bucketing can fill a batch with short listing titles alone,
  # which carry no alignment (the clean-clone CI run drew one at step 3: loss 0 there).
  config = tiny_config(tmp_path / "run", copy_corpus, False, train_steps=3, log_every=1,
                       checkpoint_every=3)
  config = dataclasses.replace(config, heads=(HeadSpec("guided_alignment", (("weight", "1"),)),))
  metrics = loop.train(config)
  losses = _scalars(str(tmp_path / "run"), "loss/guided_alignment")
  assert sorted(losses) == [1, 2, 3]
  assert all(np.isfinite(v) and v > 0 for v in losses.values()), losses
  value = metrics["guided_alignment"]["value"]  # on the aligned test split
  assert np.isfinite(value) and value > 0


def test_cli_refuses_the_head_without_alignment_files(tmp_path, copy_corpus):
  workdir = tmp_path / "w"
  args = [a for a in tiny_args(workdir, copy_corpus) if not a.startswith("--heads")]
  result = run_main(*args, "--heads=guided_alignment", "--train_steps=1")
  assert result.returncode == 2, result.stderr[-2000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error: head 'guided_alignment' needs label 'alignment'"), last
  assert "train.align" in last and not workdir.exists()
