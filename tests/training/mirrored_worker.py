"""Run as a script by distribute_test.py: one training step on 2 logical CPU devices with
MirroredStrategy vs the same step on one device, then two more mirrored steps on batches of
other shapes; prints a JSON line of the differences and of the mirrored step's trace count.

Logical devices must be configured before TensorFlow initialises, hence a separate process.
"""
import json
import sys

import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

import dataclasses  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

from heads.spec import parse_heads_spec  # noqa: E402
from tests_support import tiny_config, traces_per_graph  # noqa: E402
from training import distribute  # noqa: E402
from training.components import build_components  # noqa: E402
from training.step import make_train_step, trainable_variables  # noqa: E402


def one_step(config, batch, strategy, more_batches=()):
  with distribute.scope(strategy):
    c = build_components(config)
    variables = trainable_variables(c.model, c.heads, c.combiner)
    optimizer = keras.optimizers.SGD(learning_rate=1.0)
    optimizer.build(variables)
    step = make_train_step(c.model, c.heads, c.combiner, optimizer, strategy=strategy)
    result = step(batch)  # the global batch: under a strategy the step splits it
    weights = [np.asarray(v.numpy()) for v in variables]
    for other in more_batches:  # other shapes: the step's one graph must serve them
      step(other)
  return {k: float(v) for k, v in result.items()}, weights, traces_per_graph(step)


def main(workdir, data_dir, combiner="fixed"):
  config = tiny_config(workdir, data_dir, True, precision="float32", combiner=combiner)
  config = dataclasses.replace(config, heads=parse_heads_spec("price:dropout=0;attention_entropy"))
  bundle = build_components(config).bundle
  stream = iter(bundle.train_dataset(512, 0))
  batch = next(stream)
  if batch["source"].shape[0] % 2:  # an even split keeps the test about the arithmetic
    batch = {k: v[:-1] for k, v in batch.items()}
  shapes, more = {batch["source"].shape}, []
  for other in stream:  # two more batches of other shapes (odd row counts split unevenly)
    if other["source"].shape not in shapes:
      shapes.add(other["source"].shape)
      more.append(other)
    if len(more) == 2:
      break
  strategy = distribute.make_strategy("mirrored")
  single, w_single, _ = one_step(config, batch, None)
  mirrored, w_mirrored, traces = one_step(config, batch, strategy, more)
  print(json.dumps({
      "replicas": strategy.num_replicas_in_sync, "batch_shapes": len(shapes),
      "mirrored_traces": traces,
      "single": single, "mirrored": mirrored,
      "max_weight_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(w_single, w_mirrored)),
      "max_weight_change": max(float(np.max(np.abs(a))) for a in w_single),
  }))


if __name__ == "__main__":
  main(*sys.argv[1:4])
