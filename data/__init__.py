"""Data: sources prepared by streaming into a shared cache, sentencepiece tokenisation, tf.data
batches.

  bundle = data.load_data(config.data, workdir, seed)
  bundle.train_dataset(batch_tokens, seed)   # infinite bucketed batches (DESIGN's batch table)
  bundle.eval_dataset(split, batch_size)     # finite batches with source_text / target_text
  bundle.text_dataset(lines, batch_size)     # {"source"} batches of raw input lines
  data.list_sources()                        # {name: description} for --list_datasets

The first load in a workdir prepares (or finds in the cache) every source and the vocabulary,
copies the sentencepiece model(s) into the workdir and writes WORKDIR/data_info.json (label
facts and statistics). Every later load, e.g. by translate, export or inspect, reads those files
only: the corpus and the prepared data are touched when a train or evaluation stream is asked for.

`import data` (and `data.text_files`) does not import TensorFlow: it loads with the first
tokenizer or stream, so `--engine=ctranslate2` can read its input without it.
"""
from __future__ import annotations

import importlib
import json
import os
import shutil
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

import numpy as np
from absl import logging

from configs.config import DataConfig
from configs.errors import UserError
from data import prepare as prep, vocab
from data.subword import SubwordSampler
from data.special_ids import EOS
from data.sources import SPLITS, list_sources  # noqa: F401  (re-exported for --list_datasets)

if TYPE_CHECKING:
  import tensorflow as tf

INFO_FILE = "data_info.json"
INFO_VERSION = 1


def __getattr__(name: str):
  """`data.pipeline`, `data.Tokenizer`, `data.train_tokenizer`, imported (with TensorFlow) on
  first use."""
  if name == "pipeline":
    return importlib.import_module("data.pipeline")
  if name in ("Tokenizer", "train_tokenizer"):
    return getattr(importlib.import_module("data.tokenizer"), name)
  raise AttributeError(f"module 'data' has no attribute {name!r}")


def _tokenizer(path: str):
  from data.tokenizer import Tokenizer  # pylint: disable=import-outside-toplevel
  return Tokenizer(path)


def is_chief_worker() -> bool:
  """False on the workers of a multi-worker TF_CONFIG that are not its chief (the task `chief`,
  else worker 0): they wait for the chief's prepared data instead of preparing it."""
  config = json.loads(os.environ.get("TF_CONFIG") or "{}")
  cluster, task = config.get("cluster") or {}, config.get("task") or {}
  if not cluster:
    return True
  if "chief" in cluster:
    return task.get("type") == "chief"
  return task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0


class DataBundle:
  """Tokenizers, label facts and statistics of one DataConfig in one workdir, and its streams.

  Attributes:
    source_tokenizer, target_tokenizer: `Tokenizer`s (the same object when joint_vocab).
    label_info: {"price": float64 [N] finite training prices (a sample of at most
      prepare.PRICE_SAMPLE per source), "domain": sorted domain names, "alignment": number of
      training examples with word alignment links}. Batches carry the `alignment` key only when
      that number is > 0.
    stats: counts per source (examples per split, blank lines, masked prices, words per pair)
      and in total (`dropped_over_max_length` training examples the train stream skips).
    builders: the prepared sources (`prepare.PreparedSource`), found or prepared on first use.
  """

  def __init__(self, config: DataConfig, source_tokenizer, target_tokenizer, label_info: dict,
               stats: dict, prepared: Optional[list] = None, chief: bool = True):
    self.config, self._prepared, self._chief = config, prepared, chief
    self.source_tokenizer, self.target_tokenizer = source_tokenizer, target_tokenizer
    self.label_info, self.stats = label_info, stats
    pipeline = importlib.import_module("data.pipeline")
    self.encoder = pipeline.Encoder(source_tokenizer, target_tokenizer, label_info["domain"],
                                    alignment=label_info["alignment"] > 0,
                                    samplers=_samplers(config, source_tokenizer, target_tokenizer))

  @property
  def builders(self) -> List[prep.PreparedSource]:
    if self._prepared is None:
      self._prepared = prepare_sources(self.config, self._chief)
    return self._prepared

  def train_dataset(self, batch_tokens: int, seed: int,
                    pad_to_bucket: bool = False) -> tf.data.Dataset:
    """Infinite shuffled batches of every source mixed by weight, bucketed to `batch_tokens`
    by the config's `length_buckets` (`pad_to_bucket`: one batch shape per bucket, for XLA)."""
    pipeline = importlib.import_module("data.pipeline")
    datasets = [pipeline.read_prepared(b.split_files("train"), seed + i)
                for i, b in enumerate(self.builders)]
    weights = [s.weight for s in self.config.sources]
    return pipeline.train_stream(datasets, weights, self.encoder, batch_tokens,
                                 self.config.max_length, seed, self.config.shuffle_buffer,
                                 pad_to_bucket, self.length_buckets(pad_to_bucket))

  def length_buckets(self, pad_to_bucket: bool = False) -> str:
    """The training stream's length buckets, `auto` resolved: exact, or geometric."""
    pipeline = importlib.import_module("data.pipeline")
    return pipeline.resolve_length_buckets(self.config.length_buckets, pad_to_bucket)

  def eval_dataset(self, split: str, batch_size: int, max_examples: int = 0,
                   source: int = 0) -> tf.data.Dataset:
    """Finite batches of `split` of the `source`-th data source (0 = the main one), in order.

    Nothing is filtered by max_length (sources are capped at 4 * max_length tokens); batches
    also carry `source_text` and `target_text` (tf.string [B]).
    """
    if split not in SPLITS:
      raise UserError(f"unknown split {split!r}; accepted: {', '.join(SPLITS)}")
    builder, name = self.builders[source], self.config.sources[source].dataset
    if split not in builder.splits:
      raise UserError(f"split {split!r} is empty in dataset {name!r}; splits there: "
                      f"{', '.join(sorted(builder.splits))}")
    pipeline = importlib.import_module("data.pipeline")
    dataset = pipeline.read_prepared(builder.split_files(split))
    return pipeline.eval_stream(dataset, self.encoder, batch_size, max_examples,
                                4 * self.config.max_length)

  def text_dataset(self, lines: Sequence[str], batch_size: int) -> tf.data.Dataset:
    """{"source": int32 [B, S]} batches of raw `lines`, in input order."""
    pipeline = importlib.import_module("data.pipeline")
    return pipeline.text_stream(lines, self.encoder, batch_size, 4 * self.config.max_length)

  def source_rows(self, lines: Sequence[str]) -> List[np.ndarray]:
    """int32 [S_i] per raw line: the ids `text_dataset` gives (pieces capped at
    4 * max_length - 1, then EOS; no padding), encoded in Python, so translate's first batch
    builds no tf.data graph."""
    cap = 4 * self.config.max_length - 1
    return [np.asarray(ids[:cap] + [EOS], np.int32)
            for ids in self.source_tokenizer.encode(lines)]


