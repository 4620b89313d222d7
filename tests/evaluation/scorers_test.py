"""sacreBLEU scorers: same numbers as the sacrebleu command line, directions, errors."""
import os
import subprocess
import sys

import pytest

from configs.errors import UserError
from evaluation import scorers

HYPS = ["the cat sat on the mat .", "a dog runs in the park", "hello world"]
REFS = ["the cat sat on the mat .", "a dog is running in the park", "hello , world"]


def _sacrebleu_cli(tmp_path, metric):
  hyp, ref = tmp_path / "hyp.txt", tmp_path / "ref.txt"
  hyp.write_text("\n".join(HYPS) + "\n", encoding="utf-8")
  ref.write_text("\n".join(REFS) + "\n", encoding="utf-8")
  cli = os.path.join(os.path.dirname(sys.executable), "sacrebleu")
  out = subprocess.run([cli, str(ref), "-i", str(hyp), "-m", metric, "-b", "-w", "4"],
                       capture_output=True, text=True, check=True)
  return float(out.stdout.strip())


def test_scores_equal_sacrebleu_command_line(tmp_path):
  result = scorers.score_corpus(HYPS, REFS)
  for metric in ("bleu", "chrf", "ter"):
    assert result[metric] == pytest.approx(_sacrebleu_cli(tmp_path, metric), abs=1e-3), metric
  assert result["signature"]["bleu"].startswith("nrefs:1|case:mixed")


def test_identical_corpus_is_perfect():
  result = scorers.score_corpus(REFS, REFS)
  assert result["bleu"] == 100.0 and result["ter"] == 0.0 and result["chrf"] == 100.0


def test_directions():
  assert scorers.higher_is_better("bleu")
  assert not scorers.higher_is_better("ter")
  assert scorers.higher_is_better("price/accuracy")
  assert not scorers.higher_is_better("price/mae")
  assert not scorers.higher_is_better("translation/nll")


def test_length_mismatch_and_unknown_scorer_are_user_errors():
  with pytest.raises(UserError, match="2 hypotheses but 3 references"):
    scorers.score_corpus(HYPS[:2], REFS)
  with pytest.raises(UserError, match="known: bleu, chrf, ter"):
    scorers.get_scorer("meteor")
