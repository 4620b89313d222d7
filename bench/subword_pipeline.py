"""Training-stream throughput with and without subword regularisation, measured in the same run.

  python bench/subword_pipeline.py --data_dir=../shared/data/multi30k --batches=150 --warmup=220

The tf.data training stream alone (no model): Multi30k's data settings (vocabulary 8000, 2048
tokens per batch, max_length 80), once deterministic (--subword_alpha=0) and once per sampled
setting, in `--rounds` round-robin rounds so that load changes on a shared machine hit every
setting alike. The whole-lattice setting of multi30k_transformer (alpha 0.5) runs twice: with
the sampler's lattice cache (data/subword.py; ~200 warm-up batches read each training sentence
once, so the rounds measure the steady state of a multi-epoch run) and without it. Prints
target tokens/s per setting (median over rounds) and each sampled setting over the
deterministic one; the last stdout line is one JSON object.
"""
import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import data  # noqa: E402
from configs.config import DataConfig, DataSourceConfig  # noqa: E402
from data import subword  # noqa: E402

# name: (alpha, nbest, lattice cache on)
SETTINGS = {"deterministic": (0.0, -1, True), "lattice_a0.5": (0.5, -1, True),
            "lattice_a0.5_uncached": (0.5, -1, False), "nbest64_a0.1": (0.1, 64, True)}


def _rate(iterator, batches: int) -> float:
  tokens, start = 0, time.perf_counter()
  for _ in range(batches):
    tokens += int(np.count_nonzero(next(iterator)["target_out"].numpy()))
  return tokens / (time.perf_counter() - start)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", default=os.path.join(os.path.dirname(ROOT), "shared", "data",
                                                         "multi30k"))
  parser.add_argument("--batches", type=int, default=150)
  parser.add_argument("--only", default="",
                      help=f"comma-separated settings besides deterministic, of {list(SETTINGS)}")
  parser.add_argument("--warmup", type=int, default=20)
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--seed", type=int, default=1234)
  args = parser.parse_args()
  names = (["deterministic"] + [n for n in args.only.split(",") if n and n != "deterministic"]
           if args.only else list(SETTINGS))
  unknown = [n for n in names if n not in SETTINGS]
  if unknown:
    parser.error(f"unknown --only settings {unknown}; known: {list(SETTINGS)}")
  base = DataConfig(sources=(DataSourceConfig("parallel_text", args.data_dir),),
                    vocab_size=8000, batch_tokens=2048, max_length=80)
  iterators = {}
  with tempfile.TemporaryDirectory() as workdir:
    cache = subword.CACHE_SENTENCES
    for name in names:
      alpha, nbest, cached = SETTINGS[name]
      config = dataclasses.replace(base, subword_alpha=alpha, subword_nbest=nbest)
      subword.CACHE_SENTENCES = cache if cached else 0  # read when the samplers are built
      bundle = data.load_data(config, workdir, args.seed)
      iterators[name] = iter(bundle.train_dataset(base.batch_tokens, args.seed))
      for _ in range(args.warmup):
        next(iterators[name])
    subword.CACHE_SENTENCES = cache
    rates = {name: [] for name in names}
    for _ in range(args.rounds):
      for name, iterator in iterators.items():
        rates[name].append(_rate(iterator, args.batches))
        print(f"{name}: {rates[name][-1]:,.0f} target tokens/s", file=sys.stderr)
  result = {f"{name}_tok_s": round(statistics.median(r)) for name, r in rates.items()}
  for name in names[1:]:
    result[f"{name}_over_deterministic"] = round(
        result[f"{name}_tok_s"] / result["deterministic_tok_s"], 3)
  if {"lattice_a0.5", "lattice_a0.5_uncached"} <= set(names):
    result["lattice_a0.5_cached_over_uncached"] = round(
        result["lattice_a0.5_tok_s"] / result["lattice_a0.5_uncached_tok_s"], 3)
  result.update(batches=args.batches, rounds=args.rounds, warmup=args.warmup,
                data_dir=args.data_dir)
  print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
  main()
