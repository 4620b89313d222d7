"""Every flag, given a bad value, fails with one line naming it, before any work.

The walk covers every flag defined in flags/*_flags.py: a flag without a bad value on record
(in RANGES, by its type, or in STRING_CASES below) fails test_every_flag_has_bad_values, so a
new flag cannot skip validation.
"""
import json
import pathlib
import subprocess
import sys

import pytest
from absl import flags as absl_flags

import flags as app_flags
from configs.errors import UserError
from flags import validation
from training import preflight

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODULES = ("run_flags", "data_flags", "model_flags", "train_flags", "eval_flags", "head_flags")
MISSING = "/nonexistent/auxseq"

# Flags whose bad values are not derived from their type or range: each case is the extra
# command-line arguments that must be refused.
STRING_CASES = {
    "workdir": [["--workdir="], [f"--workdir={ROOT / 'main.py'}"]],
    "preset": [["--preset=nope"]],
    "select_metric": [["--select_metric="], ["--select_metric=blue"],
                      ["--select_metric=nohead/accuracy"]],
    "dataset": [["--dataset=nope"], ["--dataset=parallel_text", f"--data_dir={MISSING}"]],
    "data_dir": [["--dataset=parallel_text", f"--data_dir={MISSING}"],
                 ["--dataset=tfds", f"--data_dir={ROOT}"],
                 ["--dataset=tsv", f"--data_dir={MISSING}.tsv"]],
    "data_cache_dir": [[f"--data_cache_dir={ROOT / 'main.py'}"]],
    "tsv_text_columns": [["--tsv_text_columns="], ["--tsv_text_columns=name,room_typo"],
                         ["--tsv_text_columns=name,name"]],
    "subword_nbest": [["--subword_nbest=0"], ["--subword_nbest=1"],
                      ["--subword_alpha=0.2", "--subword_nbest=1"]],
    "source_lang": [["--source_lang="], ["--source_lang=e n"], ["--source_lang=de"]],
    "target_lang": [["--target_lang="], ["--target_lang=en"], ["--target_lang=d/e"]],
    "mix": [["--mix=tsv:x"], ["--mix=tsv:0"], ["--mix=tsv:-1"], ["--mix=nope:0.1"],
            ["--mix=tsv:inf"]],
    "combiner": [["--combiner=nope"],
                 ["--combiner=pcgrad", "--gradient_space=boundary", "--accum_steps=2"]],
    "main_task": [["--main_task="], ["--combiner=metabalance", "--main_task=nope"]],
    "split": [["--split=dev"]],
    "input_file": [[f"--input_file={MISSING}"]],
    "output_file": [[f"--output_file={MISSING}/out.txt"]],
    "reference_file": [[f"--reference_file={MISSING}"], [f"--reference_file={ROOT / 'main.py'}"]],
    "heads": [["--heads=pri ce"], ["--heads=nope"], ["--heads=price:wieght=2"],
              ["--heads=price:weight=abc"], ["--heads=price;price"],
              ["--heads=price:label_smoothing=1"], ["--heads=price:dropout=-0.1"]],
    "head_modules": [[f"--head_modules={MISSING}.py"], ["--head_modules=not a module"]],
    "init_from": [[f"--init_from={MISSING}"], [f"--init_from={ROOT}@x"],
                  [f"--init_from={ROOT}"]],  # the repository holds no config.json
    "ctranslate2_dir": [[f"--ctranslate2_dir={ROOT / 'main.py'}"]],
}
# Combinations: values each fine alone.
COMBINATION_CASES = [
    ["--d_model=250", "--num_heads=4"],
    ["--model=rnn", "--d_model=33", "--num_heads=1"],
    ["--early_stop_patience=2"],                      # without --eval_every
    ["--lr_control=plateau"],
    ["--lr_schedule=linear", "--train_steps=300", "--warmup_steps=300"],
    ["--lr_schedule=linear_time", "--max_minutes=5", "--train_steps=300", "--warmup_steps=300"],
    ["--lr_schedule=linear_time"],                    # without --max_minutes
    ["--batch_tokens=40", "--max_length=64"],
    ["--average_last=6"],                             # 5 checkpoints are kept
    ["--average_last=8", "--keep_checkpoints=7"],
    ["--schedule=alternating", "--heads="],
    ["--distribute=multi_worker"],                    # TF_CONFIG unset in the test
    ["--model=rnn", "--heads=attention_entropy:layers=0+1"],  # the RNN has one attention map
    ["--num_layers=2", "--heads=coverage:layers=2"],
    ["--num_heads=2", "--heads=attention_entropy:heads=3"],
    ["--combiner=metabalance", "--gradient_space=boundary"],
    ["--mode=export", "--export_format=ctranslate2", "--model=rnn"],
    ["--mode=translate", "--engine=ctranslate2", "--model=rnn"],
    ["--mode=translate", "--engine=ctranslate2", "--output_format=jsonl"],
]


