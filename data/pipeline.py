"""tf.data pipelines producing the batch contract of DESIGN.md.

Keys (padding id 0): source int32 [B, S] = pieces + EOS; target_in int32 [B, T] = BOS + pieces;
target_out int32 [B, T] = pieces + EOS (all-pad rows when there is no translation); price float32
[B] (NaN = missing); domain int32 [B] (-1 = missing); and, only when the data has word alignments,
alignment tf.string [B] (Pharaoh `k-m` links between positions of `source` and `target_out`; ""
= none). Evaluation batches also carry source_text and target_text (tf.string [B]).

Subword regularisation (`Encoder.samplers`, data/subword.py) applies to the training stream only:
it alone passes a sample key; evaluation, translation and inference streams never sample.
"""
from typing import Sequence

import tensorflow as tf
import tensorflow_text as tf_text

from data.subword import SOURCE, TARGET
from data.tokenizer import BOS, EOS

# Bump when the training stream's operations or batch fields change: a checkpoint's data
# position is only restored into the pipeline version that saved it (training/loop.py).
# 2: prepared lines read with TextLineDataset (1 read TFDS's TFRecords). 3: the length buckets
# are named in the fingerprint (training/components.pipeline_fingerprint), `exact` the default.
PIPELINE_VERSION = 3
FIELDS = ("source", "target", "domain", "price", "alignment")


def parse_line(line: tf.Tensor) -> dict:
  """One prepared line (data/prepare.py: five tab-separated fields) -> the example dict:
  tf.string source, target, domain, alignment; float32 price (NaN = missing)."""
  fields = tf.strings.split(line, "\t")
  row = {name: fields[i] for i, name in enumerate(FIELDS)}
  row["price"] = tf.strings.to_number(row["price"], tf.float32)
  return row


