"""SentencePiece tokenisation: trained on a seeded sample of the training split (data/vocab.py),
applied inside tf.data with tensorflow-text. Ids: pad 0, unk 1, bos 2, eos 3."""
import io
import os
from typing import Iterable, List, Sequence

import numpy as np
import sentencepiece as spm
import tensorflow as tf

from configs.errors import UserError
from data.special_ids import BOS, EOS, PAD, UNK



class Tokenizer:
  """A sentencepiece model usable in Python and inside tf.data graphs."""
  pad_id, unk_id, bos_id, eos_id = PAD, UNK, BOS, EOS

  def __init__(self, model_path: str):
    self.model_path = model_path
    with open(model_path, "rb") as f:
      self._proto = f.read()
    self._sp = spm.SentencePieceProcessor(model_proto=self._proto)
    self._tf = None  # the in-graph tokenizer, built on first use (translating needs none)
    self.vocab_size = int(self._sp.get_piece_size())

  def tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
    """tf.string [N] -> int32 ragged [N, None] (no BOS/EOS); a scalar gives int32 [None]."""
    if self._tf is None:
      # tensorflow_text (~0.3 s to import) is loaded only by the paths that run its ops in a graph.
      import tensorflow_text as tf_text  # pylint: disable=import-outside-toplevel
      with tf.init_scope():  # eager, even when first called while a tf.data map is traced
        self._tf = tf_text.SentencepieceTokenizer(model=self._proto, out_type=tf.int32)
    return self._tf.tokenize(text)

  def encode(self, texts: Sequence[str]) -> List[List[int]]:
    return self._sp.encode(list(texts))

  def detokenize(self, ids) -> List[str]:
    """int ids [N, L] -> strings; each row is cut at the first EOS; pad and BOS are ignored."""
    texts = []
    for row in np.asarray(ids).tolist() if not isinstance(ids, list) else ids:
      pieces = []
      for token in row:
        if token == EOS:
          break
        if token not in (PAD, BOS):
          pieces.append(int(token))
      texts.append(self._sp.decode(pieces))
    return texts


def train_tokenizer(sentences: Iterable[str], vocab_size: int, path: str,
                    seed: int = 0, hand_over: bool = False) -> Tokenizer:
  """Trains a unigram sentencepiece model on all of `sentences` (the caller samples) and writes
  it atomically to `path` (reused if there). The same sentences and seed give the same bytes.

  `vocab_size` is a soft limit (`hard_vocab_limit=False`): a tiny corpus gets fewer pieces.
  `hand_over`: `sentences` is a list that this call empties (every entry None) while
  SentencePiece copies it, so a large sample is not held twice at the peak of training.

  Raises:
    UserError: no sentences, or vocab_size below the number of distinct characters.
  """
  if os.path.exists(path):
    return Tokenizer(path)
  kept = [s for s in sentences if s]
  if hand_over:
    sentences[:] = kept  # the caller's list is the one emptied while SentencePiece reads it
    kept = sentences
  sentences = kept
  if not sentences:
    raise UserError(f"no training text for the tokenizer {os.path.basename(path)}: the training "
                    "splits have no sentences on this side (is the main source a translation "
                    "corpus?)")
  model = io.BytesIO()
  try:
    _train(sentences, vocab_size, model, seed)
  except RuntimeError as e:
    if "smaller than required_chars" in str(e):
      needed = str(e).split(" vs ")[-1].split(".")[0]
      raise UserError(f"--vocab_size={vocab_size} is smaller than the {needed} distinct "
                      "characters of the training text; use a larger --vocab_size") from None
    raise
  tmp = path + ".tmp"
  with open(tmp, "wb") as f:
    f.write(model.getvalue())
  os.replace(tmp, path)
  return Tokenizer(path)


def _handed_over(sentences: list):
  """The sentences in order, each dropped from the list as SentencePiece takes its own copy, so
  the Python strings are freed before its suffix array (the peak of training) is built."""
  for i, sentence in enumerate(sentences):
    sentences[i] = None
    yield sentence


def _train(sentences, vocab_size, model, seed):
  spm.set_random_generator_seed(seed % (2 ** 32))
  spm.SentencePieceTrainer.train(
      sentence_iterator=_handed_over(sentences), model_writer=model, vocab_size=vocab_size,
      model_type="unigram", character_coverage=1.0, pad_id=PAD, unk_id=UNK, bos_id=BOS,
      eos_id=EOS, hard_vocab_limit=False, input_sentence_size=0,
      shuffle_input_sentence=False, num_threads=2, minloglevel=2)
