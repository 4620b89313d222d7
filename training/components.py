"""Builds what every mode needs from a Config: data, model, heads, combiner, optimizer, checkpoints.

Construction order and seeding make initial weights independent of which heads exist: the model
and each head are constructed under a seed derived from (seed, their own path).
"""
import dataclasses
import os
from typing import List

import keras
import numpy as np
import tensorflow as tf

import data as data_lib
from configs.config import Config
from configs.errors import UserError
from heads import spec as head_spec
from heads.base import Head, HeadContext
from heads.registry import get_head_class
from model.seeding import component_seed
from model.seq2seq import build_model
from training import combine, combine_balance, combine_grad  # noqa: F401  (registers them)
from training import term_gradients
from training.schedules import WarmupSchedule, make_schedule
from training.step import compute_losses

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


@dataclasses.dataclass
class Components:
  config: Config
  bundle: object
  model: keras.Model
  heads: List[Head]
  combiner: combine.Combiner
  optimizer: keras.optimizers.Optimizer
  step: tf.Variable
  term_names: tuple
  schedule: WarmupSchedule = None
  ema: object = None  # training/averaging.py EMA, set by attach_ema when --ema_decay > 0


def set_precision(precision: str) -> None:
  if precision not in PRECISIONS:
    raise UserError(f"unknown --precision {precision!r}; known: {', '.join(PRECISIONS)}")
  keras.mixed_precision.set_global_policy(precision)


def _dummy_batch() -> dict:
  """Two examples: one translated and aligned, one priced without translation (builds lazy
  variables; heads that do not read `alignment` ignore it)."""
  return {"source": tf.constant([[5, 6, 3], [7, 3, 0]], tf.int32),
          "target_in": tf.constant([[2, 5, 6], [0, 0, 0]], tf.int32),
          "target_out": tf.constant([[5, 6, 3], [0, 0, 0]], tf.int32),
          "price": tf.constant([np.nan, 80.0], tf.float32),
          "domain": tf.constant([0, -1], tf.int32),
          "alignment": tf.constant(["0-0 1-1", ""], tf.string)}


# Keys every batch carries (DESIGN.md's batch table); a head's labels must be among them.
BATCH_KEYS = ("source", "target_in", "target_out", "price", "domain")
# Keys only data that has them carries (label_info[key] > 0), and how to provide them.
OPTIONAL_KEYS = {"alignment": "give word alignment files beside the parallel text "
                              "(DATA_DIR/train.align, Pharaoh i-j a line; see docs/data.md)"}


def check_labels(heads) -> None:
  """A head whose label is not in the data is a user error, not a KeyError mid-trace."""
  for head in heads:
    wanted = list(head.labels) + [getattr(head.options, "label", None)]
    for key in filter(None, wanted):
      if key in BATCH_KEYS:
        continue
      if key in OPTIONAL_KEYS:
        if (getattr(head.context, "label_info", None) or {}).get(key):
          continue
        raise UserError(f"head {head.head_name!r} needs label {key!r}, which the data does not "
                        f"provide; {OPTIONAL_KEYS[key]}")
      raise UserError(f"head {head.head_name!r} needs label {key!r}, which the data does not "
                      f"provide; labels in every batch: {', '.join(BATCH_KEYS)}")


def make_optimizer(config: Config, variables, schedule,
                   per_term: bool = False) -> keras.optimizers.Optimizer:
  """Adam with the global-norm clip, unless the combiner clips each term (`per_term`)."""
  train = config.train
  clip = None if per_term else train.clip_norm or None
  optimizer = keras.optimizers.Adam(learning_rate=schedule, beta_1=0.9, beta_2=0.98, epsilon=1e-9,
                                    global_clipnorm=clip)
  if train.precision == "mixed_float16":
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  optimizer.build(variables)
  return optimizer