def _app_flags():
  """Every flag defined by a module of the flags package (a new flags module is walked too)."""
  modules = [m for m in absl_flags.FLAGS.flags_by_module_dict() if m.startswith("flags.")]
  assert set(f"flags.{m}" for m in MODULES) <= set(modules)
  return {f.name: f for m in modules for f in absl_flags.FLAGS.get_flags_for_module(m)}


def _number(x: float, integer: bool) -> str:
  return str(int(x)) if integer else repr(float(x))


def _typed_cases(flag) -> list:
  """Bad values derived from the flag's type and, for numbers, its accepted range."""
  kind = flag.flag_type()
  if kind == "bool":
    return [[f"--{flag.name}=maybe"]]
  if kind.startswith("enum") or isinstance(flag.parser, absl_flags.EnumParser):
    return [[f"--{flag.name}=bogus"]]
  accepted = validation.RANGES.get(flag.name)
  if kind not in ("int", "float") or accepted is None:
    return []
  integer = kind == "int"
  low = accepted.low if accepted.low_open else accepted.low - 1
  high = accepted.high if accepted.high_open else accepted.high + 1
  cases = [[f"--{flag.name}=abc"], [f"--{flag.name}="],
           [f"--{flag.name}={_number(low, integer)}"], [f"--{flag.name}={_number(high, integer)}"]]
  if not integer:
    cases += [[f"--{flag.name}=nan"], [f"--{flag.name}=inf"]]
  return cases


def _all_cases():
  cases = []
  for name, flag in sorted(_app_flags().items()):
    for args in _typed_cases(flag) + STRING_CASES.get(name, []):
      cases.append(pytest.param(name, args, id=f"{name}:{' '.join(args)}"))
  for args in COMBINATION_CASES:
    cases.append(pytest.param("", args, id="combination:" + " ".join(args)))
  return cases


