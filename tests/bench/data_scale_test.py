"""bench/data_scale.py: the synthetic corpus is parallel and seeded; finished sizes are skipped on
rerun (the 4.5M-pair size takes a session of its own)."""
import json
import os
import sys

import pytest

from bench import data_scale


def _lines(path):
  with open(path, encoding="utf-8") as f:
    return f.read().splitlines()


def test_corpus_is_parallel_and_the_same_for_a_seed(tmp_path):
  a = data_scale.write_corpus(str(tmp_path / "a"), 120, seed=3, held_out=7)
  b = data_scale.write_corpus(str(tmp_path / "b"), 120, seed=3, held_out=7)
  for split, n in (("train", 120), ("val", 7), ("test", 7)):
    source, target = _lines(os.path.join(a, f"{split}.en")), _lines(os.path.join(a, f"{split}.de"))
    assert len(source) == len(target) == n
    assert all(line.strip() for line in source + target)
    assert source == _lines(os.path.join(b, f"{split}.en"))
    assert target == _lines(os.path.join(b, f"{split}.de"))
  assert source != target


def test_a_finished_size_is_read_back_not_measured_again(tmp_path, monkeypatch, capsys):
  out = str(tmp_path)
  assert data_scale.finished_row(out, 1000) is None
  data_scale.save_row(out, 1000, {"pairs": 1000, "peak_rss_mb": 1234})
  assert sorted(os.listdir(out)) == ["row_1000.json"]  # no temporary file left behind

  def must_not_run(*args, **kwargs):
    raise AssertionError("a finished size was measured again")

  for name in ("write_corpus", "measure_prepare", "measure_training", "measure_translate"):
    monkeypatch.setattr(data_scale, name, must_not_run)
  monkeypatch.setattr(sys, "argv", ["data_scale.py", "--sizes=1000", f"--out={out}"])
  data_scale.main()
  printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert printed == {"1000": {"pairs": 1000, "peak_rss_mb": 1234}}


def test_an_unfinished_size_is_measured(tmp_path, monkeypatch):
  monkeypatch.setattr(sys, "argv", ["data_scale.py", "--sizes=5", f"--out={tmp_path}"])
  monkeypatch.setattr(data_scale, "write_corpus", lambda *a, **k: (_ for _ in ()).throw(
      RuntimeError("measuring")))
  with pytest.raises(RuntimeError, match="measuring"):
    data_scale.main()
  assert data_scale.finished_row(str(tmp_path), 5) is None