def build_components(config: Config, inference: bool = False) -> Components:
  """Everything a mode needs, freshly initialised (restore a checkpoint afterwards).

  `inference`: no combiner, schedule or optimizer (their slots are never read by translate,
  evaluate, export or inspect, so the restore skips them too); model, heads and step as always.
  """
  from training.hardware import resolve_precision
  config = dataclasses.replace(config, train=dataclasses.replace(
      config.train, precision=resolve_precision(config.train.precision)))  # auto -> this host's
  train = config.train
  if train.deterministic:
    tf.config.experimental.enable_op_determinism()
  set_precision(train.precision)
  head_spec.import_head_modules(config.head_modules)
  for spec in config.heads:  # unknown heads/options fail before any data work
    head_spec.make_options(get_head_class(spec.name), spec)
  bundle = data_lib.load_data(config.data, config.workdir, train.seed)
  with component_seed(train.seed, "model"):
    model = build_model(config.model, bundle.source_tokenizer.vocab_size,
                        bundle.target_tokenizer.vocab_size)
  context = HeadContext(
      vocab_size=bundle.target_tokenizer.vocab_size, d_model=config.model.d_model,
      summary_dim=model.summary_dim, num_layers=model.num_cross_attention_layers,
      num_attention_heads=model.num_attention_heads, label_info=bundle.label_info,
      seed=train.seed)
  heads = head_spec.build_heads(config.heads, context)
  check_labels(heads)
  _, losses, _, _ = compute_losses(model, heads, _dummy_batch(), training=False)
  term_names = tuple(losses)
  if inference:
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    return Components(config, bundle, model, heads, None, None, step, term_names)
  # Folding needs something to fold: without a regulariser of translation among the built heads
  # (a weight-0 head is not built) the step stays the unfolded one, bit for bit.
  fold = train.fold_regularisers and any(term_gradients.regularises_translation(h) for h in heads)
  with component_seed(train.seed, "combiner"):
    combiner = combine.make_combiner(dataclasses.replace(train, fold_regularisers=fold),
                                     term_names, model.trainable_variables)
  from training.step import trainable_variables
  schedule = make_schedule(train)
  optimizer = make_optimizer(config, trainable_variables(model, heads, combiner), schedule,
                             per_term=combiner.term_clip_norm > 0)
  step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
  return Components(config, bundle, model, heads, combiner, optimizer, step, term_names, schedule)


def variables_checkpoint(layer) -> tf.train.Checkpoint:
  """Every variable of a Keras layer (trainable or not: BatchNorm statistics, dropout seed
  states, balancing state), keyed by its position in `layer.variables` (fixed by the
  architecture; variable *names* of unnamed sublayers carry process-global counters such as
  `seed_generator_17`, so they cannot be keys). Keras 3 layers do not expose their variables to
  tf.train.Checkpoint by attribute, so they are listed explicitly."""
  return tf.train.Checkpoint(**{f"v{i:04d}": v for i, v in enumerate(layer.variables)})


# Checkpoint key of the training stream's fingerprint, saved beside the iterator position.
PIPELINE_KEY = "data_pipeline"


def pipeline_fingerprint(dataset: tf.data.Dataset, length_buckets: str) -> str:
  """What an iterator position saved from `dataset` fits: pipeline.PIPELINE_VERSION (bumped when
  the stream's operations change), its `length_buckets` (resolved, `DataBundle.length_buckets`:
  a position holds each bucket's unfinished batch) and the batches' structure."""
  return f"{data_lib.pipeline.PIPELINE_VERSION}|{length_buckets}|{dataset.element_spec}"


def make_checkpoint(c: Components, iterator=None, fingerprint: str = "") -> tf.train.Checkpoint:
  """Model, heads, combiner, optimizer, step and (when training) the data iterator position,
  with the fingerprint of the pipeline it belongs to."""
  objects = {"model": variables_checkpoint(c.model), "step": c.step}
  if c.combiner is not None:  # None in inference components
    objects["combiner"] = variables_checkpoint(c.combiner)
  if c.optimizer is not None:
    objects["optimizer"] = c.optimizer
  if c.schedule is not None:
    objects["lr_scale"] = c.schedule.scale
    if c.config.train.lr_schedule == "linear_time":  # the end EndFitter moved, for a rerun
      objects["lr_end"] = c.schedule.total
  for head in c.heads:
    objects[f"head_{head.head_name}"] = variables_checkpoint(head)
  if iterator is not None:
    objects["iterator"] = iterator
    objects[PIPELINE_KEY] = tf.Variable(fingerprint, trainable=False, dtype=tf.string)
  if c.ema is not None:
    objects["ema"] = c.ema.checkpoint()
  return tf.train.Checkpoint(**objects)


def checkpoint_dir(workdir: str, kind: str = "checkpoints") -> str:
  return os.path.join(workdir, kind)


def restore_for_inference(c: Components, which: str = "best") -> str:
  """Restores the best checkpoint if there is one, else the latest, or with --average_last=N
  the average of the last N; with --ema_decay the EMA weights. Returns the path(s) used."""
  from training import averaging
  averaging.attach_ema(c)
  ckpt = make_checkpoint(c)
  if c.config.eval.average_last > 1:  # as the final score of --mode=train
    paths = averaging.last_checkpoints(checkpoint_dir(c.config.workdir), c.config.eval.average_last)
    ckpt.read(paths[-1]).expect_partial()  # step and the rest from the newest
    return ",".join(averaging.average_checkpoints(c, paths))
  for kind in (["best", "checkpoints"] if which == "best" else ["checkpoints"]):
    path = tf.train.latest_checkpoint(checkpoint_dir(c.config.workdir, kind))
    if path:
      ckpt.read(path).expect_partial()
      averaging.use_evaluation_weights(c)
      return path
  raise UserError(f"no checkpoint in workdir {c.config.workdir!r}; train there first")
