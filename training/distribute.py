"""tf.distribute strategies for `--distribute` (none | mirrored | multi_worker)."""
import contextlib
import json
import os

import tensorflow as tf

from configs.errors import UserError

STRATEGIES = ("none", "mirrored", "multi_worker")


def make_strategy(name: str):
  """None for `none`; else the strategy (create it before any other TF work in the process).

  `mirrored` replicates over every local GPU, or, on a machine without GPUs, over every logical
  CPU device (one by default; tests split the CPU into two with
  `tf.config.set_logical_device_configuration`). `multi_worker` reads the cluster from TF_CONFIG.
  """
  if name not in STRATEGIES:
    raise UserError(f"unknown --distribute {name!r}; known: {', '.join(STRATEGIES)}")
  if name == "none":
    return None
  if name == "mirrored":
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    return tf.distribute.MirroredStrategy(devices=devices)
  if not os.environ.get("TF_CONFIG"):
    raise UserError("--distribute=multi_worker needs the TF_CONFIG environment variable "
                    "(cluster and this worker's task); see README 'Several machines'")
  try:
    json.loads(os.environ["TF_CONFIG"])
  except ValueError as e:
    raise UserError(f"TF_CONFIG is not valid JSON: {e}") from None
  return tf.distribute.MultiWorkerMirroredStrategy()


def replica_rows(batches: tuple) -> tuple:
  """Inside `strategy.run`: this replica's rows of each global (micro-)batch; replica i of n gets
  rows i, i + n, i + 2n, ... (each worker of a multi-worker run reads the same stream and keeps
  its replicas' rows). The step takes them itself, so that its argument is the global batch of
  plain tensors and its one graph is traced for any batch shape from the first call
  (`step.ShapeGenericFunction`): per-replica values as the argument made a resumed run's first
  step trace a graph for that batch's exact shapes, which rounds differently on AVX512 hosts."""
  context = tf.distribute.get_replica_context()
  n, i = context.num_replicas_in_sync, context.replica_id_in_sync_group
  return tuple({key: value[i::n] for key, value in batch.items()} for batch in batches)


def scope(strategy):
  """The strategy's variable-creation scope (a no-op without one)."""
  return strategy.scope() if strategy is not None else contextlib.nullcontext()


def replicas(strategy) -> int:
  return strategy.num_replicas_in_sync if strategy is not None else 1


def is_chief(strategy) -> bool:
  """Whether this process owns the workdir (always, except non-chief multi-worker tasks)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  task_type = getattr(resolver, "task_type", None)
  if task_type is None:
    return True
  return task_type == "chief" or (task_type == "worker" and resolver.task_id == 0
                                  and "chief" not in resolver.cluster_spec().as_dict())


def worker_workdir(strategy, workdir: str) -> str:
  """The chief writes WORKDIR; every other worker its own WORKDIR-<task>-<id> (it must still
  save checkpoints, since saving can take part in collectives, but they are not the run's)."""
  if is_chief(strategy):
    return workdir
  resolver = strategy.cluster_resolver
  return f"{workdir.rstrip('/')}-{resolver.task_type}{resolver.task_id}"
