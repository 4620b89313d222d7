"""Subword regularisation: the seeded sampler's distribution, and where the pipeline samples."""
import dataclasses
import itertools
import math
import random

import numpy as np
import pytest
import tensorflow as tf

import data
from configs.config import DataConfig, DataSourceConfig
from data import pipeline, subword
from data.subword import SubwordSampler

WORDS = "apple bird cloud door eagle forest garden house island jungle kettle lemon".split()


def _write_corpus(directory):
  rng = random.Random(0)
  directory.mkdir()
  for split, n in (("train", 200), ("val", 12), ("test", 12)):
    src = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 6))) for _ in range(n)]
    (directory / f"{split}.en").write_text("\n".join(src) + "\n", encoding="utf-8")
    (directory / f"{split}.de").write_text("\n".join(s.upper() for s in src) + "\n",
                                           encoding="utf-8")
  return str(directory), src


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("subword")
  corpus, _ = _write_corpus(tmp / "par")
  train = {line for lang in ("en", "de")
           for line in (tmp / "par" / f"train.{lang}").read_text(encoding="utf-8").splitlines()}
  config = DataConfig(sources=(DataSourceConfig("parallel_text", corpus, 1.0),),
                      vocab_size=80, max_length=40, batch_tokens=256, shuffle_buffer=50)
  workdir = str(tmp / "work")
  plain = data.load_data(config, workdir, seed=1)
  sampled = data.load_data(dataclasses.replace(config, subword_alpha=0.1), workdir, seed=1)
  return plain, sampled, train


def _batches(bundle, n, seed=3):
  return [{k: v.numpy() for k, v in b.items()} for b in bundle.train_dataset(256, seed).take(n)]


def _rows(batches, key):
  return [row[row > 3].tolist() for b in batches for row in b[key]]  # pieces: no pad/BOS/EOS


def _same(a, b):
  """Batches equal key by key (prices are NaN where missing: NaN equals NaN here)."""
  a, b = ({k: np.asarray(v) for k, v in x.items()} for x in (a, b))
  return a.keys() == b.keys() and all(
      a[k].shape == b[k].shape and np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f")
      for k in a)


def _sampler(bundle, alpha=0.1, nbest=-1):
  return SubwordSampler(bundle.source_tokenizer.model_path, alpha, nbest)


def test_large_alpha_gives_the_best_segmentation(setup):
  plain, _, train = setup
  texts = sorted(train)[::4]
  best = plain.source_tokenizer.encode(texts)
  for nbest in (-1, 4):
    sampler = _sampler(plain, alpha=1000.0, nbest=nbest)
    assert [sampler.sample(t, np.random.default_rng(0)) for t in texts] == best


def _segmentations(sampler, text):
  """Every segmentation of `text` into vocabulary pieces, by brute force, with its score."""
  normalized = sampler._sp.normalize(text)  # pylint: disable=protected-access
  pieces = sampler._pieces  # pylint: disable=protected-access
  def split(rest):
    if not rest:
      yield (), 0.0
    for k in range(1, len(rest) + 1):
      if rest[:k] in pieces:
        piece_id, score = pieces[rest[:k]]
        for ids, total in split(rest[k:]):
          yield (piece_id,) + ids, score + total
  return dict(split(normalized))


@pytest.mark.parametrize("nbest", [-1, 3])
def test_samples_follow_p_to_the_alpha(setup, nbest):
  """P(segmentation) = exp(alpha * score) / Z over all segmentations (enumerated by brute
  force; nbest=3: over the 3 best of them); the frequencies of 3000 seeded samples
  (deterministic: seeds 0..2999) agree within 4 sigma."""
  plain, _, _ = setup
  sampler = _sampler(plain, alpha=0.05, nbest=nbest)
  exact = _segmentations(sampler, "eagle bird")
  if nbest > 0:
    exact = dict(sorted(exact.items(), key=lambda kv: -kv[1])[:nbest])
  z = sum(math.exp(0.05 * s) for s in exact.values())
  draws = [tuple(sampler(b"eagle bird", 7, i, 0)) for i in range(3000)]
  assert set(draws) <= set(exact) and len(set(draws)) >= 3
  for ids, score in sorted(exact.items(), key=lambda kv: -kv[1])[:3]:
    p = math.exp(0.05 * score) / z
    assert abs(draws.count(ids) / 3000 - p) <= 4 * math.sqrt(p * (1 - p) / 3000) + 1e-3, ids


def test_samples_are_functions_of_seed_index_and_side(setup):
  plain, _, train = setup
  sampler = _sampler(plain)
  texts = [t.encode() for t in sorted(t for t in train if t.islower())[:40]]
  first = [sampler(t, 5, i, 0).tolist() for i, t in enumerate(texts)]
  assert first == [sampler(t, 5, i, 0).tolist() for i, t in enumerate(texts)]
  for other in ((6, 0, 0), (5, 1, 0), (5, 0, 1)):  # seed, index offset, side
    seed, shift, side = other
    changed = sum(sampler(t, seed, i + shift, side).tolist() != f
                  for i, (t, f) in enumerate(zip(texts, first)))
    assert changed >= 10, other


