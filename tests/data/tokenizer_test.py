"""Tokenizer: round trip, reserved ids, EOS/pad handling, caching in the workdir."""
import os

import numpy as np
import pytest
import tensorflow as tf

from configs.errors import UserError
from data.tokenizer import train_tokenizer

CORPUS = ["the cat sat on the mat", "a dog ran in the park", "the bird sang a song",
          "open the file now", "close the window please"] * 20


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
  # vocab_size far above what 5 sentences allow: the soft limit makes a smaller model.
  return train_tokenizer(CORPUS, 8000, str(tmp_path_factory.mktemp("spm") / "spm.model"))


def test_round_trip_inside_tf_data(tokenizer):
  texts = ["the cat sat on the mat", "close the window please"]
  ds = tf.data.Dataset.from_tensor_slices(texts).map(tokenizer.tokenize)
  ids = [row.numpy().tolist() for row in ds]
  assert all(min(row) > 3 for row in ids)  # no pad/unk/bos/eos inside plain text
  assert tokenizer.detokenize(ids) == texts


def test_reserved_ids_and_detokenize_rules(tokenizer):
  assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.bos_id, tokenizer.eos_id) == (0, 1, 2, 3)
  assert 4 < tokenizer.vocab_size < 8000
  pieces = tokenizer.tokenize(tf.constant(["the cat"])).to_list()[0]
  row = [2] + pieces + [3] + pieces + [0, 0]  # BOS ... EOS garbage pad
  assert tokenizer.detokenize(np.array([row])) == ["the cat"]
  assert tokenizer.detokenize([[0, 0, 0]]) == [""]


def test_model_is_cached_and_reused(tmp_path):
  path = str(tmp_path / "spm.model")
  first = train_tokenizer(CORPUS, 50, path)
  stamp = os.path.getmtime(path)
  second = train_tokenizer(["completely different text"], 50, path)
  assert os.path.getmtime(path) == stamp and second.vocab_size == first.vocab_size
  assert sorted(os.listdir(tmp_path)) == ["spm.model"]  # no temp file left behind


def test_too_small_vocab_and_empty_text_are_user_errors(tmp_path):
  with pytest.raises(UserError, match="--vocab_size=5 is smaller"):
    train_tokenizer(CORPUS, 5, str(tmp_path / "a.model"))
  with pytest.raises(UserError, match="no training text"):
    train_tokenizer(["", ""], 100, str(tmp_path / "b.model"))
  assert not os.listdir(tmp_path)


def test_handing_the_sample_over_frees_it_and_keeps_the_bytes(tmp_path):
  """Issue 19: with hand_over the caller's list is emptied while SentencePiece reads it (the
  Python strings are freed before its suffix array, the peak of training, is built); the model
  is byte-identical to training on a list that stays alive, and "" lines are still skipped."""
  kept = CORPUS + ["", "open the door"]
  handed = list(kept)
  a = train_tokenizer(kept, 60, str(tmp_path / "kept.model"), seed=7)
  b = train_tokenizer(handed, 60, str(tmp_path / "handed.model"), seed=7, hand_over=True)
  assert kept == CORPUS + ["", "open the door"]  # untouched without hand_over
  assert len(handed) == len(kept) - 1 and set(handed) == {None}  # "" dropped, the rest freed
  assert open(a.model_path, "rb").read() == open(b.model_path, "rb").read()
  assert a.encode(["open the door"]) == b.encode(["open the door"])
