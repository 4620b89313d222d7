"""Sentence-length distributions for the benchmark, and the reference's fixed batch size.

Lengths are subword tokens per sentence *as the model sees them*: source = pieces + EOS,
target = pieces + 1 (BOS-shifted input / EOS-terminated labels). They come from, best first:

  spm       a unigram sentencepiece model (8000 pieces, joint en+de, the settings of
            data/tokenizer.py) trained on the Multi30k training set, cached in a work directory.
  words     whitespace words x 1.3, rounded (no training; used by `--quick`).
  fallback  no Multi30k on this machine: a bivariate log-normal fitted to the `spm` lengths of
            Multi30k train en->de (29,000 pairs, measured with the settings above):
              log(source pieces): mean 2.633, sd 0.320;  log(target pieces): mean 2.657, sd 0.359;
              correlation of the logs 0.837  (pieces: en mean 14.7 sd 4.9, de mean 15.2 sd 5.7).
"""
import dataclasses
import io
import os
from typing import List, Tuple

import numpy as np

FALLBACK_LOG_MEAN = (2.633, 2.657)
FALLBACK_LOG_SD = (0.320, 0.359)
FALLBACK_LOG_CORR = 0.837
FALLBACK_EXAMPLES = 29000


@dataclasses.dataclass(frozen=True)
class Lengths:
  """Per-example token counts (with EOS / BOS) and where they came from.

  Attributes:
    source: int [N] source tokens (pieces + EOS).
    target: int [N] target tokens (pieces + 1).
    origin: `spm`, `words` or `fallback` (see the module docstring).
  """
  source: np.ndarray
  target: np.ndarray
  origin: str


def _read(path: str) -> List[str]:
  with open(path, encoding="utf-8") as f:
    return [" ".join(line.split()) for line in f]


def _spm_counts(sentences: List[str], vocab_size: int, cache_dir: str) -> List[int]:
  """Trains (once, cached in `cache_dir`) a unigram model on `sentences`; pieces per sentence."""
  import sentencepiece as spm  # pylint: disable=import-outside-toplevel
  path = os.path.join(cache_dir, f"bench_spm_{vocab_size}.model")
  if not os.path.exists(path):
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([s for s in sentences if s]), model_writer=model,
        vocab_size=vocab_size, model_type="unigram", character_coverage=1.0, pad_id=0, unk_id=1,
        bos_id=2, eos_id=3, hard_vocab_limit=False, input_sentence_size=400000,
        shuffle_input_sentence=True, num_threads=2, minloglevel=2)
    os.makedirs(cache_dir, exist_ok=True)
    with open(path, "wb") as f:
      f.write(model.getvalue())
  processor = spm.SentencePieceProcessor(model_file=path)
  return [len(ids) for ids in processor.encode(sentences)]


def multi30k_lengths(data_dir: str, cache_dir: str, method: str = "spm", vocab_size: int = 8000,
                     max_length: int = 64, source_lang: str = "en",
                     target_lang: str = "de") -> Lengths:
  """Token counts of the training pairs in `data_dir` (train.<lang>), or the fallback.

  Pairs with an empty side are skipped and pairs longer than `max_length` on either side are
  dropped, as the auxseq pipeline does.
  """
  src_path = os.path.join(data_dir, f"train.{source_lang}")
  tgt_path = os.path.join(data_dir, f"train.{target_lang}")
  if not (os.path.isfile(src_path) and os.path.isfile(tgt_path)):
    return fallback_lengths(FALLBACK_EXAMPLES, max_length)
  pairs = [(s, t) for s, t in zip(_read(src_path), _read(tgt_path)) if s and t]
  sources, targets = [p[0] for p in pairs], [p[1] for p in pairs]
  if method == "spm":
    counts = _spm_counts(sources + targets, vocab_size, cache_dir)
    src, tgt = np.array(counts[:len(pairs)]), np.array(counts[len(pairs):])
  elif method == "words":
    src = np.array([round(len(s.split()) * 1.3) for s in sources])
    tgt = np.array([round(len(t.split()) * 1.3) for t in targets])
  else:
    raise ValueError(f"length method must be spm or words, got {method!r}")
  src, tgt = np.maximum(src, 1) + 1, np.maximum(tgt, 1) + 1
  keep = np.maximum(src, tgt) <= max_length
  return Lengths(src[keep].astype(np.int64), tgt[keep].astype(np.int64), method)


def fallback_lengths(n: int, max_length: int = 64, seed: int = 0) -> Lengths:
  """`n` pairs from the documented log-normal fit (module docstring), clipped to [2, max_length]."""
  rng = np.random.default_rng(seed)
  sd = np.array(FALLBACK_LOG_SD)
  cov = np.outer(sd, sd) * np.array([[1.0, FALLBACK_LOG_CORR], [FALLBACK_LOG_CORR, 1.0]])
  logs = rng.multivariate_normal(FALLBACK_LOG_MEAN, cov, size=n)
  pieces = np.clip(np.rint(np.exp(logs)), 1, max_length - 1).astype(np.int64)
  return Lengths(pieces[:, 0] + 1, pieces[:, 1] + 1, "fallback")


def write_synthetic_corpus(directory: str, lengths: Lengths, seed: int = 0,
                           words: int = 3000) -> str:
  """Parallel text (train/val/test2016 .en/.de) of random words with about the given lengths.

  Used for auxseq when Multi30k is absent: sentences have round((tokens - 1) / 1.3) words drawn
  Zipf-like from `words` made-up words, so the subword lengths are only roughly the fallback's.
  """
  rng = np.random.default_rng(seed)
  vocab = [f"w{i}x{'abcdefgh'[i % 8]}" for i in range(words)]
  probs = 1.0 / np.arange(1, words + 1)
  probs /= probs.sum()

  def sentence(tokens):
    count = max(1, int(round((tokens - 1) / 1.3)))
    return " ".join(vocab[i] for i in rng.choice(words, size=count, p=probs))

  os.makedirs(directory, exist_ok=True)
  n = len(lengths.source)
  for split, rows in (("train", range(n)), ("val", range(min(n, 100))),
                      ("test2016", range(min(n, 100)))):
    src = [sentence(lengths.source[i]) for i in rows]
    tgt = [sentence(lengths.target[i]) for i in rows]
    for lang, lines in (("en", src), ("de", tgt)):
      with open(os.path.join(directory, f"{split}.{lang}"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
  return directory


def mean_padded_length(lengths: np.ndarray, batch_size: int, rng, samples: int = 2000) -> float:
  """E[max of `batch_size` lengths drawn at random] (the padded length of a random batch)."""
  draws = rng.choice(lengths, size=(samples, batch_size))
  return float(draws.max(axis=1).mean())


def fixed_batch_size(lengths: Lengths, batch_tokens: int, seed: int = 0) -> Tuple[int, float]:
  """The reference's batch size B = batch_tokens // (mean padded target length of B-batches).

  B and the padded length depend on each other; iterated to a fixed point (a few rounds).

  Returns:
    (B, mean padded target length at B).
  """
  rng = np.random.default_rng(seed)
  batch = max(1, batch_tokens // int(round(lengths.target.mean())))
  padded = mean_padded_length(lengths.target, batch, rng)
  for _ in range(10):
    new = max(1, int(batch_tokens // padded))
    if new == batch:
      break
    batch = new
    padded = mean_padded_length(lengths.target, batch, rng)
  return batch, padded