def test_kept_lattices_give_the_uncached_samples_and_stay_bounded(setup, monkeypatch):
  """A sentence read again walks its kept lattice: its samples equal an uncached sampler's,
  draw for draw, over three reads; past the cap no more sentences are kept."""
  plain, _, train = setup
  texts = [t.encode() for t in sorted(train)[:30]]
  monkeypatch.setattr(subword, "CACHE_SENTENCES", 0)
  uncached = _sampler(plain)
  monkeypatch.setattr(subword, "CACHE_SENTENCES", 10)
  cached = _sampler(plain)
  draws = {True: [], False: []}
  for read in range(3):  # the first read keeps 10 lattices, the next two walk them
    for i, text in enumerate(texts):
      for sampler, is_cached in ((cached, True), (uncached, False)):
        draws[is_cached].append(sampler(text, 5, 100 * read + i, 0).tolist())
  assert draws[True] == draws[False]
  assert len({tuple(d) for d in draws[True]}) > len(texts)  # samples, not one segmentation each
  assert len(cached._cache) == 10 and not uncached._cache  # pylint: disable=protected-access


def test_alpha_zero_batches_are_the_deterministic_segmentation(setup):
  plain, _, train = setup
  assert plain.encoder.samplers is None
  tok = plain.source_tokenizer
  rows = _rows(_batches(plain, 4), "source") + _rows(_batches(plain, 4), "target_out")
  assert rows and all(tok.encode(tok.detokenize([r]))[0] == r for r in rows)


def test_sampled_batches_differ_but_decode_to_the_training_text(setup):
  _, sampled, train = setup
  tok = sampled.source_tokenizer
  rows = _rows(_batches(sampled, 4), "source") + _rows(_batches(sampled, 4), "target_out")
  texts = tok.detokenize(rows)
  assert all(t in train for t in texts)
  resegmented = sum(tok.encode([t])[0] != r for t, r in zip(texts, rows))
  assert resegmented >= len(rows) // 4, (resegmented, len(rows))


def test_same_seed_same_batches_other_seed_other_batches(setup):
  _, sampled, _ = setup
  first, again, other = _batches(sampled, 3), _batches(sampled, 3), _batches(sampled, 3, seed=4)
  assert all(_same(a, b) for a, b in zip(first, again))
  assert not any(_same(a, c) for a, c in zip(first, other))


def test_evaluation_and_translation_batches_are_never_sampled(setup):
  plain, sampled, _ = setup
  for split in ("validation", "test"):
    pairs = list(zip(plain.eval_dataset(split, 8), sampled.eval_dataset(split, 8)))
    assert len(pairs) == 2 and all(_same(a, b) for a, b in pairs)
  lines = ["apple bird cloud", "kettle lemon"]
  a, b = next(iter(plain.text_dataset(lines, 2))), next(iter(sampled.text_dataset(lines, 2)))
  assert np.array_equal(a["source"].numpy(), b["source"].numpy())


def test_resumed_iterator_gives_the_uninterrupted_batches(setup, tmp_path):
  _, sampled, _ = setup
  uninterrupted = _batches(sampled, 6)
  iterator = iter(sampled.train_dataset(256, 3))
  for _ in range(3):
    next(iterator)
  path = tf.train.Checkpoint(iterator=iterator).save(str(tmp_path / "ckpt"))
  fresh = iter(sampled.train_dataset(256, 3))
  tf.train.Checkpoint(iterator=fresh).restore(path).assert_consumed()
  assert all(_same(expected, next(fresh)) for expected in uninterrupted[3:])


def test_aligned_examples_keep_the_deterministic_segmentation(setup):
  plain, _, _ = setup
  tok, sampler = plain.source_tokenizer, _sampler(plain)
  encoder = pipeline.Encoder(tok, tok, (), alignment=True, samplers=(sampler, sampler))
  def encode(alignment, index):
    row = {"source": tf.constant("eagle forest garden"), "target": tf.constant("GARDEN EAGLE"),
           "domain": tf.constant(""), "price": tf.constant(np.nan, tf.float32),
           "alignment": tf.constant(alignment)}
    key = tf.constant([1, index], tf.int64)
    return {k: v.numpy() for k, v in encoder(row, sample_key=key).items()}
  best = encode("0-1 2-0", 0)
  assert best["source"].tolist() == tok.encode(["eagle forest garden"])[0] + [3]
  for index in range(20):
    linked = encode("0-1 2-0", index)
    assert all(np.array_equal(linked[k], best[k]) for k in ("source", "target_out", "alignment"))
  unlinked = [encode("", i)["source"].tolist() for i in range(20)]
  assert sum(u != best["source"].tolist() for u in unlinked) >= 5
  assert len({tuple(u) for u in itertools.islice(unlinked, 20)}) >= 3
