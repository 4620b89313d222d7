"""load_data end to end on tiny written corpora: the batch contract, mixing, checkpointing."""
import copy
import dataclasses
import math
import random

import numpy as np
import pytest
import tensorflow as tf

import data
from data import pipeline
from configs.config import DataConfig, DataSourceConfig
from configs.errors import UserError
from data.mo import write_mo

WORDS = "apple bird cloud door eagle forest garden house island jungle kettle lemon".split()
LONG = " ".join(WORDS * 3)  # 36 words: longer than max_length on both sides


def _parallel(directory):
  rng = random.Random(0)
  directory.mkdir()
  for split, n in (("train", 300), ("val", 20), ("test", 20)):
    src = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))) for _ in range(n)]
    if split == "train":
      src[5] = LONG
    (directory / f"{split}.en").write_text("\n".join(src) + "\n", encoding="utf-8")
    (directory / f"{split}.de").write_text("\n".join(s.upper() for s in src) + "\n",
                                           encoding="utf-8")
  return str(directory)


def _gettext(root):
  (root / "de" / "LC_MESSAGES").mkdir(parents=True)
  for name, offset in (("app", 0), ("other", 6)):
    catalog = {f"{a} {b} {c}": f"{c} {b} {a}".upper()
               for a in WORDS[offset:offset + 6] for b in WORDS for c in WORDS[:4]}
    write_mo(str(root / "de" / "LC_MESSAGES" / f"{name}.mo"), catalog)
  return str(root)


