"""Run as a script by workers_test.py: loads the data of a small corpus as the multi-worker task
in TF_CONFIG would and prints one JSON line: hashes of the vocabulary and of the token ids of
the first training and validation batches.

  python tests/data/data_worker.py CORPUS CACHE WORKDIR
"""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from absl import logging  # noqa: E402

import data  # noqa: E402
from configs.config import DataConfig, DataSourceConfig  # noqa: E402


def _digest(arrays) -> str:
  h = hashlib.sha256()
  for a in arrays:
    h.update(a.tobytes())
  return h.hexdigest()[:16]


def main(corpus: str, cache: str, workdir: str) -> None:
  logging.set_verbosity(logging.INFO)  # "Preparing data from ..." is logged at INFO
  config = DataConfig(sources=(DataSourceConfig("parallel_text", corpus),), vocab_size=60,
                      max_length=16, batch_tokens=128, shuffle_buffer=32, data_cache_dir=cache,
                      tokenizer_sample=200)
  bundle = data.load_data(config, workdir, seed=5)
  with open(bundle.source_tokenizer.model_path, "rb") as f:
    vocab = hashlib.sha256(f.read()).hexdigest()[:16]
  train = [b["source"].numpy() for b in bundle.train_dataset(128, 5).take(3)]
  val = [b["source"].numpy() for b in bundle.eval_dataset("validation", 8)]
  print(json.dumps({"chief": data.is_chief_worker(), "vocab": vocab, "train": _digest(train),
                    "validation": _digest(val)}))


if __name__ == "__main__":
  main(*sys.argv[1:4])