def read_prepared(files, seed=None) -> tf.data.Dataset:
  """Example dicts of prepared split files, in order; with a `seed` and several (globally
  shuffled) training shards, the shards in a seeded order, reshuffled each pass, read four at a
  time, one line from each in turn (deterministic)."""
  if len(files) == 1 or seed is None:
    lines = tf.data.TextLineDataset(list(files))
  else:
    lines = tf.data.Dataset.from_tensor_slices(list(files)).shuffle(
        len(files), seed=seed, reshuffle_each_iteration=True).interleave(
            tf.data.TextLineDataset, cycle_length=min(len(files), 4), block_length=1)
  return lines.map(parse_line, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def piece_words(text: tf.Tensor, starts: tf.Tensor) -> tf.Tensor:
  """The word each sentencepiece piece belongs to, from the pieces' byte offsets.

  Args:
    text: tf.string scalar whose words are separated by single spaces (as the readers store it).
    starts: int64 [N] byte offset in `text` where each piece starts (`tokenize_with_offsets`).

  Returns:
    int32 [N]: the number of words that end at or before the piece's first byte. A piece that
    starts on the space before a word ("▁c" of "ab c", or a lone "▁") counts to that word;
    offsets refer to the original text, so normalisation (NFKC) cannot shift words.
  """
  words = tf.strings.split(text, " ")
  ends = tf.cumsum(tf.strings.length(words) + 1) - 1  # exclusive end byte of each word
  return tf.searchsorted(tf.cast(ends, tf.int64), tf.cast(starts, tf.int64), side="right",
                         out_type=tf.int32)


def subword_links(links: tf.Tensor, source_words: tf.Tensor, target_words: tf.Tensor):
  """Pharaoh word links -> Pharaoh links between the pieces of the linked words.

  Args:
    links: tf.string scalar, e.g. "0-1 2-0" (source word i - target word j), checked by the
      reader.
    source_words: int32 [S'] word index of each source piece (`piece_words`).
    target_words: int32 [T'] word index of each target piece.

  Returns:
    tf.string scalar "k-m ...": every source piece k of word i with every target piece m of
    word j, for each link i-j; source-major order, no duplicates; "" when nothing is linked.
  """
  parts = tf.strings.split(tf.strings.split(links), "-").to_tensor("0", shape=[None, 2])
  pairs = tf.strings.to_number(parts, tf.int32)  # [L, 2]
  source_hit = tf.cast(tf.equal(source_words[:, None], pairs[None, :, 0]), tf.float32)  # [S', L]
  target_hit = tf.cast(tf.equal(pairs[:, 1:], target_words[None, :]), tf.float32)  # [L, T']
  linked = tf.strings.as_string(tf.where(tf.matmul(source_hit, target_hit) > 0))  # [N, 2]
  return tf.strings.reduce_join(tf.strings.reduce_join(linked, axis=1, separator="-"),
                                separator=" ")


def _offsets_tokenizer(tokenizer) -> tf_text.SentencepieceTokenizer:
  with open(tokenizer.model_path, "rb") as f:
    return tf_text.SentencepieceTokenizer(model=f.read(), out_type=tf.int32)


class Encoder:
  """Maps raw TFDS examples to token ids inside tf.data.

  With `alignment=True` every example also gets `alignment`: its Pharaoh word links mapped to
  positions of `source` and `target_out` (source word i -> all of its pieces, target word j ->
  all of its pieces; EOS and BOS are never linked; "" when the example has no links).

  With `samplers` (a (source, target) pair of `data.subword.SubwordSampler`), a call given a
  `sample_key` (int64 [2]: run seed, position in the training stream) segments both sides by a
  sample seeded by that key; an example with word-alignment links keeps the deterministic
  segmentation, since its links point at subword positions.
  """

  def __init__(self, source_tokenizer, target_tokenizer, domains: Sequence[str],
               alignment: bool = False, samplers=None):
    self.source_tokenizer, self.target_tokenizer = source_tokenizer, target_tokenizer
    self.samplers = samplers
    keys = tf.constant(list(domains) or ["<none>"], tf.string)
    values = tf.range(tf.size(keys), dtype=tf.int32)
    self.domain_table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(keys, values), default_value=-1)
    self.alignment = alignment
    if alignment:
      source = _offsets_tokenizer(source_tokenizer)
      same = source_tokenizer is target_tokenizer
      self._offsets = (source, source if same else _offsets_tokenizer(target_tokenizer))

  def subword_alignment(self, row, source_cap=None) -> tf.Tensor:
    """tf.string scalar: `row["alignment"]` (word links) at subword positions."""
    def mapped():
      _, source_starts, _ = self._offsets[0].tokenize_with_offsets(row["source"])
      _, target_starts, _ = self._offsets[1].tokenize_with_offsets(row["target"])
      source_words = piece_words(row["source"], source_starts)
      if source_cap is not None:  # the pieces `source_ids` keeps
        source_words = source_words[:source_cap - 1]
      return subword_links(row["alignment"], source_words,
                           piece_words(row["target"], target_starts))
    has_links = tf.strings.length(row["alignment"]) > 0
    return tf.cond(has_links, mapped, lambda: tf.constant("", tf.string))

  def _sampled(self, side: int, text, sample_key, deterministic, keep=None):
    """int32 [N]: a sampled segmentation of `text`, or `deterministic()` when not sampling
    (no key, no samplers) or when the bool scalar `keep` is true."""
    if sample_key is None or self.samplers is None:
      return deterministic()
    def sampled():
      ids = tf.numpy_function(self.samplers[side], [text, sample_key[0], sample_key[1], side],
                              tf.int32, stateful=False)  # a function of its inputs only
      return tf.ensure_shape(ids, [None])
    return sampled() if keep is None else tf.cond(keep, deterministic, sampled)

  def source_ids(self, text, max_length=None, sample_key=None, keep=None):
    ids = self._sampled(SOURCE, text, sample_key, lambda: self.source_tokenizer.tokenize(text),
                        keep)
    if max_length is not None:
      ids = ids[:max_length - 1]
    return tf.concat([ids, [EOS]], 0)

  def __call__(self, row, source_cap=None, keep_text=False, sample_key=None):
    # Word links point at deterministic subword positions: linked examples are not sampled.
    keep = tf.strings.length(row["alignment"]) > 0 if self.alignment else None
    target = self._sampled(TARGET, row["target"], sample_key,
                           lambda: self.target_tokenizer.tokenize(row["target"]), keep)
    has_target = tf.strings.length(row["target"]) > 0
    target_in = tf.where(has_target, tf.concat([[BOS], target], 0), tf.zeros_like(
        tf.concat([[BOS], target], 0)))
    target_out = tf.where(has_target, tf.concat([target, [EOS]], 0), tf.zeros_like(target_in))
    domain = tf.where(tf.strings.length(row["domain"]) > 0,
                      self.domain_table.lookup(row["domain"]), -1)
    batch = {"source": self.source_ids(row["source"], source_cap, sample_key, keep),
             "target_in": tf.cast(target_in, tf.int32), "target_out": tf.cast(target_out, tf.int32),
             "price": tf.cast(row["price"], tf.float32), "domain": tf.cast(domain, tf.int32)}
    if self.alignment:
      batch["alignment"] = self.subword_alignment(row, source_cap)
    if keep_text:
      batch["source_text"], batch["target_text"] = row["source"], row["target"]
    return batch


