"""bench/tune_decoding.py: the grid, the choice on the tuning split, test decoded only with it."""
import json

import pytest

from bench import tune_decoding
from configs.errors import UserError
from training.loop import train
from tests_support import tiny_config


def test_grid_is_every_beam_with_every_penalty():
  assert tune_decoding.parse_grid("1,4", "0.6, 1") == [(1, 0.6), (1, 1.0), (4, 0.6), (4, 1.0)]
  for beams, penalties in (("four", "0.6"), ("0", "0.6"), ("4", "-1"), ("", "0.6")):
    with pytest.raises(UserError):
      tune_decoding.parse_grid(beams, penalties)


def test_averages_parse_and_bad_values_are_refused():
  assert tune_decoding.parse_averages("0, 2,5") == [0, 2, 5]
  for text in ("x", "-1", ",", "1.5"):
    with pytest.raises(UserError):
      tune_decoding.parse_averages(text)


def test_choice_is_the_highest_bleu_then_the_smaller_beam_then_penalty_near_default():
  row = lambda b, a, bleu: {"beam_size": b, "length_penalty": a, "bleu": bleu}  # noqa: E731
  assert tune_decoding.best_setting([row(1, 0.6, 20.0), row(4, 1.0, 21.5), row(6, 0.6, 21.0)]) \
      == (4, 1.0)
  assert tune_decoding.best_setting([row(6, 0.6, 21.0), row(4, 1.4, 21.0), row(4, 0.0, 21.0),
                                     row(4, 1.0, 21.0)]) == (4, 1.0)


def test_tunes_on_validation_and_scores_test_once_with_the_choice(copy_corpus, tmp_path, capsys):
  workdir = tmp_path / "run"
  train(tiny_config(workdir, copy_corpus, mix_listings=False, train_steps=2))
  out = tmp_path / "tune.json"
  code = tune_decoding.main([
      "--beams=1,2", "--length_penalties=0.6,1.4", "--averages=0,2", f"--out={out}", "--",
      "--preset=tiny", f"--workdir={workdir}", "--dataset=parallel_text",
      f"--data_dir={copy_corpus}", "--vocab_size=64", "--mix=", "--heads=",
      "--max_eval_examples=16"])
  assert code == 0
  summary = json.loads(out.read_text())
  rows = summary["rows"]
  assert [(r["average_last"], r["beam_size"], r["length_penalty"], r["split"]) for r in rows] == [
      (n, b, a, "validation") for n in (0, 2) for b in (1, 2) for a in (0.6, 1.4)]
  assert rows[0]["bleu"] == rows[1]["bleu"]  # beam 1 is greedy search: no length penalty
  assert tuple(summary["chosen"]) == tune_decoding.best_setting(rows)
  assert summary["chosen_average_last"] == tune_decoding.best_row(rows)["average_last"]
  test = summary["test"]
  assert (test["split"], test["beam_size"], test["length_penalty"], test["average_last"]) == (
      "test", *summary["chosen"], summary["chosen_average_last"])
  assert ("test_with_config_default" in summary) == (tuple(summary["chosen"]) != (2, 0.6))
  assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["chosen"] == \
      summary["chosen"]


def test_bad_main_flag_is_one_error_line(capsys):
  assert tune_decoding.main(["--", "--preset=tiny", "--no_such_flag=1"]) == 2
  assert capsys.readouterr().err.startswith("error: ")
  assert tune_decoding.main(["--averages=6", "--", "--preset=tiny"]) == 2  # 5 are kept
  assert "--keep_checkpoints" in capsys.readouterr().err
