"""Every flag checked before any work: ranges, choices, paths and combinations.

Pure Python, run right after parsing and before TensorFlow is imported, so a typo fails in well
under a second with one `error: --flag=value: what is accepted` line (exit 2) and nothing is
written. Checks that need the registries (head names and options, combiners, datasets, metrics)
run next, still before any data is read: training/preflight.py.

To check a new flag: give numeric flags a `Range` in RANGES; put anything else (choices, paths,
combinations) in the `check_*` function of its flag group. tests/flags/validation_test.py walks
every flag and fails when one has no bad value on record.
"""
import dataclasses
import os
from typing import Callable, Dict, Mapping

from configs.config import Config
from configs.errors import UserError

MAX_INT = 2**31 - 1  # larger values overflow TensorFlow's int32 step and size arithmetic


@dataclasses.dataclass(frozen=True)
class Range:
  """Accepted numeric values: [low, high] (an open end excludes the bound). NaN is never in."""
  low: float
  high: float
  low_open: bool = False
  high_open: bool = False

  def accepts(self, value) -> bool:
    above = value > self.low if self.low_open else value >= self.low
    below = value < self.high if self.high_open else value <= self.high
    return bool(above and below)

  def describe(self) -> str:
    if self.low == 0 and self.low_open and self.high >= 1e6:
      return "a number > 0"
    if self.high == MAX_INT:
      return f"an integer >= {self.low:g} (at most {MAX_INT})"
    brackets = ("(" if self.low_open else "[") + f"{self.low:g}, {self.high:.10g}" + (
        ")" if self.high_open else "]")
    return f"a value in {brackets}"


# Numeric flags: accepted ranges (the flag's meaning of 0, where 0 is allowed, is in its help).
RANGES: Dict[str, Range] = {
    # run control
    "checkpoint_every": Range(1, MAX_INT), "keep_checkpoints": Range(1, 10_000),
    "eval_every": Range(0, MAX_INT), "early_stop_patience": Range(0, MAX_INT),
    "lr_decay": Range(0, 1, True, True), "log_every": Range(1, MAX_INT),
    "max_minutes": Range(0, 1e7),
    # data
    "vocab_size": Range(8, 1_000_000), "batch_tokens": Range(1, MAX_INT),
    "max_length": Range(1, 1_000_000), "tokenizer_sample": Range(1, MAX_INT),
    "subword_alpha": Range(0, 1000), "subword_nbest": Range(-1, 1000),
    # model
    "d_model": Range(2, 65536), "num_layers": Range(1, 1024), "num_heads": Range(1, 4096),
    "ffn_dim": Range(1, 1_000_000), "dropout": Range(0, 1, high_open=True),
    # training
    "train_steps": Range(0, MAX_INT), "learning_rate": Range(0, 1e6, low_open=True),
    "warmup_steps": Range(0, MAX_INT), "clip_norm": Range(0, 1e12), "seed": Range(0, MAX_INT),
    "accum_steps": Range(1, 65536), "log_grad_stats_every": Range(0, MAX_INT),
    "alternate_ratio": Range(1, MAX_INT), "ema_decay": Range(0, 1, high_open=True),
    "balance_relax": Range(0, 1), "balance_target": Range(0, 1e6, low_open=True),
    "fold_refresh_every": Range(0, MAX_INT),
    # decoding and evaluation
    "beam_size": Range(1, 1024), "length_penalty": Range(0, 1e6),
    "max_decode_length": Range(1, 1_000_000), "eval_batch_size": Range(1, 1_000_000),
    "max_eval_examples": Range(0, MAX_INT), "inspect_lines": Range(1, 100_000),
    "average_last": Range(0, 10_000), "translate_batch_tokens": Range(0, MAX_INT),
}

SPLITS = ("train", "validation", "test")


def _fail(name: str, values: Mapping, accepted: str, preset: str = "") -> None:
  origin = f" (set by --preset={preset})" if preset else ""
  raise UserError(f"--{name}={values[name]}{origin}: {accepted}")


def check_ranges(values: Mapping, explicit: Callable[[str], bool], preset: str) -> None:
  for name, accepted in RANGES.items():
    if name not in values:
      continue
    value = values[name]
    if not accepted.accepts(value):  # NaN fails every comparison, so it is refused too
      _fail(name, values, f"expected {accepted.describe()}", "" if explicit(name) else preset)


def check_run(config: Config) -> None:
  train = config.train
  if not config.workdir.strip():
    raise UserError("--workdir='': give a directory for checkpoints and results")
  if os.path.isfile(config.workdir):
    raise UserError(f"--workdir={config.workdir}: is a file; give a directory")
  if not train.select_metric.strip():
    raise UserError("--select_metric='': give a metric, e.g. bleu, chrf, ter, price/accuracy")
  needs_validation = {"early_stop_patience": train.early_stop_patience > 0,
                      "lr_control": train.lr_control != "none"}
  for name, used in needs_validation.items():
    if used and train.eval_every == 0:
      raise UserError(f"--{name}={getattr(train, name)}: acts on validation scores; give "
                      f"--eval_every=N as well")