@pytest.fixture(autouse=True)
def _clean_flags(monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  absl_flags.FLAGS.unparse_flags()
  yield
  absl_flags.FLAGS.unparse_flags()


def test_every_flag_has_bad_values():
  missing = [name for name, flag in _app_flags().items()
             if not _typed_cases(flag) and name not in STRING_CASES]
  assert not missing, f"flags with no bad value on record (add a Range or a case): {missing}"


@pytest.mark.parametrize("name,args", _all_cases())
def test_bad_value_is_refused_in_one_line(name, args, tmp_path):
  workdir = tmp_path / "wd"
  given = args if any(a.startswith("--workdir") for a in args) else [f"--workdir={workdir}", *args]
  with pytest.raises((absl_flags.Error, UserError)) as caught:
    absl_flags.FLAGS(["main.py", *given])
    config = app_flags.config_from_flags()
    preflight.check_registered(config)
  message = str(caught.value)
  assert "\n" not in message.strip()
  named = [name] if name else [a[2:].split("=")[0] for a in args]  # a combination: any of them
  assert any(f"--{n}" in message or isinstance(caught.value, absl_flags.Error) and n in message
             for n in named), message
  assert not workdir.exists()


def test_good_values_pass():
  absl_flags.FLAGS(["main.py", "--d_model=64", "--num_heads=4", "--dropout=0", "--beam_size=1",
                    "--train_steps=0", "--eval_every=10", "--early_stop_patience=2",
                    "--average_last=7", "--keep_checkpoints=7"])
  preflight.check_registered(app_flags.config_from_flags())


def test_inference_modes_average_what_the_workdir_kept(tmp_path):
  """--average_last is checked against the --keep_checkpoints the workdir was trained with
  (its config.json), not the flag's default: a run that kept 20 may average 10 when scored."""
  (tmp_path / "config.json").write_text(json.dumps({"train": {"keep_checkpoints": 20}}),
                                        encoding="utf-8")
  absl_flags.FLAGS(["main.py", "--mode=evaluate", f"--workdir={tmp_path}", "--average_last=10"])
  assert app_flags.config_from_flags().eval.average_last == 10
  for argv in (["--mode=evaluate", "--average_last=21"], ["--average_last=10"]):  # train: 5 kept
    absl_flags.FLAGS.unparse_flags()
    absl_flags.FLAGS(["main.py", f"--workdir={tmp_path}", *argv])
    with pytest.raises(UserError, match=r"--average_last=\d+: only the last (20|5) checkpoints"):
      app_flags.config_from_flags()


def test_preset_values_are_checked_and_named():
  absl_flags.FLAGS(["main.py", "--preset=tiny", "--num_heads=3"])  # tiny: d_model 32
  with pytest.raises(UserError, match=r"--d_model=32: must be a multiple of --num_heads=3"):
    app_flags.config_from_flags()
  absl_flags.FLAGS.unparse_flags()
  absl_flags.FLAGS(["main.py", "--preset=tiny", "--max_length=600"])  # tiny: batch_tokens 512
  with pytest.raises(UserError, match=r"--batch_tokens=512"):
    app_flags.config_from_flags()


def test_linear_time_is_refused_with_several_workers(monkeypatch):
  """Each worker would time its own steps and move the schedule's end on its own."""
  monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["localhost:1"]},
                                              "task": {"type": "worker", "index": 0}}))
  absl_flags.FLAGS(["main.py", "--lr_schedule=linear_time", "--max_minutes=5",
                    "--distribute=multi_worker"])
  with pytest.raises(UserError, match=r"--lr_schedule=linear_time times each worker's own steps"):
    app_flags.config_from_flags()


# The table: each must be one `error:` line, exit 2, nothing written, TF never loaded.
CLI_CASES = [["--d_model=250", "--num_heads=4"], ["--dropout=1"], ["--learning_rate=0"],
             ["--checkpoint_every=0"], ["--log_every=0"], ["--batch_tokens=0"], ["--beam_size=0"]]

_PROBE = """
import runpy, sys
sys.argv = ["main.py"] + {args!r}
try:
  runpy.run_path("main.py", run_name="__main__")
except SystemExit as e:
  sys.stderr.write("EXIT %s TF %s\\n" % (e.code, "tensorflow" in sys.modules))
"""


