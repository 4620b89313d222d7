"""Corpus-scale data (issue 19): the seeded tokenizer sample, the shared cache, stored facts for
inference, global shuffling with an exact resume position, the no-pair error."""
import dataclasses
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import data
from configs.config import DataConfig, DataSourceConfig
from configs.errors import UserError
from conftest import write_copy_corpus
from data import prepare as prep, vocab


def _config(corpus, cache, **kw):
  fields = dict(sources=(DataSourceConfig("parallel_text", corpus),), vocab_size=60,
                max_length=16, batch_tokens=128, shuffle_buffer=32, data_cache_dir=str(cache))
  fields.update(kw)
  return DataConfig(**fields)


def _numbered_corpus(directory, n_train):
  """Train line i is `w<i> ...`: the stream's examples tell where in the file they come from."""
  directory.mkdir(parents=True)
  words = "apple bird cloud door eagle".split()
  for split, n in (("train", n_train), ("val", 5), ("test", 5)):
    lines = [f"{i} {words[i % 5]} {words[(i // 5) % 5]}" for i in range(n)]
    for lang in ("en", "de"):
      (directory / f"{split}.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
  return str(directory)


def test_reservoir_keeps_order_when_it_fits_and_is_seeded():
  assert vocab.reservoir(iter("abcde"), 10, None) == list("abcde")
  import random
  one = vocab.reservoir(range(1000), 50, random.Random("1/source"))
  assert one == vocab.reservoir(range(1000), 50, random.Random("1/source"))
  assert one != vocab.reservoir(range(1000), 50, random.Random("2/source"))
  assert len(set(one)) == 50 and max(one) > 500  # drawn from the whole stream, not its head


def test_same_data_and_seed_give_byte_identical_vocabularies(tmp_path):
  """The sample (200 of 3000 sentences a side) is drawn with the seed; two caches, same bytes."""
  corpus = write_copy_corpus(tmp_path / "c", n_train=3000)
  models = {}
  for name, seed in (("a", 7), ("b", 7), ("c", 8)):
    config = _config(corpus, tmp_path / f"cache_{name}", tokenizer_sample=200, vocab_size=40)
    bundle = data.load_data(config, str(tmp_path / f"work_{name}"), seed=seed)
    with open(bundle.source_tokenizer.model_path, "rb") as f:
      models[name] = f.read()
  assert models["a"] == models["b"]
  sources = data.prepare_sources(_config(corpus, tmp_path / "cache_a"))
  assert vocab.sample_sentences(sources, 100, 7) != vocab.sample_sentences(sources, 100, 8)


def test_no_surviving_pair_is_a_user_error(tmp_path):
  corpus = write_copy_corpus(tmp_path / "c", n_train=50)
  with pytest.raises(UserError, match=r"all 50 training pairs are longer than --max_length=3"):
    data.load_data(_config(corpus, tmp_path / "cache", max_length=3), str(tmp_path / "w"), 0)
  assert not os.path.exists(tmp_path / "w" / data.INFO_FILE)


def test_inference_reads_only_the_workdir(tmp_path):
  """After the first load, the corpus and the cache may be gone: tokenizer, label facts and
  statistics come from the workdir; only a data stream needs the corpus again."""
  corpus = write_copy_corpus(tmp_path / "c", n_train=300)
  config = _config(corpus, tmp_path / "cache")
  first = data.load_data(config, str(tmp_path / "w"), seed=1)
  shutil.move(corpus, str(tmp_path / "moved"))
  shutil.rmtree(tmp_path / "cache")
  again = data.load_data(config, str(tmp_path / "w"), seed=1)
  assert again.stats == first.stats and again.label_info["domain"] == first.label_info["domain"]
  line = ["apple bird cloud"]
  np.testing.assert_array_equal(next(iter(again.text_dataset(line, 1)))["source"],
                                next(iter(first.text_dataset(line, 1)))["source"])
  assert not os.path.exists(tmp_path / "cache")  # nothing was prepared
  with pytest.raises(UserError, match="not a directory"):
    again.eval_dataset("validation", 4)


def test_second_workdir_reuses_the_shared_cache(tmp_path, monkeypatch):
  corpus = write_copy_corpus(tmp_path / "c", n_train=300)
  config = _config(corpus, tmp_path / "cache")
  built = []
  real_build, real_train = prep._build, vocab.train_models
  monkeypatch.setattr(prep, "_build", lambda *a: built.append("data") or real_build(*a))
  monkeypatch.setattr(vocab, "train_models", lambda *a: built.append("vocab") or real_train(*a))
  one = data.load_data(config, str(tmp_path / "w1"), seed=1)
  two = data.load_data(config, str(tmp_path / "w2"), seed=1)
  assert built == ["data", "vocab"]
  assert one.stats == two.stats
  with open(one.source_tokenizer.model_path, "rb") as a, \
       open(two.source_tokenizer.model_path, "rb") as b:
    assert a.read() == b.read()
  assert sorted(os.listdir(tmp_path / "w2")) == ["data_info.json", "spm.model"]


def _first_lines(bundle, seed, batches=4):
  ids = []
  for batch in bundle.train_dataset(128, seed).take(batches):
    texts = bundle.source_tokenizer.detokenize(batch["source"].numpy())
    ids += [int(t.split()[0]) for t in texts]
  return ids


def test_large_train_split_is_shuffled_globally_and_resumes_exactly(tmp_path, monkeypatch):
  """2000 pairs in shards of 300: every shard a random part of the whole file, so the first
  batches come from all over it (with the 32-example buffer alone they would all be < 200)."""
  monkeypatch.setattr(prep, "SHARD_EXAMPLES", 300)
  corpus = _numbered_corpus(tmp_path / "c", 2000)
  bundle = data.load_data(_config(corpus, tmp_path / "cache", vocab_size=40),
                          str(tmp_path / "w"), seed=1)
  (source,) = bundle.builders
  assert len(source.split_files("train")) == 7
  stored = [int(r["source"].split()[0]) for r in source.rows("train")]
  assert sorted(stored) == list(range(2000)) and stored != sorted(stored)
  first = _first_lines(bundle, seed=3)
  assert len(first) > 40 and np.median(first) > 500 and max(first) > 1500
  assert first == _first_lines(bundle, seed=3) and first != _first_lines(bundle, seed=4)
  iterator = iter(bundle.train_dataset(128, seed=3))
  for _ in range(5):
    next(iterator)
  path = tf.train.Checkpoint(iterator=iterator).write(str(tmp_path / "ckpt"))
  expected = [next(iterator)["source"].numpy() for _ in range(3)]
  restored = iter(bundle.train_dataset(128, seed=3))
  tf.train.Checkpoint(iterator=restored).read(path).assert_consumed()
  for want in expected:
    np.testing.assert_array_equal(next(restored)["source"].numpy(), want)


def test_small_train_split_keeps_file_order_and_counts_while_streaming(tmp_path):
  corpus = _numbered_corpus(tmp_path / "c", 500)
  logged = []
  source = prep.prepare("parallel_text", corpus, "en", "de", str(tmp_path / "cache"),
                        log=logged.append)
  assert logged[0] == (f"Preparing data from {corpus} (parallel_text en-de) into "
                       f"{source.path}"), logged[0]
  assert not any("Downloading" in line for line in logged)
  assert [int(r["source"].split()[0]) for r in source.rows("train")] == list(range(500))
  assert source.auxseq_stats["train_examples"] == 500
  assert source.auxseq_stats["train_words_histogram"]["counts"][0] == 500  # 3 words each
  assert {s: i.num_examples for s, i in source.splits.items()} == {
      "train": 500, "validation": 5, "test": 5}


def test_a_failed_preparation_leaves_nothing_in_the_cache(tmp_path):
  corpus = _numbered_corpus(tmp_path / "c", 50)
  with open(os.path.join(corpus, "test.de"), "a", encoding="utf-8") as f:
    f.write("one line too many\n")
  with pytest.raises(UserError, match=r"test\.en has 5 lines but .*test\.de has 6"):
    prep.prepare("parallel_text", corpus, "en", "de", str(tmp_path / "cache"))
  assert os.listdir(tmp_path / "cache") == []


def test_separate_vocabularies_share_the_cache_by_settings(tmp_path):
  corpus = write_copy_corpus(tmp_path / "c", n_train=300)
  joint = data.load_data(_config(corpus, tmp_path / "cache"), str(tmp_path / "j"), seed=1)
  split = data.load_data(dataclasses.replace(_config(corpus, tmp_path / "cache"),
                                             joint_vocab=False), str(tmp_path / "s"), seed=1)
  assert joint.source_tokenizer is joint.target_tokenizer
  assert split.source_tokenizer.model_path.endswith("spm.src.model")
  assert len([n for n in os.listdir(tmp_path / "cache") if n.startswith("vocab-")]) == 2


def test_source_rows_equal_the_text_dataset_ids(tmp_path):
  """translate/evaluate on --input_file encode in Python (`source_rows`, no tf.data graph at
  start-up): the same ids as `text_dataset`, the cap at 4 * max_length - 1 pieces + EOS too."""
  corpus = write_copy_corpus(tmp_path / "copy")
  bundle = data.load_data(_config(corpus, tmp_path / "cache", max_length=4), str(tmp_path / "w"),
                          1234)
  lines = ["apple bird cloud door eagle forest garden " * 5, "zebra", "", "ünknown ✓ x"]
  rows = bundle.source_rows(lines)
  batch = next(iter(bundle.text_dataset(lines, len(lines))))["source"].numpy()
  assert [r.tolist() for r in rows] == [b[b != 0].tolist() for b in batch]
  assert len(rows[0]) == 16 and rows[2].tolist() == [3]  # cap 4 * 4 with EOS; "" -> EOS
  assert all(r.dtype == np.int32 for r in rows)
