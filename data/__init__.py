"""Data: TFDS builders over registered sources, sentencepiece tokenisation, tf.data batches.

  bundle = data.load_data(config.data, workdir, seed)
  bundle.train_dataset(batch_tokens, seed)   # infinite bucketed batches (DESIGN's batch table)
  bundle.eval_dataset(split, batch_size)     # finite batches with source_text / target_text
  bundle.text_dataset(lines, batch_size)     # {"source"} batches of raw input lines
"""
import math
import os

import numpy as np
from absl import logging

from configs.config import DataConfig
from data import builders, pipeline
from data.sources import SPLITS, list_sources  # noqa: F401  (re-exported for --list_datasets)
from data.tokenizer import Tokenizer, train_tokenizer


class DataBundle:
  """Prepared sources, tokenizers and label facts of one DataConfig in one workdir."""

  def __init__(self, config: DataConfig, builders_, source_tokenizer, target_tokenizer,
               label_info, stats):
    self.config, self.builders = config, builders_
    self.source_tokenizer, self.target_tokenizer = source_tokenizer, target_tokenizer
    self.label_info, self.stats = label_info, stats
    self.encoder = pipeline.Encoder(source_tokenizer, target_tokenizer, label_info["domain"])

  def train_dataset(self, batch_tokens: int, seed: int):
    datasets = [b.as_dataset(split="train", shuffle_files=False) for b in self.builders]
    weights = [s.weight for s in self.config.sources]
    return pipeline.train_stream(datasets, weights, self.encoder, batch_tokens,
                                 self.config.max_length, seed, self.config.shuffle_buffer)

  def eval_dataset(self, split: str, batch_size: int, max_examples: int = 0, source: int = 0):
    """Finite batches of `split` of the `source`-th data source (0 = the main one)."""
    from configs.errors import UserError
    builder = self.builders[source]
    if split not in builder.info.splits:
      raise UserError(f"split {split!r} is not in dataset {self.config.sources[source].dataset!r}"
                      f"; splits: {', '.join(sorted(builder.info.splits))}")
    dataset = builder.as_dataset(split=split, shuffle_files=False)
    return pipeline.eval_stream(dataset, self.encoder, batch_size, max_examples,
                                4 * self.config.max_length)

  def text_dataset(self, lines, batch_size: int):
    return pipeline.text_stream(lines, self.encoder, batch_size, 4 * self.config.max_length)


def _all_rows(builder, split):
  splits, _ = builder.read()
  return splits.get(split, [])


def _label_info(builders_) -> dict:
  prices, domains = [], set()
  for builder in builders_:
    for row in _all_rows(builder, "train"):
      if not math.isnan(row["price"]):
        prices.append(row["price"])
      if row["domain"]:
        domains.add(row["domain"])
  return {"price": np.asarray(prices, np.float64), "domain": tuple(sorted(domains))}


def _tokenizers(config: DataConfig, builders_, workdir):
  train_rows = [row for b in builders_ for row in _all_rows(b, "train")]
  sources = [r["source"] for r in train_rows]
  targets = [r["target"] for r in train_rows if r["target"]]
  if config.joint_vocab:
    joint = train_tokenizer(sources + targets, config.vocab_size,
                            os.path.join(workdir, "spm.model"))
    return joint, joint
  return (train_tokenizer(sources, config.vocab_size, os.path.join(workdir, "spm.src.model")),
          train_tokenizer(targets, config.vocab_size, os.path.join(workdir, "spm.tgt.model")))


def _count_too_long(config, builders_, source_tok, target_tok) -> int:
  rows = [r for b in builders_ for r in _all_rows(b, "train")]
  src = source_tok.encode([r["source"] for r in rows])
  tgt = target_tok.encode([r["target"] for r in rows])
  return sum(1 for s, t in zip(src, tgt) if max(len(s), len(t) + 1) + 1 > config.max_length)


def load_data(config: DataConfig, workdir: str, seed: int) -> DataBundle:
  """Prepares every source (TFDS, cached in WORKDIR/tfds), trains/loads the tokenizer(s)."""
  del seed
  os.makedirs(workdir, exist_ok=True)
  builders_ = [builders.prepare(s.dataset, s.data_dir, config.source_lang, config.target_lang,
                                workdir) for s in config.sources]
  source_tok, target_tok = _tokenizers(config, builders_, workdir)
  stats = {f"{s.dataset}": b.auxseq_stats for s, b in zip(config.sources, builders_)}
  stats["dropped_over_max_length"] = _count_too_long(config, builders_, source_tok, target_tok)
  logging.info("data: %s", stats)
  if stats["dropped_over_max_length"]:
    logging.info("%d training examples are longer than --max_length=%d subwords and are "
                 "skipped", stats["dropped_over_max_length"], config.max_length)
  return DataBundle(config, builders_, source_tok, target_tok, _label_info(builders_), stats)