def _samplers(config: DataConfig, source_tokenizer, target_tokenizer):
  """(source, target) `SubwordSampler`s when subword regularisation is on, else None."""
  if not config.subword_alpha > 0:
    return None
  source = SubwordSampler(source_tokenizer.model_path, config.subword_alpha, config.subword_nbest)
  target = source if target_tokenizer is source_tokenizer else SubwordSampler(
      target_tokenizer.model_path, config.subword_alpha, config.subword_nbest)
  return source, target


def prepare_sources(config: DataConfig, chief: bool = True) -> List[prep.PreparedSource]:
  """Every configured source from the cache, prepared by streaming when not there."""
  return [prep.prepare(s.dataset, s.data_dir, config.source_lang, config.target_lang,
                       config.data_cache_dir, chief, log=logging.info,
                       options=reader_options(config, s.dataset)) for s in config.sources]


def reader_options(config: DataConfig, dataset: str) -> dict:
  """The keyword options a source's reader gets from the config (none at their defaults)."""
  if dataset == "tsv" and tuple(config.tsv_text_columns) != ("name",):
    return {"text_columns": list(config.tsv_text_columns)}
  return {}


def _signature(config: DataConfig) -> dict:
  """What the workdir's vocabulary and statistics depend on (not batching or the cache's place)."""
  return {"version": INFO_VERSION, "sources": [[s.dataset, s.data_dir] for s in config.sources],
          "langs": [config.source_lang, config.target_lang], "vocab_size": config.vocab_size,
          "joint_vocab": config.joint_vocab, "max_length": config.max_length,
          **({"tsv_text_columns": list(config.tsv_text_columns)}
             if reader_options(config, "tsv") else {})}


def _label_info(prepared) -> dict:
  prices = [p for s in prepared for p in s.labels["prices"]]
  domains = {d for s in prepared for d in s.labels["domains"]}
  return {"price": np.asarray(prices, np.float64), "domain": tuple(sorted(domains)),
          "alignment": sum(s.labels["aligned"] for s in prepared)}


def _stats(config: DataConfig, prepared, lengths: Dict[str, list]) -> Dict:
  """Per source and total counts; UserError when a source keeps no training pair."""
  stats: Dict = {}
  dropped_total = 0
  for i, (source, builder) in enumerate(zip(config.sources, prepared)):
    key = source.dataset if source.dataset not in stats else f"{source.dataset}_{i}"
    dropped = vocab.too_long(lengths[os.path.basename(builder.path)], config.max_length)
    train = builder.splits["train"].num_examples if "train" in builder.splits else 0
    if train and dropped == train:
      raise UserError(f"dataset {source.dataset!r}: all {train} training pairs are longer than "
                      f"--max_length={config.max_length} subwords (pieces + EOS on a side); "
                      "nothing would survive the filter; raise --max_length")
    stats[key] = dict(builder.auxseq_stats, dropped_over_max_length=dropped)
    dropped_total += dropped
  per_source = list(stats.values())
  stats["dropped_over_max_length"] = dropped_total
  stats["train_examples"] = sum(b.splits["train"].num_examples for b in prepared
                                if "train" in b.splits)
  for key in ("blank_lines_skipped", "prices_masked"):
    stats[key] = sum(s.get(key, 0) for s in per_source)
  return stats


