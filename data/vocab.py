"""The vocabulary of prepared sources: sentencepiece model(s) trained on a seeded sample, and the
subword lengths of every training pair, cached beside the prepared data.

CACHE/vocab-<key>/ holds `spm.model` (joint) or `spm.src.model` + `spm.tgt.model`, and
`lengths.json`: per prepared source, a histogram of max(source pieces + EOS, target pieces + EOS)
over its training pairs, from which the pairs longer than any --max_length are counted. The key
fingerprints the prepared sources, the vocabulary settings, the sample size and the seed.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
from typing import TYPE_CHECKING, Dict, List, Sequence, Tuple

import numpy as np

from data import prepare as prep

if TYPE_CHECKING:  # the tokenizer module imports TensorFlow: only where a model is trained
  from data.tokenizer import Tokenizer

MAX_COUNTED_LENGTH = 4096  # longer pairs share the histogram's last bin


def reservoir(sentences, size: int, rng: random.Random) -> List[str]:
  """A uniform sample of `size` of `sentences` (Algorithm R); all of them, in input order, when
  there are no more than `size`."""
  sample: List[str] = []
  for seen, sentence in enumerate(sentences):
    if seen < size:
      sample.append(sentence)
    else:
      j = rng.randrange(seen + 1)
      if j < size:
        sample[j] = sentence
  return sample


def _side(sources: Sequence[prep.PreparedSource], field: int):
  """Non-empty texts of one side (0 = source, 1 = target) of every training pair, in order."""
  for source in sources:
    for line in source.lines("train"):
      text = line.split("\t", 2)[field]
      if text:
        yield text


def sample_sentences(sources, size: int, seed: int) -> Tuple[List[str], List[str]]:
  """(source sample, target sample): `size` sentences each, seeded by `seed`."""
  return (reservoir(_side(sources, 0), size, random.Random(f"{seed}/source")),
          reservoir(_side(sources, 1), size, random.Random(f"{seed}/target")))


def vocab_key(sources, vocab_size: int, joint: bool, sample: int, seed: int) -> str:
  facts = [prep.FORMAT_VERSION, [os.path.basename(s.path) for s in sources], vocab_size, joint,
           sample, seed]
  return "vocab-" + hashlib.sha256(json.dumps(facts).encode("utf-8")).hexdigest()[:12]


def model_names(joint: bool) -> Tuple[str, str]:
  return ("spm.model", "spm.model") if joint else ("spm.src.model", "spm.tgt.model")


def train_models(sources, vocab_size: int, joint: bool, sample: int, seed: int,
                 directory: str) -> Tuple[Tokenizer, Tokenizer]:
  """Trains the model(s) on the seeded sample into `directory`; joint: half from each side.

  The sample lists are handed over to `train_tokenizer`, which empties them while SentencePiece
  copies the sentences, so no second copy of the sample is alive during its training.
  """
  from data.tokenizer import train_tokenizer  # pylint: disable=import-outside-toplevel
  per_side = max(1, sample // 2) if joint else sample
  source_sample, target_sample = sample_sentences(sources, per_side, seed)
  src_name, tgt_name = model_names(joint)
  if joint:
    source_sample.extend(target_sample)  # source half first, then target half, as before
    target_sample.clear()
    tok = train_tokenizer(source_sample, vocab_size, os.path.join(directory, src_name), seed,
                          hand_over=True)
    return tok, tok
  return (train_tokenizer(source_sample, vocab_size, os.path.join(directory, src_name), seed,
                          hand_over=True),
          train_tokenizer(target_sample, vocab_size, os.path.join(directory, tgt_name), seed,
                          hand_over=True))


def length_histograms(sources, source_tok: Tokenizer, target_tok: Tokenizer) -> List[List[int]]:
  """Per source, counts of training pairs by max(source pieces + 1, target pieces + 1) (no
  target: source only), clipped at MAX_COUNTED_LENGTH; tokenised in tf.data, streamed."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  result = []
  for source in sources:
    counts = np.zeros(MAX_COUNTED_LENGTH + 1, np.int64)
    files = source.split_files("train")
    if files:
      lines = tf.data.TextLineDataset(files).batch(4096)

      def lengths(batch):
        fields = tf.strings.split(batch, "\t", maxsplit=2).to_tensor("")
        src = source_tok.tokenize(fields[:, 0]).row_lengths() + 1
        tgt = target_tok.tokenize(fields[:, 1]).row_lengths() + 1
        tgt = tf.where(tf.strings.length(fields[:, 1]) > 0, tgt, tf.zeros_like(tgt))
        return tf.minimum(tf.maximum(src, tgt), MAX_COUNTED_LENGTH)
      for batch in lines.map(lengths, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2):
        counts += np.bincount(batch.numpy(), minlength=MAX_COUNTED_LENGTH + 1)
    result.append(counts.tolist())
  return result


def prepare_vocab(sources, vocab_size: int, joint: bool, sample: int, seed: int,
                  cache_dir: str, chief: bool = True) -> str:
  """CACHE/vocab-<key> with the model(s) and lengths.json, made once (by the chief)."""
  cache_dir = cache_dir or prep.default_cache_dir()
  final = os.path.join(cache_dir, vocab_key(sources, vocab_size, joint, sample, seed))
  marker = os.path.join(final, "lengths.json")
  if os.path.exists(marker):
    return final
  if not chief:
    prep.wait_for(marker, "the vocabulary")
    return final
  os.makedirs(cache_dir, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=os.path.basename(final) + ".tmp-", dir=cache_dir)
  try:
    source_tok, target_tok = train_models(sources, vocab_size, joint, sample, seed, tmp)
    write_lengths(tmp, sources, source_tok, target_tok)
    try:
      os.rename(tmp, final)
    except OSError:
      if not os.path.exists(marker):
        raise
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return final


def write_lengths(directory: str, sources, source_tok, target_tok) -> Dict:
  lengths = {os.path.basename(s.path): h
             for s, h in zip(sources, length_histograms(sources, source_tok, target_tok))}
  path = os.path.join(directory, "lengths.json")
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(lengths, f)
  os.replace(path + ".tmp", path)
  return lengths


def too_long(histogram: Sequence[int], max_length: int) -> int:
  """Pairs of a length histogram longer than `max_length` (what the training stream skips)."""
  return int(sum(histogram[max_length + 1:]))
