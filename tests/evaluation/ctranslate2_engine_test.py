"""evaluation/ctranslate2_engine.py ranks CTranslate2's finished hypotheses with our length
penalty (GNMT's), not CTranslate2's |Y| ** alpha."""
import math

import pytest

pytest.importorskip("ctranslate2")

from evaluation.ctranslate2_engine import best_under_gnmt, gnmt_penalty  # noqa: E402


def test_gnmt_penalty_by_hand():
  assert gnmt_penalty(1, 0.6) == 1.0  # (5 + 1) / 6 = 1
  assert gnmt_penalty(7, 0.6) == pytest.approx(2.0 ** 0.6)
  assert gnmt_penalty(13, 0.0) == 1.0


def test_gnmt_penalty_matches_the_beam_search():
  """The engine keeps a TensorFlow-free copy of model/decoding.gnmt_penalty (serving never
  imports TensorFlow); the two must not drift apart."""
  from model import decoding  # pylint: disable=import-outside-toplevel  (imports TensorFlow)
  for length, alpha in ((1, 0.6), (7, 0.6), (23, 1.0), (40, 1.4), (5, 0.0)):
    assert gnmt_penalty(length, alpha) == pytest.approx(
        float(decoding.gnmt_penalty(length, alpha)), rel=1e-6)


def test_the_penalty_decides_between_a_short_and_a_long_hypothesis():
  """A: 3 pieces (+ </s> = 4), log p -3.0; B: 6 pieces (7), log p -3.5.
  alpha 0: A (-3.0 > -3.5). alpha 0.6: A -3.0 / 1.5 ** 0.6 = -2.352, B -3.5 / 2 ** 0.6 = -2.309:
  B. CTranslate2's own |Y| ** 0.6 over the pieces would pick B as well here, but with other
  margins: -3.0 / 3 ** 0.6 = -1.553 vs -3.5 / 6 ** 0.6 = -1.193."""
  hyps, scores = [["a"] * 3, ["b"] * 6], [-3.0, -3.5]
  assert best_under_gnmt(hyps, scores, 0.0) == 0
  assert best_under_gnmt(hyps, scores, 0.6) == 1
  assert -3.0 / 1.5 ** 0.6 == pytest.approx(-2.352, abs=1e-3)
  assert -3.5 / 2 ** 0.6 == pytest.approx(-2.309, abs=1e-3)


def test_where_the_two_penalties_disagree_ours_wins():
  """A: 1 piece (2 with </s>), log p -1.0; B: 4 pieces (5), log p -2.2; alpha 1.
  GNMT: A -1.0 / (7/6) = -0.857, B -2.2 / (10/6) = -1.32: A.
  CTranslate2's |Y|: A -1.0 / 1 = -1.0, B -2.2 / 4 = -0.55: B."""
  hyps, scores = [["a"], ["b"] * 4], [-1.0, -2.2]
  assert best_under_gnmt(hyps, scores, 1.0) == 0
  ct2_choice = max(range(2), key=lambda j: scores[j] / len(hyps[j]) ** 1.0)
  assert ct2_choice == 1
  assert math.isclose(-1.0 / (7 / 6), -0.857, abs_tol=1e-3)
