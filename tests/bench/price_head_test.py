"""bench/price_head.py: the n-gram baseline on a tiny synthetic TSV (split and buckets as the
price head's), best-validation pick and the resumable runs (no training here)."""
import hashlib
import json
import os

import numpy as np
import pytest

from bench import price_head
from data.registry import hash_split

# Four price levels told apart by one word each; 400 titles so that the md5 split (90/5/5) puts
# some of every level into validation and test.
WORDS = {"hostel": 20.0, "room": 60.0, "flat": 120.0, "penthouse": 400.0}


def _tsv(tmp_path):
  path = tmp_path / "listings.tsv"
  lines = ["name\tprice"]
  for i in range(400):
    word = list(WORDS)[i % 4]
    lines.append(f"nice {word} number {i}\t${WORDS[word]:.0f}")
  lines.append("no price here\tnot a price")  # masked: no bucket, left out
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")
  return str(path)


def test_listings_use_the_md5_split_and_training_quantile_buckets(tmp_path):
  splits = price_head.listings(_tsv(tmp_path), buckets=4, cache_dir=str(tmp_path / "cache"))
  for split, (titles, labels) in splits.items():
    assert titles and all(hash_split(t, 50, 50) == split for t in titles)
    # The training quartiles of four near-equal shares of 20/60/120/400 fall between the
    # levels: each word its own bucket, in price order.
    expected = [sorted(WORDS, key=WORDS.get).index(t.split()[1]) for t in titles]
    assert labels.tolist() == expected
  assert "no price here" not in sum((s[0] for s in splits.values()), [])
  assert sum(len(s[0]) for s in splits.values()) == 400


def test_ngram_baseline_separates_the_levels_and_picks_c_on_validation(tmp_path):
  splits = price_head.listings(_tsv(tmp_path), buckets=4, cache_dir=str(tmp_path / "cache"))
  result = price_head.ngram_baseline(splits, c_grid=(0.001, 10.0))
  assert result["C"] == 10.0  # C=0.001 is nearly the uniform prior: below on validation
  assert result["validation_by_C"]["0.001"] < result["validation_by_C"]["10.0"] == 1.0
  assert result["test"]["accuracy"] == 1.0 and result["test"]["macro_f1"] == 1.0
  test_labels = splits["test"][1]
  assert result["test"]["majority_baseline"] == pytest.approx(
      np.bincount(test_labels).max() / len(test_labels))
  assert result["train_examples"] == len(splits["train"][0])
  # The other linear models and the k-fold estimate tell the levels apart as well.
  assert result["linear_svm"]["test"] == 1.0 and result["complement_nb"]["test"] == 1.0
  assert result["cv"]["folds"] == 5 and len(result["cv"]["per_fold"]) == 5
  assert result["cv"]["mean"] == 1.0 and result["cv"]["examples"] == 400


def test_best_validation_keeps_the_first_of_equals():
  records = [{"kind": "train", "step": 100},
             {"kind": "validation", "step": 100, "price": {"accuracy": 0.30, "macro_f1": 0.2}},
             {"kind": "validation", "step": 200, "price": {"accuracy": 0.40, "macro_f1": 0.3}},
             {"kind": "validation", "step": 300, "price": {"accuracy": 0.40, "macro_f1": 0.5}}]
  best = price_head.best_validation(records)
  assert best["step"] == 200 and best["accuracy"] == 0.40 and best["macro_f1"] == 0.3
  assert price_head.best_validation([{"kind": "train"}]) == {}


