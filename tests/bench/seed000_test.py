"""bench/seed000.py: resumable runs, the tuned static weight chosen on validation, intervals and
the paired bootstrap on result files (no training here)."""
import gzip
import json
import math
import os

import pytest

from bench import seed000, stats


def test_mean_ci_by_hand():
  """[1, 2, 3]: mean 2, s = 1, t(0.975, 2) = 4.303 -> half width 4.303 / sqrt(3) = 2.484."""
  ci = stats.mean_ci([1.0, 2.0, 3.0])
  assert ci["mean"] == 2.0 and ci["n"] == 3
  assert ci["half_width"] == pytest.approx(4.303 / math.sqrt(3), rel=1e-6)
  assert math.isnan(stats.mean_ci([5.0])["half_width"])
  assert stats.format_ci(stats.mean_ci([5.0])) == "5.00 (1 run)"


def test_paired_bootstrap_finds_a_real_difference():
  refs = ["the cat sat on the mat", "a dog runs in the park", "he reads a book"] * 30
  worse = ["the cat sat on a mat", "a dog ran in park", "he read book"] * 30
  better = stats.paired_bootstrap_bleu(worse, refs, refs, samples=200)
  assert better["system"] == pytest.approx(100.0) and better["p_value"] < 0.05
  with pytest.raises(ValueError, match="lengths differ"):
    stats.paired_bootstrap_bleu(worse, refs[:-1], refs)


def _write(args, row, seed, val_bleu, val_acc, hyps):
  path = seed000.result_path(args, row, seed)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  scores = {"bleu": val_bleu, "chrf": 30.0, "price_accuracy": val_acc, "price_macro_f1": 0.3}
  with open(path, "w", encoding="utf-8") as f:
    json.dump({"row": row, "seed": seed, "test": scores, "validation": scores}, f)
  with gzip.open(path[:-5] + ".test.hyp.gz", "wt", encoding="utf-8") as f:
    f.write("\n".join(hyps) + "\n")


@pytest.fixture
def args(tmp_path):
  return seed000.parse_args([f"--results={tmp_path / 'results'}", f"--out={tmp_path / 'out'}",
                             "--seeds=2", f"--plot={tmp_path / 'plot.png'}",
                             "--bootstrap_samples=100"])


def test_tuned_static_weight_is_chosen_on_validation(args):
  """Scores relative to the single-task rows: w=1 -> 8/10 + 0.4/0.4 = 1.8; w=0.1 -> 0.95 +
  0.95 = 1.9; w=0.03 -> 1.0 + 0.75 = 1.75; w=0.3 missing. Best: w=0.1."""
  for seed in (1, 2):
    for row, bleu, acc in [("translation alone", 10.0, None), ("price alone", 0.0, 0.4),
                           ("joint fixed", 8.0, 0.4), ("fixed w=0.1", 9.5, 0.38),
                           ("fixed w=0.03", 10.0, 0.3)]:
      _write(args, row, seed, bleu, acc, ["a b"])
  assert seed000.tuned_static(seed000.load_results(args)) == "fixed w=0.1"


def test_finished_runs_are_skipped_and_report_pools_seeds(args, monkeypatch, tmp_path):
  refs = ["the cat sat on the mat", "a dog runs in the park"] * 10
  for seed in (1, 2):
    _write(args, "joint fixed", seed, 8.0, 0.4, ["the cat sat", "a dog"] * 10)
  calls = []

  def fake_run(a, row, seed):
    calls.append((row, seed))
    _write(a, row, seed, 9.0, 0.4, refs)
    return {"test": {}, "wall_s": 0.0}
  monkeypatch.setattr(seed000, "run_one", fake_run)
  monkeypatch.setattr(seed000, "references", lambda a: refs)
  argv = [f"--results={args.results}", f"--out={args.out}", "--seeds=2",
          "--only=joint fixed;pcgrad", f"--plot={tmp_path / 'p.png'}", "--bootstrap_samples=100"]
  assert seed000.main(argv) == 0
  assert calls == [("pcgrad", 1), ("pcgrad", 2)]  # joint fixed had both seeds already
  summary = seed000.report(seed000.parse_args(argv))
  pcgrad = summary["rows"]["pcgrad"]
  assert pcgrad["bleu"]["mean"] == 9.0 and pcgrad["bleu"]["n"] == 2
  assert pcgrad["bootstrap"]["seeds"] == 2 and pcgrad["bootstrap"]["p_value"] < 0.05
  assert (tmp_path / "p.png").stat().st_size > 0


def test_precision_note_names_rows_by_precision_and_old_files_as_bfloat16():
  results = {"joint fixed": [{"seed": 1}, {"seed": 2, "precision": "float32"}],
             "pcgrad": [{"seed": 1, "precision": "float32"}]}
  assert seed000.precision_note(results) == (
      "float32: joint fixed [2], pcgrad [1]; mixed_bfloat16: joint fixed [1]")