def example_length(example):
  return tf.maximum(tf.shape(example["source"])[0], tf.shape(example["target_out"])[0])


LENGTH_BUCKETS = ("auto", "exact", "geometric")
_GEOMETRIC_BOUNDS = (8, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 192, 256)


def resolve_length_buckets(length_buckets: str, pad_to_bucket: bool) -> str:
  """`auto` -> `geometric` when batches are padded to their bucket (XLA: one compile per
  shape), else `exact`; the other names are returned as they are."""
  if length_buckets not in LENGTH_BUCKETS:
    raise ValueError(f"length_buckets must be one of {LENGTH_BUCKETS}, got {length_buckets!r}")
  if length_buckets == "auto":
    return "geometric" if pad_to_bucket else "exact"
  return length_buckets


def bucket_boundaries(max_length: int, length_buckets: str):
  """Exclusive upper bounds of the length buckets (`example_length` <= max_length): `exact`
  gives every length its own bucket (bounds 2, 3, ..., max_length + 1), `geometric` the coarse
  bounds 8, 12, 16, 20, 24, 32, ... (fewer batch shapes, more padding)."""
  if length_buckets == "exact":
    return list(range(2, max_length + 2))
  if length_buckets != "geometric":
    raise ValueError(f"length_buckets must be exact or geometric, got {length_buckets!r}")
  return [b for b in _GEOMETRIC_BOUNDS if b < max_length] + [max_length + 1]


def train_stream(datasets, weights, encoder: Encoder, batch_tokens: int, max_length: int,
                 seed: int, shuffle_buffer: int, pad_to_bucket: bool = False,
                 length_buckets: str = "exact") -> tf.data.Dataset:
  """Shuffled, repeated, mixed (by weight), length-filtered, token-budget bucketed batches.

  pad_to_bucket: pad every batch to its bucket's upper bound, so there is one batch shape per
  bucket (XLA, `--jit_compile`, compiles once per shape; padded to the longest sentence instead,
  the shapes are unbounded and XLA recompiles all the time).
  length_buckets: `exact` or `geometric` (`bucket_boundaries`); a bucket's batches hold
  batch_tokens // (its bound) examples.

  With `encoder.samplers` (subword regularisation) the i-th example of the mixed stream is
  segmented by a sample seeded by (seed, i): the counter is part of the iterator state, so a
  resumed run draws the samples an uninterrupted one would have drawn.
  """
  streams = [ds.shuffle(shuffle_buffer, seed=seed + i, reshuffle_each_iteration=True).repeat()
             for i, ds in enumerate(datasets)]
  if len(streams) == 1:
    mixed = streams[0]
  else:
    total = float(sum(weights))
    mixed = tf.data.Dataset.sample_from_datasets(streams, [w / total for w in weights],
                                                 seed=seed, stop_on_empty_dataset=False)
  if encoder.samplers is None:
    encoded = mixed.map(encoder, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  else:
    encoded = mixed.enumerate().map(
        lambda i, row: encoder(row, sample_key=tf.stack([tf.constant(seed, tf.int64), i])),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  encoded = encoded.filter(lambda ex: example_length(ex) <= max_length)
  bounds = bucket_boundaries(max_length, length_buckets)
  sizes = [max(1, batch_tokens // b) for b in bounds] + [max(1, batch_tokens // (max_length + 1))]
  shapes = {k: [None] * spec.shape.rank for k, spec in encoded.element_spec.items()}
  batched = encoded.bucket_by_sequence_length(example_length, bounds, sizes, padded_shapes=shapes,
                                              pad_to_bucket_boundary=pad_to_bucket,
                                              drop_remainder=pad_to_bucket)
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
