"""Training-stream throughput with and without subword regularisation, measured in the same run.

  python bench/subword_pipeline.py --data_dir=../shared/data/multi30k --batches=150

The tf.data training stream alone (no model): Multi30k's data settings (vocabulary 8000, 2048
tokens per batch, max_length 80), once deterministic (--subword_alpha=0) and once per sampled
setting, in `--rounds` round-robin rounds so that load changes on a shared machine hit every
setting alike. Prints target tokens/s per setting (median over rounds) and each sampled setting
over the deterministic one; the last stdout line is one JSON object.
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

SETTINGS = {"deterministic": (0.0, -1), "lattice_a0.1": (0.1, -1), "nbest64_a0.1": (0.1, 64)}


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
  parser.add_argument("--warmup", type=int, default=20)
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--seed", type=int, default=1234)
  args = parser.parse_args()
  base = DataConfig(sources=(DataSourceConfig("parallel_text", args.data_dir),),
                    vocab_size=8000, batch_tokens=2048, max_length=80)
  iterators = {}
  with tempfile.TemporaryDirectory() as workdir:
    for name, (alpha, nbest) in SETTINGS.items():
      config = dataclasses.replace(base, subword_alpha=alpha, subword_nbest=nbest)
      bundle = data.load_data(config, workdir, args.seed)
      iterators[name] = iter(bundle.train_dataset(base.batch_tokens, args.seed))
      for _ in range(args.warmup):
        next(iterators[name])
    rates = {name: [] for name in SETTINGS}
    for _ in range(args.rounds):
      for name, iterator in iterators.items():
        rates[name].append(_rate(iterator, args.batches))
        print(f"{name}: {rates[name][-1]:,.0f} target tokens/s", file=sys.stderr)
  result = {f"{name}_tok_s": round(statistics.median(r)) for name, r in rates.items()}
  for name in SETTINGS:
    if name != "deterministic":
      result[f"{name}_over_deterministic"] = round(
          result[f"{name}_tok_s"] / result["deterministic_tok_s"], 3)
  result.update(batches=args.batches, rounds=args.rounds, data_dir=args.data_dir)
  print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
  main()
