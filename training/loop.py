"""The training loop: resume, step, log, checkpoint, evaluate, keep the best, final test score."""
import dataclasses
import os
import time

import tensorflow as tf
from absl import logging

from configs.config import Config
from configs.errors import UserError
from evaluation import inspect
from evaluation.evaluate import evaluate_split
from training import averaging, distribute, host_speed, preflight, warm_start, workdir as wd
from training.baselines import check_schedule, make_schedule
from training.components import (PIPELINE_KEY, build_components, checkpoint_dir,
                                 make_checkpoint, pipeline_fingerprint)
from training.progress import Progress
from training.schedules import EndFitter
from training.selection import Selection
from training.grad_stats import make_grad_stats_fn
from training.step import check_step_options


def _nonfinite_terms(result) -> list:
  return [k[len("loss/"):] for k, v in result.items()
          if k.startswith("loss/") and not tf.math.is_finite(v).numpy()]


def _evaluate(c, split: str, step: int, head_totals=None, **extra) -> dict:
  metrics = evaluate_split(c, c.config.eval, split, head_totals)
  hypotheses = metrics.pop("hypotheses")
  wd.atomic_write_text(os.path.join(c.config.workdir, f"{split}.hyp"), "\n".join(hypotheses) + "\n")
  metrics.update(step=step, **extra)
  wd.append_metrics(c.config.workdir, metrics)
  return metrics


def train(config: Config) -> dict:
  """Trains (resuming from WORKDIR if possible), then scores the best checkpoint on the test split.

  Returns the final metrics dict (also appended to metrics.jsonl).
  """
  wall_start = time.time()
  train_cfg = config.train
  strategy = distribute.make_strategy(train_cfg.distribute)
  check_step_options(train_cfg.combiner, train_cfg.accum_steps, distribute.replicas(strategy),
                     train_cfg.gradient_space, train_cfg.clip_per_term)
  check_schedule(config, distribute.replicas(strategy))
  config = dataclasses.replace(config, workdir=distribute.worker_workdir(strategy, config.workdir))
  with wd.fresh_workdir_rollback(config.workdir):
    wd.prepare_workdir(config)
    summary = preflight.describe_run(config)
    logging.info("resolved run:\n%s", summary)
    wd.atomic_write_text(os.path.join(config.workdir, preflight.RUN_SUMMARY), summary + "\n")
    source = warm_start.prepare(config)  # --init_from: its vocabulary, before the data load
    with distribute.scope(strategy):
      c = build_components(config)
      warm_start.restore(c, source)  # before the EMA, whose shadows start from the weights
      averaging.attach_ema(c)  # before make_checkpoint: the shadows are saved and resumed
  # One plain iterator (checkpointable: resuming restores the data position); under a strategy
  # the train step splits each global batch between the replicas (distribute.replica_rows).
  pad_to_bucket = train_cfg.jit_compile
  dataset = c.bundle.train_dataset(config.data.batch_tokens, train_cfg.seed, pad_to_bucket)
  iterator = iter(dataset)
  fingerprint = pipeline_fingerprint(dataset, c.bundle.length_buckets(pad_to_bucket))
  ckpt = make_checkpoint(c, iterator, fingerprint)
  manager = tf.train.CheckpointManager(ckpt, checkpoint_dir(config.workdir),
                                       max_to_keep=train_cfg.keep_checkpoints)
  if manager.latest_checkpoint:
    _restore_for_training(c, ckpt, manager.latest_checkpoint, fingerprint)
  elif train_cfg.train_steps == 0:
    manager.save(checkpoint_number=0)  # the initial weights, for inspection from outside
  best = Selection(c, make_checkpoint(c)) if train_cfg.eval_every else None
  with distribute.scope(strategy):
    _run_steps(c, iterator, manager, best, wall_start, strategy)
  final_ckpt = make_checkpoint(c)
  best_path = tf.train.latest_checkpoint(checkpoint_dir(config.workdir, "best"))
  averaged = {}
  if config.eval.average_last > 1:  # the mean of the last N instead of the best checkpoint
    paths = averaging.last_checkpoints(checkpoint_dir(config.workdir), config.eval.average_last)
    averaged = {"averaged_checkpoints": averaging.average_checkpoints(c, paths)}
    best_path = None
  elif best_path:
    final_ckpt.read(best_path).expect_partial()
  if not averaged:
    averaging.use_evaluation_weights(c)  # EMA shadows, when on (training is over: no swap back)
  wall_seconds = round(time.time() - wall_start, 1)
  # A time-budgeted run's score depends on the host: record its matmul rate beside the score.
  host = host_speed.host_matmul_gflops() if train_cfg.max_minutes else {}
  metrics = _evaluate(c, c.config.eval.split, int(c.step.numpy()), kind="final",
                      checkpoint=best_path or manager.latest_checkpoint,
                      wall_seconds=wall_seconds, **averaged, **host)
  if distribute.is_chief(strategy):
    _export_for_serving(c)
  return metrics


