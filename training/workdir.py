"""The work directory: config.json, compatibility guard, atomic writes, metrics.jsonl."""
import contextlib
import json
import os
import shutil
import tempfile

from configs.config import Config, to_dict
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
