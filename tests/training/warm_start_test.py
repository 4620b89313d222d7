"""--init_from=WORKDIR[@STEP]: a new run starts from a trained run's model, shared heads and
vocabulary; new heads start as in a fresh run; mismatches are one error line before training;
the new run trains a new head, keeps translating and resumes like any run."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import write_copy_corpus
from tests_support import run_main

HEAD_KEY = "/v0000/.ATTRIBUTES/VARIABLE_VALUE"


def _args(workdir, data_dir, *extra):
  return ["--preset=tiny", f"--workdir={workdir}", "--dataset=parallel_text",
          f"--data_dir={data_dir}", "--mix=", "--vocab_size=64", "--learning_rate=3e-3",
          "--beam_size=1", "--max_eval_examples=0", *extra]


def _last_json(result) -> dict:
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def source(tmp_path_factory):
  """A copy-task run with a length_ratio head, 200 steps, and its test-split evaluation."""
  root = tmp_path_factory.mktemp("warm")
  data_dir = write_copy_corpus(root / "copy")
  args = _args(root / "src", data_dir, "--heads=length_ratio:hidden=16")
  _last_json(run_main(*args, "--train_steps=200"))
  evaluated = _last_json(run_main(*args, "--mode=evaluate"))
  return root, data_dir, evaluated


def _tensor(workdir, key, step=0):
  return tf.train.load_checkpoint(os.path.join(workdir, "checkpoints", f"ckpt-{step}")
                                  ).get_tensor(key)


def test_step_zero_translates_exactly_as_the_source(source):
  root, data_dir, evaluated = source
  heads = "--heads=length_ratio:hidden=16;bag_of_words"
  final = _last_json(run_main(*_args(root / "new", data_dir, heads, "--train_steps=0",
                                     f"--init_from={root / 'src'}")))
  assert final["bleu"] == evaluated["bleu"] > 30  # measured 48.64 after 200 steps
  new_lines = (root / "new" / "test.hyp").read_text(encoding="utf-8")
  assert new_lines == (root / "src" / "evaluate.hyp").read_text(encoding="utf-8")
  record = json.loads((root / "new" / "init_from.json").read_text(encoding="utf-8"))
  assert record["source_step"] == 200 and record["checkpoints"][0].endswith("ckpt-200")
  assert "length_ratio" in record["restored_heads"] and record["fresh_heads"] == ["bag_of_words"]
  assert json.load(open(root / "new" / "config.json"))["train"]["init_from"] == str(root / "src")
  np.testing.assert_array_equal(_tensor(root / "new", "head_length_ratio" + HEAD_KEY),
                                _tensor(root / "src", "head_length_ratio" + HEAD_KEY, 200))
  # The new head starts exactly as in a fresh run with the same seed.
  _last_json(run_main(*_args(root / "fresh", data_dir, heads, "--train_steps=0")))
  np.testing.assert_array_equal(_tensor(root / "new", "head_bag_of_words" + HEAD_KEY),
                                _tensor(root / "fresh", "head_bag_of_words" + HEAD_KEY))
  assert not np.array_equal(_tensor(root / "new", "model" + HEAD_KEY),
                            _tensor(root / "fresh", "model" + HEAD_KEY))


@pytest.mark.parametrize("extra,expected", [
    (["--ffn_dim=128"], "has shape [32, 128] here but [32, 64] in"),
    (["--heads=length_ratio:hidden=8"], "head 'length_ratio' variable"),
    (["--vocab_size=80"], "the source run has --vocab_size=64, this run --vocab_size=80"),
])
def test_mismatch_is_one_line_before_training(source, extra, expected):
  root, data_dir, _ = source
  workdir = root / f"bad{abs(hash(expected)) % 1000}"
  result = run_main(*_args(workdir, data_dir, "--heads=length_ratio:hidden=16", *extra,
                           f"--init_from={root / 'src'}"))
  assert result.returncode == 2, result.stderr[-2000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error: --init_from=") and expected in last, last
  assert not workdir.exists()


def test_new_head_trains_translation_holds_and_resume_works(source):
  root, data_dir, evaluated = source
  args = _args(root / "tune", data_dir, "--heads=length_ratio:hidden=16;bag_of_words:"
               "grad_scale=0,weight=1", f"--init_from={root / 'src'}", "--log_every=5")
  first = _last_json(run_main(*args, "--train_steps=40"))
  records = [json.loads(line) for line in open(root / "tune" / "metrics.jsonl")]
  losses = [r["loss/bag_of_words"] for r in records if r["kind"] == "train"]
  # The new head learns (measured: 35.6 -> 29.3 over 40 steps, a ratio of 0.82).
  assert np.mean(losses[-2:]) < 0.9 * np.mean(losses[:2]), losses
  assert first["bleu"] >= evaluated["bleu"] - 5.0, (first["bleu"], evaluated["bleu"])
  resumed = run_main(*args, "--train_steps=60")
  assert _last_json(resumed)["step"] == 60
  assert "resumed from" in resumed.stderr and "ckpt-40" in resumed.stderr
  records = [json.loads(line) for line in open(root / "tune" / "metrics.jsonl")]
  assert sum(r["kind"] == "init_from" for r in records) == 1  # the warm start happened once


def test_probe_stage_trains_only_the_new_head(source):
  """docs/adding_a_head.md's first stage: translation at weight 0 and the new head at
  grad_scale 0 leave every model weight bit-identical (Adam moves nothing with zero gradients)
  while the head trains, so the source's translations are kept exactly."""
  root, data_dir, evaluated = source
  args = _args(root / "probe", data_dir, "--heads=translation:weight=0;bag_of_words:grad_scale=0",
               f"--init_from={root / 'src'}", "--checkpoint_every=10")
  final = _last_json(run_main(*args, "--train_steps=20"))
  assert final["bleu"] == evaluated["bleu"]
  source_ckpt = tf.train.load_checkpoint(str(root / "src" / "checkpoints" / "ckpt-200"))
  reader = {step: tf.train.load_checkpoint(str(root / "probe" / "checkpoints" / f"ckpt-{step}"))
            for step in (10, 20)}
  dtypes = reader[20].get_variable_to_dtype_map()
  model_keys = [k for k in dtypes if k.startswith("model/") and dtypes[k] == tf.float32]
  assert len(model_keys) > 10
  for key in model_keys:
    np.testing.assert_array_equal(source_ckpt.get_tensor(key), reader[20].get_tensor(key), key)
  head = "head_bag_of_words" + HEAD_KEY
  assert not np.array_equal(reader[10].get_tensor(head), reader[20].get_tensor(head))