def _export_for_serving(c) -> None:
  """WORKDIR/ctranslate2 from the weights just scored (--export_after_training). A failure is a
  warning: the run itself is saved, and the export directory is replaced atomically or not at
  all (translate then falls back to TensorFlow)."""
  from evaluation.ctranslate2_modes import export_after_training
  start = time.time()
  try:
    path = export_after_training(c)
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("CTranslate2 export after training failed (%s: %s); --mode=translate will "
                    "use TensorFlow", type(e).__name__, e)
    return
  if path:
    logging.info("exported %s for --mode=translate in %.1f s", path, time.time() - start)


def _restore_for_training(c, ckpt, path: str, fingerprint: str) -> None:
  """Restores `ckpt` from `path`; the data position only if `path` was saved by this input
  pipeline (`fingerprint`). An iterator state written by another pipeline (e.g. by an
  earlier auxseq whose batches had other fields) fails at the restore or, worse, restores
  without complaint and fails a few batches later, so the check is made before restoring."""
  reader = tf.train.load_checkpoint(path)
  key = f"{PIPELINE_KEY}/.ATTRIBUTES/VARIABLE_VALUE"
  saved = reader.get_tensor(key).decode("utf-8") if reader.has_tensor(key) else None
  if saved == fingerprint:
    ckpt.restore(path).assert_existing_objects_matched()
  else:
    make_checkpoint(c).restore(path).assert_existing_objects_matched()
    logging.warning("%s was saved by %s input pipeline: weights, optimizer and step are "
                    "resumed, the data stream starts afresh", path,
                    "another" if saved else "an auxseq that did not record its")
  logging.info("resumed from %s at step %d", path, int(c.step.numpy()))


def _next_batches(iterator, accum_steps: int):
  """One batch, or a tuple of `accum_steps` micro-batches for one accumulated step (global
  batches: under a strategy the step splits them, `distribute.replica_rows`)."""
  batches = tuple(next(iterator) for _ in range(accum_steps))
  return batches[0] if accum_steps == 1 else batches


def _run_steps(c, iterator, manager, best, wall_start, strategy=None) -> None:
  train_cfg = c.config.train
  step_fn = make_schedule(c, strategy)
  grad_stats_fn = (make_grad_stats_fn(c.model, c.heads)
                   if train_cfg.log_grad_stats_every and strategy is None else None)
  writer = tf.summary.create_file_writer(os.path.join(c.config.workdir, "tensorboard", "train"))
  step = int(c.step.numpy())
  deadline = wall_start + 60 * train_cfg.max_minutes if train_cfg.max_minutes else 0.0
  timed, fitter = train_cfg.lr_schedule == "linear_time", None
  end = _first_end(c, step) if timed else train_cfg.train_steps
  progress = Progress(end, step, train_cfg.log_every, deadline)
  skipped, sentences = 0, None
  while step < end:
    batches = _next_batches(iterator, train_cfg.accum_steps)
    if grad_stats_fn is not None and (step + 1) % train_cfg.log_grad_stats_every == 0:
      _log_grad_stats(writer, c, grad_stats_fn(batches[0] if isinstance(batches, tuple)
                                               else batches), step + 1)
    result = step_fn(step, batches)
    if c.ema is not None:
      c.ema.update(c.step)  # c.step = optimizer steps before this one
    if not bool(result["finite"]):
      bad = _nonfinite_terms(result) or ["gradient"]
      if train_cfg.on_nonfinite == "stop":
        raise UserError(f"non-finite loss at step {step + 1} in term(s) {', '.join(bad)}; "
                        f"stopped, last good checkpoint: {manager.latest_checkpoint}")
      skipped += 1
      logging.warning("step %d skipped: non-finite %s (%d skipped so far)", step + 1, bad, skipped)
    step = int(c.step.assign_add(1).numpy())
    _log_step(writer, progress, c, result, step, wall_start)
    if step % train_cfg.checkpoint_every == 0 or step == end:
      manager.save(checkpoint_number=step)
    if best is not None and step % train_cfg.eval_every == 0:
      eval_start = time.time()
      with averaging.evaluation_weights(c):  # EMA swapped in, then back (when on)
        totals = {}  # the heads' statistics (confusions) of this validation, for the pictures
        metrics = _evaluate(c, "validation", step, totals, kind="validation",
                            wall_seconds=round(time.time() - wall_start, 1))
        if sentences is None:  # a few fixed validation sentences, pictured at every validation
          sentences = inspect.fixed_validation_sentences(c, 3)
        inspect.write_validation_images(c, writer, step, sentences, totals)
      stop = best.update(metrics, step)
      if fitter:  # (none yet only if this process's first step was a validation step)
        fitter.record_eval(time.time() - eval_start)
      logging.info("validation at step %d: %s (best %s=%s)", step, _short(metrics), best.metric,
                   best.best)
      if stop:
        logging.info("early stop: %d validations without improvement", best.bad_evals)
        manager.save(checkpoint_number=step)
        break
    if deadline and time.time() > deadline:
      logging.info("--max_minutes=%s reached at step %d", train_cfg.max_minutes, step)
      manager.save(checkpoint_number=step)
      break
    if timed:
      fitter, end = _time_fit(c, fitter, step, end, deadline)
      progress.total = end
  progress.close()


