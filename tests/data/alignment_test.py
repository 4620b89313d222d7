"""Word alignments: the `.align` reader's checks and the word -> subword mapping in the pipeline.

The mapping is pinned on a hand-built SentencePiece model whose pieces are known (`▁a`, `b`, `▁c`,
a lone `▁`, `x`): "ab c" is [▁a, b, ▁c], so source word 0 is pieces 0-1 and word 1 is piece 2.
"""
import random

import numpy as np
import pytest
import sentencepiece as spm
import tensorflow as tf
from sentencepiece import sentencepiece_model_pb2 as sp_model

import data
from configs.config import DataConfig, DataSourceConfig
from configs.errors import UserError
from data import pipeline
from data.text_files import read_parallel_text
from data.tokenizer import Tokenizer

_PIECES = (("<pad>", 4), ("<unk>", 2), ("<s>", 3), ("</s>", 3), ("▁a", 1), ("b", 1), ("▁c", 1),
           ("▁", 1), ("a", 1), ("c", 1), ("x", 1))  # (piece, ModelProto type: 1 normal, ...)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
  """ids: pad 0, unk 1, bos 2, eos 3, ▁a 4, b 5, ▁c 6, ▁ 7, a 8, c 9, x 10 (no normalisation)."""
  model = sp_model.ModelProto()
  for piece, kind in _PIECES:
    model.pieces.add(piece=piece, score=-1.0 if len(piece) > 1 else -3.0, type=kind)
  model.trainer_spec.model_type = sp_model.TrainerSpec.UNIGRAM
  model.trainer_spec.pad_id, model.trainer_spec.unk_id = 0, 1
  model.trainer_spec.bos_id, model.trainer_spec.eos_id = 2, 3
  model.normalizer_spec.name = "identity"
  model.normalizer_spec.add_dummy_prefix = True
  path = tmp_path_factory.mktemp("spm") / "hand.model"
  path.write_bytes(model.SerializeToString())
  return Tokenizer(str(path))


def _row(source, target, alignment):
  return {"source": tf.constant(source), "target": tf.constant(target), "domain": tf.constant(""),
          "price": tf.constant(np.nan, tf.float32), "alignment": tf.constant(alignment)}


def _encode(tokenizer, source, target, alignment, **kwargs):
  encoder = pipeline.Encoder(tokenizer, tokenizer, (), alignment=True)
  return {k: v.numpy() for k, v in encoder(_row(source, target, alignment), **kwargs).items()}


def test_word_links_become_links_between_all_pieces_of_the_words(tokenizer):
  """Source "ab c" = [▁a, b, ▁c] + EOS; target "c ab" = [▁c, ▁a, b] + EOS. Word link 0-1 (ab-ab)
  links source pieces 0, 1 with target pieces 1, 2; 1-0 (c-c) links 2 with 0. EOS unlinked."""
  batch = _encode(tokenizer, "ab c", "c ab", "0-1 1-0")
  assert batch["source"].tolist() == [4, 5, 6, 3]
  assert batch["target_out"].tolist() == [6, 4, 5, 3]  # no BOS: position k = k-th piece
  assert batch["target_in"].tolist() == [2, 6, 4, 5]
  assert batch["alignment"] == b"0-1 0-2 1-1 1-2 2-0"
  assert _encode(tokenizer, "ab c", "c ab", "")["alignment"] == b""
  assert _encode(tokenizer, "ab c", "c ab", "1-0 1-0")["alignment"] == b"2-0"  # no duplicates


def test_lone_space_piece_and_unknown_character_belong_to_their_word(tokenizer):
  """"ab x€ c" = [▁a, b, ▁, x, <unk>, ▁c]: word 1 "x€" is pieces 2, 3 and 4."""
  batch = _encode(tokenizer, "ab x€ c", "c", "1-0 2-0")
  assert batch["source"].tolist() == [4, 5, 7, 10, 1, 6, 3]
  assert batch["alignment"] == b"2-0 3-0 4-0 5-0"