def _tsv(path):
  rows = ["id\tname\tprice"] + [f"{i}\t{WORDS[i % 12]} flat {WORDS[i % 5]}\t{p}"
                                for i, p in enumerate([80, 120, "abc", -5] * 50)]
  path.write_text("\n".join(rows) + "\n", encoding="utf-8")
  return str(path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("pipeline")
  config = DataConfig(sources=(DataSourceConfig("parallel_text", _parallel(tmp / "par"), 1.0),
                               DataSourceConfig("gettext", _gettext(tmp / "locale"), 0.5),
                               DataSourceConfig("tsv", _tsv(tmp / "l.tsv"), 0.25)),
                      vocab_size=120, max_length=16, batch_tokens=128, shuffle_buffer=64)
  return config, data.load_data(config, str(tmp / "work"), seed=1)


def _batches(bundle, n, batch_tokens=128, seed=3):
  return [{k: v.numpy() for k, v in b.items()}
          for b in bundle.train_dataset(batch_tokens, seed).take(n)]


def test_stats_and_label_info(setup):
  _, bundle = setup
  assert bundle.stats["dropped_over_max_length"] == 1
  assert bundle.stats["parallel_text"]["dropped_over_max_length"] == 1
  assert bundle.stats["prices_masked"] == 100
  assert bundle.label_info["domain"] == ("app", "other")
  prices = bundle.label_info["price"]
  assert prices.dtype == np.float64 and set(prices.tolist()) == {80.0, 120.0}
  assert bundle.source_tokenizer is bundle.target_tokenizer


def test_batch_contract(setup):
  config, bundle = setup
  for batch in _batches(bundle, 20):
    assert set(batch) == {"source", "target_in", "target_out", "price", "domain"}
    assert [batch[k].dtype for k in sorted(batch)] == [np.int32, np.float32, np.int32, np.int32,
                                                       np.int32]
    src, t_in, t_out = batch["source"], batch["target_in"], batch["target_out"]
    assert src.shape[0] * max(src.shape[1], t_in.shape[1]) <= config.batch_tokens
    assert t_in.shape == t_out.shape and max(src.shape[1], t_in.shape[1]) <= config.max_length
    for i in range(src.shape[0]):
      n = int((src[i] != 0).sum())
      assert src[i, n - 1] == 3 and (src[i, :n - 1] > 3).all()
      m = int((t_out[i] != 0).sum())
      if m == 0:  # a listing: no translation, a price slot, no domain
        assert not t_in[i].any() and batch["domain"][i] == -1
        continue
      assert math.isnan(batch["price"][i]) and t_in[i, 0] == 2 and t_out[i, m - 1] == 3
      np.testing.assert_array_equal(t_in[i, 1:m], t_out[i, :m - 1])


def test_pad_to_bucket_gives_one_shape_per_bucket(setup):
  """--jit_compile: XLA compiles once per batch shape, so the shapes must be a fixed, small set:
  max_length 16 -> bounds 8, 12, 17; batch 128 // bound rows padded to bound - 1."""
  _, bundle = setup
  expected = {(128 // b, b - 1) for b in (8, 12, 17)}
  shapes = set()
  for batch in bundle.train_dataset(128, 3, pad_to_bucket=True).take(60):
    shapes.add(tuple(batch["source"].shape))
    assert batch["source"].shape == batch["target_in"].shape == batch["target_out"].shape
  assert shapes <= expected and len(shapes) >= 2, shapes
  loose = {tuple(b["source"].shape) for b in _batches(bundle, 60)}
  assert len(loose) > len(shapes)  # the guard: without it the shapes vary with each batch


def _example_lengths(batch):
  """Each row's `pipeline.example_length`: the longer side's non-pad tokens."""
  return np.maximum((batch["source"] != 0).sum(1), (batch["target_out"] != 0).sum(1))


def test_exact_buckets_batch_one_length_each(setup):
  """The default `exact` buckets: every batch holds examples of one length (the longer side,
  EOS/BOS included), batch_tokens // (length + 1) of them once the bucket fills, so the longer
  side of each batch pads nothing; `geometric` mixes lengths within a batch."""
  _, bundle = setup
  assert (bundle.length_buckets(), bundle.length_buckets(pad_to_bucket=True)) == (
      "exact", "geometric")  # auto
  full = 0
  for batch in _batches(bundle, 60):
    lengths = _example_lengths(batch)
    assert len(set(lengths.tolist())) == 1, lengths
    longest = max(batch["source"].shape[1], batch["target_out"].shape[1])
    assert longest == lengths[0] and len(lengths) <= 128 // (longest + 1)
    full += len(lengths) == 128 // (longest + 1)
  assert full == 60  # the stream repeats: a bucket is only emitted full
  geometric = copy.copy(bundle)  # the same prepared data, another bucketing
  geometric.config = dataclasses.replace(bundle.config, length_buckets="geometric")
  assert geometric.length_buckets() == "geometric"
  mixed = sum(len(set(_example_lengths(b).tolist())) > 1 for b in _batches(geometric, 30))
  assert mixed >= 10


def test_bucket_bounds_and_auto():
  assert pipeline.bucket_boundaries(5, "exact") == [2, 3, 4, 5, 6]
  assert pipeline.bucket_boundaries(64, "geometric") == [8, 12, 16, 20, 24, 32, 40, 48, 65]
  assert pipeline.bucket_boundaries(80, "geometric") == [8, 12, 16, 20, 24, 32, 40, 48, 64, 81]
  assert pipeline.resolve_length_buckets("auto", pad_to_bucket=False) == "exact"
  assert pipeline.resolve_length_buckets("auto", pad_to_bucket=True) == "geometric"
  assert pipeline.resolve_length_buckets("exact", pad_to_bucket=True) == "exact"
  with pytest.raises(ValueError, match="length_buckets"):
    pipeline.bucket_boundaries(16, "auto")


def test_mixing_follows_weights(setup):
  _, bundle = setup
  counts = np.zeros(3)
  for batch in _batches(bundle, 120, batch_tokens=256):
    listing = ~batch["target_out"].any(axis=1)
    domain = batch["domain"] >= 0
    counts += [(~listing & ~domain).sum(), domain.sum(), listing.sum()]
  np.testing.assert_allclose(counts / counts.sum(), [4 / 7, 2 / 7, 1 / 7], atol=0.05)


def test_iterator_checkpoint_restores_position(setup, tmp_path):
  _, bundle = setup
  iterator = iter(bundle.train_dataset(128, seed=5))
  for _ in range(3):
    next(iterator)
  path = tf.train.Checkpoint(iterator=iterator).write(str(tmp_path / "ckpt"))
  expected = [next(iterator) for _ in range(2)]
  restored = iter(bundle.train_dataset(128, seed=5))
  tf.train.Checkpoint(iterator=restored).read(path).assert_consumed()
  for want in expected:
    got = next(restored)
    for key in want:
      np.testing.assert_array_equal(got[key].numpy(), want[key].numpy())


def test_eval_and_text_datasets_keep_order(setup):
  config, bundle = setup
  lines = open(f"{config.sources[0].data_dir}/val.en", encoding="utf-8").read().split("\n")[:20]
  batches = list(bundle.eval_dataset("validation", batch_size=8))
  texts = [t.decode() for b in batches for t in b["source_text"].numpy()]
  assert texts == lines and {"target_text", "price", "domain", "target_out"} <= set(batches[0])
  assert [t.decode() for t in batches[0]["target_text"].numpy()] == [s.upper() for s in lines[:8]]
  assert len(list(bundle.eval_dataset("test", 8, max_examples=5).unbatch())) == 5
  text_batch = next(iter(bundle.text_dataset(lines[:3], 3)))["source"].numpy()
  assert bundle.source_tokenizer.detokenize(text_batch) == lines[:3]
  with pytest.raises(UserError, match="accepted: train, validation, test"):
    bundle.eval_dataset("dev", 8)


def test_separate_vocabularies_and_unknown_dataset(setup, tmp_path):
  config, _ = setup
  separate = dataclasses.replace(config, sources=config.sources[:1], joint_vocab=False)
  bundle = data.load_data(separate, str(tmp_path), seed=0)
  assert bundle.source_tokenizer.model_path.endswith("spm.src.model")
  assert bundle.target_tokenizer.model_path.endswith("spm.tgt.model")
  assert bundle.target_tokenizer.detokenize(
      bundle.target_tokenizer.tokenize(tf.constant(["APPLE BIRD"])).to_list()) == ["APPLE BIRD"]
  with pytest.raises(UserError, match="unknown dataset 'wmt'; known datasets: gettext, "
                     "parallel_text, tfds, tsv"):
    data.load_data(dataclasses.replace(config, sources=(DataSourceConfig("wmt"),)),
                   str(tmp_path / "w"), 0)
  assert set(data.list_sources()) == {"gettext", "parallel_text", "tfds", "tsv"}
