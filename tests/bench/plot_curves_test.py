"""bench/plot_curves.py: which records become which panels, the wall clock across a resume, the
files written, and the command line's errors."""
import json
import os
import subprocess
import sys

import matplotlib.image
import pytest

from bench import plot_curves

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _train(step, wall, loss, price):
  return {"kind": "train", "step": step, "wall_seconds": wall, "loss": loss,
          "loss/translation": loss - price, "loss/price": price, "learning_rate": 1e-3}


def _run_records():
  """A run of 40 steps stopped after 20 (final record), then resumed from the step-20 checkpoint."""
  return [_train(10, 5.0, 6.0, 1.5), _train(20, 10.0, 5.0, 1.25),
          {"kind": "validation", "step": 20, "wall_seconds": 12.0, "bleu": 2.5, "chrf": 10.0,
           "price": {"accuracy": 0.3}},
          {"kind": "final", "step": 20, "wall_seconds": 13.0, "bleu": 2.0},
          _train(30, 4.0, 4.5, 1.0), _train(40, 8.0, 4.0, 0.75),
          {"kind": "validation", "step": 40, "wall_seconds": 9.0, "bleu": 6.0},
          {"kind": "evaluate", "bleu": 6.0}]


def test_panels_are_dev_bleu_then_every_loss_and_the_learning_rate():
  series = plot_curves.collect_series(_run_records(), "step")
  assert list(series) == ["validation bleu", "loss", "loss/price", "loss/translation",
                          "learning_rate"]
  assert series["validation bleu"] == ([20, 40], [2.5, 6.0])
  assert series["loss/price"] == ([10, 20, 30, 40], [1.5, 1.25, 1.0, 0.75])


def test_wall_clock_keeps_growing_across_a_resume():
  series = plot_curves.collect_series(_run_records(), "wall_seconds")
  # The second process started its clock at 0 after the first one's final record at 13 s.
  assert series["loss"] == ([5.0, 10.0, 17.0, 21.0], [6.0, 5.0, 4.5, 4.0])
  assert series["validation bleu"] == ([12.0, 22.0], [2.5, 6.0])


def test_a_step_logged_twice_keeps_its_last_record():
  records = [_train(10, 5.0, 6.0, 1.5), _train(20, 10.0, 5.0, 1.2), _train(20, 3.0, 4.9, 1.1)]
  assert plot_curves.collect_series(records, "step")["loss"] == ([10, 20], [6.0, 4.9])


def test_records_without_wall_time_give_only_the_step_curves(tmp_path):
  records = [{"kind": "validation", "step": 5, "bleu": 1.0},
             {"kind": "train", "step": 5, "loss": 3.0, "loss/translation": float("nan")}]
  written = plot_curves.write_curves(records, str(tmp_path / "out"))
  assert list(written) == ["step"]
  assert sorted(os.listdir(tmp_path / "out")) == ["curves_step.png"]
  series = plot_curves.collect_series(records, "step")
  assert list(series) == ["validation bleu", "loss"]  # the all-NaN loss has no points


def test_command_line_writes_both_pngs(tmp_path):
  metrics = tmp_path / "metrics.jsonl"
  lines = [json.dumps(r) for r in _run_records()]
  metrics.write_text("\n".join(lines) + "\n" + '{"kind": "train", "st', encoding="utf-8")
  out = tmp_path / "img" / "run"
  result = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "plot_curves.py"),
                           f"--metrics={metrics}", f"--out={out}"], capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  summary = json.loads(result.stdout.strip().splitlines()[-1])
  assert summary["records"] == 8  # the half-written last line is skipped
  assert sorted(os.listdir(out)) == ["curves_step.png", "curves_wall.png"]
  for path in summary["written"].values():
    height, width, _ = matplotlib.image.imread(path).shape
    assert width > 800 and height > 400  # 3 panels per row, two rows


def test_several_runs_share_the_panels(tmp_path):
  paths = []
  for name, bleu in (("a", 2.5), ("b", 3.5)):
    (tmp_path / name).mkdir()
    records = [_train(10, 5.0, 6.0, 1.5),
               {"kind": "validation", "step": 10, "wall_seconds": 6.0, "bleu": bleu}]
    (tmp_path / name / "metrics.jsonl").write_text(
        "\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    paths.append(str(tmp_path / name / "metrics.jsonl"))
  out = tmp_path / "cmp"
  assert plot_curves.main([f"--metrics={','.join(paths)}", f"--out={out}"]) == 0
  assert sorted(os.listdir(out)) == ["curves_step.png", "curves_wall.png"]
  assert plot_curves.labelled_paths(",".join(paths), "") == {"a": paths[0], "b": paths[1]}
  assert plot_curves.labelled_paths(",".join(paths), "x,y") == {"x": paths[0], "y": paths[1]}


@pytest.mark.parametrize("flags, message", [
    (["--labels=one"], "need 2 distinct non-empty labels"),
    (["--labels=x,x"], "need 2 distinct non-empty labels"),
    (["--labels=x,y", "--tensorboard=tb"], "give one --metrics file"),
])
def test_bad_comparison_flags_are_one_error_line(tmp_path, capsys, flags, message):
  metrics = tmp_path / "metrics.jsonl"
  metrics.write_text('{"kind": "train", "step": 1, "loss": 1.0}\n', encoding="utf-8")
  argv = [f"--metrics={metrics},{metrics}", f"--out={tmp_path / 'out'}"] + flags
  assert plot_curves.main(argv) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
  assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ('{"kind": "train"}\nnot json\n{"kind": "final"}\n', "metrics.jsonl:2 is not a JSON object"),
    ('{"kind": "final", "step": 3, "bleu": 1.0}\n', "no train or validation records"),
])
def test_bad_input_is_one_error_line_and_status_2(tmp_path, capsys, content, message):
  metrics = tmp_path / "metrics.jsonl"
  if content is not None:
    metrics.write_text(content, encoding="utf-8")
  assert plot_curves.main([f"--metrics={metrics}", f"--out={tmp_path / 'out'}"]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
  assert not (tmp_path / "out").exists()