@pytest.mark.parametrize("args", CLI_CASES, ids=lambda a: " ".join(a))
def test_cli_refuses_before_tensorflow(args, tmp_path):
  workdir = tmp_path / "wd"
  proc = subprocess.run([sys.executable, "-c", _PROBE.format(args=[*args, f"--workdir={workdir}"])],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 2, proc.stderr
  assert lines[0].startswith("error: --"), proc.stderr
  assert lines[1] == "EXIT 2 TF False"
  assert proc.stdout == "" and not workdir.exists()


def test_real_cli_exit_status_and_single_line(tmp_path):
  proc = subprocess.run([sys.executable, "main.py", "--dropout=1", f"--workdir={tmp_path / 'w'}"],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2
  assert proc.stderr.splitlines() == ["error: --dropout=1.0: expected a value in [0, 1)"]


def test_parallel_text_without_heads_trains_translation_alone(tmp_path):
  data_dir = tmp_path  # only its existence is checked before data preparation
  absl_flags.FLAGS(["main.py", "--dataset=parallel_text", f"--data_dir={data_dir}"])
  config = app_flags.config_from_flags()
  assert config.heads == ()
  assert [s.dataset for s in config.data.sources] == ["parallel_text"]
  absl_flags.FLAGS.unparse_flags()
  absl_flags.FLAGS(["main.py", "--dataset=parallel_text", f"--data_dir={data_dir}",
                    "--heads=price", "--mix=tsv:0.1"])
  config = app_flags.config_from_flags()
  assert [h.name for h in config.heads] == ["price"]
  assert [(s.dataset, s.weight) for s in config.data.sources] == [("parallel_text", 1.0),
                                                                  ("tsv", 0.1)]


def test_default_job_keeps_its_heads_and_mix():
  absl_flags.FLAGS(["main.py"])
  config = app_flags.config_from_flags()
  assert [h.name for h in config.heads] == ["price", "domain", "attention_entropy"]
  assert [s.dataset for s in config.data.sources] == ["gettext", "tsv"]


def test_run_summary_names_the_folded_regularisers_only_when_they_are_folded():
  capped = "at a capped scale refreshed every 10 steps"
  fixed = "at their weights, not capped"
  cases = ((["--heads=price;coverage;attention_entropy", "--fold_regularisers"],
            ("coverage, attention_entropy", capped)),
           (["--heads=price;attention_entropy", "--fold_regularisers", "--fold_refresh_every=0"],
            ("attention_entropy", fixed)),
           (["--heads=price;attention_entropy"], ("attention_entropy", capped)),  # the default
           (["--heads=price;attention_entropy", "--nofold_regularisers"], None),
           (["--heads=price;attention_entropy", "--fold_regularisers",
             "--balance_strategy=both"], None),
           (["--heads=price;domain", "--fold_regularisers"], None))
  for argv, folded in cases:
    absl_flags.FLAGS.unparse_flags()
    absl_flags.FLAGS(["main.py", *argv])
    text = preflight.describe_run(app_flags.config_from_flags())
    lines = [line for line in text.splitlines() if line.startswith("  folded:")]
    assert lines == ([f"  folded:   {folded[0]} (translation's regularisers: in its gradient "
                      f"{folded[1]}; --fold_regularisers)"] if folded else []), argv


def test_run_summary_lists_resolved_options():
  absl_flags.FLAGS(["main.py", "--heads=price:weight=0.3;attention_entropy:weight=0",
                    "--combiner=uncertainty"])
  text = preflight.describe_run(app_flags.config_from_flags())
  assert "mix:      tsv:0.15" in text
  price = next(line for line in text.splitlines() if line.strip().startswith("price("))
  assert "weight=0.3," in price and "grad_scale=1.0" in price and "buckets=" in price
  assert "attention_entropy(weight=0.0" in text and "(weight 0: not built)" in text
  assert "combiner: uncertainty, schedule joint, clip_norm 1, precision" in text  # global clip
  assert "subword sampling" not in text
  absl_flags.FLAGS.unparse_flags()
  absl_flags.FLAGS(["main.py", "--subword_alpha=0.2", "--subword_nbest=8"])
  text = preflight.describe_run(app_flags.config_from_flags())
  assert "vocabulary 4000, subword sampling alpha 0.2 nbest 8" in text
  # the defaults: three heads under the capped metabalance, clipped per term
  assert ("combiner: metabalance (shrink towards 0.3x translation, relax 1), schedule joint, "
          "clip_norm 1 per term") in text
  assert "  folded:   attention_entropy (" in text  # --fold_regularisers is on by default