def reads_data(config: Config) -> bool:
  """Whether the mode reads the data: training and diagnose, evaluate and inspect on a split.
  Translate, export, and evaluate / inspect on --input_file use the workdir's stored vocabulary
  and label facts only (data/__init__.py), so their data files need not exist any more."""
  return config.mode in ("train", "diagnose") or (
      config.mode in ("evaluate", "inspect") and not config.eval.input_file)


def check_data(config: Config) -> None:
  data = config.data
  for name in ("source_lang", "target_lang"):
    code = getattr(data, name)
    if not code.replace("_", "").replace("-", "").isalnum():
      raise UserError(f"--{name}={code}: expected a language code such as en, de, fr, pt_BR")
  if data.source_lang == data.target_lang:
    raise UserError(f"--target_lang={data.target_lang}: equals --source_lang; translation needs "
                    "two languages")
  main = data.sources[0]
  reads = reads_data(config)  # inference modes use the workdir's stored vocabulary and facts
  if reads and main.dataset == "parallel_text" and not os.path.isdir(main.data_dir):
    raise UserError(f"--data_dir={main.data_dir}: no such directory; --dataset=parallel_text "
                    "reads DATA_DIR/train.<lang>, val.<lang> and test*.<lang>")
  if reads and main.dataset == "tfds" and not os.path.isfile(
      os.path.join(main.data_dir, "dataset_info.json")):
    raise UserError(f"--data_dir={main.data_dir}: not a prepared TFDS dataset version (no "
                    "dataset_info.json); give e.g. ~/tensorflow_datasets/wmt14_translate/de-en/"
                    "1.0.0")
  for i, source in enumerate(data.sources):
    if reads and source.dataset == "tsv" and source.data_dir and not os.path.isfile(
        source.data_dir):
      where = "--data_dir=" if i == 0 else f"--mix=tsv:{source.weight:g}:"
      raise UserError(f"{where}{source.data_dir}: no such file; give a .tsv file "
                      "('' = the embedded Inside Airbnb listings)")
  check_tsv_columns(config)
  if data.data_cache_dir and os.path.isfile(data.data_cache_dir):
    raise UserError(f"--data_cache_dir={data.data_cache_dir}: is a file; give a directory "
                    "('' = ~/.cache/auxseq/data)")
  if data.subword_nbest in (0, 1):
    raise UserError(f"--subword_nbest={data.subword_nbest}: expected -1 (the whole lattice) or "
                    "N >= 2 (the N best segmentations); --subword_alpha=0 turns sampling off")
  if data.batch_tokens < data.max_length + 2:
    raise UserError(f"--batch_tokens={data.batch_tokens}: smaller than one example of "
                    f"--max_length={data.max_length} plus BOS/EOS; give at least "
                    f"{data.max_length + 2}")


def check_tsv_columns(config: Config) -> None:
  """--tsv_text_columns against each tsv source's header (one line read), before any work."""
  columns = config.data.tsv_text_columns
  if not columns or not all(c.strip() for c in columns) or len(set(columns)) != len(columns):
    raise UserError(f"--tsv_text_columns={','.join(columns)}: expected distinct, non-empty "
                    "column names, the title first, e.g. name,room_type,neighbourhood")
  if not reads_data(config):
    return
  from data.text_files import tsv_header  # pylint: disable=import-outside-toplevel
  for source in config.data.sources:
    if source.dataset == "tsv":
      header = tsv_header(source.data_dir)
      missing = [c for c in columns if c not in header]
      if missing:
        raise UserError(f"--tsv_text_columns={','.join(columns)}: no column {missing[0]!r} in "
                        f"{source.data_dir or 'the embedded listings'}; columns: "
                        f"{', '.join(header)}")


def check_model(config: Config) -> None:
  model = config.model
  if model.model == "transformer" and model.d_model % model.num_heads:
    raise UserError(f"--d_model={model.d_model}: must be a multiple of --num_heads="
                    f"{model.num_heads} (each head gets d_model / num_heads dimensions)")
  if model.model == "rnn" and model.d_model % 2:
    raise UserError(f"--d_model={model.d_model}: the RNN needs an even width (its bidirectional "
                    "encoder gives each direction d_model / 2)")


def check_train(config: Config) -> None:
  train = config.train
  if not train.main_task.strip():
    raise UserError("--main_task='': give a loss term name, e.g. translation")
  if train.init_from:
    check_init_from(train.init_from, config.workdir)
  if train.lr_schedule in ("linear", "linear_time") and train.train_steps <= train.warmup_steps:
    raise UserError(f"--lr_schedule={train.lr_schedule} decays to 0 at most at --train_steps="
                    f"{train.train_steps}: give more steps than --warmup_steps={train.warmup_steps}")
  if train.lr_schedule == "linear_time" and not train.max_minutes:
    raise UserError("--lr_schedule=linear_time decays to 0 at the --max_minutes deadline: give "
                    "--max_minutes > 0 (or use --lr_schedule=linear, which ends at --train_steps)")
  if train.lr_schedule == "linear_time" and train.distribute == "multi_worker":
    raise UserError("--lr_schedule=linear_time times each worker's own steps, so workers would "
                    "disagree on the learning rate: use --lr_schedule=linear with "
                    "--distribute=multi_worker")
  if train.distribute == "multi_worker" and not os.environ.get("TF_CONFIG"):
    raise UserError("--distribute=multi_worker: the TF_CONFIG environment variable is not set; "
                    "it describes the cluster and this worker (README, 'Several devices')")