def test_piece_words_from_offsets(tokenizer):
  text = tf.constant("ab x€ c")
  _, starts, _ = pipeline._offsets_tokenizer(tokenizer).tokenize_with_offsets(text)
  assert starts.numpy().tolist() == [0, 1, 2, 3, 4, 7]  # "▁c" starts on the space (byte 7)
  assert pipeline.piece_words(text, starts).numpy().tolist() == [0, 0, 1, 1, 1, 2]


def test_capped_source_drops_links_past_the_cap(tokenizer):
  """Evaluation caps the source at source_cap - 1 pieces + EOS: piece 2 (▁c) is cut, its link
  goes with it."""
  batch = _encode(tokenizer, "ab c", "c ab", "0-1 1-0", source_cap=3)
  assert batch["source"].tolist() == [4, 5, 3]
  assert batch["alignment"] == b"0-1 0-2 1-1 1-2"


def test_subword_links_by_hand():
  links = pipeline.subword_links(tf.constant("0-0 2-1"), tf.constant([0, 0, 1, 2, 2]),
                                 tf.constant([0, 1, 1]))
  assert links.numpy() == b"0-0 1-0 3-1 3-2 4-1 4-2"


def _write(directory, name, lines):
  (directory / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _corpus(directory, align=None, align_name="train.align"):
  directory.mkdir(exist_ok=True)
  for prefix in ("train", "val", "test"):
    _write(directory, f"{prefix}.en", ["a b c", "d e", "f"])
    _write(directory, f"{prefix}.de", ["A B", "D E", "F"])
  if align is not None:
    _write(directory, align_name, align)
  return str(directory)


def test_reader_fills_alignment_and_counts(tmp_path):
  splits, stats = read_parallel_text(_corpus(tmp_path / "c", ["0-0  2-1", "", "0-0"]), "en", "de")
  assert [r["alignment"] for r in splits["train"]] == ["0-0 2-1", "", "0-0"]
  assert [r["alignment"] for r in splits["validation"]] == ["", "", ""]  # no val.align
  assert stats["train_files"] == ["train.en", "train.de", "train.align"]
  assert stats["train_aligned"] == 2 and "validation_aligned" not in stats


def test_pair_specific_file_wins(tmp_path):
  directory = _corpus(tmp_path / "c", ["0-0", "0-0", "0-0"])
  _write(tmp_path / "c", "train.en-de.align", ["1-1", "1-1", "0-0"])
  splits, stats = read_parallel_text(directory, "en", "de")
  assert [r["alignment"] for r in splits["train"]] == ["1-1", "1-1", "0-0"]
  assert stats["train_files"][-1] == "train.en-de.align"


def test_blank_pair_is_skipped_with_its_alignment(tmp_path):
  directory = _corpus(tmp_path / "c", ["0-0", "", "0-0"])
  _write(tmp_path / "c", "train.de", ["A B", "", "F"])
  splits, stats = read_parallel_text(directory, "en", "de")
  assert [(r["source"], r["alignment"]) for r in splits["train"]] == [("a b c", "0-0"),
                                                                       ("f", "0-0")]
  assert stats["blank_lines_skipped"] == 1


@pytest.mark.parametrize("align, message", [
    (["0-0", "0-0"], r"train.align has 2 lines but .*train.en and .*train.de have 3"),
    (["0-0", "3-x", "0-0"], r"train.align:2: malformed alignment link '3-x'; expected Pharaoh"),
    (["0-0", "0-0", "-1-2"], r"train.align:3: malformed alignment link '-1-2'"),
    (["0-0", "0-0", "0:0"], r"train.align:3: malformed alignment link '0:0'"),
    (["0-0", "2-1", "0-0"], r"train.align:2: alignment link '2-1' is past the sentence pair: "
                            r"the source has 2 words, the target 2"),
    (["3-0", "0-0", "0-0"], r"train.align:1: alignment link '3-0' is past"),
    (["0-2", "0-0", "0-0"], r"train.align:1: alignment link '0-2' is past"),
])
def test_bad_alignment_files_are_user_errors(tmp_path, align, message):
  with pytest.raises(UserError, match=message):
    read_parallel_text(_corpus(tmp_path / "c", align), "en", "de")


WORDS = "apple bird cloud door eagle forest garden house island jungle kettle lemon".split()


@pytest.fixture(scope="module")
def aligned_bundle(tmp_path_factory):
  """A copy corpus (target = source) with identity word alignments, one over-length pair, and
  the listings mixed in: every translated example's subword alignment links each piece with
  every piece of the same word (a block diagonal)."""
  tmp = tmp_path_factory.mktemp("aligned")
  rng, directory = random.Random(0), tmp / "par"
  directory.mkdir()
  for prefix, n in (("train", 200), ("val", 10), ("test", 10)):
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 4))) for _ in range(n)]
    if prefix == "train":
      lines[3] = " ".join(WORDS * 3)  # 36 words, longer than max_length: filtered
    _write(directory, f"{prefix}.en", lines)
    _write(directory, f"{prefix}.de", lines)
    _write(directory, f"{prefix}.align",
           [" ".join(f"{i}-{i}" for i in range(len(line.split()))) for line in lines])
  config = DataConfig(sources=(DataSourceConfig("parallel_text", str(directory), 1.0),
                               DataSourceConfig("tsv", "", 0.3)),
                      vocab_size=300, max_length=32, batch_tokens=256, shuffle_buffer=64)
  return data.load_data(config, str(tmp / "work"), seed=1)