def test_rows_with_a_result_file_are_skipped_and_reported(tmp_path, monkeypatch, capsys):
  args = price_head.parse_args([f"--results={tmp_path}", "--seeds=2", "--only=alone"])
  for seed, acc in ((1, 0.40), (2, 0.44)):
    path = price_head.result_path(args, "alone", seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    scores = {"accuracy": acc, "macro_f1": acc - 0.01, "bleu": None}
    with open(path, "w", encoding="utf-8") as f:
      json.dump({"row": "alone", "seed": seed, "test": scores, "validation": scores}, f)
  baseline = {"C": 3.0, "validation": {"accuracy": 0.43}, "test": {
      "accuracy": 0.398, "macro_f1": 0.4, "majority_baseline": 0.216}}

  def no_training(*_):
    raise AssertionError("a row with its result files was run again")
  monkeypatch.setattr(price_head, "run_one", no_training)
  monkeypatch.setattr(price_head, "listings", lambda *_: {})
  computed = []
  monkeypatch.setattr(price_head, "ngram_baseline", lambda _: computed.append(1) or baseline)
  assert price_head.main([f"--results={tmp_path}", "--seeds=2", "--only=alone"]) == 0
  assert price_head.main([f"--results={tmp_path}", "--seeds=2", "--report"]) == 0
  assert computed == [1]  # the second call found RESULTS/baseline.json
  out = capsys.readouterr().out.strip().splitlines()
  summary = json.loads(out[-1])
  assert summary["rows"]["alone"]["test_accuracy"]["mean"] == pytest.approx(0.42)
  assert summary["rows"]["alone"]["test_accuracy"]["n"] == 2
  assert any(line.startswith("| n-gram TF-IDF") and "| 0.398 |" in line for line in out)


def test_unknown_rows_are_refused(capsys):
  assert price_head.main(["--only=nope"]) == 2
  assert capsys.readouterr().err.startswith("error: unknown rows ['nope']")


def test_from_seed_runs_only_the_higher_seeds_and_reports_all(tmp_path, monkeypatch, capsys):
  ran = []

  def fake_run(args, row, seed):
    ran.append((row, seed))
    scores = {"accuracy": 0.4, "macro_f1": 0.4, "bleu": None}
    path = price_head.result_path(args, row, seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    result = {"row": row, "seed": seed, "test": scores, "validation": scores, "wall_s": 1.0}
    with open(path, "w", encoding="utf-8") as f:
      json.dump(result, f)
    return result
  monkeypatch.setattr(price_head, "run_one", fake_run)
  monkeypatch.setattr(price_head, "cached_baseline", lambda _: {
      "C": 1.0, "validation": {"accuracy": 0.4},
      "test": {"accuracy": 0.4, "macro_f1": 0.4, "majority_baseline": 0.2}})
  argv = [f"--results={tmp_path}", "--only=alone", "--seeds=3"]
  assert price_head.main(argv + ["--from_seed=2"]) == 0
  assert ran == [("alone", 2), ("alone", 3)]
  assert price_head.main(argv) == 0
  assert ran == [("alone", 2), ("alone", 3), ("alone", 1)]  # seeds 2 and 3 had their files
  summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert summary["rows"]["alone"]["test_accuracy"]["n"] == 3


def test_a_single_seed_reports_no_interval_as_null_not_nan(tmp_path, monkeypatch, capsys):
  path = price_head.result_path(price_head.parse_args([f"--results={tmp_path}"]), "alone", 1)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  scores = {"accuracy": 0.39, "macro_f1": 0.38, "bleu": None}
  with open(path, "w", encoding="utf-8") as f:
    json.dump({"row": "alone", "seed": 1, "test": scores, "validation": scores}, f)
  monkeypatch.setattr(price_head, "cached_baseline", lambda _: {
      "C": 1.0, "validation": {"accuracy": 0.4},
      "test": {"accuracy": 0.4, "macro_f1": 0.4, "majority_baseline": 0.2}})
  assert price_head.main([f"--results={tmp_path}", "--report"]) == 0
  last = capsys.readouterr().out.strip().splitlines()[-1]

  def refuse(constant):
    raise AssertionError(f"{constant} in the summary line")
  row = json.loads(last, parse_constant=refuse)["rows"]["alone"]["test_accuracy"]
  assert row == {"mean": 0.39, "half_width": None, "n": 1}


def test_text_columns_reach_the_baseline_and_every_row_in_their_own_results(tmp_path, monkeypatch):
  path = tmp_path / "listings.tsv"
  # The title says nothing of the price (its level is the md5 of the number); the room column
  # says all of it.
  level = [int(hashlib.md5(str(i).encode()).hexdigest(), 16) % 4 for i in range(400)]
  path.write_text("name\troom\tprice\n" + "".join(
      f"listing {i}\t{list(WORDS)[k]}\t{list(WORDS.values())[k]:.0f}\n"
      for i, k in enumerate(level)), encoding="utf-8")
  cache = str(tmp_path / "cache")
  titles = price_head.listings(str(path), 4, cache)
  rich = price_head.listings(str(path), 4, cache, text_columns="name,room")
  assert rich["test"][0] == [f"{t} · {r.split(' · ')[1]}" for t, r in zip(titles["test"][0],
                                                                           rich["test"][0])]
  assert (rich["test"][1] == titles["test"][1]).all()  # same rows, same buckets
  assert price_head.ngram_baseline(rich, c_grid=(10.0,))["test"]["accuracy"] == 1.0
  assert price_head.ngram_baseline(titles, c_grid=(10.0,))["test"]["accuracy"] < 0.6
  args = price_head.parse_args([f"--results={tmp_path}/r", f"--out={tmp_path}/o",
                                "--text_columns=name,room"])
  assert args.results == f"{tmp_path}/r/text_name_room"
  commands = []

  class Stop(Exception):
    pass

  def record(command, **_):
    commands.append(command)
    raise Stop
  monkeypatch.setattr(price_head.subprocess, "run", record)
  with pytest.raises(Stop):
    price_head.run_one(args, "alone", 1)
  assert "--tsv_text_columns=name,room" in commands[0]
  assert f"--workdir={tmp_path}/o/text_name_room/alone/seed1" in commands[0]