def check_eval(config: Config) -> None:
  ev = config.eval
  if ev.split not in SPLITS:
    raise UserError(f"--split={ev.split}: expected one of {', '.join(SPLITS)}")
  for name in ("input_file", "reference_file"):
    path = getattr(ev, name)
    if path and not os.path.isfile(path):
      raise UserError(f"--{name}={path}: no such file")
  if ev.reference_file and not ev.input_file:
    raise UserError(f"--reference_file={ev.reference_file}: needs --input_file (the sources "
                    "it translates)")
  parent = os.path.dirname(os.path.abspath(ev.output_file)) if ev.output_file else ""
  if parent and not os.path.isdir(parent):
    raise UserError(f"--output_file={ev.output_file}: directory {parent!r} does not exist")
  keep = config.train.keep_checkpoints
  if config.mode != "train":  # an inference mode averages what the trained run kept
    keep = kept_by_workdir(config.workdir, keep)
  check_averaged(f"--average_last={ev.average_last}", ev.average_last, keep)


def kept_by_workdir(workdir: str, default: int) -> int:
  """The --keep_checkpoints WORKDIR was trained with (its config.json), else `default`."""
  from training.workdir import load_config_dict  # pylint: disable=import-outside-toplevel
  try:
    return int(load_config_dict(workdir)["train"]["keep_checkpoints"])
  except (UserError, OSError, ValueError, KeyError, TypeError):
    return default


def check_averaged(given: str, most: int, keep: int) -> None:
  """Averaging `most` checkpoints needs that many kept: `given` names the flag and its value."""
  if most > keep:
    raise UserError(f"{given}: only the last {keep} checkpoints are kept (--keep_checkpoints); "
                    "give at most that or keep more")


def check_init_from(text: str, workdir: str) -> None:
  """--init_from=WORKDIR[@STEP]: a trained run's directory (not this run's), STEP >= 0."""
  source, _, step = text.rpartition("@") if "@" in text else (text, "", "")
  if step and not step.isdigit():
    raise UserError(f"--init_from={text}: expected WORKDIR[@STEP] with STEP an integer >= 0, "
                    f"got step {step!r}")
  if not os.path.isfile(os.path.join(source, "config.json")):
    raise UserError(f"--init_from={text}: {source!r} holds no trained run (no config.json); "
                    "give the --workdir of a run that has checkpoints")
  if os.path.abspath(source) == os.path.abspath(workdir):
    raise UserError(f"--init_from={text}: is this run's own --workdir; rerunning a workdir "
                    "resumes it, --init_from starts a new one")


def check_serving(config: Config) -> None:
  """--export_format=ctranslate2 / --engine=ctranslate2 / --ctranslate2_dir."""
  ev = config.eval
  if ev.ctranslate2_dir and os.path.isfile(ev.ctranslate2_dir):
    raise UserError(f"--ctranslate2_dir={ev.ctranslate2_dir}: is a file; give a CTranslate2 "
                    "model directory (written by --mode=export --export_format=ctranslate2)")
  uses = {"engine": ev.engine == "ctranslate2" and config.mode in ("translate", "evaluate"),
          "export_format": ev.export_format == "ctranslate2" and config.mode == "export"}
  for name, used in uses.items():
    if used and config.model.model != "transformer":
      raise UserError(f"--{name}=ctranslate2: supports --model=transformer only, got "
                      f"--model={config.model.model}")
  if uses["engine"] and ev.output_format != "text":
    raise UserError(f"--output_format={ev.output_format}: --engine=ctranslate2 writes "
                    "translations only; head predictions need --engine=tensorflow")


def check_heads(config: Config) -> None:
  for entry in config.head_modules:
    if entry.endswith(".py") and not os.path.isfile(entry):
      raise UserError(f"--head_modules={entry}: no such file")
    if not entry.endswith(".py") and not all(p.isidentifier() for p in entry.split(".")):
      raise UserError(f"--head_modules={entry}: expected a .py file or a dotted module name")


GROUP_CHECKS = (check_run, check_data, check_model, check_train, check_eval, check_serving,
                check_heads)


def validate(config: Config, values: Mapping, explicit: Callable[[str], bool],
             preset: str = "") -> None:
  """Raises UserError for the first flag (or preset value) that is not accepted.

  Args:
    config: the resolved Config (defaults < preset < explicit flags).
    values: flag name -> resolved value, for every numeric flag.
    explicit: whether a flag was given on the command line (else the preset's or the default).
    preset: the --preset name, named in messages about values it set.
  """
  check_ranges(values, explicit, preset)
  for check in GROUP_CHECKS:
    check(config)