# --lr_schedule=linear_time: a process's first fit of the schedule's end comes this many timed
# steps after its first step (which traces the graph and is not timed); later ones at every
# checkpoint.
FIRST_FIT_STEPS = 50


def _first_end(c, step: int) -> int:
  """--lr_schedule=linear_time: the step to train to until the first fit. The saved end (the
  bound for a new run; lowered to the bound if a rerun lowered --train_steps), or, when a
  finished run is rerun with steps left below the bound, the bound: its first steps then run at
  rate 0 (the saved end is passed) until the first fit gives the new deadline its decay."""
  bound, saved = c.config.train.train_steps, int(c.schedule.total.numpy())
  if saved > bound:
    c.schedule.total.assign(bound)
    saved = bound
  return bound if saved <= step else saved


def _time_fit(c, fitter, step: int, end: int, deadline: float):
  """--lr_schedule=linear_time after a step: (the fitter, the step to train to)."""
  train = c.config.train
  if fitter is None:
    return EndFitter(c.schedule, train.train_steps, train.eval_every, step, time.time(),
                     deadline), end
  if step >= end or (step % train.checkpoint_every
                     and step != fitter.start_step + FIRST_FIT_STEPS):
    return fitter, end
  new_end = fitter.refit(step, time.time())
  if new_end != end:
    logging.info("--lr_schedule=linear_time: the learning rate now reaches 0 at step %d (was %d)",
                 new_end, end)
  return fitter, new_end


def _log_step(writer, progress, c, result, step, wall_start) -> None:
  tokens = float(result.get("count/translation", 0.0))
  progress.update(step, float(result["loss"]), tokens)
  if step % c.config.train.log_every == 0:
    record = {k: float(v) for k, v in result.items() if k != "finite"}
    record.update(learning_rate=float(c.optimizer.learning_rate),
                  target_tokens_per_second=round(progress.tokens_per_second(), 1))
    with writer.as_default(step=step):
      for key, value in record.items():
        tf.summary.scalar(key, value)
    wd.append_metrics(c.config.workdir, dict(
        {k: round(v, 6) for k, v in record.items()}, kind="train", step=step,
        wall_seconds=round(time.time() - wall_start, 1)))


def _log_grad_stats(writer, c, stats, step) -> None:
  """Per-term gradient norms and pairwise cosines at the encoder boundary (before this step)."""
  values = {k: float(v) for k, v in stats.items()}
  with writer.as_default(step=step):
    for key, value in values.items():
      tf.summary.scalar(key, value)
  wd.append_metrics(c.config.workdir, dict({k: round(v, 6) for k, v in values.items()},
                                           kind="grad_stats", step=step))


def _short(metrics: dict) -> str:
  keys = ("bleu", "chrf", "ter")
  return " ".join(f"{k}={metrics[k]:.2f}" for k in keys if k in metrics)
