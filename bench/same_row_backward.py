"""Two gradients of terms on the same rows: a loop of backwards vs one vectorised backward.

Issue 18, item 2: where two loss terms live on the same rows (translation and `domain` on the
sentence pairs of the default job), metabalance's shrink cap needs two gradients over the
weights, the main term's and the auxiliaries' sum's. `training/term_gradients.py` takes them
with two `tape.gradient` calls from one persistent tape (one forward, two backwards). The
alternative the issue names is one vectorised backward: stack the two losses and ask for their
Jacobian with `GradientTape.jacobian(..., experimental_use_pfor=True)`, which pushes both
cotangents through the network at once (batched matmuls). This bench times, on the same model
and batches, round-robin:

  loop       one forward, `tape.gradient` for each of the two terms (what the step does);
  jacobian   one forward, one `tape.jacobian` of the stacked two terms (pfor);
  sum        one forward, one backward of the weighted sum (the `fixed` step's cost: the floor).

It also checks the gradients on the first batch: the Jacobian's against the loop's
(`max_rel_diff`, worst tensor; `global_rel_diff`, all tensors as one vector), and the loop's
two summed against the one backward of the sum (`sum_rel_diff`), so the faster method could
replace the other without changing training.

  python bench/same_row_backward.py --steps=30 --warmup_steps=5 --rounds=3

Model, data and heads: the default job's (gettext en-de + listings, d_model 128, 2+2 layers;
heads `domain` and `attention_entropy` beside translation, on the sentence pairs only), in its
precision (`mixed_bfloat16`), dropout 0 (so that the two methods' gradients can be compared).
`--quick`: the `tiny` preset in float32 on a generated copy corpus, `attention_entropy` only
(tests).
Last stdout line: one JSON object with `<variant>_step_ms`, `<variant>_ratio` (to `sum`),
`max_rel_diff`, `sum_rel_diff` (each the worst tensor) and `global_rel_diff` (all tensors as
one vector).
"""
import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.combiners import step_ratios  # noqa: E402
from bench.throughput import log  # noqa: E402

VARIANTS = ("sum", "loop", "jacobian")
# Dropout off everywhere (model and the domain head's classifier): each variant's call draws its
# own masks, and the check below compares the loop's gradients with the Jacobian's.
HEADS = "domain:dropout=0;attention_entropy"


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--steps", type=int, default=30, help="timed steps per variant (all rounds)")
  p.add_argument("--warmup_steps", type=int, default=5)
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--quick", action="store_true", help="tiny model, generated corpus (tests)")
  p.add_argument("--workdir", default="")
  return p.parse_args(argv)


def make_config(args, workdir):
  """The default job's Config with only the same-row heads (or the tiny preset under --quick)."""
  from configs import presets  # pylint: disable=import-outside-toplevel
  from configs.config import DataConfig, DataSourceConfig  # pylint: disable=import-outside-toplevel
  from heads.spec import parse_heads_spec  # pylint: disable=import-outside-toplevel
  if not args.quick:
    config = presets.get_preset("default")()
    return dataclasses.replace(config, workdir=workdir, heads=parse_heads_spec(HEADS),
                               model=dataclasses.replace(config.model, dropout=0.0))
  sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                  "tests"))
  from conftest import write_copy_corpus  # pylint: disable=import-outside-toplevel
  corpus = write_copy_corpus(os.path.join(workdir, "copy"), n_train=600)
  config = presets.get_preset("tiny")()
  data = dataclasses.replace(config.data, sources=(DataSourceConfig("parallel_text", corpus),),
                             vocab_size=100, tokenizer_sample=2000)
  train = dataclasses.replace(config.train, precision="float32")  # exact comparisons
  return dataclasses.replace(config, workdir=workdir, data=data, train=train,
                             heads=parse_heads_spec("attention_entropy"))