def _block_diagonal(tokenizer, ids):
  """Expected links for an identity word alignment, from the pieces' spelling (a word starts at
  each piece beginning with ▁) rather than from byte offsets as in the pipeline."""
  sp = spm.SentencePieceProcessor(model_file=tokenizer.model_path)
  words = np.cumsum([sp.id_to_piece(int(i)).startswith("▁") for i in ids]) - 1
  return " ".join(f"{k}-{m}" for k in range(len(ids)) for m in range(len(ids))
                  if words[k] == words[m]).encode()


def test_train_batches_carry_the_mapped_alignment(aligned_bundle):
  assert aligned_bundle.label_info["alignment"] == 200
  assert aligned_bundle.stats["parallel_text"]["dropped_over_max_length"] == 1
  translated = listings = 0
  for batch in aligned_bundle.train_dataset(256, seed=3).take(30):
    assert batch["alignment"].dtype == tf.string
    for source, target, alignment in zip(batch["source"].numpy(), batch["target_out"].numpy(),
                                         batch["alignment"].numpy()):
      pieces = int((target != 0).sum()) - 1  # without EOS
      if pieces < 0:  # a listing: no translation, no alignment
        listings += 1
        assert alignment == b""
        continue
      translated += 1
      assert pieces <= 31 and np.array_equal(source[:pieces], target[:pieces])
      assert alignment == _block_diagonal(aligned_bundle.source_tokenizer, target[:pieces])
  assert translated > 50 and listings > 10


def test_eval_batches_carry_the_alignment(aligned_bundle):
  batch = next(iter(aligned_bundle.eval_dataset("test", batch_size=4)))
  for target, alignment in zip(batch["target_out"].numpy(), batch["alignment"].numpy()):
    pieces = target[:int((target != 0).sum()) - 1]
    assert alignment == _block_diagonal(aligned_bundle.source_tokenizer, pieces)
  assert b"0-1" in batch["alignment"].numpy()[0] or b"0-1" in batch["alignment"].numpy()[1]


def test_no_alignment_files_no_alignment_key(tmp_path):
  config = DataConfig(sources=(DataSourceConfig("parallel_text", _corpus(tmp_path / "c")),),
                      vocab_size=40, max_length=16, batch_tokens=64, shuffle_buffer=8)
  bundle = data.load_data(config, str(tmp_path / "w"), seed=0)
  assert bundle.label_info["alignment"] == 0
  assert "alignment" not in next(iter(bundle.train_dataset(64, seed=0)))
