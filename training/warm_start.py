"""`--init_from=WORKDIR[@STEP]`: a new run that starts from a trained run's weights.

What is taken from the source run: its vocabulary (SentencePiece model files, copied into the
new workdir before the data are loaded, so every id means the same piece), the model's weights
(embeddings, encoder, decoder, pooling) and the weights of every head both runs have. What starts
afresh: heads only the new run has (initialised from (seed, head name) exactly as in a fresh
run), the combiner's state, the optimizer and its slots, the learning-rate schedule and the step.

Which weights: checkpoint STEP of SOURCE/checkpoints when given; otherwise the source run's last
checkpoint, or the float32 mean of its last N checkpoints when the source run evaluated with
`--average_last=N` (N > 1), computed as training/averaging.py computes it. EMA shadows of a
source trained with `--ema_decay` are not used (the raw weights are).

Every shape is checked before anything is assigned: a mismatch is one error line naming the
variable and both shapes. A workdir that already has checkpoints resumes them instead (the warm
start happened when it was created); where it started from is in WORKDIR/init_from.json and in
metrics.jsonl (`kind: init_from`).
"""
import dataclasses
import json
import os
import shutil
from typing import List, Optional

import numpy as np
import tensorflow as tf
from absl import logging

from configs.config import Config
from configs.errors import UserError
from training import workdir as wd

RECORD_FILE = "init_from.json"
_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


@dataclasses.dataclass
class Source:
  """A resolved --init_from: the run's directory, its config.json and the checkpoint path(s)."""
  text: str
  workdir: str
  config: dict
  paths: List[str]


def parse(text: str):
  """'DIR@STEP' -> (DIR, STEP); 'DIR' -> (DIR, None)."""
  if "@" in text:
    directory, _, step = text.rpartition("@")
    if not step.isdigit():
      raise UserError(f"--init_from={text}: expected WORKDIR[@STEP] with STEP an integer >= 0")
    return directory, int(step)
  return text, None


def _checkpoint_paths(text: str, directory: str, step: Optional[int], config: dict) -> List[str]:
  state = tf.train.get_checkpoint_state(os.path.join(directory, "checkpoints"))
  paths = list(state.all_model_checkpoint_paths) if state else []
  if not paths:
    raise UserError(f"--init_from={text}: no checkpoint in {directory}/checkpoints")
  if step is not None:
    wanted = [p for p in paths if p.endswith(f"ckpt-{step}")]
    if not wanted:
      steps = ", ".join(p.rsplit("-", 1)[-1] for p in paths)
      raise UserError(f"--init_from={text}: no checkpoint of step {step} there; kept: {steps}")
    return wanted
  average = int(config.get("eval", {}).get("average_last", 0) or 0)
  return paths[-average:] if average > 1 else paths[-1:]


def _check_vocabulary(text: str, source: dict, config: Config) -> None:
  for key in ("joint_vocab", "vocab_size"):
    theirs, ours = source.get("data", {}).get(key), getattr(config.data, key)
    if theirs != ours:
      raise UserError(f"--init_from={text}: the source run has --{key}={theirs}, this run "
                      f"--{key}={ours}; the vocabulary is the source's, give --{key}={theirs}")


def prepare(config: Config) -> Optional[Source]:
  """Resolves --init_from and copies the source vocabulary in; None when there is nothing to do
  (no --init_from, or the workdir already has checkpoints: it resumes). Call it before the data
  are loaded (build_components)."""
  text = config.train.init_from
  if not text:
    return None
  if tf.train.latest_checkpoint(os.path.join(config.workdir, "checkpoints")):
    logging.info("--init_from=%s: %s has checkpoints, resuming them", text, config.workdir)
    return None
  directory, step = parse(text)
  source_config = wd.load_config_dict(directory)
  _check_vocabulary(text, source_config, config)
  paths = _checkpoint_paths(text, directory, step, source_config)
  names = [n for n in ("spm.model", "spm.src.model", "spm.tgt.model")
           if os.path.exists(os.path.join(directory, n))]
  if not names:
    raise UserError(f"--init_from={text}: no SentencePiece model (spm*.model) in {directory}")
  for name in names:
    shutil.copyfile(os.path.join(directory, name), os.path.join(config.workdir, name))
  return Source(text, directory, source_config, paths)


def _read(paths: List[str], keys: List[str]) -> List[np.ndarray]:
  """The float32 mean over `paths` of each float key (integer keys: the newest value)."""
  readers = [tf.train.load_checkpoint(p) for p in paths]
  values = []
  for key in keys:
    parts = [r.get_tensor(key) for r in readers]
    if np.issubdtype(parts[-1].dtype, np.floating):
      total = None
      for part in parts:
        part = np.asarray(part, np.float32)
        total = part if total is None else total + part
      values.append(total / np.float32(len(parts)))
    else:
      values.append(parts[-1])
  return values


def _matched(prefix: str, what: str, variables, shapes: dict, source: Source) -> List[str]:
  """Checkpoint keys of `variables` (keyed by position, as components.variables_checkpoint
  keys them) after checking every shape against the source checkpoint."""
  keys = [f"{prefix}/v{i:04d}{_SUFFIX}" for i in range(len(variables))]
  for key, variable in zip(keys, variables):
    here = list(variable.shape)
    if key not in shapes:
      raise UserError(f"--init_from={source.text}: {what} variable {variable.path} {here} has "
                      f"no counterpart in {source.paths[-1]} (a different architecture)")
    if list(shapes[key]) != here:
      raise UserError(f"--init_from={source.text}: {what} variable {variable.path} has shape "
                      f"{here} here but {list(shapes[key])} in {source.paths[-1]}")
  extra = f"{prefix}/v{len(variables):04d}{_SUFFIX}"
  if extra in shapes:
    raise UserError(f"--init_from={source.text}: the source's {what} has more variables than "
                    f"this run's ({len(variables)}; a different architecture)")
  return keys


def restore(c, source: Optional[Source]) -> None:
  """Assigns the source weights to the model and the shared heads of fresh components `c`,
  after checking every shape; records what was taken in WORKDIR/init_from.json."""
  if source is None:
    return
  shapes = tf.train.load_checkpoint(source.paths[-1]).get_variable_to_shape_map()
  plan = [(c.model.variables, _matched("model", "model", c.model.variables, shapes, source))]
  restored, fresh = [], []
  for head in c.heads:
    if not head.variables:
      continue
    if f"head_{head.head_name}/v0000{_SUFFIX}" in shapes:
      what = f"head {head.head_name!r}"
      plan.append((head.variables, _matched(f"head_{head.head_name}", what, head.variables,
                                            shapes, source)))
      restored.append(head.head_name)
    else:
      fresh.append(head.head_name)
  for variables, keys in plan:
    for variable, value in zip(variables, _read(source.paths, keys)):
      variable.assign(tf.cast(value, variable.dtype))
  step_key = f"step{_SUFFIX}"
  record = {"init_from": source.text, "source_workdir": os.path.abspath(source.workdir),
            "checkpoints": source.paths, "restored_heads": restored, "fresh_heads": fresh,
            "source_step": int(tf.train.load_checkpoint(source.paths[-1]).get_tensor(step_key))
            if step_key in shapes else None}
  wd.atomic_write_text(os.path.join(c.config.workdir, RECORD_FILE),
                       json.dumps(record, indent=2, sort_keys=True) + "\n")
  wd.append_metrics(c.config.workdir, dict(record, kind="init_from", step=0))
  logging.info("warm start from %s: model%s restored; fresh: %s", ", ".join(source.paths),
               "".join(f", head {h}" for h in restored), ", ".join(fresh) or "nothing")
