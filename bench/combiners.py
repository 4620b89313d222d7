"""Step-time overhead of each loss combiner vs `fixed`, same model, heads and batches, one run.

Goal (issue 5): <= 1.3x for the gradient-based combiners (gradnorm, pcgrad, mgda_ub), <= 1.05x
for the loss-based ones (uncertainty, dwa, rlw, famo). Every trainer sees the same batch
sequence (same data and seed); timing is round-robin over the trainers, so load changes on this
shared machine hit all of them alike.

  python bench/combiners.py --steps=40 --warmup_steps=8 --rounds=2
  python bench/combiners.py --setup=default_job \
      --combiners="fixed,metabalance:balance_strategy=shrink+balance_relax=1+balance_target=0.3"

`--setup=default_job` times the default job itself (`python main.py`: gettext + listings, its
heads and model); a combiner may carry TrainConfig options after a colon ('+'-separated).
`--translation_only` adds a trainer without heads (`fixed`, the same stream, listing rows
included): the heads' own cost beside the combiners'.

Last stdout line: one JSON object with `<combiner>_step_ms` and `<combiner>_ratio` (to fixed).
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

from bench import auxseq_runner, lengths as lengths_lib  # noqa: E402
from bench.throughput import log, time_round_robin  # noqa: E402

COMBINERS = ("fixed", "uncertainty", "dwa", "rlw", "famo", "gradnorm", "pcgrad", "mgda_ub",
             "metabalance", "task_moments", "gcs", "bloop")
MODEL = dict(d_model=256, num_layers=3, num_heads=4, ffn_dim=1024)
HEADS = "price;attention_entropy"


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--steps", type=int, default=40, help="timed steps per combiner (all rounds)")
  p.add_argument("--warmup_steps", type=int, default=8)
  p.add_argument("--rounds", type=int, default=2)
  p.add_argument("--combiners", default=",".join(COMBINERS))
  p.add_argument("--data_dir", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                    "shared", "data", "multi30k"))
  p.add_argument("--quick", action="store_true", help="tiny model (tests)")
  p.add_argument("--setup", default="multi30k", choices=("multi30k", "default_job"))
  p.add_argument("--workdir", default="")
  p.add_argument("--translation_only", action="store_true",
                 help="also time translation without heads (fixed) on the same stream: the "
                      "heads' own cost beside the combiners'")
  return p.parse_args(argv)


def parse_combiner(spec: str):
  """'metabalance:balance_relax=1+balance_target=0.3' -> ('metabalance', {field: value})."""
  from configs.config import TrainConfig  # pylint: disable=import-outside-toplevel
  name, _, rest = spec.partition(":")
  defaults = TrainConfig()
  options = {}
  for item in filter(None, rest.split("+")):
    key, _, value = item.partition("=")
    kind = type(getattr(defaults, key))
    options[key] = value.lower() in ("1", "true") if kind is bool else kind(value)
  return name, options


def default_job_config(workdir: str):
  """The default job's Config (`python main.py`) in `workdir`."""
  from configs import presets  # pylint: disable=import-outside-toplevel
  return dataclasses.replace(presets.get_preset("default")(), workdir=workdir)


def run(argv=None) -> dict:
  args = parse_args(argv)
  workdir = args.workdir or tempfile.mkdtemp(prefix="auxseq_combiners_")
  data_dir = args.data_dir
  if not os.path.isfile(os.path.join(data_dir, "train.en")):
    data_dir = lengths_lib.write_synthetic_corpus(
        os.path.join(workdir, "synthetic"), lengths_lib.fallback_lengths(600 if args.quick
                                                                         else 29000))
  model = dict(d_model=32, num_layers=1, num_heads=2, ffn_dim=64) if args.quick else MODEL
  base = auxseq_runner.AuxseqSetup(
      workdir=os.path.join(workdir, "data"), data_dir=data_dir, model_args=model,
      vocab_size=300 if args.quick else 8000, batch_tokens=512 if args.quick else 2048,
      shuffle_buffer=500 if args.quick else 20000, precision="mixed_bfloat16", heads=HEADS,
      mix_prices=True)
  names = [n for n in args.combiners.split(",") if n]
  if names[0] != "fixed":
    names.insert(0, "fixed")
  heads = HEADS
  if args.setup == "default_job":
    default = default_job_config(os.path.join(workdir, "default_job"))
    heads = ";".join(h.name for h in default.heads)
    model = {k: getattr(default.model, k) for k in MODEL}
    base = dataclasses.replace(base, model_args=model, batch_tokens=default.data.batch_tokens)
  trainers = {}
  for name in names:
    start = time.perf_counter()
    combiner, options = parse_combiner(name)
    setup = dataclasses.replace(base, combiner=combiner)
    config = None
    if args.setup == "default_job":
      config = dataclasses.replace(default, train=dataclasses.replace(
          default.train, combiner=combiner, **options))
    elif options:
      config = auxseq_runner.make_config(setup)
      config = dataclasses.replace(config, train=dataclasses.replace(config.train, **options))
    trainers[name] = auxseq_runner.AuxseqTrainer(name, setup, config)
    log(f"built {name} in {time.perf_counter() - start:.1f}s")
  if args.translation_only:
    setup = dataclasses.replace(base, heads="")
    config = None
    if args.setup == "default_job":
      config = dataclasses.replace(default, heads=())
    trainers["translation_only"] = auxseq_runner.AuxseqTrainer("translation_only", setup, config)
  for trainer in trainers.values():
    trainer.start()
  blocks = time_round_robin(trainers, args)
  result = {"command": "python bench/combiners.py " + " ".join(argv or sys.argv[1:]),
            "setup": args.setup, "model": model, "heads": heads,
            "data": "gettext + listings" if args.setup == "default_job" else data_dir,
            "precision": base.precision}
  result.update(step_ratios({name: np.concatenate([b["durations"] for b in trainer_blocks])
                             for name, trainer_blocks in blocks.items()}, "fixed"))
  return result


def step_ratios(durations, reference: str) -> dict:
  """{name: step durations [s]} -> `<name>_step_ms`, `<name>_steps` and `<name>_ratio` (mean
  step time over `reference`'s)."""
  result = {}
  for name, values in durations.items():
    result[f"{name}_step_ms"] = round(1000 * float(np.mean(values)), 1)
    result[f"{name}_steps"] = int(len(values))
  for name in durations:
    result[f"{name}_ratio"] = round(result[f"{name}_step_ms"] / result[f"{reference}_step_ms"], 3)
  return result


def main(argv=None) -> int:
  print(json.dumps(run(argv), sort_keys=True))
  return 0


if __name__ == "__main__":
  sys.exit(main())