def build_functions(c):
  """{variant: tf.function(batch) -> list of gradient tensors}, and the two-term split."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from training import step as step_lib  # pylint: disable=import-outside-toplevel
  from training.step import trainable_variables  # pylint: disable=import-outside-toplevel
  variables = trainable_variables(c.model, c.heads, c.combiner)

  def two_terms(batch):
    outputs = step_lib.forward(c.model, c.heads, batch, training=True)
    terms, weights = step_lib.head_terms(outputs, c.heads, batch, training=True)
    means = {n: tf.math.divide_no_nan(tf.cast(t.total, tf.float32), tf.cast(t.count, tf.float32))
             for n, t in terms.items()}
    others = [weights[n] * m for n, m in means.items() if n != "translation"]
    return means["translation"], tf.add_n(others)

  def dense(grads):
    return [tf.zeros(v.shape, tf.float32) if g is None else
            tf.reshape(tf.cast(tf.convert_to_tensor(g), tf.float32), v.shape)
            for g, v in zip(grads, variables)]

  @tf.function(reduce_retracing=True)
  def loop(batch):
    with tf.GradientTape(persistent=True) as tape:
      main, aux = two_terms(batch)
    first, second = dense(tape.gradient(main, variables)), dense(tape.gradient(aux, variables))
    del tape
    return [tf.stack([a, b]) for a, b in zip(first, second)]

  @tf.function(reduce_retracing=True)
  def jacobian(batch):
    with tf.GradientTape() as tape:
      stacked = tf.stack(two_terms(batch))
    parts = tape.jacobian(stacked, variables, experimental_use_pfor=True)
    return [tf.zeros((2,) + tuple(v.shape), tf.float32) if j is None else
            tf.reshape(tf.cast(j, tf.float32), (2,) + tuple(v.shape))
            for j, v in zip(parts, variables)]

  @tf.function(reduce_retracing=True)
  def summed(batch):
    with tf.GradientTape() as tape:
      main, aux = two_terms(batch)
      total = main + aux
    return dense(tape.gradient(total, variables))

  return {"sum": summed, "loop": loop, "jacobian": jacobian}


def max_rel_diff(a, b) -> float:
  """max over tensors of ||a - b|| / max(||b||, tiny): the two methods' gradients compared."""
  worst = 0.0
  for x, y in zip(a, b):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    worst = max(worst, float(np.linalg.norm(x - y) / max(np.linalg.norm(y), 1e-12)))
  return worst


def global_rel_diff(a, b) -> float:
  """||a - b|| / ||b|| over every tensor at once (not dominated by near-zero tensors)."""
  diff = sum(float(np.sum((np.asarray(x, np.float64) - np.asarray(y, np.float64)) ** 2))
             for x, y in zip(a, b))
  norm = sum(float(np.sum(np.asarray(y, np.float64) ** 2)) for y in b)
  return float(np.sqrt(diff / max(norm, 1e-24)))


def run(argv=None) -> dict:
  args = parse_args(argv)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from training.components import build_components  # pylint: disable=import-outside-toplevel
  from training import term_gradients  # pylint: disable=import-outside-toplevel
  workdir = args.workdir or tempfile.mkdtemp(prefix="auxseq_same_row_")
  config = make_config(args, workdir)
  c = build_components(config)
  functions = build_functions(c)
  group = list(c.heads)  # every head here lives on the sentence pairs
  stream = iter(c.bundle.train_dataset(config.data.batch_tokens, config.train.seed))
  batches = [term_gradients.select_rows(next(stream), group)
             for _ in range(args.warmup_steps + args.steps)]
  tf.random.set_seed(config.train.seed)
  check = {name: [g.numpy() for g in functions[name](batches[0])] for name in VARIANTS}
  result = {"command": "python bench/same_row_backward.py " + " ".join(argv or sys.argv[1:]),
            "heads": ";".join(h.head_name for h in c.heads),
            "model": {k: getattr(config.model, k) for k in ("d_model", "num_layers", "ffn_dim")},
            "precision": c.config.train.precision, "dropout": config.model.dropout,
            "max_rel_diff": round(max_rel_diff(check["jacobian"], check["loop"]), 6),
            "sum_rel_diff": round(max_rel_diff([g.sum(axis=0) for g in check["loop"]],
                                               check["sum"]), 6),
            "global_rel_diff": round(global_rel_diff(check["jacobian"], check["loop"]), 6)}
  for name in VARIANTS:
    start = time.perf_counter()
    for batch in batches[:args.warmup_steps]:
      functions[name](batch)
    log(f"warm-up {name}: {args.warmup_steps} steps in {time.perf_counter() - start:.1f}s")
  per_round = max(1, -(-args.steps // args.rounds))
  timed = {name: [] for name in VARIANTS}
  work = batches[args.warmup_steps:]
  for r in range(args.rounds):
    chunk = work[r * per_round:(r + 1) * per_round] or work[:per_round]
    for name in VARIANTS:
      for batch in chunk:
        start = time.perf_counter()
        grads = functions[name](batch)
        float(tf.reduce_sum(grads[0]))  # wait for the result
        timed[name].append(time.perf_counter() - start)
      log(f"round {r + 1}/{args.rounds} {name}: {1000 * np.mean(timed[name][-len(chunk):]):.0f} "
          "ms/step")
  result.update(step_ratios(timed, "sum"))
  return result


def main(argv=None) -> int:
  print(json.dumps(run(argv), sort_keys=True))
  return 0


if __name__ == "__main__":
  sys.exit(main())
