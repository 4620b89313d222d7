"""The work directory: config.json, compatibility guard, atomic writes, metrics.jsonl."""
import contextlib
import dataclasses
import json
import os
import shutil
import tempfile

from absl import logging

from configs.config import (Config, DataConfig, DataSourceConfig, HeadSpec, ModelConfig,
                            to_dict)
from configs.errors import UserError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
# Parts of the config that fix the shape of what is saved: changing them makes old checkpoints,
# vocabularies or data positions meaningless. Everything else (steps, intervals, decoding) may
# change between runs in one workdir.
_FINGERPRINT_KEYS = ("model", "data", "heads", "head_modules")


def atomic_write_text(path: str, text: str) -> None:
  """Writes `text` to a temporary file beside `path`, then renames it over `path`."""
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
  try:
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


@contextlib.contextmanager
def atomic_directory(directory: str, prefix: str):
  """Yields a temporary directory beside `directory` to fill; on success it replaces
  `directory` whole, on any exception it is removed and `directory` stays as it was."""
  parent = os.path.dirname(os.path.abspath(directory))
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=prefix, dir=parent)
  try:
    yield tmp
    if os.path.exists(directory):
      shutil.rmtree(directory)
    os.replace(tmp, directory)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


def _with_new_defaults(saved, defaults):
  """`saved` (a config.json dict) with the fields added to Config since it was written filled
  in at their defaults: a field added at its default keeps older workdirs compatible."""
  if not isinstance(saved, dict) or not isinstance(defaults, dict):
    return saved
  merged = {k: _with_new_defaults(v, defaults.get(k)) for k, v in saved.items()}
  return dict({k: v for k, v in defaults.items() if k not in saved}, **merged)


def _fingerprint(config_dict: dict) -> dict:
  fingerprint = {key: config_dict.get(key) for key in _FINGERPRINT_KEYS}
  fingerprint["combiner"] = config_dict.get("train", {}).get("combiner")
  return fingerprint


def _fields(cls, values: dict) -> dict:
  names = {f.name for f in dataclasses.fields(cls)}
  return {k: v for k, v in values.items() if k in names}


# How the run's translations were scored: an inference mode keeps them unless a flag says
# otherwise (e.g. a preset's --average_last=5 selects the averaged weights).
_DECODING_FIELDS = ("average_last", "beam_size", "length_penalty", "max_decode_length")


def inference_config(config: Config, given=frozenset()) -> Config:
  """The config an inference mode (evaluate, translate, export, inspect, diagnose) runs with:
  the model, data, heads, head modules and EMA setting WORKDIR was trained with (its
  config.json), so `--mode=translate --workdir=W` needs none of the training flags, the
  vocabulary is always the workdir's (another --joint_vocab would otherwise prepare data and
  train a tokenizer there) and `--mode=evaluate --split` scores the data the model learned
  (other data: --input_file / --reference_file). Flags that say otherwise are overridden and
  named in one log line. The decoding settings the run was scored with (`_DECODING_FIELDS`)
  are kept too, except those among `given` (the flags given on the command line). Unchanged
  when WORKDIR holds no config.json (the mode then says that nothing was trained there)."""
  path = os.path.join(config.workdir, CONFIG_FILE)
  if config.mode == "train" or not os.path.exists(path):
    return config
  with open(path, encoding="utf-8") as f:
    saved = _with_new_defaults(json.load(f), json.loads(json.dumps(to_dict(Config()))))
  data = dict(_fields(DataConfig, saved["data"]))
  data["sources"] = tuple(DataSourceConfig(**_fields(DataSourceConfig, source))
                          for source in data["sources"])
  data["tsv_text_columns"] = tuple(data["tsv_text_columns"])  # a JSON list
  trained = dataclasses.replace(
      config, model=ModelConfig(**_fields(ModelConfig, saved["model"])),
      data=DataConfig(**data),
      heads=tuple(HeadSpec(h["name"], tuple(tuple(o) for o in h["options"]))
                  for h in saved["heads"]),
      head_modules=tuple(saved["head_modules"]),
      train=dataclasses.replace(config.train, ema_decay=saved["train"]["ema_decay"]),
      eval=dataclasses.replace(config.eval, **{k: saved["eval"][k] for k in _DECODING_FIELDS
                                               if k not in given}))
  differ = [name for name in ("model", "data", "heads", "head_modules")
            if getattr(trained, name) != getattr(config, name)]
  differ += [k for k in ("ema_decay",) if getattr(trained.train, k) != getattr(config.train, k)]
  differ += [k for k in _DECODING_FIELDS if getattr(trained.eval, k) != getattr(config.eval, k)]
  if differ:
    logging.info("--mode=%s uses the %s that %s was trained with (its %s), not the flags'",
                 config.mode, ", ".join(differ), config.workdir, CONFIG_FILE)
  return trained


def prepare_workdir(config: Config) -> None:
  """Creates the workdir, refuses an incompatible earlier config unless --overwrite, saves it."""
  workdir = config.workdir
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, ".write-probe")
    with open(probe, "w", encoding="utf-8"):
      pass
    os.remove(probe)
  except OSError as e:
    raise UserError(f"workdir {workdir!r} is not writable: {e.strerror}") from None
  path = os.path.join(workdir, CONFIG_FILE)
  current = json.loads(json.dumps(to_dict(config)))
  if os.path.exists(path) and not config.overwrite:
    with open(path, encoding="utf-8") as f:
      previous = json.load(f)
    defaults = json.loads(json.dumps(to_dict(Config())))
    old, new = _fingerprint(_with_new_defaults(previous, defaults)), _fingerprint(current)
    changed = sorted(k for k in new if old.get(k) != new.get(k))
    if changed:
      raise UserError(
          f"workdir {workdir!r} holds a run with a different {', '.join(changed)} config; "
          "use another --workdir, or --overwrite to start afresh there")
  if config.overwrite:
    _clear_run(workdir)
  atomic_write_text(path, json.dumps(current, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def fresh_workdir_rollback(workdir: str):
  """If setting up a run in a workdir that did not exist fails with a user error, removes it:
  bad input leaves nothing behind. An existing workdir is left as it was."""
  fresh = not os.path.exists(workdir)
  try:
    yield
  except UserError:
    if fresh and os.path.isdir(workdir):
      shutil.rmtree(workdir, ignore_errors=True)
    raise


def _clear_run(workdir: str) -> None:
  """--overwrite: removes what a previous run saved (checkpoints, vocab, metrics, tfds cache)."""
  for name in os.listdir(workdir):
    target = os.path.join(workdir, name)
    if os.path.isdir(target):
      shutil.rmtree(target)
    else:
      os.remove(target)


def load_config_dict(workdir: str) -> dict:
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise UserError(f"no {CONFIG_FILE} in workdir {workdir!r}; train there first (--mode=train)")
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def append_metrics(workdir: str, record: dict) -> None:
  """Appends one JSON line to metrics.jsonl (a single write, flushed and synced)."""
  line = json.dumps(record, sort_keys=True) + "\n"
  with open(os.path.join(workdir, METRICS_FILE), "a", encoding="utf-8") as f:
    f.write(line)
    f.flush()
    os.fsync(f.fileno())
