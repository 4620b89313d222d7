"""Train -> checkpoint -> resume -> evaluate on tiny data written by the test; a copy task learned."""
import dataclasses
import io
import json
import contextlib
import os
import subprocess
import sys

import pytest

from tests_support import tiny_config
from training import loop, modes


def _steps_in(workdir):
  return sorted(int(name.split("-")[1].split(".")[0]) for name in os.listdir(workdir / "checkpoints")
                if name.startswith("ckpt-") and name.endswith(".index"))


def test_train_checkpoint_resume_evaluate(tmp_path, copy_corpus):
  workdir = tmp_path / "run"
  first = loop.train(tiny_config(workdir, copy_corpus, False, train_steps=10, checkpoint_every=5))
  assert first["step"] == 10 and _steps_in(workdir) == [5, 10]
  second = loop.train(tiny_config(workdir, copy_corpus, False, train_steps=15, checkpoint_every=5))
  assert second["step"] == 15 and _steps_in(workdir) == [5, 10, 15]  # resumed, not restarted
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records if r["kind"] == "final"] == [10, 15]
  # Training records every --log_every (10) steps: step 10 of each run (the rerun replays none).
  assert [r["step"] for r in records if r["kind"] == "train"] == [10]
  for key in ("bleu", "chrf", "ter", "signature", "translation"):
    assert key in second
  stdout = io.StringIO()
  with contextlib.redirect_stdout(stdout):
    modes.run_mode(dataclasses.replace(tiny_config(workdir, copy_corpus, False), mode="evaluate"))
  evaluated = json.loads(stdout.getvalue().strip().splitlines()[-1])
  assert evaluated["bleu"] == pytest.approx(second["bleu"])  # same checkpoint, same split
  assert (workdir / "evaluate.hyp").read_text().count("\n") == evaluated["examples"]
  # The same numbers as the sacrebleu command line on the written hypotheses (file order kept).
  cli = os.path.join(os.path.dirname(sys.executable), "sacrebleu")
  references = tmp_path / "refs.de"  # the preset scores the first max_eval_examples lines
  lines = open(os.path.join(copy_corpus, "test2016.de"), encoding="utf-8").read().splitlines()
  references.write_text("\n".join(lines[:evaluated["examples"]]) + "\n", encoding="utf-8")
  for metric in ("bleu", "chrf", "ter"):
    out = subprocess.run([cli, str(references), "-i",
                          str(workdir / "evaluate.hyp"), "-m", metric, "-b", "-w", "4"],
                         capture_output=True, text=True, check=True)
    assert float(out.stdout) == pytest.approx(evaluated[metric], abs=1e-3), metric


def test_copy_task_is_learned(tmp_path, copy_corpus):
  """A small Transformer learns to copy 3-7 word sentences: test BLEU >= 90 within the fast suite."""
  config = tiny_config(tmp_path / "copy", copy_corpus, False, train_steps=400, warmup_steps=60,
                       learning_rate=3e-3, checkpoint_every=400, log_every=100)
  config = dataclasses.replace(config, model=dataclasses.replace(
      config.model, d_model=64, num_layers=2, num_heads=4, ffn_dim=128))
  metrics = loop.train(config)
  assert metrics["bleu"] >= 90.0, metrics


def test_early_stopping_ends_training_after_patience_validations(tmp_path, copy_corpus):
  """A learning rate of 1e-9 leaves validation BLEU unchanged: the first validation (step 5) is
  the best, steps 10 and 15 do not improve, and with patience 2 training stops at step 15 of
  200; the final test score comes from the best checkpoint (step 5)."""
  config = tiny_config(tmp_path / "run", copy_corpus, False, train_steps=200, eval_every=5,
                       early_stop_patience=2, learning_rate=1e-9, warmup_steps=1,
                       checkpoint_every=100)
  config = dataclasses.replace(config, eval=dataclasses.replace(config.eval,
                                                                max_eval_examples=10))
  final = loop.train(config)
  with open(os.path.join(config.workdir, "metrics.jsonl"), encoding="utf-8") as f:
    records = [json.loads(line) for line in f]
  assert [r["step"] for r in records if r.get("kind") == "validation"] == [5, 10, 15]
  latest = os.path.basename(loop.tf.train.latest_checkpoint(os.path.join(config.workdir,
                                                                         "checkpoints")))
  assert latest == "ckpt-15"  # saved where it stopped, not at 200
  assert final["step"] == 5  # the test split is scored with the best (first) checkpoint
  with open(os.path.join(config.workdir, "best", "best.json"), encoding="utf-8") as f:
    assert json.load(f)["bad_evals"] == 2
