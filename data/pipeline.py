"""tf.data pipelines producing the batch contract of DESIGN.md.

Keys (padding id 0): source int32 [B, S] = pieces + EOS; target_in int32 [B, T] = BOS + pieces;
target_out int32 [B, T] = pieces + EOS (all-pad rows when there is no translation); price float32
[B] (NaN = missing); domain int32 [B] (-1 = missing). Evaluation batches also carry source_text
and target_text (tf.string [B]).
"""
from typing import Sequence

import tensorflow as tf

from data.tokenizer import BOS, EOS

_KEYS = ("source", "target_in", "target_out", "price", "domain")


class Encoder:
  """Maps raw TFDS examples to token ids inside tf.data."""

  def __init__(self, source_tokenizer, target_tokenizer, domains: Sequence[str]):
    self.source_tokenizer, self.target_tokenizer = source_tokenizer, target_tokenizer
    keys = tf.constant(list(domains) or ["<none>"], tf.string)
    values = tf.range(tf.size(keys), dtype=tf.int32)
    self.domain_table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(keys, values), default_value=-1)

  def source_ids(self, text, max_length=None):
    ids = self.source_tokenizer.tokenize(text)
    if max_length is not None:
      ids = ids[:max_length - 1]
    return tf.concat([ids, [EOS]], 0)

  def __call__(self, row, source_cap=None, keep_text=False):
    target = self.target_tokenizer.tokenize(row["target"])
    has_target = tf.strings.length(row["target"]) > 0
    target_in = tf.where(has_target, tf.concat([[BOS], target], 0), tf.zeros_like(
        tf.concat([[BOS], target], 0)))
    target_out = tf.where(has_target, tf.concat([target, [EOS]], 0), tf.zeros_like(target_in))
    domain = tf.where(tf.strings.length(row["domain"]) > 0,
                      self.domain_table.lookup(row["domain"]), -1)
    batch = {"source": self.source_ids(row["source"], source_cap),
             "target_in": tf.cast(target_in, tf.int32), "target_out": tf.cast(target_out, tf.int32),
             "price": tf.cast(row["price"], tf.float32), "domain": tf.cast(domain, tf.int32)}
    if keep_text:
      batch["source_text"], batch["target_text"] = row["source"], row["target"]
    return batch


def example_length(example):
  return tf.maximum(tf.shape(example["source"])[0], tf.shape(example["target_out"])[0])


def bucket_boundaries(max_length: int):
  bounds = [b for b in (8, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 192, 256) if b < max_length]
  return bounds + [max_length + 1]


def train_stream(datasets, weights, encoder: Encoder, batch_tokens: int, max_length: int,
                 seed: int, shuffle_buffer: int) -> tf.data.Dataset:
  """Shuffled, repeated, mixed (by weight), length-filtered, token-budget bucketed batches."""
  streams = [ds.shuffle(shuffle_buffer, seed=seed + i, reshuffle_each_iteration=True).repeat()
             for i, ds in enumerate(datasets)]
  if len(streams) == 1:
    mixed = streams[0]
  else:
    total = float(sum(weights))
    mixed = tf.data.Dataset.sample_from_datasets(streams, [w / total for w in weights],
                                                 seed=seed, stop_on_empty_dataset=False)
  encoded = mixed.map(encoder, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  encoded = encoded.filter(lambda ex: example_length(ex) <= max_length)
  bounds = bucket_boundaries(max_length)
  sizes = [max(1, batch_tokens // b) for b in bounds] + [max(1, batch_tokens // (max_length + 1))]
  batched = encoded.bucket_by_sequence_length(
      example_length, bounds, sizes, padded_shapes={k: ([None] if k in _KEYS[:3] else [])
                                                    for k in _KEYS},
      drop_remainder=False)
  return batched.prefetch(2)


def eval_stream(dataset, encoder: Encoder, batch_size: int, max_examples: int,
                source_cap: int) -> tf.data.Dataset:
  """Finite batches of one split, with the raw texts; nothing filtered (long sources capped)."""
  if max_examples:
    dataset = dataset.take(max_examples)
  encoded = dataset.map(lambda row: encoder(row, source_cap=source_cap, keep_text=True))
  return encoded.padded_batch(batch_size).prefetch(2)


def text_stream(lines, encoder: Encoder, batch_size: int, source_cap: int) -> tf.data.Dataset:
  """{"source": int32 [B, S]} batches of raw lines, in input order."""
  ds = tf.data.Dataset.from_tensor_slices(tf.constant(list(lines), tf.string))
  ds = ds.map(lambda text: {"source": encoder.source_ids(text, source_cap)})
  return ds.padded_batch(batch_size)
