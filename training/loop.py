"""The training loop: resume, step, log, checkpoint, evaluate, keep the best, final test score."""
import os
import time

import tensorflow as tf
from absl import logging

from configs.config import Config
from configs.errors import UserError
from evaluation.evaluate import evaluate_split
from training import workdir as wd
from training.components import build_components, checkpoint_dir, make_checkpoint
from training.progress import Progress
from training.selection import Selection
from training.step import make_train_step


def _nonfinite_terms(result) -> list:
  return [k[len("loss/"):] for k, v in result.items()
          if k.startswith("loss/") and not tf.math.is_finite(v).numpy()]


def _evaluate(c, split: str, step: int, **extra) -> dict:
  metrics = evaluate_split(c, c.config.eval, split)
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
  with wd.fresh_workdir_rollback(config.workdir):
    wd.prepare_workdir(config)
    c = build_components(config)
  train_cfg = config.train
  iterator = iter(c.bundle.train_dataset(config.data.batch_tokens, train_cfg.seed))
  ckpt = make_checkpoint(c, iterator)
  manager = tf.train.CheckpointManager(ckpt, checkpoint_dir(config.workdir),
                                       max_to_keep=train_cfg.keep_checkpoints)
  if manager.latest_checkpoint:
    ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    logging.info("resumed from %s at step %d", manager.latest_checkpoint, int(c.step.numpy()))
  elif train_cfg.train_steps == 0:
    manager.save(checkpoint_number=0)  # the initial weights, for inspection from outside
  best = Selection(c, make_checkpoint(c)) if train_cfg.eval_every else None
  _run_steps(c, iterator, manager, best, wall_start)
  final_ckpt = make_checkpoint(c)
  best_path = tf.train.latest_checkpoint(checkpoint_dir(config.workdir, "best"))
  if best_path:
    final_ckpt.read(best_path).expect_partial()
  metrics = _evaluate(c, c.config.eval.split, int(c.step.numpy()), kind="final",
                      checkpoint=best_path or manager.latest_checkpoint,
                      wall_seconds=round(time.time() - wall_start, 1))
  return metrics


def _run_steps(c, iterator, manager, best, wall_start) -> None:
  train_cfg = c.config.train
  step_fn = make_train_step(c.model, c.heads, c.combiner, c.optimizer, train_cfg.jit_compile)
  writer = tf.summary.create_file_writer(os.path.join(c.config.workdir, "tensorboard", "train"))
  step = int(c.step.numpy())
  progress = Progress(train_cfg.train_steps, step, train_cfg.log_every)
  skipped = 0
  while step < train_cfg.train_steps:
    result = step_fn(next(iterator))
    if not bool(result["finite"]):
      bad = _nonfinite_terms(result) or ["gradient"]
      if train_cfg.on_nonfinite == "stop":
        raise UserError(f"non-finite loss at step {step + 1} in term(s) {', '.join(bad)}; "
                        f"stopped, last good checkpoint: {manager.latest_checkpoint}")
      skipped += 1
      logging.warning("step %d skipped: non-finite %s (%d skipped so far)", step + 1, bad, skipped)
    step = int(c.step.assign_add(1).numpy())
    _log_step(writer, progress, c, result, step)
    if step % train_cfg.checkpoint_every == 0 or step == train_cfg.train_steps:
      manager.save(checkpoint_number=step)
    if best is not None and step % train_cfg.eval_every == 0:
      metrics = _evaluate(c, "validation", step, kind="validation")
      stop = best.update(metrics, step)
      logging.info("validation at step %d: %s (best %s=%s)", step, _short(metrics), best.metric,
                   best.best)
      if stop:
        logging.info("early stop: %d validations without improvement", best.bad_evals)
        manager.save(checkpoint_number=step)
        break
    if train_cfg.max_minutes and time.time() - wall_start > 60 * train_cfg.max_minutes:
      logging.info("--max_minutes=%s reached at step %d", train_cfg.max_minutes, step)
      manager.save(checkpoint_number=step)
      break
  progress.close()


def _log_step(writer, progress, c, result, step) -> None:
  tokens = float(result.get("count/translation", 0.0))
  progress.update(step, float(result["loss"]), tokens)
  if step % c.config.train.log_every == 0:
    with writer.as_default(step=step):
      for key, value in result.items():
        if key != "finite":
          tf.summary.scalar(key, value)
      tf.summary.scalar("learning_rate", c.optimizer.learning_rate)
      tf.summary.scalar("target_tokens_per_second", progress.tokens_per_second())


def _short(metrics: dict) -> str:
  keys = ("bleu", "chrf", "ter")
  return " ".join(f"{k}={metrics[k]:.2f}" for k in keys if k in metrics)