def _tokenizers(config: DataConfig, prepared, workdir: str, seed: int, chief: bool):
  """The workdir's model(s) when it has them (its vocabulary stays), else the cached ones for
  these sources and seed, copied in; with {prepared source: length histogram}."""
  names = vocab.model_names(config.joint_vocab)
  mine = [os.path.join(workdir, n) for n in names]
  if all(os.path.exists(p) for p in mine):
    source_tok = _tokenizer(mine[0])
    target_tok = source_tok if config.joint_vocab else _tokenizer(mine[1])
    return source_tok, target_tok, None
  cached = vocab.prepare_vocab(prepared, config.vocab_size, config.joint_vocab,
                               config.tokenizer_sample, seed, config.data_cache_dir, chief)
  for name, path in zip(names, mine):
    if not os.path.exists(path):
      shutil.copyfile(os.path.join(cached, name), path + ".tmp")
      os.replace(path + ".tmp", path)
  source_tok = _tokenizer(mine[0])
  target_tok = source_tok if config.joint_vocab else _tokenizer(mine[1])
  with open(os.path.join(cached, "lengths.json"), encoding="utf-8") as f:
    return source_tok, target_tok, json.load(f)


def _write_info(workdir: str, config: DataConfig, label_info: dict, stats: dict) -> None:
  info = {"signature": _signature(config), "stats": stats,
          "label_info": dict(label_info, price=label_info["price"].tolist())}
  path = os.path.join(workdir, INFO_FILE)
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(info, f, sort_keys=True)
  os.replace(path + ".tmp", path)


def _stored(config: DataConfig, workdir: str, chief: bool) -> Optional[DataBundle]:
  """The bundle from WORKDIR/data_info.json and the workdir's model(s): no data read (None
  when the workdir has neither, e.g. a fresh one or one written before data_info.json)."""
  path = os.path.join(workdir, INFO_FILE)
  models = [os.path.join(workdir, n) for n in vocab.model_names(config.joint_vocab)]
  if not os.path.exists(path) or not all(os.path.exists(p) for p in models):
    return None
  with open(path, encoding="utf-8") as f:
    info = json.load(f)
  if info.get("signature") != json.loads(json.dumps(_signature(config))):
    # As before for the vocabulary: the workdir's model and label facts are what its checkpoints
    # were trained with; streams still come from the data configured now.
    logging.warning("data: %s was written for other data settings (%s); its vocabulary, label "
                    "facts and statistics are used", path, info.get("signature"))
  labels = info["label_info"]
  label_info = {"price": np.asarray(labels["price"], np.float64),
                "domain": tuple(labels["domain"]), "alignment": labels["alignment"]}
  source_tok = _tokenizer(models[0])
  target_tok = source_tok if config.joint_vocab else _tokenizer(models[1])
  return DataBundle(config, source_tok, target_tok, label_info, info["stats"], chief=chief)


def load_data(config: DataConfig, workdir: str, seed: int,
              chief: Optional[bool] = None) -> DataBundle:
  """The data of `config` in `workdir`: from the workdir's stored vocabulary and facts when it
  has them (nothing else is read), else prepared (or found in the shared cache) by streaming.

  Args:
    config: the sources (main translation source first), languages, vocabulary and lengths.
    workdir: gets the tokenizer model(s) WORKDIR/spm*.model and WORKDIR/data_info.json.
    seed: seeds the tokenizer's training sample (the same data and seed give the same bytes).
    chief: whether this process prepares (None: from TF_CONFIG, `is_chief_worker`); the others
      wait for the chief's completion markers and read the same files.

  Raises:
    UserError: unknown dataset, missing/malformed data files, unusable vocab_size, a source of
      which no training pair survives the max_length filter.
  """
  if not config.sources:
    raise UserError("no data sources configured; give --dataset=NAME")
  if config.tokenizer_sample < 1:
    raise UserError(f"--tokenizer_sample must be >= 1, got {config.tokenizer_sample}")
  chief = is_chief_worker() if chief is None else chief
  stored = _stored(config, workdir, chief)
  if stored is not None:
    return stored
  os.makedirs(workdir, exist_ok=True)
  prepared = prepare_sources(config, chief)
  source_tok, target_tok, lengths = _tokenizers(config, prepared, workdir, seed, chief)
  if lengths is None:  # a workdir with its own vocabulary: lengths under it, not cached
    lengths = dict(zip([os.path.basename(s.path) for s in prepared],
                       vocab.length_histograms(prepared, source_tok, target_tok)))
  stats = _stats(config, prepared, lengths)
  label_info = _label_info(prepared)
  logging.info("data: %s", stats)
  if stats["dropped_over_max_length"]:
    logging.warning("data: %d of %d training examples are longer than max_length=%d subwords "
                    "and are skipped", stats["dropped_over_max_length"],
                    stats["train_examples"], config.max_length)
  _write_info(workdir, config, label_info, stats)
  return DataBundle(config, source_tok, target_tok, label_info, stats, prepared, chief)

