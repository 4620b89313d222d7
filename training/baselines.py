"""Baseline schedules for comparison with the joint step (`--schedule`); not recommended.

The seed-000 user tried these before asking how to combine losses: `alternating` (k
translation-only steps, then one step on the auxiliary losses alone) and `two_optimizers` (every
step, translation with one Adam and the auxiliary losses with another, both moving the shared
encoder). Both are built from the same `make_train_step` as the joint step, on subsets of heads.
"""
import tensorflow as tf

from configs.errors import UserError
from training import combine
from training.step import make_train_step, trainable_variables

SCHEDULES = ("joint", "alternating", "two_optimizers")


def check_schedule(config, replicas: int = 1) -> None:
  """Refuses impossible schedule settings before anything is written."""
  train = config.train
  if train.schedule not in SCHEDULES:
    raise UserError(f"unknown --schedule {train.schedule!r}; known: {', '.join(SCHEDULES)}")
  if train.schedule == "joint":
    return
  if not [spec for spec in config.heads if spec.name != "translation"]:
    raise UserError(f"--schedule={train.schedule} needs at least one auxiliary head besides "
                    f"translation (see --heads)")
  if replicas > 1 or train.accum_steps > 1 or train.distribute != "none":
    raise UserError(f"--schedule={train.schedule} is a single-device baseline: use it without "
                    f"--distribute and --accum_steps")


def _split_heads(c):
  main = [h for h in c.heads if h.head_name == "translation"]
  aux = [h for h in c.heads if h.head_name != "translation"]
  return main, aux


def _fixed(term_names):
  return combine.get_combiner_class("fixed")(term_names)


def _merge(first: dict, second: dict) -> dict:
  merged = dict(first)
  merged.update({k: v for k, v in second.items() if k.startswith(("loss/", "weight/", "count/"))})
  merged["loss"] = first["loss"] + second["loss"]
  merged["finite"] = tf.logical_and(first["finite"], second["finite"])
  return merged


def make_schedule(c, strategy=None):
  """Returns `run(step_number, batches) -> result dict` for c.config.train.schedule."""
  from training.components import make_optimizer  # pylint: disable=import-outside-toplevel
  train = c.config.train
  check_schedule(c.config)
  if train.schedule == "joint":
    joint = make_train_step(c.model, c.heads, c.combiner, c.optimizer, train.jit_compile,
                            strategy=strategy)
    return lambda step, batches: joint(batches)
  main, aux = _split_heads(c)
  aux_terms = [t for t in c.term_names if t != "translation"]
  main_step = make_train_step(c.model, main, _fixed(["translation"]), c.optimizer,
                              train.jit_compile)
  if train.schedule == "alternating":
    aux_step = make_train_step(c.model, aux, _fixed(aux_terms), c.optimizer, train.jit_compile)
    period = max(train.alternate_ratio, 1) + 1

    def alternating(step, batches):
      return aux_step(batches) if step % period == period - 1 else main_step(batches)
    return alternating
  aux_combiner = _fixed(aux_terms)
  aux_optimizer = make_optimizer(c.config, trainable_variables(c.model, aux, aux_combiner),
                                 c.schedule)
  aux_step = make_train_step(c.model, aux, aux_combiner, aux_optimizer, train.jit_compile)
  return lambda step, batches: _merge(main_step(batches), aux_step(batches))
