"""Data: TFDS builders over registered sources, sentencepiece tokenisation, tf.data batches.

  bundle = data.load_data(config.data, workdir, seed)
  bundle.train_dataset(batch_tokens, seed)   # infinite bucketed batches (DESIGN's batch table)
  bundle.eval_dataset(split, batch_size)     # finite batches with source_text / target_text
  bundle.text_dataset(lines, batch_size)     # {"source"} batches of raw input lines
  data.list_sources()                        # {name: description} for --list_datasets
"""
import math
import os
from typing import Dict, List, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from configs.config import DataConfig
from configs.errors import UserError
from data import builders, pipeline
from data.sources import SPLITS, list_sources  # noqa: F401  (re-exported for --list_datasets)
from data.tokenizer import Tokenizer, train_tokenizer  # noqa: F401


class DataBundle:
  """Prepared sources, tokenizers and label facts of one DataConfig in one workdir.

  Attributes:
    source_tokenizer, target_tokenizer: `Tokenizer`s (the same object when joint_vocab).
    label_info: {"price": float64 [N] finite training prices, "domain": sorted domain names,
      "alignment": number of training examples with word alignment links}. Batches carry the
      `alignment` key only when that number is > 0.
    stats: counts per source (examples per split, blank lines, masked prices) and in total
      (`dropped_over_max_length` training examples the train stream skips).
  """

  def __init__(self, config: DataConfig, builders_, source_tokenizer, target_tokenizer,
               label_info: dict, stats: dict):
    self.config, self.builders = config, builders_
    self.source_tokenizer, self.target_tokenizer = source_tokenizer, target_tokenizer
    self.label_info, self.stats = label_info, stats
    self.encoder = pipeline.Encoder(source_tokenizer, target_tokenizer, label_info["domain"],
                                    alignment=label_info["alignment"] > 0)

  def train_dataset(self, batch_tokens: int, seed: int,
                    pad_to_bucket: bool = False) -> tf.data.Dataset:
    """Infinite shuffled batches of every source mixed by weight, bucketed to `batch_tokens`
    (`pad_to_bucket`: one batch shape per bucket, for XLA)."""
    datasets = [b.as_dataset(split="train", shuffle_files=False) for b in self.builders]
    weights = [s.weight for s in self.config.sources]
    return pipeline.train_stream(datasets, weights, self.encoder, batch_tokens,
                                 self.config.max_length, seed, self.config.shuffle_buffer,
                                 pad_to_bucket)

  def eval_dataset(self, split: str, batch_size: int, max_examples: int = 0,
                   source: int = 0) -> tf.data.Dataset:
    """Finite batches of `split` of the `source`-th data source (0 = the main one), in order.

    Nothing is filtered by max_length (sources are capped at 4 * max_length tokens); batches
    also carry `source_text` and `target_text` (tf.string [B]).
    """
    if split not in SPLITS:
      raise UserError(f"unknown split {split!r}; accepted: {', '.join(SPLITS)}")
    builder, name = self.builders[source], self.config.sources[source].dataset
    if split not in builder.info.splits:
      raise UserError(f"split {split!r} is empty in dataset {name!r}; splits there: "
                      f"{', '.join(sorted(builder.info.splits))}")
    dataset = builder.as_dataset(split=split, shuffle_files=False)
    return pipeline.eval_stream(dataset, self.encoder, batch_size, max_examples,
                                4 * self.config.max_length)

  def text_dataset(self, lines: Sequence[str], batch_size: int) -> tf.data.Dataset:
    """{"source": int32 [B, S]} batches of raw `lines`, in input order."""
    return pipeline.text_stream(lines, self.encoder, batch_size, 4 * self.config.max_length)


def _label_info(train_rows: List[List[dict]]) -> dict:
  prices = [r["price"] for rows in train_rows for r in rows if not math.isnan(r["price"])]
  domains = {r["domain"] for rows in train_rows for r in rows if r["domain"]}
  aligned = sum(1 for rows in train_rows for r in rows if r["alignment"])
  return {"price": np.asarray(prices, np.float64), "domain": tuple(sorted(domains)),
          "alignment": aligned}


def _tokenizers(config: DataConfig, train_rows: List[List[dict]], workdir: str):
  """Trains (or reloads) the joint model, or one per side; untranslated rows: source only."""
  rows = [r for per_source in train_rows for r in per_source]
  sources_ = [r["source"] for r in rows]
  targets = [r["target"] for r in rows if r["target"]]
  if config.joint_vocab:
    joint = train_tokenizer(sources_ + targets, config.vocab_size,
                            os.path.join(workdir, "spm.model"))
    return joint, joint
  return (train_tokenizer(sources_, config.vocab_size, os.path.join(workdir, "spm.src.model")),
          train_tokenizer(targets, config.vocab_size, os.path.join(workdir, "spm.tgt.model")))


def _count_too_long(rows: List[dict], source_tok: Tokenizer, target_tok: Tokenizer,
                    max_length: int) -> int:
  """Training rows the stream's filter drops: pieces + EOS longer than max_length on a side."""
  src = source_tok.encode([r["source"] for r in rows])
  tgt = target_tok.encode([r["target"] for r in rows])
  return sum(1 for s, t, r in zip(src, tgt, rows)
             if len(s) + 1 > max_length or (r["target"] and len(t) + 1 > max_length))


def _stats(config: DataConfig, builders_, train_rows, source_tok, target_tok) -> Dict:
  stats: Dict = {}
  dropped_total = 0
  for i, (source, builder, rows) in enumerate(zip(config.sources, builders_, train_rows)):
    key = source.dataset if source.dataset not in stats else f"{source.dataset}_{i}"
    dropped = _count_too_long(rows, source_tok, target_tok, config.max_length)
    stats[key] = dict(builder.auxseq_stats, dropped_over_max_length=dropped)
    dropped_total += dropped
  per_source = [s for s in stats.values()]
  stats["dropped_over_max_length"] = dropped_total
  stats["train_examples"] = sum(len(rows) for rows in train_rows)
  for key in ("blank_lines_skipped", "prices_masked"):
    stats[key] = sum(s.get(key, 0) for s in per_source)
  return stats


def load_data(config: DataConfig, workdir: str, seed: int) -> DataBundle:
  """Prepares every source (TFDS, cached in WORKDIR/tfds), trains/loads the tokenizer(s).

  Args:
    config: the sources (main translation source first), languages, vocabulary and lengths.
    workdir: prepared data go to WORKDIR/tfds, tokenizer models to WORKDIR/spm*.model.
    seed: unused for preparation (splits are hash-based, sentencepiece is deterministic); kept
      so that callers pass the run's seed in one place.

  Raises:
    UserError: unknown dataset, missing/malformed data files, unusable vocab_size.
  """
  del seed
  if not config.sources:
    raise UserError("no data sources configured; give --dataset=NAME")
  os.makedirs(workdir, exist_ok=True)
  builders_ = [builders.prepare(s.dataset, s.data_dir, config.source_lang, config.target_lang,
                                workdir) for s in config.sources]
  train_rows = [b.rows("train") for b in builders_]
  source_tok, target_tok = _tokenizers(config, train_rows, workdir)
  stats = _stats(config, builders_, train_rows, source_tok, target_tok)
  logging.info("data: %s", stats)
  if stats["dropped_over_max_length"]:
    logging.warning("data: %d of %d training examples are longer than max_length=%d subwords "
                    "and are skipped", stats["dropped_over_max_length"],
                    stats["train_examples"], config.max_length)
  return DataBundle(config, builders_, source_tok, target_tok, _label_info(train_rows), stats)
